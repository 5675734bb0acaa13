//! Signup, login, token refresh and logout.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use consign_db::sessions::{self, Rotation};
use consign_db::users::{self, Organization, User};
use consign_domain::roles::OrganizationKind;
use consign_domain::{Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::signup::{self, NewAccount};
use crate::auth::{password, tokens};
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, Caller, client_ip};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signup)).routes(routes!(login)).routes(routes!(refresh)).routes(routes!(logout))
}

/// The organization created at signup.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewOrganization {
    /// Its name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `threepl` or `merchant`.
    pub kind: OrganizationKind,
}

/// `POST /auth/signup`. The fields are checked by the signup use case
/// (`actions::signup`), which the signup page shares.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// Login email.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 256, format = Password)]
    pub password: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The user's new organization, which it will administer.
    pub organization: NewOrganization,
}

/// The answer to signup.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    /// The new user.
    pub user: User,
    /// Its organization.
    pub organization: Organization,
    /// A short-lived access token.
    pub access_token: String,
    /// A refresh token (rotates on every use).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A short-lived access token, sent as `Authorization: Bearer`.
    pub access_token: String,
    /// A refresh token: spend it once at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

/// Creates an organization and its first admin.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Signed up", body = SignupResponse),
        (status = 403, description = "Signup is switched off", body = Problem),
        (status = 409, description = "These details cannot sign up", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "Too many signups from this address, or the server is busy; see Retry-After", body = Problem),
    ))]
async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(request): AppJson<SignupRequest>,
) -> AppResult<(StatusCode, AppJson<SignupResponse>)> {
    // The fields are checked by the use case, after signup's own rate
    // limit, as every other signup is.
    let account = NewAccount {
        email: &request.email,
        password: request.password,
        name: &request.name,
        organization_name: &request.organization.name,
        organization_kind: request.organization.kind,
    };
    let (user, organization) = signup::sign_up(&state, client_ip(&state, &headers, peer), account).await?;
    let pair = start_session(&state, user.id).await?;
    let response = SignupResponse {
        user,
        organization,
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
    };
    Ok((StatusCode::CREATED, AppJson(response)))
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Exchanges email and password for a token pair.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong email or password", body = Problem),
        (status = 429, description = "Too many attempts; see Retry-After", body = Problem),
    ))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppJson(request): AppJson<LoginRequest>,
) -> AppResult<AppJson<TokenResponse>> {
    let email = request.email.trim().to_lowercase();
    let ip = client_ip(&state, &headers, peer);
    state.limiter.check_login(ip, &email).await?;
    let credentials = users::credentials_by_email(&state.db, &email).await?;
    let (user_id, stored) = match credentials {
        Some(c) => (Some(c.id), Some(c.password_hash)),
        None => (None, None),
    };
    let verified = password::verify(request.password, stored).await?;
    match user_id {
        Some(user_id) if verified => Ok(AppJson(start_session(&state, user_id).await?)),
        _ => {
            state.limiter.record_login_failure(ip, &email).await?;
            Err(AppError::Unauthenticated("Wrong email or password."))
        }
    }
}

/// The refusal of a signup whose email is taken: it names no address.
/// `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token to spend.
    pub refresh_token: String,
}

/// Spends a refresh token for a new pair. Presenting a spent token revokes
/// its whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Invalid, expired, spent or revoked", body = Problem),
    ))]
async fn refresh(
    State(state): State<AppState>,
    AppJson(request): AppJson<RefreshRequest>,
) -> AppResult<AppJson<TokenResponse>> {
    let presented = tokens::sha256_hex(request.refresh_token.trim());
    let refresh_token = tokens::new_refresh_token();
    let limits = state.config.session_limits();
    let rotation = sessions::rotate(&state.db, &presented, &tokens::sha256_hex(&refresh_token), limits).await?;
    match rotation {
        Rotation::Rotated { user_id, session_id } => Ok(AppJson(TokenResponse {
            access_token: state.access_tokens.issue(user_id, session_id)?,
            refresh_token,
            expires_in: state.access_tokens.ttl_seconds(),
            token_type: "Bearer",
        })),
        Rotation::ReuseDetected => {
            tracing::warn!("refresh token reuse detected; session revoked");
            Err(AppError::Unauthenticated("This refresh token was already used; the session is revoked."))
        }
        Rotation::Invalid => Err(AppError::Unauthenticated("The refresh token is invalid or expired.")),
    }
}

/// Ends the caller's session: its refresh token and every access token
/// issued in it stop working.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid session", body = Problem),
    ),
    security(("bearer" = [])))]
async fn logout(State(state): State<AppState>, caller: Caller) -> AppResult<StatusCode> {
    match caller.scope().principal() {
        consign_db::Principal::User { session_id, .. } => {
            sessions::revoke(&state.db, *session_id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(AppError::Unauthenticated("Only a user session can log out.")),
    }
}

async fn start_session(state: &AppState, user_id: UserId) -> AppResult<TokenResponse> {
    let refresh_token = tokens::new_refresh_token();
    let now = Timestamp::now();
    let expires_at = state.config.session_limits().expiry(now, now);
    let session_id = sessions::start(&state.db, user_id, &tokens::sha256_hex(&refresh_token), expires_at).await?;
    Ok(TokenResponse {
        access_token: state.access_tokens.issue(user_id, session_id)?,
        refresh_token,
        expires_in: state.access_tokens.ttl_seconds(),
        token_type: "Bearer",
    })
}
