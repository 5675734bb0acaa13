//! Storage errors, named for what the caller must decide on.

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No such row, or the row is outside the caller's scope.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint or column that conflicted, as the engine names it.
        constraint: String,
    },
    /// The row's `version` was not the one the caller expected.
    #[error("version mismatch")]
    VersionMismatch,
    /// Not enough sellable stock for these SKUs.
    #[error("insufficient stock for {skus:?}")]
    InsufficientStock {
        /// Each short SKU.
        skus: Vec<String>,
    },
    /// The change is not allowed from the current state.
    #[error("{detail}")]
    InvalidTransition {
        /// Why, in words.
        detail: String,
    },
    /// A field of the request breaks a business rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Anything else: a bug or an outage, never the caller's input.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(db_error) if db_error.is_unique_violation() => {
                let constraint =
                    db_error.constraint().map(str::to_owned).unwrap_or_else(|| db_error.message().to_owned());
                DbError::Conflict { constraint }
            }
            _ => DbError::Other(anyhow::Error::new(error)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        DbError::Other(anyhow::Error::new(error))
    }
}

impl From<consign_domain::status::InvalidTransition> for DbError {
    fn from(error: consign_domain::status::InvalidTransition) -> Self {
        DbError::InvalidTransition { detail: error.to_string() }
    }
}

impl DbError {
    /// A business-rule violation on one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DbError::Invalid { field: field.into(), message: message.into() }
    }

    /// A transition the current state does not allow.
    pub fn transition(detail: impl Into<String>) -> Self {
        DbError::InvalidTransition { detail: detail.into() }
    }
}
