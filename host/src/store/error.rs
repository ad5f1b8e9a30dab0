//! Store errors.

use std::path::{Path, PathBuf};

/// The database driver's own error (SQLite or PostgreSQL).
pub type DriverError = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open store at {path}: {source}")]
    Open { path: PathBuf, source: DriverError },
    /// A migration failed; the store is left at the previous version.
    #[error("store migration to version {version} failed: {source}")]
    Migrate { version: i64, source: DriverError },
    /// A statement failed.
    #[error("store {op} failed: {source}")]
    Query {
        op: &'static str,
        source: DriverError,
    },
    /// A stored value could not be encoded or decoded.
    #[error("store {op}: bad JSON: {source}")]
    Json {
        op: &'static str,
        source: serde_json::Error,
    },
    /// The database was written by a newer version of the sidecar.
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    TooNew { found: i64, supported: i64 },
    /// A background thread of the store (checkpoints, commits) could not
    /// be started.
    #[error("cannot start a store thread: {0}")]
    Thread(String),
    /// Writes that had run were not committed: they are lost.
    #[error("store writes were not committed: {0}")]
    Commit(String),
}

impl StoreError {
    /// `path` names the database for the operator: a file path, or a
    /// PostgreSQL URL with its password removed.
    pub(crate) fn open(path: impl AsRef<Path>, source: impl Into<DriverError>) -> Self {
        Self::Open {
            path: path.as_ref().to_path_buf(),
            source: source.into(),
        }
    }

    pub(crate) fn query(op: &'static str, source: impl Into<DriverError>) -> Self {
        Self::Query {
            op,
            source: source.into(),
        }
    }

    pub(crate) fn json(op: &'static str, source: serde_json::Error) -> Self {
        Self::Json { op, source }
    }
}
