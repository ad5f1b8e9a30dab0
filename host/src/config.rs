//! `switchboard.toml`: the file format (serde, unknown keys rejected) and the
//! validated configuration the service runs with (OP1).
//!
//! Secrets are never written in the file: every credential is a reference,
//! `{ env = "NAME" }` or `{ file = "/run/secrets/name" }`, resolved at start.
mod click_to_call;
mod report;
mod status_sync;
mod store;

pub use click_to_call::{ClickToCallConfig, ClickToCallFile};
pub use report::Problem;
pub use status_sync::{Direction, Priority, StatusSyncConfig, StatusSyncFile};
use store::StoreFile;
pub use store::{BackendKind, StoreConfig, DEFAULT_POOL_SIZE};

use crate::connectors::{ccai, kustomer};
use crate::fields::StandardFields;
use crate::phone::Region;
use crate::runtime::{types as t, RuntimeConfig};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem, naming the key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {}", path.display(), plain_io_error(error))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Every problem of a file, one per line, in the order of the file.
    #[error("{}: {}{}", path.display(), count(problems.len()), list(problems))]
    Problems {
        /// The file (`config` for text not read from a file).
        path: PathBuf,
        /// Each problem with its key and, when known, line and column.
        problems: Vec<Problem>,
    },
    /// One value is not usable.
    #[error("{key}: {message}")]
    Invalid {
        /// The key at fault, e.g. `tenant[0].kustomer.api_key`.
        key: String,
        /// What is wrong; never the value itself.
        message: String,
    },
}

fn count(n: usize) -> String {
    match n {
        1 => "1 problem".into(),
        n => format!("{n} problems"),
    }
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// An OS error in a few plain words (`no such file`, `permission denied`).
pub(crate) fn plain_io_error(error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match error.kind() {
        K::NotFound => "no such file".into(),
        K::PermissionDenied => "permission denied".into(),
        K::IsADirectory => "it is a directory".into(),
        K::InvalidData => "not UTF-8 text".into(),
        _ => error.to_string(),
    }
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

// ------------------------------------------------------------------ file

/// The sections of a file, each read on its own (see `report`); a section
/// that could not be read is `None`, its problems reported. Its keys are
/// the file's accepted top-level keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<ServerFile>,
    runtime: Option<RuntimeConfig>,
    pipeline: Option<PipelineFile>,
    store: Option<StoreFile>,
    #[serde(rename = "tenant")]
    tenants: Vec<Option<TenantFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PipelineFile {
    tenant_workers: Option<usize>,
    threads: Option<usize>,
    nice: u8,
    max_event_age_seconds: u64,
    retry_base_ms: u64,
    retry_max_delay_seconds: u64,
    shutdown_grace_seconds: u64,
}

impl Default for PipelineFile {
    fn default() -> Self {
        let d = PipelineConfig::default();
        Self {
            tenant_workers: None,
            threads: None,
            nice: d.nice,
            max_event_age_seconds: d.max_event_age.as_secs(),
            retry_base_ms: u64::try_from(d.retry_base.as_millis()).unwrap_or(u64::MAX),
            retry_max_delay_seconds: d.retry_max.as_secs(),
            shutdown_grace_seconds: d.shutdown_grace.as_secs(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerFile {
    listen: SocketAddr,
    data_dir: PathBuf,
    admin_token: Option<SecretRef>,
    modules_dir: Option<PathBuf>,
    max_body_bytes: usize,
    workers: usize,
    header_read_timeout_ms: u64,
    idle_timeout_ms: u64,
    request_timeout_ms: u64,
    max_connections: usize,
    /// Browser origins allowed to call the agent-facing routes (CORS).
    cors_origins: Vec<String>,
    /// `None`: on with the SQLite store, off beside PostgreSQL (PF6).
    intake_log: Option<bool>,
    intake_log_max_bytes: u64,
}

impl Default for ServerFile {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("switchboard-data"),
            admin_token: None,
            modules_dir: None,
            max_body_bytes: 1 << 20,
            workers: 16,
            header_read_timeout_ms: millis(limits.header_read_timeout),
            idle_timeout_ms: millis(limits.idle_timeout),
            request_timeout_ms: millis(limits.request_timeout),
            max_connections: limits.max_connections,
            cors_origins: Vec::new(),
            intake_log: None,
            intake_log_max_bytes: DEFAULT_INTAKE_LOG_BYTES,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ServerFile {
    /// The CORS origins, each an origin (`scheme://host[:port]`, nothing
    /// after it).
    fn cors_origins(&self, errors: &mut Vec<ConfigError>) -> Vec<String> {
        let mut origins = Vec::new();
        for (i, origin) in self.cors_origins.iter().enumerate() {
            let parsed = url::Url::parse(origin).ok();
            let exact = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.origin().ascii_serialization() == origin.trim_end_matches('/')
            });
            if exact {
                origins.push(origin.trim_end_matches('/').to_string());
            } else {
                errors.push(invalid(
                    format!("server.cors_origins[{i}]"),
                    "not an origin: write scheme://host[:port], e.g. https://acme.kustomerapp.com",
                ));
            }
        }
        origins
    }

    /// The connection limits, each checked to be usable.
    fn connection_limits(&self, errors: &mut Vec<ConfigError>) -> ConnectionLimits {
        let mut timeout = |key: &str, ms: u64| {
            if ms == 0 {
                errors.push(invalid(
                    format!("server.{key}"),
                    "must be at least 1 (milliseconds); there is no \"no timeout\"",
                ));
            }
            Duration::from_millis(ms)
        };
        let limits = ConnectionLimits {
            header_read_timeout: timeout("header_read_timeout_ms", self.header_read_timeout_ms),
            idle_timeout: timeout("idle_timeout_ms", self.idle_timeout_ms),
            request_timeout: timeout("request_timeout_ms", self.request_timeout_ms),
            max_connections: self.max_connections,
        };
        if self.max_connections == 0 {
            errors.push(invalid(
                "server.max_connections",
                "must be at least 1: it caps the connections served at once",
            ));
        }
        limits
    }

    /// Whether the intake log is on: unless written, on with the SQLite
    /// store and off beside a shared one (`shared_store`), where asking for
    /// it is refused; its bound must hold a whole body.
    fn intake_log(&self, shared_store: bool, errors: &mut Vec<ConfigError>) -> bool {
        let on = self.intake_log.unwrap_or(!shared_store);
        if on && self.intake_log_max_bytes < self.max_body_bytes as u64 {
            errors.push(invalid(
                "server.intake_log_max_bytes",
                format!(
                    "must be at least server.max_body_bytes ({}): the log must hold a whole body",
                    self.max_body_bytes
                ),
            ));
        }
        if on && shared_store {
            errors.push(invalid(
                "server.intake_log",
                "only with the SQLite store: a log on one replica's disk would hold \
                 accepted events no other replica can reach",
            ));
        }
        on && !shared_store
    }

    fn validate(
        self,
        base: &Base<'_>,
        shared_store: bool,
        errors: &mut Vec<ConfigError>,
    ) -> ServerConfig {
        let admin_token = self
            .admin_token
            .as_ref()
            .and_then(|r| take(errors, r.resolve("server.admin_token", base)));
        ServerConfig {
            listen: self.listen,
            data_dir: base.join(&self.data_dir),
            admin_token,
            modules_dir: self.modules_dir.as_ref().map(|d| base.join(d)),
            max_body_bytes: self.max_body_bytes,
            workers: self.workers.max(1),
            connections: self.connection_limits(errors),
            cors_origins: self.cors_origins(errors),
            intake_log: self
                .intake_log(shared_store, errors)
                .then_some(self.intake_log_max_bytes),
        }
    }
}

impl PipelineFile {
    fn validate(self, workers: usize, errors: &mut Vec<ConfigError>) -> PipelineConfig {
        if self.max_event_age_seconds == 0 {
            errors.push(invalid(
                "pipeline.max_event_age_seconds",
                "must be at least 1",
            ));
        }
        if self.tenant_workers == Some(0) {
            errors.push(invalid("pipeline.tenant_workers", "must be at least 1"));
        }
        if self.threads == Some(0) {
            errors.push(invalid("pipeline.threads", "must be at least 1"));
        }
        if self.nice > 19 {
            errors.push(invalid("pipeline.nice", "must be between 0 and 19"));
        }
        PipelineConfig {
            workers,
            tenant_workers: self.tenant_workers,
            threads: self
                .threads
                .unwrap_or_else(PipelineConfig::default_threads)
                .max(1),
            nice: self.nice.min(19),
            max_event_age: Duration::from_secs(self.max_event_age_seconds),
            retry_base: Duration::from_millis(self.retry_base_ms.max(1)),
            retry_max: Duration::from_secs(self.retry_max_delay_seconds.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
        }
    }
}

/// The value, or `None` with its error kept.
fn take<T>(errors: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// Where a config's relative paths start, and whether its secrets are read
/// (`switchboard serve`) or only checked (commands that read the store).
/// Derefs to the directory, so paths join onto it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base<'a> {
    dir: &'a Path,
    secrets: bool,
}

#[cfg(test)]
impl Base<'static> {
    /// The current directory, secrets read.
    pub(crate) fn here() -> Self {
        Base {
            dir: Path::new("."),
            secrets: true,
        }
    }
}

impl std::ops::Deref for Base<'_> {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.dir
    }
}

/// A secret by reference.
#[derive(Debug, Clone)]
pub struct SecretRef {
    env: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretTable {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret reference, `{ env = \"NAME\" }` or `{ file = \"path\" }`")
            }

            // The value itself is never echoed: it may be the secret.
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(
                    "a secret is written as a reference, `{ env = \"NAME\" }` or \
                     `{ file = \"path\" }`, never as the value itself",
                ))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretRef, A::Error> {
                let SecretTable { env, file } =
                    SecretTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SecretRef { env, file })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl SecretRef {
    /// A reference to an environment variable.
    pub fn env(name: &str) -> Self {
        Self {
            env: Some(name.into()),
            file: None,
        }
    }

    pub(crate) fn resolve(&self, key: &str, base: &Base<'_>) -> Result<SecretString, ConfigError> {
        if !base.secrets {
            // Only the reference is checked; commands that never talk to
            // the platforms do not need the secret itself.
            return match (&self.env, &self.file) {
                (Some(_), None) | (None, Some(_)) => Ok(SecretString::from(String::new())),
                _ => Err(invalid(
                    key,
                    "a secret is `{ env = \"NAME\" }` or `{ file = \"path\" }`, exactly one",
                )),
            };
        }
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| invalid(key, format!("environment variable {var} is not set"))),
            (None, Some(file)) => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n']).to_string()))
                    .map_err(|e| {
                        invalid(
                            key,
                            format!(
                                "cannot read secret file {}: {}",
                                path.display(),
                                plain_io_error(&e)
                            ),
                        )
                    })
            }
            _ => Err(invalid(
                key,
                "a secret is `{ env = \"NAME\" }` or `{ file = \"path\" }`, exactly one",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFile {
    id: String,
    module: Option<PathBuf>,
    #[serde(default)]
    failure_policy: FailurePolicy,
    #[serde(default = "yes")]
    recording: bool,
    #[serde(default = "ten")]
    recent_customer_minutes: u64,
    #[serde(default = "ccai_prefix")]
    field_prefix: String,
    #[serde(default)]
    field_mapping: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    /// ISO 3166 region of numbers written without a country code.
    #[serde(default = "us")]
    phone_region: String,
    kustomer: KustomerFile,
    ccai: CcaiFile,
    /// Agent status sync (SPEC §6); absent = off.
    status_sync: Option<StatusSyncFile>,
    /// Click-to-call (SPEC §7); absent = off.
    click_to_call: Option<ClickToCallFile>,
}

fn yes() -> bool {
    true
}
fn ten() -> u64 {
    10
}
fn us() -> String {
    "US".into()
}
fn ccai_prefix() -> String {
    "ccai".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KustomerFile {
    base_url: String,
    api_key: SecretRef,
    /// The `token` of the outbound webhook Kustomer sends to
    /// `/v1/tenants/{tenant}/kustomer/webhooks` (KU2); unset = no webhooks.
    webhook_token: Option<SecretRef>,
    /// How long what Kustomer showed is used without asking again, without
    /// webhooks (seconds; 0 = always ask).
    #[serde(default = "mirror_max_age")]
    mirror_max_age_seconds: u64,
    /// The same with webhooks configured: changes are pushed.
    #[serde(default = "mirror_webhook_max_age")]
    mirror_webhook_max_age_seconds: u64,
    /// A conversation a plan appends to is read again first when Kustomer
    /// last showed it longer ago than this (seconds; 0 = always).
    #[serde(default = "append_recheck")]
    append_recheck_seconds: u64,
}

fn mirror_max_age() -> u64 {
    MirrorConfig::default().max_age.as_secs()
}
fn mirror_webhook_max_age() -> u64 {
    MirrorConfig::default().webhook_max_age.as_secs()
}
fn append_recheck() -> u64 {
    MirrorConfig::default().append_recheck.as_secs()
}

/// How long the Kustomer mirror trusts what it holds (KU2).
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// Without webhooks.
    pub max_age: Duration,
    /// With webhooks configured.
    pub webhook_max_age: Duration,
    /// Before an append to a conversation Kustomer showed longer ago than
    /// this, it is read again (zero: before every append).
    pub append_recheck: Duration,
    /// Key of the outbound webhook's signature; `None` = no webhooks.
    pub webhook_token: Option<SecretString>,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(10),
            webhook_max_age: Duration::from_secs(300),
            append_recheck: Duration::ZERO,
            webhook_token: None,
        }
    }
}

impl MirrorConfig {
    /// How long a mirrored value is used as is.
    pub fn trust(&self) -> Duration {
        if self.webhook_token.is_some() {
            self.webhook_max_age
        } else {
            self.max_age
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CcaiFile {
    base_url: String,
    /// Style 1: `subdomain` + API token.
    subdomain: Option<String>,
    api_token: Option<SecretRef>,
    /// Style 2: company key + secret.
    company_key: Option<String>,
    company_secret: Option<SecretRef>,
    events_username: String,
    events_password: SecretRef,
    webhook_primary_secret: SecretRef,
    webhook_secondary_secret: Option<SecretRef>,
    /// Manager API reconciliation interval; unset = no polling.
    poll_interval_seconds: Option<u64>,
    /// Where a poller with no saved cursor starts (RFC 3339); default: now.
    poll_start: Option<String>,
}

// ---------------------------------------------------------------- domain

/// What to do when a tenant's module fails on an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Keep the event as failed, with the reason, for an operator to retry.
    #[default]
    Hold,
    /// Decide the event with the built-in default rules instead.
    DefaultRules,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub runtime: RuntimeConfig,
    pub pipeline: PipelineConfig,
    /// Where the inbox, ledger, links and module registry live.
    pub store: StoreConfig,
    pub tenants: Vec<TenantConfig>,
}

/// How events are scheduled, retried and drained (`[pipeline]`).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Customers processed at once, all tenants together (`server.workers`).
    pub workers: usize,
    /// Customers of one tenant processed at once; `None` = a fair share,
    /// `workers` divided by the number of tenants (rounded up).
    pub tenant_workers: Option<usize>,
    /// Async worker threads of the pipeline's own runtime (default: one per
    /// core).
    pub threads: usize,
    /// How far below the HTTP server's priority the pipeline's threads run
    /// (their `nice`, 0 to 19; 0 = the same).
    pub nice: u8,
    /// How long transient failures are retried before the event is
    /// dead-lettered (measured from when the intake stored it).
    pub max_event_age: Duration,
    /// First retry delay of an event; doubles per attempt, with jitter.
    pub retry_base: Duration,
    /// Cap on one retry delay.
    pub retry_max: Duration,
    /// How long a shutdown waits for the events in flight.
    pub shutdown_grace: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            tenant_workers: None,
            threads: Self::default_threads(),
            nice: 10,
            // A day covers a weekend-long Kustomer incident's first day and
            // any deploy; what is older needs a person to look at it.
            max_event_age: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_millis(500),
            // A minute: after an outage ends, every waiting customer is
            // back within a minute, without hammering a struggling API.
            retry_max: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl PipelineConfig {
    /// One pipeline thread per core.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from)
    }

    /// The wait before attempt `attempt + 1` of an event: exponential from
    /// `retry_base`, capped at `retry_max`, jittered over the upper half.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        crate::connectors::retry::jittered_backoff(self.retry_base, self.retry_max, attempt)
    }
}

/// How many bytes the intake log may hold before they are merged, unless
/// `server.intake_log_max_bytes` says otherwise (PF6).
pub const DEFAULT_INTAKE_LOG_BYTES: u64 = 256 << 20;

/// Process-wide settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Bearer token of the admin API; without it the admin API is off.
    pub admin_token: Option<SecretString>,
    pub modules_dir: Option<PathBuf>,
    pub max_body_bytes: usize,
    /// Customers processed concurrently.
    pub workers: usize,
    /// How the HTTP server bounds slow and idle clients.
    pub connections: ConnectionLimits,
    /// Browser origins allowed to call the agent-facing routes (CORS);
    /// empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
    /// With `Some(limit)`, session events and verified chat webhooks are
    /// answered once appended to the intake log and merged into the store
    /// after (PF6; SQLite only); past `limit` bytes waiting to be merged the
    /// intake answers 503.
    pub intake_log: Option<u64>,
}

/// How the HTTP server bounds its clients, so that slow or idle ones cannot
/// hold every file descriptor and starve `/healthz` and the intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a new connection, or from the first byte of a later request on a
    /// kept-alive one, until the request's headers are complete. The
    /// platforms send a request at once; only a slow or hostile client needs
    /// longer. Default 5 s.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait, with nothing sent, for its
    /// next request. Long enough for the platforms to reuse connections
    /// between bursts, short enough that idle sockets are given back.
    /// Default 60 s.
    pub idle_timeout: Duration,
    /// Reading one request's body and answering it. Longer than any route
    /// needs (the slowest, click-to-call, waits on the CCAI and Kustomer
    /// APIs); an answer that takes longer is a 408 and the connection is
    /// closed. Default 60 s.
    pub request_timeout: Duration,
    /// Connections served at once. Past it the server stops accepting until
    /// one closes; new connections wait in the listen backlog. Keep it
    /// below the process's open-file limit, which the store, the modules and
    /// the outbound clients share; the server lowers it to fit that limit
    /// when it can read it. Default 1024.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// One tenant.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub id: String,
    /// Module deployed at start when the registry has none for the tenant.
    pub module: Option<PathBuf>,
    pub failure_policy: FailurePolicy,
    pub recording: bool,
    /// A customer created this recently counts as new (CU1).
    pub recent_customer: Duration,
    pub fields: StandardFields,
    pub field_mapping: Vec<t::FieldMapping>,
    pub options: Vec<(String, String)>,
    /// Where numbers without a country code are read (intake, click-to-call).
    pub phone_region: Region,
    pub kustomer: kustomer::KustomerConfig,
    /// The Kustomer mirror (KU2).
    pub mirror: MirrorConfig,
    pub ccai: ccai::CcaiConfig,
    pub poll_interval: Option<Duration>,
    /// Where a poller with no saved cursor starts; `None` = start time.
    pub poll_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Agent status sync (SPEC §6); `None` = off.
    pub status_sync: Option<StatusSyncConfig>,
    /// Click-to-call (SPEC §7); `None` = off.
    pub click_to_call: Option<ClickToCallConfig>,
}

impl Config {
    /// Reads and validates a config file; relative paths are taken from the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, true)
    }

    /// [`Config::load`] for commands that only read the store: secret
    /// references are checked but not read (their values are empty), so
    /// the platforms' credentials need not be present.
    pub fn load_without_secrets(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, false)
    }

    fn load_with(path: &Path, secrets: bool) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.into(),
            error,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse_with(&text, Base { dir, secrets }, path)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(
            text,
            Base {
                dir: base,
                secrets: true,
            },
            Path::new("config"),
        )
    }

    /// Reads every section, validates each that could be read and reports
    /// every problem found, or the configuration when there is none.
    fn parse_with(text: &str, base: Base<'_>, path: &Path) -> Result<Self, ConfigError> {
        let (file, mut report) = report::read(text);
        let mut errors = Vec::new();
        let shared_store = file.store.as_ref().is_some_and(StoreFile::is_shared);
        let server = file
            .server
            .map(|s| s.validate(&base, shared_store, &mut errors));
        let workers = server.as_ref().map_or(1, |s| s.workers);
        let pipeline = file.pipeline.map(|p| p.validate(workers, &mut errors));
        let store = file.store.map(|s| s.validate(&base, &mut errors));
        let mut tenants = Vec::new();
        let mut ids: Vec<&str> = Vec::new();
        for (i, tenant) in file.tenants.iter().enumerate() {
            if let Some(t) = tenant {
                if ids.contains(&t.id.as_str()) {
                    errors.push(invalid(
                        format!("tenant[{i}].id"),
                        "this tenant is defined twice",
                    ));
                }
                ids.push(&t.id);
            }
        }
        for (i, tenant) in file.tenants.into_iter().enumerate() {
            if let Some(t) = tenant.and_then(|t| tenant_config(t, i, &base, &mut errors)) {
                tenants.push(t);
            }
        }
        for e in errors {
            report.add(e);
        }
        match (server, pipeline, store, file.runtime) {
            (Some(server), Some(pipeline), Some(store), Some(runtime)) if report.is_empty() => {
                Ok(Self {
                    server,
                    runtime,
                    pipeline,
                    store,
                    tenants,
                })
            }
            _ => Err(ConfigError::Problems {
                path: path.into(),
                problems: report.into_problems(),
            }),
        }
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }
}

/// One tenant, validated; `None` with the errors kept when a value is not
/// usable. Every check runs, so every problem is reported.
fn tenant_config(
    f: TenantFile,
    i: usize,
    base: &Base<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<TenantConfig> {
    let before = errors.len();
    let key = |k: &str| format!("tenant[{i}].{k}");
    if f.id.is_empty()
        || !f
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(invalid(key("id"), "use letters, digits, `-` and `_` only"));
    }
    if !f.field_prefix.chars().all(|c| c.is_ascii_alphanumeric()) || f.field_prefix.is_empty() {
        errors.push(invalid(
            key("field_prefix"),
            "use letters and digits only (e.g. `ccai`)",
        ));
    }
    let mut field_mapping = Vec::new();
    for (sdk_key, target) in &f.field_mapping {
        let here = key(&format!("field_mapping.{sdk_key}"));
        let Some((target_kind, name)) = target.split_once(':') else {
            errors.push(invalid(
                here,
                "write `customer:<attr>` or `conversation:<attr>`",
            ));
            continue;
        };
        let target = match target_kind {
            "customer" => t::FieldTarget::Customer,
            "conversation" => t::FieldTarget::Conversation,
            _ => {
                errors.push(invalid(
                    here,
                    "unknown target before `:`; use `customer` or `conversation`",
                ));
                continue;
            }
        };
        if !crate::fields::has_type_suffix(name) {
            errors.push(invalid(
                here,
                "the Kustomer attribute after `:` needs a type suffix (Str, Num, Txt, At, Bool, Url)",
            ));
            continue;
        }
        field_mapping.push(t::FieldMapping {
            key: sdk_key.clone(),
            target,
            name: name.to_string(),
        });
    }

    let api_key = take(
        errors,
        f.kustomer.api_key.resolve(&key("kustomer.api_key"), base),
    );
    let kustomer = api_key.and_then(|api_key| {
        let config = kustomer::KustomerConfig::new(
            &f.kustomer.base_url,
            kustomer::ApiKey::new(secret_string(api_key)),
        )
        .map_err(|e| invalid(key("kustomer.base_url"), e.to_string()));
        take(errors, config)
    });
    let webhook_token = match &f.kustomer.webhook_token {
        Some(t) => take(errors, t.resolve(&key("kustomer.webhook_token"), base)),
        None => None,
    };
    let mirror = MirrorConfig {
        max_age: Duration::from_secs(f.kustomer.mirror_max_age_seconds),
        webhook_max_age: Duration::from_secs(f.kustomer.mirror_webhook_max_age_seconds),
        append_recheck: Duration::from_secs(f.kustomer.append_recheck_seconds),
        webhook_token,
    };

    let c = &f.ccai;
    let credentials = match (
        &c.subdomain,
        &c.api_token,
        &c.company_key,
        &c.company_secret,
    ) {
        (Some(subdomain), Some(token), None, None) => {
            take(errors, token.resolve(&key("ccai.api_token"), base)).map(|token| {
                ccai::ApiCredentials::ApiToken {
                    subdomain: subdomain.clone(),
                    token,
                }
            })
        }
        (None, None, Some(company_key), Some(secret)) => {
            take(errors, secret.resolve(&key("ccai.company_secret"), base)).map(|secret| {
                ccai::ApiCredentials::CompanyKey {
                    key: company_key.clone(),
                    secret,
                }
            })
        }
        _ => {
            errors.push(invalid(
                key("ccai"),
                "give either `subdomain` + `api_token` or `company_key` + `company_secret`",
            ));
            None
        }
    };
    let base_url = take(
        errors,
        url::Url::parse(&c.base_url).map_err(|e| invalid(key("ccai.base_url"), e.to_string())),
    );
    let password = take(
        errors,
        c.events_password
            .resolve(&key("ccai.events_password"), base),
    );
    let primary = take(
        errors,
        c.webhook_primary_secret
            .resolve(&key("ccai.webhook_primary_secret"), base),
    );
    let secondary = match &c.webhook_secondary_secret {
        Some(s) => take(
            errors,
            s.resolve(&key("ccai.webhook_secondary_secret"), base),
        ),
        None => None,
    };
    let phone_region = take(
        errors,
        f.phone_region
            .parse()
            .map_err(|e: String| invalid(key("phone_region"), e)),
    );
    let poll_start = match c.poll_start.as_deref() {
        Some(s) => take(
            errors,
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| Some(d.with_timezone(&chrono::Utc)))
                .map_err(|e| invalid(key("ccai.poll_start"), format!("not an RFC 3339 time: {e}"))),
        ),
        None => Some(None),
    };
    let status_sync = match f.status_sync {
        Some(s) => take(errors, s.validate(&key("status_sync"), base)).map(Some),
        None => Some(None),
    };
    let click_to_call = match f.click_to_call {
        Some(c) => take(errors, c.validate(&key("click_to_call"), base)).map(Some),
        None => Some(None),
    };
    if errors.len() > before {
        return None;
    }
    let ccai = ccai::CcaiConfig::new(
        base_url?,
        credentials?,
        ccai::InboundBasic {
            username: c.events_username.clone(),
            password: password?,
        },
        ccai::WebhookSecrets {
            primary: primary?,
            secondary,
        },
    );
    Some(TenantConfig {
        id: f.id,
        module: f.module.map(|m| base.join(m)),
        failure_policy: f.failure_policy,
        recording: f.recording,
        recent_customer: Duration::from_secs(f.recent_customer_minutes * 60),
        fields: StandardFields::with_prefix(&f.field_prefix),
        field_mapping,
        options: f.options.into_iter().collect(),
        phone_region: phone_region?,
        kustomer: kustomer?,
        mirror,
        ccai,
        poll_interval: c.poll_interval_seconds.map(Duration::from_secs),
        poll_start: poll_start?,
        status_sync: status_sync?,
        click_to_call: click_to_call?,
    })
}

fn secret_string(s: SecretString) -> String {
    use secrecy::ExposeSecret;
    s.expose_secret().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../switchboard.example.toml");

    fn with_env<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY of the test: variables are unique to these tests.
        for (k, v) in [
            ("ACME_KUSTOMER_API_KEY", "k-secret-value"),
            ("ACME_CCAI_API_TOKEN", "c-secret-value"),
            ("ACME_CCAI_EVENTS_PASSWORD", "e-secret-value"),
            ("ACME_CCAI_WEBHOOK_SECRET", "w-secret-value"),
            ("SWITCHBOARD_ADMIN_TOKEN", "a-secret-value"),
            ("ACME_AGENT_API_TOKEN", "s-secret-value"),
        ] {
            #[allow(
                unsafe_code,
                reason = "test-only environment setup before any thread reads it"
            )]
            unsafe {
                std::env::set_var(k, v)
            };
        }
        f()
    }

    #[test]
    fn op1_example_config_parses() {
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("example parses");
        let acme = config.tenant("acme").expect("acme tenant");
        assert_eq!(
            acme.fields.name(t::StandardField::CallDuration),
            "ccaiCallDurationNum"
        );
        assert_eq!(acme.field_mapping.len(), 1);
        assert_eq!(config.server.listen.port(), 8080);
    }

    #[test]
    fn ku2_mirror_settings_parse_with_defaults_and_the_token_stays_secret() {
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("example parses");
        let mirror = &config.tenant("acme").expect("acme").mirror;
        assert_eq!(
            (
                mirror.max_age,
                mirror.append_recheck,
                mirror.webhook_token.is_none()
            ),
            (Duration::from_secs(10), Duration::ZERO, true)
        );
        assert_eq!(mirror.trust(), Duration::from_secs(10));
        let text = SAMPLE
            .replace(
                "# webhook_token = { env = \"ACME_KUSTOMER_WEBHOOK_TOKEN\" }",
                "webhook_token = { env = \"ACME_KUSTOMER_API_KEY\" }",
            )
            .replace(
                "# mirror_max_age_seconds = 10",
                "mirror_max_age_seconds = 3",
            );
        let config = with_env(|| Config::parse(&text, Path::new("."))).expect("parses");
        let mirror = &config.tenant("acme").expect("acme").mirror;
        assert_eq!(mirror.max_age, Duration::from_secs(3));
        assert_eq!(
            mirror.trust(),
            Duration::from_secs(300),
            "webhooks push changes"
        );
        assert!(!format!("{mirror:?}").contains("k-secret-value"));
    }

    #[test]
    fn op9_cors_origins_must_be_origins() {
        let with = |origins: &str| {
            let text = SAMPLE.replace(
                "[server]\n",
                &format!("[server]\ncors_origins = {origins}\n"),
            );
            with_env(|| Config::parse(&text, Path::new(".")))
        };
        let ok = with(r#"["https://acme.kustomerapp.com", "http://127.0.0.1:3000/"]"#)
            .expect("origins parse");
        assert_eq!(
            ok.server.cors_origins,
            ["https://acme.kustomerapp.com", "http://127.0.0.1:3000"]
        );
        for bad in [
            r#"["https://acme.kustomerapp.com/app"]"#,
            r#"["*"]"#,
            r#"["acme.com"]"#,
        ] {
            let err = with(bad).expect_err(bad);
            assert!(
                err.to_string().contains("server.cors_origins"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn op1_unknown_key_is_rejected_by_name() {
        let text = SAMPLE.replace(
            "recording = true",
            "recording = true\nrecordings_bucket = \"x\"",
        );
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("unknown key");
        assert!(
            err.to_string()
                .contains("unknown field `recordings_bucket`"),
            "{err}"
        );
    }

    #[test]
    fn op1_missing_secret_names_the_variable() {
        let text = SAMPLE.replace("ACME_KUSTOMER_API_KEY", "NO_SUCH_VARIABLE_FOR_SWITCHBOARD");
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("missing env");
        assert!(
            err.to_string().contains("NO_SUCH_VARIABLE_FOR_SWITCHBOARD"),
            "{err}"
        );
        assert!(
            err.to_string().contains("tenant[0].kustomer.api_key"),
            "{err}"
        );
    }

    #[test]
    fn op1_debug_output_redacts_secrets() {
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("example parses");
        let printed = format!("{config:?}");
        for secret in [
            "k-secret-value",
            "c-secret-value",
            "e-secret-value",
            "w-secret-value",
            "a-secret-value",
            "s-secret-value",
        ] {
            assert!(!printed.contains(secret), "Debug leaks {secret}");
        }
    }

    #[test]
    fn is8_connection_limits_default_parse_and_refuse_zero() {
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("example parses");
        assert_eq!(
            config.server.connections,
            ConnectionLimits::default(),
            "the example spells out the defaults"
        );
        let text = SAMPLE.replace("idle_timeout_ms = 60000", "idle_timeout_ms = 1500");
        let config = with_env(|| Config::parse(&text, Path::new("."))).expect("parses");
        assert_eq!(
            config.server.connections.idle_timeout,
            Duration::from_millis(1500)
        );
        for (line, key) in [
            (
                "header_read_timeout_ms = 5000",
                "server.header_read_timeout_ms",
            ),
            ("idle_timeout_ms = 60000", "server.idle_timeout_ms"),
            ("request_timeout_ms = 60000", "server.request_timeout_ms"),
            ("max_connections = 1024", "server.max_connections"),
        ] {
            let zero = format!("{} = 0", line.split(" = ").next().unwrap_or(line));
            let text = SAMPLE.replace(line, &zero);
            assert_ne!(text, SAMPLE, "the example has `{line}`");
            let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("zero");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn op6_a_plain_string_secret_is_refused_with_a_hint_and_not_echoed() {
        let text = SAMPLE.replace(
            "api_key = { env = \"ACME_KUSTOMER_API_KEY\" }",
            "api_key = \"k-plain-value\"",
        );
        assert_ne!(text, SAMPLE, "the sample has the line replaced");
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("plain secret");
        let message = err.to_string();
        assert!(message.contains("never as the value itself"), "{message}");
        assert!(!message.contains("k-plain-value"), "{message}");
        let typo = SAMPLE.replace(
            "api_key = { env = \"ACME_KUSTOMER_API_KEY\" }",
            "api_key = { envv = \"ACME_KUSTOMER_API_KEY\" }",
        );
        let err = with_env(|| Config::parse(&typo, Path::new("."))).expect_err("typo");
        assert!(err.to_string().contains("unknown field `envv`"), "{err}");
    }

    #[test]
    fn op6_read_only_commands_need_no_secret_values() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = SAMPLE.replace("ACME_KUSTOMER_API_KEY", "SWITCHBOARD_TEST_UNSET_VARIABLE");
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, &text).expect("write config");
        let err = with_env(|| Config::load(&path)).expect_err("serve needs the secret");
        assert!(
            err.to_string().contains("SWITCHBOARD_TEST_UNSET_VARIABLE"),
            "{err}"
        );
        let config = with_env(|| Config::load_without_secrets(&path)).expect("store commands");
        assert!(config.tenant("acme").is_some());
    }

    fn problems(err: ConfigError) -> Vec<Problem> {
        match err {
            ConfigError::Problems { problems, .. } => problems,
            other => panic!("expected the list of problems, got {other}"),
        }
    }

    /// The example with, for each change, the first line that starts with
    /// its prefix (the last one for a prefix starting with `^`) replaced.
    fn with_changes(changes: &[(&str, &str)]) -> String {
        let mut lines: Vec<String> = SAMPLE.lines().map(String::from).collect();
        for (prefix, line) in changes {
            let (last, prefix) = match prefix.strip_prefix('^') {
                Some(p) => (true, p),
                None => (false, *prefix),
            };
            let mut at = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.starts_with(prefix));
            let found = if last { at.next_back() } else { at.next() };
            let i = found.map(|(i, _)| i);
            let i = i.unwrap_or_else(|| panic!("the example has a line `{prefix}…`"));
            lines[i] = line.to_string();
        }
        lines.join("\n") + "\n"
    }

    #[test]
    fn op11_three_unrelated_mistakes_are_reported_together() {
        let text = with_changes(&[
            ("listen = ", "listn = \"127.0.0.1:8080\""),
            ("retry_base_ms = ", "retry_base_ms = \"fast\""),
            ("api_key = ", "api_key = \"k-plain-value\""),
        ]);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("three mistakes");
        let printed = err.to_string();
        let found = problems(err);
        assert_eq!(found.len(), 3, "{printed}");
        let keys: Vec<_> = found.iter().map(|p| p.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                Some("server.listn"),
                Some("pipeline.retry_base_ms"),
                Some("tenant[0].kustomer.api_key")
            ],
            "{printed}"
        );
        assert!(found.iter().all(|p| p.position.is_some()), "{printed}");
        assert!(printed.starts_with("config: 3 problems\n"), "{printed}");
        assert_eq!(printed.lines().count(), 4, "{printed}");
        assert!(printed.contains("did you mean `listen`?"), "{printed}");
        assert!(
            printed.contains("invalid type: string, expected u64"),
            "{printed}"
        );
        assert!(printed.contains("never as the value itself"), "{printed}");
        assert!(!printed.contains("k-plain-value"), "{printed}");
        assert!(!printed.contains("fast"), "{printed}");
        let listn = text
            .lines()
            .position(|l| l.starts_with("listn"))
            .map(|i| i + 1);
        assert_eq!(found[0].position, listn.map(|line| (line, 1)));
    }

    #[test]
    fn op11_a_key_with_no_close_match_gets_no_suggestion() {
        let text = with_changes(&[("[server]", "[server]\nzebra_count = 3")]);
        let line = text
            .lines()
            .position(|l| l.starts_with("zebra"))
            .map_or(0, |i| i + 1);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("unknown key");
        let printed = err.to_string();
        assert!(
            printed.contains(&format!("server.zebra_count (line {line}, column 1): unknown field `zebra_count`, expected one of `listen`")),
            "{printed}"
        );
        assert!(!printed.contains("did you mean"), "{printed}");
    }

    #[test]
    fn op11_close_matches_are_suggested_at_every_level() {
        let text = with_changes(&[
            ("max_event_age_seconds = ", "max_event_age = 3600"),
            (
                "api_key = ",
                "api_kye = { envv = \"ACME_KUSTOMER_API_KEY\" }",
            ),
            ("failure_policy = ", "failure_policy = \"default_rules\""),
            ("field_prefix = ", "field_prefx = \"ccai\""),
            ("^token = ", "token = { env = \"X\", fille = \"y\" }"),
        ]);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("typos");
        let printed = err.to_string();
        for expected in [
            "pipeline.max_event_age (line",
            "did you mean `max_event_age_seconds`?",
            "tenant[0].kustomer.api_kye (line",
            "did you mean `api_key`?",
            "tenant[0].field_prefx (line",
            "did you mean `field_prefix`?",
            "tenant[0].failure_policy (line",
            "unknown value, expected `hold` or `default-rules`; did you mean `default-rules`?",
            "tenant[0].click_to_call.token.fille (line",
            "did you mean `file`?",
        ] {
            assert!(printed.contains(expected), "{expected}:\n{printed}");
        }
        // The secret table with the unknown key is still missing `api_key`.
        assert!(
            printed.contains("tenant[0].kustomer.api_key (line"),
            "{printed}"
        );
    }

    #[test]
    fn op11_no_error_text_quotes_a_value_written_in_the_file() {
        let text = with_changes(&[
            ("events_password = ", "events_password = \"e-plain-secret\""),
            (
                "webhook_primary_secret = ",
                "webhook_primary_secret = 98765432123",
            ),
            ("events_username = ", "events_username = 4242424242"),
            ("failure_policy = ", "failure_policy = \"p0licy-secret\""),
            ("# cors_origins = ", "cors_origins = [\"origin-secret\"]"),
        ]);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("mistakes");
        let printed = err.to_string();
        assert_eq!(problems(err).len(), 5, "{printed}");
        // Values refused once the tenant's types are right.
        let valid_types = with_changes(&[
            ("base_url = ", "base_url = \"kustomer-secret-url\""),
            ("phone_region = ", "phone_region = \"REGION-SECRET\""),
            ("loyalty_tier = ", "loyalty_tier = \"mapping-secret:x\""),
        ]);
        let err = with_env(|| Config::parse(&valid_types, Path::new("."))).expect_err("bad values");
        let also = err.to_string();
        assert_eq!(problems(err).len(), 3, "{also}");
        let printed = format!("{printed}\n{also}");
        for secret in [
            "e-plain-secret",
            "98765432123",
            "4242424242",
            "p0licy-secret",
            "kustomer-secret-url",
            "REGION-SECRET",
            "origin-secret",
            "mapping-secret",
        ] {
            assert!(!printed.contains(secret), "{secret}:\n{printed}");
        }
        // A syntax error is placed, and its line is not printed either.
        let broken = with_changes(&[("api_key = ", "api_key = \"k-unterminated-secret")]);
        let err = with_env(|| Config::parse(&broken, Path::new("."))).expect_err("syntax");
        let printed = err.to_string();
        assert!(printed.contains("line "), "{printed}");
        assert!(!printed.contains("k-unterminated-secret"), "{printed}");
    }

    #[test]
    fn op11_validation_errors_are_all_collected() {
        let text = with_changes(&[
            ("idle_timeout_ms = ", "idle_timeout_ms = 0"),
            ("max_connections = ", "max_connections = 0"),
            ("max_event_age_seconds = ", "max_event_age_seconds = 0"),
            (
                "loyalty_tier = ",
                "loyalty_tier = \"conversation:ccaiLoyaltyTier\"",
            ),
            (
                "api_token = ",
                "api_token = { env = \"SWITCHBOARD_TEST_OP11_UNSET\" }",
            ),
        ]);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("five mistakes");
        let printed = err.to_string();
        let keys: Vec<_> = problems(err).into_iter().filter_map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "server.idle_timeout_ms",
                "server.max_connections",
                "pipeline.max_event_age_seconds",
                "tenant[0].field_mapping.loyalty_tier",
                "tenant[0].ccai.api_token",
            ],
            "{printed}"
        );
        assert!(printed.contains("SWITCHBOARD_TEST_OP11_UNSET"), "{printed}");
    }

    #[test]
    fn pf4_pipeline_threads_and_priority_are_read_and_checked() {
        let text = with_changes(&[("# threads = ", "threads = 3"), ("nice = ", "nice = 4")]);
        let config = with_env(|| Config::parse(&text, Path::new("."))).expect("valid");
        assert_eq!((config.pipeline.threads, config.pipeline.nice), (3, 4));
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("valid");
        assert_eq!(config.pipeline.threads, PipelineConfig::default_threads());
        assert_eq!(config.pipeline.nice, 10);

        let text = with_changes(&[("# threads = ", "threads = 0"), ("nice = ", "nice = 20")]);
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("two mistakes");
        let keys: Vec<_> = problems(err).into_iter().filter_map(|p| p.key).collect();
        assert_eq!(keys, ["pipeline.threads", "pipeline.nice"]);
    }

    #[test]
    fn op11_os_errors_are_plain_and_name_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("absent.toml");
        let err = Config::load(&missing).expect_err("no file");
        assert_eq!(
            err.to_string(),
            format!("cannot read {}: no such file", missing.display())
        );
        let err = Config::load(dir.path()).expect_err("a directory");
        assert!(err.to_string().ends_with(": it is a directory"), "{err}");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(plain_io_error(&denied), "permission denied");

        let text = with_changes(&[("^token = ", "token = { file = \"absent-token\" }")]);
        let lines: Vec<&str> = text.lines().collect();
        let line = lines
            .iter()
            .rposition(|l| l.starts_with("token = "))
            .map_or(0, |i| i + 1);
        let err = with_env(|| Config::parse(&text, dir.path())).expect_err("no secret file");
        let printed = err.to_string();
        assert!(
            printed.contains(&format!(
                "tenant[0].click_to_call.token (line {line}, column 9): cannot read secret file {}: no such file",
                dir.path().join("absent-token").display()
            )),
            "{printed}"
        );
    }

    #[test]
    fn op11_valid_configs_still_load_unchanged() {
        let config = with_env(|| Config::parse(SAMPLE, Path::new("."))).expect("example parses");
        assert_eq!(
            config.server.listen,
            "127.0.0.1:8080".parse().expect("addr")
        );
        assert_eq!(config.server.workers, 16);
        assert_eq!(config.pipeline.retry_base, Duration::from_millis(500));
        assert_eq!(config.runtime.max_plan_actions, 256);
        let acme = config.tenant("acme").expect("acme");
        assert!(acme.status_sync.is_some() && acme.click_to_call.is_some());
        assert_eq!(acme.poll_interval, Some(Duration::from_secs(60)));
        // Sections left out take their defaults.
        let minimal = "[[tenant]]\nid = \"t\"\n[tenant.kustomer]\nbase_url = \"https://k.example\"\n\
            api_key = { env = \"ACME_KUSTOMER_API_KEY\" }\n[tenant.ccai]\nbase_url = \"https://c.example\"\n\
            company_key = \"k\"\ncompany_secret = { env = \"ACME_CCAI_API_TOKEN\" }\n\
            events_username = \"u\"\nevents_password = { env = \"ACME_CCAI_EVENTS_PASSWORD\" }\n\
            webhook_primary_secret = { env = \"ACME_CCAI_WEBHOOK_SECRET\" }\n";
        let config = with_env(|| Config::parse(minimal, Path::new("."))).expect("minimal parses");
        assert_eq!(config.server.connections, ConnectionLimits::default());
        assert_eq!(config.pipeline.max_event_age, Duration::from_secs(86400));
        assert!(config.tenant("t").is_some_and(|t| t.status_sync.is_none()));
    }

    #[test]
    fn op11_accepted_keys_are_those_of_the_structs() {
        fn check(shape: &report::Shape, path: &str) {
            for (name, nested) in &shape.nested {
                assert!(
                    shape.keys.contains(name),
                    "{path}.{name} is not a key of its struct"
                );
                match nested {
                    report::Nested::Table(s) | report::Nested::Tables(s) => {
                        assert!(!s.keys.is_empty(), "{path}.{name} has keys");
                        check(s, &format!("{path}.{name}"));
                    }
                }
            }
        }
        let file = report::file_shape();
        check(&file, "");
        assert_eq!(
            file.keys,
            ["server", "runtime", "pipeline", "store", "tenant"]
        );
        // The runtime's keys, as it writes them.
        let written = toml::Table::try_from(RuntimeConfig::default()).expect("serializes");
        let runtime = report::fields_of::<RuntimeConfig>();
        assert_eq!(written.keys().collect::<Vec<_>>(), {
            let mut keys: Vec<_> = runtime.to_vec();
            keys.sort_unstable();
            keys
        });
        assert!(report::fields_of::<ServerFile>().contains(&"cors_origins"));
        assert_eq!(report::fields_of::<SecretTable>(), ["env", "file"]);
    }

    /// Why `text` (a config read from `.`) is refused.
    fn refused(text: &str) -> String {
        match Config::parse(text, Path::new(".")) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn pf6_the_intake_log_is_on_by_default_with_sqlite_bounded_and_refused_beside_postgres() {
        let base = Path::new(".");
        assert_eq!(
            Config::parse("", base).expect("defaults").server.intake_log,
            Some(DEFAULT_INTAKE_LOG_BYTES)
        );
        let off = Config::parse("[server]\nintake_log = false\n", base).expect("off");
        assert_eq!(off.server.intake_log, None);
        let bound = Config::parse("[server]\nintake_log_max_bytes = 2000000\n", base);
        assert_eq!(bound.expect("bound").server.intake_log, Some(2_000_000));
        let small = refused("[server]\nintake_log_max_bytes = 1000\n");
        assert!(
            small.contains("server.intake_log_max_bytes") && small.contains("max_body_bytes"),
            "{small}"
        );
        let small_off = "[server]\nintake_log = false\nintake_log_max_bytes = 1000\n";
        assert!(Config::parse(small_off, base).is_ok(), "no bound to check");
        std::env::set_var("PF6_TEST_DATABASE_URL", "postgres://sb:pw@db/sb");
        let postgres =
            "[store]\nbackend = \"postgres\"\nurl = { env = \"PF6_TEST_DATABASE_URL\" }\n";
        let beside = Config::parse(postgres, base).expect("postgres, log left to its default");
        assert_eq!(
            beside.server.intake_log, None,
            "off by default beside PostgreSQL"
        );
        let small_beside = format!("[server]\nintake_log_max_bytes = 1000\n{postgres}");
        assert!(
            Config::parse(&small_beside, base).is_ok(),
            "no bound to check for a log that is off"
        );
        let shared = refused(&format!("[server]\nintake_log = true\n{postgres}"));
        assert!(
            shared.contains("server.intake_log") && shared.contains("only with the SQLite store"),
            "{shared}"
        );
    }

    #[test]
    fn ha1_store_section_selects_the_backend_and_checks_its_url() {
        let base = Path::new(".");
        let sqlite = Config::parse("", base).expect("no [store]: SQLite");
        assert!(matches!(sqlite.store, StoreConfig::Sqlite));
        std::env::set_var("HA1_TEST_DATABASE_URL", "postgres://sb:pw@db/sb");
        let pg = Config::parse(
            "[store]\nbackend = \"postgres\"\nurl = { env = \"HA1_TEST_DATABASE_URL\" }\n",
            base,
        )
        .expect("postgres");
        match &pg.store {
            StoreConfig::Postgres { url, pool_size } => {
                assert_eq!(
                    secrecy::ExposeSecret::expose_secret(url),
                    "postgres://sb:pw@db/sb"
                );
                assert_eq!(*pool_size, DEFAULT_POOL_SIZE);
            }
            other => panic!("expected postgres, got {other:?}"),
        }
        assert!(!format!("{pg:?}").contains("pw@"), "the URL never shows");
        let missing = refused("[store]\nbackend = \"postgres\"\npool_size = 0\n");
        assert!(
            missing.contains("store.url") && missing.contains("store.pool_size"),
            "{missing}"
        );
        let plain = refused("[store]\nbackend = \"postgres\"\nurl = \"postgres://x\"\n");
        assert!(
            plain.contains("store.url") && !plain.contains("postgres://x"),
            "{plain}"
        );
        let stray = refused("[store]\nurl = { env = \"HA1_TEST_DATABASE_URL\" }\n");
        assert!(
            stray.contains("only a PostgreSQL store has a URL"),
            "{stray}"
        );
        let unknown = refused("[store]\nbackend = \"mysql\"\n");
        assert!(unknown.contains("store"), "{unknown}");
    }

    #[test]
    fn op11_suggestions_are_close_matches_only() {
        assert_eq!(report::levenshtein("listn", "listen"), 1);
        assert_eq!(report::levenshtein("kitten", "sitting"), 3);
        assert_eq!(report::levenshtein("", "abc"), 3);
        let keys = report::fields_of::<ServerFile>();
        assert_eq!(report::suggest("listn", keys), Some("listen"));
        assert_eq!(report::suggest("Workers", keys), Some("workers"));
        assert_eq!(report::suggest("max_body", keys), Some("max_body_bytes"));
        assert_eq!(
            report::suggest("idle_timeout", keys),
            Some("idle_timeout_ms")
        );
        assert_eq!(report::suggest("zebra_count", keys), None);
        assert_eq!(report::suggest("tls", keys), None);
    }

    #[test]
    fn op1_field_mapping_needs_a_type_suffix() {
        let text = SAMPLE.replace(
            "conversation:ccaiLoyaltyTierStr",
            "conversation:ccaiLoyaltyTier",
        );
        let err = with_env(|| Config::parse(&text, Path::new("."))).expect_err("suffix");
        assert!(err.to_string().contains("type suffix"), "{err}");
    }
}
