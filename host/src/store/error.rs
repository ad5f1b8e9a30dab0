//! Store errors.

use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error("cannot open store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A migration failed; the store is left at the previous version.
    #[error("store migration to version {version} failed: {source}")]
    Migrate {
        version: i64,
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("store {op} failed: {source}")]
    Query {
        op: &'static str,
        source: rusqlite::Error,
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
    /// The background checkpoint thread could not be started.
    #[error("cannot start the store's checkpoint thread: {0}")]
    Thread(String),
}

impl StoreError {
    pub(crate) fn open(path: impl AsRef<Path>, source: rusqlite::Error) -> Self {
        Self::Open {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn query(op: &'static str, source: rusqlite::Error) -> Self {
        Self::Query { op, source }
    }

    pub(crate) fn json(op: &'static str, source: serde_json::Error) -> Self {
        Self::Json { op, source }
    }
}
