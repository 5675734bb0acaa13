//! Brand-scoped API keys: created (the secret is shown once), listed,
//! revoked.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::api_keys::{self, ApiKey};
use consign_domain::policy::Action;
use consign_domain::text::ApiKeyName;
use consign_domain::{ApiKeyId, BrandId};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::tokens;
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_key, list_keys)).routes(routes!(revoke_key))
}

/// `POST /api-keys`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateApiKey {
    /// The brand the key acts for.
    #[garde(skip)]
    pub brand_id: BrandId,
    /// A label, such as "WMS".
    #[garde(custom(text_rule::<ApiKeyName>))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// A new key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key as listed.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret: `csk_…`. Store it now; it cannot be shown again.
    pub key: String,
}

/// Creates an API key for a brand (brand admins).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = CreatedApiKey),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateApiKey>,
) -> AppResult<(StatusCode, AppJson<CreatedApiKey>)> {
    request.validate()?;
    caller.authorize_brand(Action::ManageApiKeys, request.brand_id)?;
    let name = ApiKeyName::parse(&request.name).map_err(AppError::invalid("name"))?;
    let (key, lookup) = tokens::new_api_key();
    let api_key = api_keys::create(
        &state.db,
        caller.scope(),
        request.brand_id,
        name.as_str(),
        &lookup,
        &tokens::sha256_hex(&key),
    )
    .await?;
    Ok((StatusCode::CREATED, AppJson(CreatedApiKey { api_key, key })))
}

/// Filters for `GET /api-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyFilter {
    /// Only this brand's keys.
    pub brand_id: Option<BrandId>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// API keys of the brands the caller administers.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(ApiKeyFilter),
    responses((status = 200, description = "A page of keys", body = Page<ApiKey>)),
    security(("bearer" = [])))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(filter): AppQuery<ApiKeyFilter>,
) -> AppResult<AppJson<Page<ApiKey>>> {
    if let Some(brand_id) = filter.brand_id {
        caller.authorize_brand(Action::ManageApiKeys, brand_id)?;
    }
    let page = PageQuery { limit: filter.limit, cursor: filter.cursor }.to_request()?;
    let keys = api_keys::list(&state.db, caller.scope(), filter.brand_id, &page).await?;
    let grants = caller.scope().grants();
    // Keys of brands the caller sees but does not administer stay hidden.
    let data = keys.data.into_iter().filter(|k| grants.allows_on_brand(Action::ManageApiKeys, k.brand_id)).collect();
    Ok(AppJson(Page { data, next_cursor: keys.next_cursor }))
}

/// Revokes a key; requests with it fail at once.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKey),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such key", body = Problem),
    ),
    security(("bearer" = [])))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(key_id): AppPath<ApiKeyId>,
) -> AppResult<AppJson<ApiKey>> {
    let key = api_keys::get(&state.db, caller.scope(), key_id).await?;
    caller.authorize_brand(Action::ManageApiKeys, key.brand_id)?;
    Ok(AppJson(api_keys::revoke(&state.db, caller.scope(), key_id).await?))
}
