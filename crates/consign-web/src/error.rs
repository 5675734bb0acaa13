//! The API's one error type and its problem+json form (RFC 9457, docs/api.md).
//!
//! Every failure a handler can return is an [`AppError`]; the mapping to a
//! status and a stable `code` is one exhaustive `match`, so a new variant
//! forces a decision. Internal errors are logged with the request id and
//! answered with a generic body: their detail never reaches the client.

use std::str::FromStr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consign_app::checkout::CheckoutError;
use consign_app::order_commands::CommandError;
use consign_app::payment_start::StartError;
use consign_app::provider_accounts::AccountError;
use consign_db::DbError;
use consign_domain::text;
use serde::Serialize;
use utoipa::ToSchema;

/// Result of a handler.
pub type AppResult<T, E = AppError> = Result<T, E>;

/// One invalid field.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, such as `organization.name`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// A stable machine-readable code, such as `validation_failed`.
    pub code: String,
    /// Invalid fields, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body was not JSON, or not the JSON asked for.
    #[error("{detail}")]
    BadRequest {
        /// What is wrong.
        detail: String,
        /// Offending fields, if known.
        errors: Vec<FieldError>,
    },
    /// The request is well-formed but some fields are invalid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// No credentials, or credentials that do not hold.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, able to see the resource, not allowed this action.
    #[error("forbidden")]
    Forbidden,
    /// No such resource, or one the caller cannot see.
    #[error("not found")]
    NotFound,
    /// The request conflicts with current state (a taken email, say).
    #[error("{0}")]
    Conflict(String),
    /// Not enough stock for these SKUs.
    #[error("insufficient stock")]
    InsufficientStock {
        /// Each short SKU.
        skus: Vec<String>,
        /// What is short, in words.
        detail: String,
    },
    /// The resource's state does not allow this change.
    #[error("{0}")]
    InvalidTransition(String),
    /// An `If-Match` version that is not the current one.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The `Idempotency-Key` was used with another request.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being processed.
    #[error("idempotency request in progress")]
    IdempotencyInProgress,
    /// A webhook whose signature does not hold.
    #[error("signature invalid")]
    SignatureInvalid,
    /// A third party (a payment provider) is unavailable; try again.
    #[error("{0}")]
    Unavailable(String),
    /// Too many attempts.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until another attempt may succeed.
        retry_after_seconds: u64,
    },
    /// Our fault. Logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A field its domain type refused (`consign_domain::text`), under the
    /// name the request or the form gives it:
    /// `Reason::parse(&form.reason).map_err(AppError::invalid("reason"))`.
    pub fn invalid(field: impl Into<String>) -> impl FnOnce(text::FieldError) -> AppError {
        let field = field.into();
        move |error| AppError::field(field, error.to_string())
    }

    /// Status, code, title and detail, in one place.
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use AppError::*;
        match self {
            BadRequest { detail, .. } => {
                (StatusCode::BAD_REQUEST, "validation_failed", "Malformed request", detail.clone())
            }
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
                "One or more fields are invalid.".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "The request body is larger than this server accepts.".into(),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "validation_failed",
                "Unsupported media type",
                "Send the body as application/json.".into(),
            ),
            Unauthenticated(detail) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated", (*detail).into())
            }
            Forbidden => {
                (StatusCode::FORBIDDEN, "forbidden", "Forbidden", "Your role does not allow this action.".into())
            }
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found", "No such resource.".into()),
            Conflict(detail) => (StatusCode::CONFLICT, "conflict", "Conflict", detail.clone()),
            InsufficientStock { detail, .. } => {
                (StatusCode::CONFLICT, "insufficient_stock", "Insufficient stock", detail.clone())
            }
            InvalidTransition(detail) => {
                (StatusCode::CONFLICT, "invalid_transition", "Invalid transition", detail.clone())
            }
            PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "Precondition failed",
                "The resource changed since the version given in If-Match.".into(),
            ),
            IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                "This Idempotency-Key was already used with a different request.".into(),
            ),
            IdempotencyInProgress => (
                StatusCode::CONFLICT,
                "idempotency_request_in_progress",
                "Request in progress",
                "A request with this Idempotency-Key is still being processed.".into(),
            ),
            SignatureInvalid => (
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "Signature invalid",
                "The request's signature does not verify.".into(),
            ),
            Unavailable(detail) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail.clone())
            }
            RateLimited { retry_after_seconds } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!("Try again in {retry_after_seconds} seconds."),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
                "Something went wrong on our side; it has been logged.".into(),
            ),
        }
    }
}

/// The internal error behind a 500, left in the response's extensions for
/// the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalErrorDetail(pub String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, title, detail) = self.parts();
        let errors = match &self {
            AppError::Validation(errors) | AppError::BadRequest { errors, .. } => errors.clone(),
            AppError::InsufficientStock { skus, .. } => {
                skus.iter().map(|sku| FieldError::new("sku", format!("{sku}: not enough stock"))).collect()
            }
            _ => Vec::new(),
        };
        let problem = Problem {
            type_: format!("urn:consign:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            code: code.into(),
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let AppError::RateLimited { retry_after_seconds } = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        if let AppError::Internal(error) = &self {
            response.extensions_mut().insert(InternalErrorDetail(format!("{error:#}")));
        }
        response
    }
}

impl From<crate::auth::password::PasswordError> for AppError {
    fn from(error: crate::auth::password::PasswordError) -> Self {
        match error {
            // The hashing queue is full: a moment later there is room.
            crate::auth::password::PasswordError::Busy => AppError::RateLimited { retry_after_seconds: 1 },
            crate::auth::password::PasswordError::Failed(error) => AppError::Internal(error),
        }
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => AppError::NotFound,
            // The engine's words ("UNIQUE constraint failed: users.email")
            // name the schema, so they stay in the log; handlers that know
            // what conflicted say it in their own words.
            DbError::Conflict { constraint } => {
                tracing::debug!(%constraint, "unique constraint conflict");
                AppError::Conflict("This conflicts with an existing record.".into())
            }
            DbError::VersionMismatch => AppError::PreconditionFailed,
            DbError::InsufficientStock { skus } => {
                let detail = format!("Not enough stock for: {}.", skus.join(", "));
                AppError::InsufficientStock { skus, detail }
            }
            DbError::InvalidTransition { detail } => AppError::InvalidTransition(detail),
            DbError::Invalid { field, message } => AppError::field(field, message),
            DbError::Other(error) => AppError::Internal(error),
        }
    }
}

impl From<AccountError> for AppError {
    fn from(error: AccountError) -> Self {
        match error {
            // Without a master key no provider works; the operator can mend it.
            AccountError::NoKeyring(error) => AppError::Unavailable(error.to_string()),
            // The message names the key id at most, never key material.
            AccountError::Unreadable(_) => AppError::Internal(error.into()),
            AccountError::Db(error) => error.into(),
        }
    }
}

impl From<CheckoutError> for AppError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::TooManyUnpaid { retry_after_seconds } => AppError::RateLimited { retry_after_seconds },
            CheckoutError::ProviderNotSetUp(kind) => {
                AppError::field("payment_provider", format!("{kind} is not set up for this brand"))
            }
            CheckoutError::Account(error) => error.into(),
            CheckoutError::Db(error) => error.into(),
        }
    }
}

impl From<CommandError> for AppError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound => AppError::NotFound,
            CommandError::Forbidden => AppError::Forbidden,
            CommandError::Invalid(problems) => AppError::Validation(
                problems.into_iter().map(|problem| FieldError::new(problem.field, problem.message)).collect(),
            ),
            CommandError::Db(error) => error.into(),
        }
    }
}

impl From<StartError> for AppError {
    fn from(error: StartError) -> Self {
        match error {
            // The checkout's field name; a payment retry answers the same.
            StartError::NotSetUp => AppError::field("payment_provider", "is not set up for this brand"),
            StartError::Account(error) => error.into(),
            StartError::Db(error) => error.into(),
        }
    }
}

/// A garde rule that checks a field with its domain type's `parse`
/// (`#[garde(custom(text_rule::<Carrier>))]`), so the API refuses what the
/// pages refuse, in the same words. A request keeps such a field as the
/// string it was sent, and the handler parses it once `validate()` has
/// passed: the refusal is then reported with the request's other invalid
/// fields, and at the point the handler validates (after it has checked
/// the caller), as it would be with a rule written here.
pub fn text_rule<T: FromStr<Err = text::FieldError>>(value: &str, _: &()) -> garde::Result {
    value.parse::<T>().map(drop).map_err(|error| garde::Error::new(error.to_string()))
}

impl From<garde::Report> for AppError {
    fn from(report: garde::Report) -> Self {
        AppError::Validation(
            report.iter().map(|(path, error)| FieldError::new(path.to_string(), error.message().to_string())).collect(),
        )
    }
}
