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
