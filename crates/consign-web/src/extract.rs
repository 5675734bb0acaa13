//! Extractors that answer in our error format: JSON bodies, path ids, query
//! strings, the authenticated caller, pagination and `If-Match`; and the
//! client's address, which the API and the pages alike rate-limit by.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use consign_db::{Page, PageRequest, Scope};
use consign_domain::policy::Action;
use consign_domain::{BrandId, OrganizationId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{AppError, AppResult, FieldError};

/// A JSON body. Malformed JSON is a 400, a well-formed body of the wrong
/// shape is a 422 naming the field, a body over the limit is a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = match req.headers().get(header::CONTENT_TYPE) {
            None => true,
            Some(value) => value.to_str().ok().and_then(|v| v.split(';').next()).is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            }),
        };
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge
            } else {
                AppError::BadRequest { detail: "Could not read the request body.".into(), errors: vec![] }
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Parses JSON, naming the offending field on a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> AppResult<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|_| AppError::BadRequest {
                detail: "Trailing characters after the JSON body.".into(),
                errors: vec![],
            })?;
            refuse_nul_in_json(bytes)?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            // Whether the body is JSON at all decides between 400 and 422:
            // serde_json reports some wrong types (a number where an enum
            // goes) as syntax errors, and a field it refuses (an unknown one)
            // before it reaches a syntax error as a data error.
            let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
            if well_formed {
                let field = if path == "." { String::new() } else { path };
                Err(AppError::Validation(vec![FieldError::new(field, strip_position(&inner.to_string()))]))
            } else {
                Err(AppError::BadRequest { detail: format!("Malformed JSON: {inner}"), errors: vec![] })
            }
        }
    }
}

/// U+0000 is valid JSON and a valid URL escape, but PostgreSQL text cannot
/// hold it and SQLite's full-text query syntax refuses it: bad input, so it
/// is refused here with the field named, never left to fail in storage.
const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

fn refuse_nul_in_json(bytes: &[u8]) -> AppResult<()> {
    // The escape is the only way a NUL gets into a JSON string: a cheap
    // look for it spares the common body a second parse.
    if !bytes.windows(6).any(|window| window.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(()) };
    match nul_path(&value, String::new()) {
        Some(field) => Err(AppError::field(field, NUL_MESSAGE)),
        None => Ok(()),
    }
}

/// The path of the first string (or key) holding a NUL.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(index, item)| nul_path(item, format!("{path}[{index}]")))
        }
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if key.contains('\0') { Some(field) } else { nul_path(item, field) }
        }),
        _ => None,
    }
}

/// serde_json appends " at line L column C", which is noise for a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A path parameter. One that does not parse names no resource: 404.
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        // An escaped NUL names nothing either (see `NUL_MESSAGE`).
        if parts.uri.path().contains("%00") {
            return Err(AppError::NotFound);
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| AppPath(value))
            .map_err(|_| AppError::NotFound)
    }
}

/// A query string. One that does not parse is a 422.
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(AppError::field(name.replace('\0', ""), NUL_MESSAGE));
        }
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| AppQuery(value))
            .map_err(|rejection| AppError::field("query", rejection.body_text()))
    }
}

/// `?limit=&cursor=` (docs/api.md).
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Validates into a storage page request.
    pub fn to_request(&self) -> AppResult<PageRequest> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(AppError::field("limit", "must be between 1 and 200"));
        }
        Ok(PageRequest { limit, after: self.cursor.clone().filter(|c| !c.is_empty()) })
    }

    /// One page of a sub-collection whose storage function returns it
    /// whole (an order's shipments, a brand's canned responses). Such a list
    /// is bounded by its parent, so it is paged here rather than in SQL,
    /// which keeps the storage functions the pages and jobs share as they
    /// are. Rows come in `key_of` order and the cursor is the last key of a
    /// page; comparing keys rather than looking the cursor up keeps a page
    /// boundary valid when its row is deleted between two calls.
    pub fn page_of<T>(&self, mut rows: Vec<T>, key_of: impl Fn(&T) -> String) -> AppResult<Page<T>> {
        let request = self.to_request()?;
        rows.sort_by_cached_key(|row| key_of(row));
        if let Some(after) = &request.after {
            rows.retain(|row| key_of(row).as_str() > after.as_str());
        }
        Ok(Page::from_rows(rows, &request, key_of))
    }
}

/// A list bounded by a small fixed size (a brand's three payment providers,
/// its notification templates): the envelope of every list, one page.
pub fn whole_list<T>(rows: Vec<T>) -> Page<T> {
    Page { data: rows, next_cursor: None }
}

/// The authenticated caller, put in the request by the auth middleware.
/// Extracting it from an anonymous request answers 401.
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<Scope>);

impl Caller {
    /// The caller's tenant scope, for storage calls.
    pub fn scope(&self) -> &Scope {
        &self.0
    }

    /// 404 unless the caller sees the brand, 403 unless it may do `action`.
    pub fn authorize_brand(&self, action: Action, brand_id: BrandId) -> AppResult<()> {
        let grants = self.0.grants();
        if !grants.sees_brand(brand_id) {
            return Err(AppError::NotFound);
        }
        if !grants.allows_on_brand(action, brand_id) {
            return Err(AppError::Forbidden);
        }
        Ok(())
    }
}

impl Caller {
    /// The organization a request acts in: the one named, or the caller's
    /// only one. 404 unless the caller belongs to it, 403 unless it may do
    /// `action` there.
    pub fn authorize_organization(&self, action: Action, named: Option<OrganizationId>) -> AppResult<OrganizationId> {
        let grants = self.0.grants();
        let organization_id = match (named, grants.organizations.as_slice()) {
            (Some(id), _) => id,
            (None, [only]) => only.organization_id,
            (None, _) => {
                return Err(AppError::field(
                    "organization_id",
                    "required when you belong to several organizations or none",
                ));
            }
        };
        if !grants.sees_organization(organization_id) {
            return Err(AppError::NotFound);
        }
        if !grants.allows_in_organization(action, organization_id) {
            return Err(AppError::Forbidden);
        }
        Ok(organization_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(AppError::Unauthenticated("Send Authorization: Bearer <token>."))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, AppError> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// The version in an `If-Match` header, if one was sent.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse::<i64>()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| AppError::field("If-Match", "must be a quoted version number, such as \"3\""))
    }
}

/// A filter of one or more statuses, comma-separated (`unfulfilled,partially_shipped`);
/// empty or absent means any. Names `field` when a value is not a status.
pub fn status_list<T: std::str::FromStr>(field: &str, text: Option<&str>) -> AppResult<Vec<T>> {
    let values = text.unwrap_or_default().split(',').map(str::trim).filter(|v| !v.is_empty());
    values
        .map(|value| value.parse().map_err(|_| AppError::field(field, format!("`{value}` is not one of the statuses"))))
        .collect()
}

/// An `ETag` header value for a version.
pub fn etag(version: i64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// The client's address: the socket peer, or, behind trusted proxies, the
/// `X-Forwarded-For` entry that the outermost of them appended. Each proxy
/// appends the address it received from, so with N proxies of ours the
/// client is the N-th entry from the right; anything left of it is whatever
/// the client chose to send and is never believed. With fewer entries than
/// proxies (a request that skipped the outer ones) the left-most is taken.
pub(crate) fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if !state.config.trust_forwarded_for {
        return peer.ip();
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let from_right = state.config.trusted_proxies.max(1);
    let index = hops.len().saturating_sub(from_right);
    hops.get(index).and_then(|hop| hop.parse().ok()).unwrap_or_else(|| peer.ip())
}
