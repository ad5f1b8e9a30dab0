//! The emulator's shared state: stored records, the controllable clock, rate
//! windows, queued faults and the request log.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Length of a Kustomer rate window (the org budget and the per-customer
/// create limit are both "per minute").
pub const WINDOW: Duration = Duration::seconds(60);

/// Kustomer timestamps: ISO-8601, UTC, millisecond precision.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reset instant of a window as whole epoch seconds, rounded up so a client
/// that waits until this second is guaranteed to be in the next window.
pub fn reset_epoch(start: DateTime<Utc>) -> i64 {
    let end = start + WINDOW;
    let secs = end.timestamp();
    if end.timestamp_subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// A fresh 24-hex id, the shape of a Mongo ObjectId as Kustomer uses.
pub fn new_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

/// True when `s` is a 24-char lowercase hex id.
pub fn is_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How the emulator tells time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "mode"
)]
pub enum ClockMode {
    /// System time plus an offset (milliseconds).
    System { offset_ms: i64 },
    /// Time stands still at this instant until it is set or advanced.
    Fixed { at: DateTime<Utc> },
}

impl ClockMode {
    pub fn now(&self) -> DateTime<Utc> {
        match *self {
            ClockMode::System { offset_ms } => Utc::now() + Duration::milliseconds(offset_ms),
            ClockMode::Fixed { at } => at,
        }
    }

    /// Moves the clock forward by `by` (never backwards).
    pub fn advance(&mut self, by: Duration) {
        let by = by.max(Duration::zero());
        match self {
            ClockMode::System { offset_ms } => *offset_ms += by.num_milliseconds(),
            ClockMode::Fixed { at } => *at += by,
        }
    }

    /// Moves the clock forward to `to` if it is in the future.
    pub fn advance_to(&mut self, to: DateTime<Utc>) {
        let now = self.now();
        if to > now {
            self.advance(to - now);
        }
    }
}

/// One fixed rate window: starts with the first request after the previous
/// window ended.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub count: u32,
}

impl Window {
    /// The window in force at `now`, starting a new one if the old one ended.
    pub fn current(slot: &mut Option<Window>, now: DateTime<Utc>) -> &mut Window {
        let expired = slot.is_none_or(|w| now >= w.start + WINDOW);
        if expired {
            *slot = Some(Window {
                start: now,
                count: 0,
            });
        }
        slot.get_or_insert(Window {
            start: now,
            count: 0,
        })
    }
}

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer 429 with `x-ratelimit-remaining: 0` and a reset `reset_in_secs`
    /// from the emulator clock.
    RateLimited {
        #[serde(default = "one")]
        reset_in_secs: i64,
    },
    /// Answer with this 5xx status and a Kustomer error body.
    ServerError {
        #[serde(default = "status_503")]
        status: u16,
    },
    /// Wait this long (real time) before handling the request normally.
    Latency { ms: u64 },
    /// Close the socket without answering; the request is not applied.
    DropConnection,
    /// Apply the request, then close the socket instead of answering (a lost
    /// response after a successful write).
    ApplyThenDrop,
}

fn one() -> i64 {
    1
}
fn status_503() -> u16 {
    503
}

/// A fault queued for the next `count` requests that match.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many matching requests it applies to.
    #[serde(default = "one_u32")]
    pub count: u32,
    /// Only requests with this method (e.g. `POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose path starts with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
}

fn one_u32() -> u32 {
    1
}

impl Fault {
    pub fn new(kind: FaultKind, count: u32) -> Self {
        Fault {
            kind,
            count,
            method: None,
            path_prefix: None,
        }
    }

    /// Restricts the fault to one method.
    pub fn on_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Restricts the fault to paths starting with `prefix`.
    pub fn on_path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub seq: u64,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub at: DateTime<Utc>,
    /// Status sent, or the status that would have been sent for a dropped
    /// response.
    pub status: u16,
    pub body: Option<Value>,
    /// Name of the fault applied, if any.
    pub fault: Option<String>,
    /// Start of the org rate window the request was counted in (None when it
    /// was not counted: rejected, unauthenticated, control or upload).
    pub window_start: Option<DateTime<Utc>>,
}

/// A signed outbound webhook the emulator sent (or tried to).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub event: String,
    pub body: Value,
    pub signature: String,
    /// HTTP status of the receiver, None when it could not be reached.
    pub status: Option<u16>,
}

/// Where outbound webhooks go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// The HMAC key Kustomer shows as the webhook's `token`.
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub customer_id: String,
    pub queue_id: Option<String>,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub customer_id: String,
    pub conversation_id: String,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub id: String,
    pub customer_id: String,
    pub conversation_id: String,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: String,
    pub attrs: Map<String, Value>,
    pub fields: Map<String, Value>,
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct RoutingStatus {
    pub id: String,
    pub attrs: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct WorkSession {
    pub id: String,
    pub user_id: String,
    pub status_id: String,
    pub attrs: Map<String, Value>,
}

/// Everything the emulated org stores. Vectors keep creation order; lookups
/// are linear, which is plenty for test-sized data.
#[derive(Debug, Default)]
pub struct Db {
    pub customers: Vec<Customer>,
    pub conversations: Vec<Conversation>,
    pub messages: Vec<Message>,
    pub notes: Vec<Note>,
    pub attachments: Vec<Attachment>,
    pub users: Vec<User>,
    pub statuses: Vec<RoutingStatus>,
    pub work_sessions: Vec<WorkSession>,
    /// resource (`customer`, `conversation`, …) → properties.
    pub metadata: HashMap<String, Map<String, Value>>,
}

impl Db {
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id)
    }
    pub fn customer_mut(&mut self, id: &str) -> Option<&mut Customer> {
        self.customers.iter_mut().find(|c| c.id == id)
    }
    pub fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.iter().find(|c| c.id == id)
    }
    pub fn conversation_mut(&mut self, id: &str) -> Option<&mut Conversation> {
        self.conversations.iter_mut().find(|c| c.id == id)
    }
    /// True when any stored object of any kind already has this id.
    pub fn id_taken(&self, id: &str) -> bool {
        self.customers.iter().any(|r| r.id == id)
            || self.conversations.iter().any(|r| r.id == id)
            || self.messages.iter().any(|r| r.id == id)
            || self.notes.iter().any(|r| r.id == id)
            || self.attachments.iter().any(|r| r.id == id)
    }
}

/// Settings that tests may change at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: String,
    pub org_id: String,
    pub org_name: String,
    /// The machine user the API key acts as (`createdBy` of API writes).
    pub machine_user_id: String,
    pub rate_limit_per_minute: u32,
    pub customer_creates_per_minute: u32,
    pub webhook: Option<WebhookTarget>,
}

/// All mutable state behind one `std::sync::Mutex`: no handler holds it across
/// an `.await`, and one lock keeps cross-object invariants (uniqueness,
/// derived conversation fields) trivially consistent.
#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub clock: ClockMode,
    pub db: Db,
    pub org_window: Option<Window>,
    pub customer_windows: HashMap<String, Window>,
    pub faults: VecDeque<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub deliveries: Vec<WebhookDelivery>,
    /// Webhook events raised by the current write, sent once the write is done.
    pub outbox: Vec<(String, Value)>,
    pub next_seq: u64,
}

impl Inner {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Takes one use of the first queued fault matching the request.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let idx = self.faults.iter().position(|f| f.matches(method, path))?;
        let fault = self.faults.get_mut(idx)?;
        let kind = fault.kind.clone();
        fault.count = fault.count.saturating_sub(1);
        if fault.count == 0 {
            self.faults.remove(idx);
        }
        Some(kind)
    }

    /// Counts one request against the org budget. Returns the window start
    /// when it fits, or None when the budget is spent.
    pub fn charge_org(&mut self) -> Result<DateTime<Utc>, ()> {
        let now = self.now();
        let limit = self.settings.rate_limit_per_minute;
        let w = Window::current(&mut self.org_window, now);
        if w.count >= limit {
            return Err(());
        }
        w.count += 1;
        Ok(w.start)
    }

    /// The `x-ratelimit-*` values to report now: (limit, remaining, reset).
    pub fn org_headers(&mut self) -> (u32, u32, i64) {
        let now = self.now();
        let limit = self.settings.rate_limit_per_minute;
        let w = *Window::current(&mut self.org_window, now);
        (limit, limit.saturating_sub(w.count), reset_epoch(w.start))
    }

    /// Counts one create against the per-customer limit; on refusal returns
    /// the seconds until that customer's window resets.
    pub fn charge_customer_create(&mut self, customer_id: &str) -> Result<(), i64> {
        let now = self.now();
        let limit = self.settings.customer_creates_per_minute;
        let mut slot = self.customer_windows.get(customer_id).copied();
        let w = Window::current(&mut slot, now);
        if w.count >= limit {
            let reset = reset_epoch(w.start);
            return Err((reset - now.timestamp()).max(1));
        }
        w.count += 1;
        let w = *w;
        self.customer_windows.insert(customer_id.to_string(), w);
        Ok(())
    }
}
