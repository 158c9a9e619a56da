//! Errors of the PostgreSQL adapter.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database URL could not be parsed. The URL is shown without its password.
    #[error("invalid PostgreSQL URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// No connection could be made (server down, connection refused, authentication failed,
    /// unknown database, timeout). The URL is shown without its password.
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The job's lease is no longer ours: it expired and another worker claimed the job, or the
    /// job was already finished. Nothing was written (the caller's transaction was rolled back).
    #[error("job {id}: lease lost (claim {attempt} by {worker} is no longer current)")]
    LeaseLost {
        /// The job.
        id: i64,
        /// The worker that held the stale claim.
        worker: String,
        /// The claim's attempt number.
        attempt: i32,
    },

    /// A row could not be mapped to its domain record (e.g. a closed-set column holding a value
    /// outside its set, or a rating out of range).
    #[error("bad row in {table} (id {id}): {reason}")]
    BadRow {
        /// The table.
        table: &'static str,
        /// The row's id (0 if unknown).
        id: i64,
        /// What was wrong.
        reason: String,
    },

    /// The row an analysis was asked for does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for (`review`, `ticket`, `customer`).
        what: &'static str,
        /// Its id.
        id: i64,
    },

    /// The row changed (an edit of what the analysis reads) while it was being analysed:
    /// the analysis of the older version was not written. The edit enqueued a new analysis.
    #[error("{what} {id} changed while it was being analysed; the stale analysis was not written")]
    Changed {
        /// What was analysed (`review`, `ticket`).
        what: &'static str,
        /// Its id.
        id: i64,
    },

    /// A human verdict was refused by `steadytext_record_verdict` (nothing was recorded): an
    /// unknown subject kind or field, a value outside the field's set, no such subject, or no
    /// reviewer. `message` is the database's, naming the allowed values.
    #[error("verdict refused ({problem}): {message}")]
    InvalidVerdict {
        /// What was wrong.
        problem: crate::human_review::VerdictProblem,
        /// The database's message.
        message: String,
    },

    /// A model analysis failed.
    #[error("analysis failed: {0}")]
    Analysis(#[from] steadytext_schema::AnalysisError),

    /// The `steadytext.resolution_playbook` table does not make a playbook (e.g. its catch-all
    /// row, category `other` without keywords, was deleted). Ticket jobs fail and are retried:
    /// fixing the table lets them succeed.
    #[error("the resolution playbook table is unusable: {0}")]
    Playbook(#[from] steadytext_schema::ResolutionPlaybookError),

    /// Fitting a calibration failed (too few verdicts, or the model failed).
    #[error("calibration: {0}")]
    Calibrate(#[from] steadytext_schema::calibrate::CalibrateError),

    /// A calibration that cannot be applied (another format or prompt version).
    #[error(transparent)]
    Calibration(#[from] steadytext_schema::sentiment_model::CalibrationError),

    /// A worker slot panicked outside the handler (a bug in this crate).
    #[error("worker slot panicked: {0}")]
    WorkerPanicked(String),
}

impl PgError {
    /// The error as it may be stored in the job queue's `last_error` and the dead-letter
    /// table: model failures without the prompt or output text their `Display` form may carry
    /// ([`AnalysisError::summary`](steadytext_schema::AnalysisError::summary)).
    pub fn summary(&self) -> String {
        match self {
            Self::Analysis(e) => format!("analysis failed: {}", e.summary()),
            Self::Calibrate(steadytext_schema::calibrate::CalibrateError::Analysis(e)) => {
                format!("calibration: {}", e.summary())
            }
            other => other.to_string(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// `url` with any password replaced by `***`, for messages and logs (the core's, shared with the
/// HTTP backend): URL form (`postgres://user:secret@host/db`) and key/value form
/// (`host=h password=secret`).
pub use steadytext_core::redact_url;

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db.example:5432/app?sslmode=require"),
            "postgres://bob:***@db.example:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://localhost/db?user=u&password=p&x=1"),
            "postgresql://localhost/db?user=u&password=***&x=1"
        );
        assert_eq!(
            redact_url("host=h password=hunter2 dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(redact_url("postgres://h"), "postgres://h");
    }
}
