//! Extractors that answer in our error format: JSON bodies, path ids, query
//! strings, the authenticated caller, pagination and `If-Match`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use consign_db::{PageRequest, Scope};
use consign_domain::policy::Action;
use consign_domain::{BrandId, OrganizationId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

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
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            // serde_json reports some wrong types (a number where an enum
            // goes) as syntax errors; valid JSON of the wrong shape is a 422.
            let well_formed = inner.is_data() || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
            if well_formed {
                let field = if path == "." { String::new() } else { path };
                Err(AppError::Validation(vec![FieldError::new(field, strip_position(&inner.to_string()))]))
            } else {
                Err(AppError::BadRequest { detail: format!("Malformed JSON: {inner}"), errors: vec![] })
            }
        }
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
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| AppQuery(value))
            .map_err(|rejection| AppError::field("query", rejection.body_text()))
    }
}

/// `?limit=&cursor=` (SPEC §3).
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

/// An `ETag` header value for a version.
pub fn etag(version: i64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}
