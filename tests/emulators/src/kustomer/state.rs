//! The emulator's shared state: stored records, the controllable clock, rate
//! windows, queued faults and the request log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

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

/// A fresh 24-hex id laid out like the Mongo ObjectIds Kustomer uses: four
/// bytes of Unix seconds, five bytes fixed per process, a three-byte counter.
/// Ids made by one emulator therefore sort in creation order, as Kustomer's
/// do; only caller-supplied ids can sort elsewhere.
pub fn new_id() -> String {
    static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let process = PROCESS.get_or_init(rand::random);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seconds = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    bytes[4..9].copy_from_slice(process);
    bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
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

/// A KObject: a record of a custom klass, usually tied to a customer.
#[derive(Debug, Clone)]
pub struct KObject {
    pub id: String,
    pub klass: String,
    pub customer_id: Option<String>,
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

/// Rows of one kind in creation order, with an id index so every lookup by
/// id is a hash probe rather than a scan.
#[derive(Debug)]
pub struct Table<T> {
    rows: Vec<T>,
    by_id: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            by_id: HashMap::new(),
        }
    }
}

/// A stored object with a Kustomer id.
pub trait Row {
    fn id(&self) -> &str;
}

impl<T: Row> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).and_then(|&i| self.rows.get(i))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let i = *self.by_id.get(id)?;
        self.rows.get_mut(i)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Appends a row and returns its position.
    pub fn push(&mut self, row: T) -> usize {
        let i = self.rows.len();
        self.by_id.insert(row.id().to_string(), i);
        self.rows.push(row);
        i
    }

    pub fn at(&self, i: usize) -> Option<&T> {
        self.rows.get(i)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.rows.iter()
    }
}

macro_rules! row {
    ($($t:ty),*) => {$(
        impl Row for $t {
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}
row!(
    Customer,
    Conversation,
    Message,
    Note,
    Attachment,
    User,
    RoutingStatus,
    WorkSession,
    Record,
    KObject
);

/// A team, tag or shortcut: read-only org configuration.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub attrs: Map<String, Value>,
}

/// Everything the emulated org stores, with the secondary indexes the API
/// needs (contact points, children of a customer or conversation, external
/// ids), so no request scans a whole kind. Writes that touch an indexed field
/// go through the methods here to keep the indexes true.
#[derive(Debug, Default)]
pub struct Db {
    pub customers: Table<Customer>,
    pub conversations: Table<Conversation>,
    pub messages: Table<Message>,
    pub notes: Table<Note>,
    pub attachments: Table<Attachment>,
    pub users: Table<User>,
    pub statuses: Table<RoutingStatus>,
    pub work_sessions: Table<WorkSession>,
    pub teams: Table<Record>,
    pub tags: Table<Record>,
    pub shortcuts: Table<Record>,
    pub kobjects: Table<KObject>,
    /// resource (`customer`, `conversation`, …) → properties.
    pub metadata: HashMap<String, Map<String, Value>>,
    /// (identity kind, value) → customer id, for uniqueness and lookups.
    identities: HashMap<(&'static str, String), String>,
    conversations_by_customer: HashMap<String, Vec<usize>>,
    messages_by_conversation: HashMap<String, Vec<usize>>,
    messages_by_customer: HashMap<String, Vec<usize>>,
    notes_by_conversation: HashMap<String, Vec<usize>>,
    notes_by_customer: HashMap<String, Vec<usize>>,
    kobjects_by_customer: HashMap<String, Vec<usize>>,
    kobjects_by_klass: HashMap<String, Vec<usize>>,
    /// External id → every object holding it, oldest first (external ids
    /// are not unique; a lookup returns the oldest holder).
    conversation_external: HashMap<String, Vec<usize>>,
    message_external: HashMap<String, Vec<usize>>,
    note_external: HashMap<String, Vec<usize>>,
}

/// Contact points that must be unique per org: (kind, value, JSON pointer).
/// Emails and social usernames compare case-insensitively.
pub fn identities(attrs: &Map<String, Value>) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut list = |field: &str, key: &str, kind: &'static str, lower: bool| {
        if let Some(Value::Array(items)) = attrs.get(field) {
            for (i, item) in items.iter().enumerate() {
                if let Some(v) = item.get(key).and_then(Value::as_str) {
                    let v = if lower {
                        v.to_lowercase()
                    } else {
                        v.to_string()
                    };
                    out.push((kind, v, format!("/{field}/{i}/{key}")));
                }
            }
        }
    };
    list("emails", "email", "email", true);
    list("phones", "phone", "phone", false);
    list("whatsapps", "phone", "whatsapp", false);
    list("externalIds", "externalId", "externalId", false);
    list("socials", "username", "social", true);
    if let Some(Value::String(x)) = attrs.get("externalId") {
        out.push(("externalId", x.clone(), "/externalId".into()));
    }
    out
}

fn external_id(attrs: &Map<String, Value>) -> Option<String> {
    attrs
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn rows_of<'a, T: Row>(
    table: &'a Table<T>,
    index: &'a HashMap<String, Vec<usize>>,
    key: &str,
) -> impl DoubleEndedIterator<Item = &'a T> + 'a {
    index
        .get(key)
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|&i| table.at(i))
}

impl Db {
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.get(id)
    }
    pub fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.get(id)
    }
    pub fn conversation_mut(&mut self, id: &str) -> Option<&mut Conversation> {
        self.conversations.get_mut(id)
    }
    /// True when any stored object of any kind already has this id.
    pub fn id_taken(&self, id: &str) -> bool {
        self.kobjects.contains(id)
            || self.customers.contains(id)
            || self.conversations.contains(id)
            || self.messages.contains(id)
            || self.notes.contains(id)
            || self.attachments.contains(id)
    }

    /// The customer holding a contact point (`email` values lower-case).
    pub fn customer_by_identity(&self, kind: &'static str, value: &str) -> Option<&Customer> {
        self.identities
            .get(&(kind, value.to_string()))
            .and_then(|id| self.customers.get(id))
    }

    /// The id of another customer already holding one of these contact
    /// points, with the clashing (kind, value, pointer).
    pub fn identity_clash(
        &self,
        attrs: &Map<String, Value>,
        own_id: Option<&str>,
    ) -> Option<(&'static str, String, String)> {
        identities(attrs).into_iter().find(|(kind, value, _)| {
            self.identities
                .get(&(*kind, value.clone()))
                .is_some_and(|holder| Some(holder.as_str()) != own_id)
        })
    }

    fn index_identities(&mut self, id: &str, attrs: &Map<String, Value>, add: bool) {
        for (kind, value, _) in identities(attrs) {
            if add {
                self.identities.insert((kind, value), id.to_string());
            } else if self
                .identities
                .get(&(kind, value.clone()))
                .map(String::as_str)
                == Some(id)
            {
                self.identities.remove(&(kind, value));
            }
        }
    }

    pub fn insert_customer(&mut self, c: Customer) {
        let (id, attrs) = (c.id.clone(), c.attrs.clone());
        self.customers.push(c);
        self.index_identities(&id, &attrs, true);
    }

    /// Replaces a customer's attributes and re-indexes its contact points.
    pub fn set_customer_attrs(&mut self, id: &str, attrs: Map<String, Value>) {
        let Some(old) = self.customers.get(id).map(|c| c.attrs.clone()) else {
            return;
        };
        self.index_identities(id, &old, false);
        self.index_identities(id, &attrs, true);
        if let Some(c) = self.customers.get_mut(id) {
            c.attrs = attrs;
        }
    }

    pub fn insert_conversation(&mut self, c: Conversation) {
        let customer = c.customer_id.clone();
        let external = external_id(&c.attrs);
        let i = self.conversations.push(c);
        self.conversations_by_customer
            .entry(customer)
            .or_default()
            .push(i);
        if let Some(x) = external {
            self.conversation_external.entry(x).or_default().push(i);
        }
    }

    /// Writes a conversation's attributes, queue and customer, moving it
    /// between customers' indexes when the customer changes.
    pub fn set_conversation(
        &mut self,
        id: &str,
        attrs: Map<String, Value>,
        queue_id: Option<String>,
        customer_id: String,
    ) {
        let Some(&i) = self.conversations.by_id.get(id) else {
            return;
        };
        let Some(c) = self.conversations.rows.get_mut(i) else {
            return;
        };
        let old_customer = std::mem::replace(&mut c.customer_id, customer_id.clone());
        let old_external = external_id(&c.attrs);
        let new_external = external_id(&attrs);
        c.attrs = attrs;
        c.queue_id = queue_id;
        if old_customer != customer_id {
            if let Some(list) = self.conversations_by_customer.get_mut(&old_customer) {
                list.retain(|&x| x != i);
            }
            let list = self
                .conversations_by_customer
                .entry(customer_id)
                .or_default();
            // Keep creation order: positions are creation order.
            let at = list.partition_point(|&x| x < i);
            list.insert(at, i);
        }
        reindex_external(
            &mut self.conversation_external,
            old_external,
            new_external,
            i,
        );
    }

    pub fn insert_message(&mut self, m: Message) {
        let (conversation, customer) = (m.conversation_id.clone(), m.customer_id.clone());
        let external = external_id(&m.attrs);
        let i = self.messages.push(m);
        self.messages_by_conversation
            .entry(conversation)
            .or_default()
            .push(i);
        self.messages_by_customer
            .entry(customer)
            .or_default()
            .push(i);
        if let Some(x) = external {
            self.message_external.entry(x).or_default().push(i);
        }
    }

    pub fn set_message_attrs(&mut self, id: &str, attrs: Map<String, Value>) {
        let Some(&i) = self.messages.by_id.get(id) else {
            return;
        };
        let Some(m) = self.messages.rows.get_mut(i) else {
            return;
        };
        let old_external = external_id(&m.attrs);
        let new_external = external_id(&attrs);
        m.attrs = attrs;
        reindex_external(&mut self.message_external, old_external, new_external, i);
    }

    pub fn insert_note(&mut self, n: Note) {
        let (conversation, customer) = (n.conversation_id.clone(), n.customer_id.clone());
        let external = external_id(&n.attrs);
        let i = self.notes.push(n);
        self.notes_by_conversation
            .entry(conversation)
            .or_default()
            .push(i);
        self.notes_by_customer.entry(customer).or_default().push(i);
        if let Some(x) = external {
            self.note_external.entry(x).or_default().push(i);
        }
    }

    pub fn insert_kobject(&mut self, k: KObject) {
        let (klass, customer) = (k.klass.clone(), k.customer_id.clone());
        let i = self.kobjects.push(k);
        self.kobjects_by_klass.entry(klass).or_default().push(i);
        if let Some(c) = customer {
            self.kobjects_by_customer.entry(c).or_default().push(i);
        }
    }

    pub fn kobjects_of_customer(&self, id: &str) -> impl DoubleEndedIterator<Item = &KObject> {
        rows_of(&self.kobjects, &self.kobjects_by_customer, id)
    }

    pub fn kobjects_of_klass(&self, klass: &str) -> impl DoubleEndedIterator<Item = &KObject> {
        rows_of(&self.kobjects, &self.kobjects_by_klass, klass)
    }

    /// A customer's conversations, oldest first.
    pub fn conversations_of(
        &self,
        customer_id: &str,
    ) -> impl DoubleEndedIterator<Item = &Conversation> {
        rows_of(
            &self.conversations,
            &self.conversations_by_customer,
            customer_id,
        )
    }
    pub fn messages_of_conversation(&self, id: &str) -> impl DoubleEndedIterator<Item = &Message> {
        rows_of(&self.messages, &self.messages_by_conversation, id)
    }
    pub fn messages_of_customer(&self, id: &str) -> impl DoubleEndedIterator<Item = &Message> {
        rows_of(&self.messages, &self.messages_by_customer, id)
    }
    pub fn notes_of_conversation(&self, id: &str) -> impl DoubleEndedIterator<Item = &Note> {
        rows_of(&self.notes, &self.notes_by_conversation, id)
    }
    pub fn notes_of_customer(&self, id: &str) -> impl DoubleEndedIterator<Item = &Note> {
        rows_of(&self.notes, &self.notes_by_customer, id)
    }

    pub fn conversation_by_external(&self, x: &str) -> Option<&Conversation> {
        oldest(&self.conversation_external, x).and_then(|i| self.conversations.at(i))
    }
    pub fn message_by_external(&self, x: &str) -> Option<&Message> {
        oldest(&self.message_external, x).and_then(|i| self.messages.at(i))
    }
    pub fn note_by_external(&self, x: &str) -> Option<&Note> {
        oldest(&self.note_external, x).and_then(|i| self.notes.at(i))
    }
}

fn oldest(index: &HashMap<String, Vec<usize>>, x: &str) -> Option<usize> {
    index.get(x).and_then(|holders| holders.first().copied())
}

/// Moves an object between external-id entries when a write changes its
/// external id, keeping each entry's holders in creation order.
fn reindex_external(
    index: &mut HashMap<String, Vec<usize>>,
    old: Option<String>,
    new: Option<String>,
    i: usize,
) {
    if old == new {
        return;
    }
    if let Some(o) = old {
        if let Some(holders) = index.get_mut(&o) {
            holders.retain(|&h| h != i);
            if holders.is_empty() {
                index.remove(&o);
            }
        }
    }
    if let Some(n) = new {
        let holders = index.entry(n).or_default();
        let at = holders.partition_point(|&h| h < i);
        holders.insert(at, i);
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
    /// `sort=asc|desc` on lists orders by id, as Kustomer documents; off,
    /// lists order by creation (the emulator's historical behaviour).
    pub sort_lists_by_id: bool,
    /// `POST /v1/customers/search` budget per minute for API keys.
    pub search_per_minute: u32,
    /// Most recent entries the request log and webhook log keep each.
    pub log_capacity: usize,
}

/// A log entry whose JSON body is kept as text: a parsed `Value` takes
/// several times the memory of its text, and logs are read rarely.
#[derive(Debug, Clone)]
pub struct Logged<T> {
    entry: T,
    body: Option<Box<str>>,
}

impl Logged<RecordedRequest> {
    pub fn get(&self) -> RecordedRequest {
        let mut r = self.entry.clone();
        r.body = self
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok());
        r
    }
}

impl Logged<WebhookDelivery> {
    pub fn get(&self) -> WebhookDelivery {
        let mut d = self.entry.clone();
        d.body = self
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        d
    }
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
    /// Bounded by `settings.log_capacity` so a long load test does not grow
    /// the emulator without limit; the oldest entries go first.
    pub requests: VecDeque<Logged<RecordedRequest>>,
    pub deliveries: VecDeque<Logged<WebhookDelivery>>,
    pub search_window: Option<Window>,
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

    /// Logs a request; `body` is its raw JSON text, if it was JSON.
    pub fn record_request(&mut self, r: RecordedRequest, body: Option<Box<str>>) {
        if self.requests.len() >= self.settings.log_capacity.max(1) {
            self.requests.pop_front();
        }
        self.requests.push_back(Logged { entry: r, body });
    }

    /// Logs a webhook event with its body as JSON text.
    pub fn record_delivery(&mut self, d: WebhookDelivery, body: Box<str>) {
        if self.deliveries.len() >= self.settings.log_capacity.max(1) {
            self.deliveries.pop_front();
        }
        self.deliveries.push_back(Logged {
            entry: d,
            body: Some(body),
        });
    }

    /// Counts one search against the per-minute search budget; on refusal
    /// returns the window's reset (epoch seconds).
    pub fn charge_search(&mut self) -> Result<(), i64> {
        let now = self.now();
        let limit = self.settings.search_per_minute;
        let w = Window::current(&mut self.search_window, now);
        if w.count >= limit {
            return Err(reset_epoch(w.start));
        }
        w.count += 1;
        Ok(())
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
