//! `[store]`: where the sidecar keeps what it must not lose.
use super::{invalid, Base, ConfigError, SecretRef};
use secrecy::SecretString;
use serde::Deserialize;

/// Which backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// One SQLite file in `server.data_dir`: one process, nothing to run.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by every replica.
    Postgres,
}

/// `[store]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StoreFile {
    backend: BackendKind,
    /// The PostgreSQL connection URL (it may carry a password, so it is a
    /// secret reference).
    url: Option<SecretRef>,
    /// Connections each replica keeps open at most.
    pool_size: u32,
}

impl Default for StoreFile {
    fn default() -> Self {
        Self {
            backend: BackendKind::Sqlite,
            url: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// Connections per replica unless configured: the pipeline's workers, the
/// intake and the admin routes each hold one for a statement at a time.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// The validated `[store]`.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// SQLite in `server.data_dir`.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgres {
        /// The connection URL; never logged (it may hold a password).
        url: SecretString,
        /// Pool size per replica.
        pool_size: u32,
    },
}

impl StoreFile {
    /// Whether every replica shares this store (PostgreSQL).
    pub(super) fn is_shared(&self) -> bool {
        self.backend == BackendKind::Postgres
    }

    pub(super) fn validate(self, base: &Base<'_>, errors: &mut Vec<ConfigError>) -> StoreConfig {
        match self.backend {
            BackendKind::Sqlite => {
                if self.url.is_some() {
                    errors.push(invalid(
                        "store.url",
                        "only a PostgreSQL store has a URL: set `backend = \"postgres\"`, or remove it",
                    ));
                }
                StoreConfig::Sqlite
            }
            BackendKind::Postgres => {
                if self.pool_size == 0 {
                    errors.push(invalid(
                        "store.pool_size",
                        "must be at least 1 (connections per replica)",
                    ));
                }
                // Read even by the commands that need no other secret: they
                // all read the store.
                let with_secret = Base {
                    dir: base.dir,
                    secrets: true,
                };
                let url = match &self.url {
                    Some(url) => url.resolve("store.url", &with_secret),
                    None => Err(invalid(
                        "store.url",
                        "a PostgreSQL store needs its URL, e.g. `url = { env = \"SWITCHBOARD_DATABASE_URL\" }`",
                    )),
                };
                match url {
                    Ok(url) => StoreConfig::Postgres {
                        url,
                        pool_size: self.pool_size.max(1),
                    },
                    Err(e) => {
                        errors.push(e);
                        StoreConfig::Sqlite
                    }
                }
            }
        }
    }
}
