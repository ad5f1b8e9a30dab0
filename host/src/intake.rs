//! Event intake from CCAI Platform: three sources, one set of events.
//!
//! Every accepted update is merged into its session's ledger
//! ([`ledger`]), and the transitions it newly implies are written to the
//! store's inbox as WIT [`SessionEvent`](crate::runtime::types::SessionEvent)s
//! (durable, one per `(tenant, session, transition)`) in the same
//! transaction, **before** the HTTP handler answers 2xx (OP2); or, with the
//! intake log (`server.intake_log`, the default on SQLite), a session-events
//! body or a verified chat webhook is appended to the intake log before the
//! 2xx and merged the same way right after ([`log`], PF6). Bad input
//! gets a 4xx and stores nothing (OP5): unknown tenant 404, wrong or missing
//! credentials 401, oversized body 413, malformed JSON 400; for chat webhooks
//! also missing signature headers 400, stale timestamp 401 (window
//! [`IntakeConfig::webhook_window`], default 5 minutes) and a replayed
//! signature 409.
//!
//! # Sources
//! - **External Session Events** — `POST /v1/tenants/{tenant}/ccai/session-events`,
//!   HTTP Basic with the tenant's configured user and password (compared in
//!   constant time), body `{count, events[]}`. Updates are taken in
//!   `timestamp` order and a repeated `event_id` once per POST; `event_type`
//!   is optional (a hint). The `item` shape is defined once, in [`item`]. The
//!   answer counts the updates `received`, the new transitions `accepted`,
//!   and the updates that brought none (`duplicates`).
//! - **Chat webhooks** — `POST /v1/tenants/{tenant}/ccai/chat-webhooks`,
//!   `X-Signature: primary=<b64> secondary=<b64>` =
//!   Base64(HMAC-SHA256(secret, X-Signature-Timestamp + raw body)); any of the
//!   four signature×secret pairs matches. Messages are kept to build the
//!   transcript when the chat ends.
//! - **Manager API reconciliation** — [`Poller`] reads `calls` and `chats`
//!   updated since its stored cursor; each record is one more update of its
//!   session, merged with the cursor in one transaction.
//! - **Click-to-call placements** — a call the sidecar placed is its
//!   session's first update ([`normalize::update_from_placement`]), merged
//!   by the app when the platform accepts the call.
//!
//! `docs/sessions.md` has the table of which source field derives which
//! transition, and what happens to missing, unknown and contradictory data
//! (SPEC SE1–SE6).

pub mod item;
pub mod ledger;
pub mod log;
pub mod normalize;
pub mod poller;

mod http;

pub use item::{ChatWebhook, SessionEventBatch, SessionEventEnvelope, SessionItem};
pub use poller::{Cursor, PollError, PollReport, Poller};

use crate::connectors::ccai::{InboundBasic, WebhookSecrets};
use crate::phone::Region;
use crate::pipeline::Doorbell;
use crate::store::{NewInboxEvent, Store};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the intake needs to know about one tenant: the credentials CCAI
/// Platform presents and where callers' numbers are read.
#[derive(Debug, Clone)]
pub struct TenantIntake {
    pub session_events: InboundBasic,
    pub webhooks: WebhookSecrets,
    pub phone_region: Region,
}

impl From<&Tenant> for TenantIntake {
    fn from(tenant: &Tenant) -> Self {
        Self {
            session_events: tenant.config.ccai.session_events.clone(),
            webhooks: tenant.config.ccai.webhooks.clone(),
            phone_region: tenant.config.phone_region,
        }
    }
}

/// Intake limits.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Largest accepted body; larger gets 413.
    pub max_body_bytes: usize,
    /// How far a chat webhook's signature timestamp may be from now.
    pub webhook_window: Duration,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            webhook_window: Duration::from_secs(300),
        }
    }
}

/// Signatures seen within the window, to refuse replays. In memory: a
/// restart forgets them, but a replay after a restart still only re-offers
/// events the inbox already deduplicates.
///
/// Keyed on the decoded bytes of each signature that verified, not on the
/// header's text: the same signature re-spelled (other whitespace, the parts
/// reordered, only one of the two parts) is the same request. The timestamp
/// is part of what is signed, so it needs no place in the key.
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    /// `std` mutex: held for one map update, never across an await.
    seen: Mutex<HashMap<SeenSignature, DateTime<Utc>>>,
}

/// A tenant and the decoded bytes of one signature that verified.
type SeenSignature = (String, Vec<u8>);

impl ReplayCache {
    /// `true` when none of `verified` (the signatures of one request that
    /// matched a secret) was seen for `tenant` within `window`; records them
    /// all and forgets entries older than the window.
    pub(crate) fn first_sight(
        &self,
        tenant: &str,
        verified: &[Vec<u8>],
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Twice the window: a timestamp may be up to one window ahead of now
        // as well as behind it, and must stay refused for as long as it is
        // fresh.
        seen.retain(|_, at| now - *at <= window * 2);
        let mut first = true;
        for signature in verified {
            first &= seen
                .insert((tenant.to_string(), signature.clone()), now)
                .is_none();
        }
        first
    }
}

/// Shared state of the intake routes. Cheap to clone.
#[derive(Clone)]
pub struct IntakeState {
    pub(crate) store: Store,
    pub(crate) tenants: Arc<HashMap<String, TenantIntake>>,
    pub(crate) config: Arc<IntakeConfig>,
    pub(crate) replays: Arc<ReplayCache>,
    /// The time used for webhook staleness; replaceable in tests.
    pub(crate) clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Tells the pipeline which customers have new events.
    pub(crate) doorbell: Option<Arc<Doorbell>>,
    /// Where session events and verified chat webhooks go before the
    /// store, when configured (PF6).
    pub(crate) log: Option<log::IntakeLog>,
}

impl std::fmt::Debug for IntakeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeState")
            .field("tenants", &self.tenants.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IntakeState {
    pub fn new(store: Store, tenants: HashMap<String, TenantIntake>, config: IntakeConfig) -> Self {
        Self {
            store,
            tenants: Arc::new(tenants),
            config: Arc::new(config),
            replays: Arc::new(ReplayCache::default()),
            clock: Arc::new(Utc::now),
            doorbell: None,
            log: None,
        }
    }

    /// Answers session events and verified chat webhooks once they are in
    /// `log`, which a [`log::Mover`] merges into the store (PF6).
    pub fn with_log(mut self, log: log::IntakeLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Rings `doorbell` with the customers of every stored batch.
    pub fn with_doorbell(mut self, doorbell: Arc<Doorbell>) -> Self {
        self.doorbell = Some(doorbell);
        self
    }

    /// Tells the pipeline about stored events (deduplicated ones included:
    /// ringing an idle customer costs one empty read).
    pub(crate) fn ring(&self, rows: &[NewInboxEvent]) {
        if let Some(doorbell) = &self.doorbell {
            for row in rows {
                doorbell.ring(&row.tenant, &row.customer_key);
            }
        }
    }

    /// Uses `clock` instead of the system time for webhook staleness.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The intake routes:
/// `POST /v1/tenants/{tenant}/ccai/session-events` and
/// `POST /v1/tenants/{tenant}/ccai/chat-webhooks`.
pub fn router(state: IntakeState) -> utoipa_axum::router::OpenApiRouter {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(http::session_events))
        .routes(utoipa_axum::routes!(http::chat_webhooks))
        // The handlers enforce `max_body_bytes` themselves, after checking
        // the tenant and credentials, so axum's default limit is lifted.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(timed))
        .with_state(state)
}

/// Records how long the sidecar took to answer an intake request, from its
/// headers read to its answer (the body read, the events stored and their
/// commit waited for): `switchboard_intake_seconds{route, status}`.
async fn timed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = if request.uri().path().ends_with("/chat-webhooks") {
        "chat_webhooks"
    } else {
        "session_events"
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "switchboard_intake_seconds",
        "route" => route,
        "status" => response.status().as_str().to_owned()
    )
    .record(started.elapsed());
    response
}
