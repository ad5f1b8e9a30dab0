//! Event intake from CCAI Platform: three sources, one set of events.
//!
//! Every accepted update is normalised into the WIT
//! [`SessionEvent`](crate::runtime::types::SessionEvent) and written to the
//! store's inbox (durable, deduplicated by `(tenant, event id)`) **before**
//! the HTTP handler answers 2xx (OP2). Bad input gets a 4xx and stores
//! nothing (OP5): unknown tenant 404, wrong or missing credentials 401,
//! oversized body 413, malformed JSON 400; for chat webhooks also missing
//! signature headers 400, stale timestamp 401 (window
//! [`IntakeConfig::webhook_window`], default 5 minutes) and a replayed
//! timestamp+signature 409.
//!
//! # Sources
//! - **External Session Events** — `POST /v1/tenants/{tenant}/ccai/session-events`,
//!   HTTP Basic with the tenant's configured user and password (compared in
//!   constant time), body `{count, events[]}`. Updates are sorted by
//!   `timestamp`, repeats of an `event_id` dropped, and each becomes at most
//!   one event. The `item` shape is this sidecar's assumption (the platform
//!   does not publish it); it is defined once, in [`item`], and the
//!   emulator's scenario player sends exactly that.
//! - **Chat webhooks** — `POST /v1/tenants/{tenant}/ccai/chat-webhooks`,
//!   `X-Signature: primary=<b64> secondary=<b64>` =
//!   Base64(HMAC-SHA256(secret, X-Signature-Timestamp + raw body)); any of the
//!   four signature×secret pairs matches. Messages are kept to build the
//!   transcript when the chat ends.
//! - **Manager API reconciliation** — [`Poller`] reads `calls` and `chats`
//!   updated since its stored cursor and emits what only the final record
//!   carries.
//!
//! # Event ids
//! Facts that happen once per session get an id derived from the session
//! (`call-1001:ended`, `call-1001:recording-ready`, `chat-77:created`,
//! `call-1001:connected:21`, `call-1001:transfer:71`,
//! `call-1016:smart-action:sa-1`…), so the same fact reported by two sources
//! is stored once; other updates keep the platform's `event_id`.
//!
//! # Which source produces which SPEC event
//! | SPEC | event kind | session events (`event_type`) | chat webhook | Manager API poller |
//! |---|---|---|---|---|
//! | TC1 | `created` (ivr-call, mobile-call, mobile-chat) | `session_created` | `chat_created` | — |
//! | TC2, AA1 | `connected(agent)` | `agent_connected` | `participant_joined` (agent) | — |
//! | CU1 | `assigned(agent)` | `agent_assigned` | — | — |
//! | TC3, TU2 | `created` (outbound-call) | `session_created` | — | — |
//! | TC4 | `abandoned` | `session_ended` + `fail_reason` `eu_abandoned` | `chat_dismissed` | status `failed` + abandoned `fail_reason`; chat `canceled`/`no_response` |
//! | TC5 | `voicemail-left` | `voicemail_left` | — | status `voicemail*` / `voicemail` object |
//! | TU1 | `created` (rules match menu + channel) | `session_created`, `session_queued` | `chat_created` | — |
//! | TU3 | `recording-ready` | `recording_ready` | — | `recording_url` on a finished call |
//! | TU4 | `transferred` | `session_transferred` | — | `transfers[]` with status `transferred` |
//! | TU5 | `hangup-and-callback` | `hangup_and_callback` | — | — |
//! | TU6 | `short-call-callback` | `short_call_callback` | — | — |
//! | TU7 | `smart-action-completed` | `smart_action_completed` | — | `smart_actions[]` completed |
//! | TU8 | `smart-action-failed` | `smart_action_failed` | — | `smart_actions[]` failed |
//! | TU9 | `custom-data` (and `session.custom-data` on every event) | `custom_data` | — | — |
//! | TU10 | `rated` | `rated` | — | `rating` (+ `rating_comment`) |
//! | TU11 | `voicemail-updated(read/closed/called-back)` | `voicemail_updated` | — | `voicemail.status` |
//! | CC1, PN1, SD1 | any (session carries E.164 phone, language, menu) | every update (`dn`, `lang`, `selected_menu`) | — | merged with earlier events |
//! | CC2 | `created` with `end-user.sdk-identifier` | `session_created` | `chat_created` | — |
//! | CT1 | `transcript-ready` | `transcript_ready` (`transcript_url`) | `chat_ended` (inline transcript of kept messages) | — |
//! | (all) | `ended` with durations | `session_ended` | `chat_ended` | finished call/chat record |
//!
//! `disposition_submitted` updates and unknown types are accepted and
//! ignored: the WIT contract has no event for them.

pub mod item;
pub mod ledger;
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
use axum::routing::post;
use axum::Router;
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
        }
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
pub fn router(state: IntakeState) -> Router {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/ccai/session-events",
            post(http::session_events),
        )
        .route(
            "/v1/tenants/{tenant}/ccai/chat-webhooks",
            post(http::chat_webhooks),
        )
        // The handlers enforce `max_body_bytes` themselves, after checking
        // the tenant and credentials, so axum's default limit is lifted.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
