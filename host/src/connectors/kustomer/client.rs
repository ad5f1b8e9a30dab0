//! The Kustomer HTTP client: one pooled `reqwest::Client`, pacing, retries
//! and idempotent creates.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Duration;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::config::KustomerConfig;
use super::error::KustomerError;
use super::model::*;
use super::ratelimit::{Limiter, RateHeaders};
use crate::connectors::clock::{Clock, SystemClock};
use crate::connectors::retry::{self, Step, Stop};

/// Kustomer refuses bodies above 100 kb (413); refuse them before sending.
const MAX_BODY: usize = 100 * 1024;
/// Largest `pageSize` most Kustomer lists accept.
const MAX_PAGE_SIZE: usize = 100;
/// Guard against a server whose `links.next` never ends.
const MAX_PAGES: usize = 1000;

/// A 24-hex Kustomer id made the way Kustomer makes its own: the first 4
/// bytes are the creation time in epoch seconds (`at_secs`, big-endian), so
/// ids sort by time like Kustomer's; the other 8 are the first bytes of the
/// SHA-256 of `key`. Callers pass the event's time and derive `key` from
/// (tenant, event, action index), so a retried or replayed create names the
/// same object.
pub fn derive_id(at_secs: i64, key: &str) -> String {
    let secs = u32::try_from(at_secs.max(0)).unwrap_or(u32::MAX);
    let digest = Sha256::digest(key.as_bytes());
    format!("{secs:08x}{}", hex::encode(&digest[..8]))
}

/// `base.join(path)`, without parsing the base's origin again for an
/// absolute path (what the client builds, and Kustomer's links): only the
/// path and query are read.
fn api_url(base: &Url, path: &str) -> Result<Url, url::ParseError> {
    // Anything the parser would treat specially (a relative or
    // scheme-relative reference, a fragment, a backslash, spaces and control
    // characters it trims or drops) goes through `join` itself.
    let plain = |b: u8| b > b' ' && b != b'#' && b != b'\\' && b != 0x7f;
    if !path.starts_with('/') || path.starts_with("//") || !path.bytes().all(plain) {
        return base.join(path);
    }
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(query);
    url.set_fragment(None);
    Ok(url)
}

/// A resource read for its id alone; serde skips the other members.
#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// What a create answers with, named by its id in the log when a conflict
/// resolves to the existing object.
trait Created {
    fn id(&self) -> &str;
}

impl<A> Created for Resource<A> {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Created for IdOnly {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Where a conversation's messages are created.
fn messages_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{}/messages", seg(conversation_id))
}

/// Where a conversation's notes are created.
fn notes_path(conversation_id: &str) -> String {
    format!("/v1/conversations/{}/notes", seg(conversation_id))
}

/// Percent-encodes one path segment (`@` → `%40`, `+` → `%2B`, …).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Both Kustomer error shapes: `{code, message, meta}` and JSON:API
/// `{status, code, title, detail, source}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorItem {
    code: Option<String>,
    title: Option<String>,
    message: Option<String>,
    detail: Option<String>,
}

fn status_error(op: &'static str, status: StatusCode, body: &[u8]) -> KustomerError {
    let first = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.errors.into_iter().next())
        .unwrap_or_default();
    let title = first
        .title
        .or(first.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    KustomerError::Status {
        op,
        status,
        code: first.code,
        title,
        detail: first.detail,
    }
}

/// The error a call ends with when the retry policy stops it.
fn exhausted(op: &'static str, stop: Stop<KustomerError>) -> KustomerError {
    match stop {
        Stop::Failed(error) => error,
        Stop::GaveUp { attempts, last } => KustomerError::Exhausted {
            op,
            attempts,
            last: Box::new(last),
        },
    }
}

/// An agent's current routing status, read from their active work session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub work_session_id: String,
    pub status_id: Option<String>,
    pub status_type: Option<String>,
}

/// Result of [`KustomerClient::merge_metadata`].
#[derive(Debug, Clone)]
pub struct MetadataMerge {
    pub metadata: Metadata,
    /// Properties that were created or changed; empty when all were in place.
    pub changed: Vec<String>,
}

/// Client of the Kustomer REST API. Cheap to clone; clones share the HTTP
/// connection pool and the rate-limit state.
#[derive(Clone)]
pub struct KustomerClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: KustomerConfig,
    limiter: Limiter,
    /// `Bearer <api key>`, marked sensitive; built once, sent to Kustomer
    /// only (an attachment's upload goes elsewhere without it).
    authorization: HeaderValue,
}

impl fmt::Debug for KustomerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KustomerClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl KustomerClient {
    pub fn new(config: KustomerConfig) -> Result<Self, KustomerError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose rate-limit waits and backoff run on `clock`.
    pub fn with_clock(
        config: KustomerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KustomerError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KustomerError::Config(format!("HTTP client: {e}")))?;
        let limiter = Limiter::new(clock, config.customer_creates_per_minute);
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", config.api_key.expose())).map_err(|_| {
                KustomerError::Config(
                    "the API key holds characters an HTTP header cannot carry".into(),
                )
            })?;
        authorization.set_sensitive(true);
        Ok(KustomerClient {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
                authorization,
            }),
        })
    }

    pub fn config(&self) -> &KustomerConfig {
        &self.inner.config
    }

    fn url(&self, path: &str) -> Result<Url, KustomerError> {
        api_url(&self.inner.config.base_url, path)
            .map_err(|e| KustomerError::Config(format!("path {path}: {e}")))
    }

    /// Resolves a link from a response (relative, `/v1/...`). An absolute
    /// link must stay on the API's origin: the API key goes with it.
    fn resolve_link(&self, op: &'static str, link: &str) -> Result<Url, KustomerError> {
        if link.starts_with('/') {
            return self.url(link);
        }
        let url = Url::parse(link)
            .map_err(|e| KustomerError::invalid(op, format!("bad link {link}: {e}")))?;
        if url.origin() != self.inner.config.base_url.origin() {
            return Err(KustomerError::invalid(
                op,
                format!("refusing to follow link off the API origin: {link}"),
            ));
        }
        Ok(url)
    }

    /// One API call with pacing and retries. `customer` names the customer
    /// whose per-minute create allowance the call uses.
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        customer: Option<&str>,
    ) -> Result<Bytes, KustomerError> {
        let body = match body {
            None => None,
            Some(raw) => {
                if raw.len() > MAX_BODY {
                    return Err(KustomerError::invalid(
                        op,
                        format!(
                            "body of {} bytes exceeds Kustomer's 100 kb limit",
                            raw.len()
                        ),
                    ));
                }
                Some(Bytes::from(raw))
            }
        };
        let limiter = &self.inner.limiter;
        let clock = limiter.clock().clone();
        let outcome = retry::run(
            &self.inner.config.retry,
            clock.as_ref(),
            "kustomer",
            op,
            |_| {
                let body = body.clone();
                let url = url.clone();
                let method = method.clone();
                let clock = clock.clone();
                async move {
                    if let Some(c) = customer {
                        limiter.acquire_customer(c).await;
                    }
                    limiter.acquire().await;
                    let mut req = self
                        .inner
                        .http
                        .request(method, url)
                        .header(AUTHORIZATION, self.inner.authorization.clone())
                        .header(ACCEPT, "application/json");
                    if let Some(b) = body {
                        req = req.header(CONTENT_TYPE, "application/json").body(b);
                    }
                    let sent = req.send().await;
                    crate::connectors::record_request(
                        "kustomer",
                        op,
                        sent.as_ref().ok().map(|r| r.status().as_u16()),
                    );
                    let resp = match sent {
                        Err(source) if source.is_builder() => {
                            return Step::Fail(KustomerError::Transport { op, source })
                        }
                        Err(source) => {
                            return Step::Retry {
                                error: KustomerError::Transport { op, source },
                                after: None,
                            }
                        }
                        Ok(resp) => resp,
                    };
                    let status = resp.status();
                    let rate = RateHeaders::parse(resp.headers());
                    if let Some(r) = &rate {
                        limiter.observe(r);
                    }
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<i64>().ok());
                    match resp.bytes().await {
                        Err(source) => Step::Retry {
                            error: KustomerError::Transport { op, source },
                            after: None,
                        },
                        Ok(bytes) if status.is_success() => Step::Done(bytes),
                        Ok(bytes) if status == StatusCode::TOO_MANY_REQUESTS => {
                            let now = clock.now();
                            let org_spent = rate.is_some_and(|r| r.remaining == 0);
                            let until = match (rate, retry_after) {
                                (Some(r), _) if org_spent => r.reset_at(now),
                                (_, Some(secs)) => now + Duration::seconds(secs.max(1)),
                                (Some(r), None) => r.reset_at(now),
                                (None, None) => now + Duration::seconds(1),
                            };
                            // The whole client waits when the org budget is
                            // spent (or the server did not say which limit it
                            // was); a per-customer 429 holds only this call.
                            if org_spent || retry_after.is_none() {
                                limiter.hold_until(until);
                            }
                            Step::Pace {
                                error: status_error(op, status, &bytes),
                                until,
                            }
                        }
                        Ok(bytes) if status.is_server_error() => Step::Retry {
                            error: status_error(op, status, &bytes),
                            after: None,
                        },
                        Ok(bytes) => Step::Fail(status_error(op, status, &bytes)),
                    }
                }
            },
        )
        .await;
        outcome.map_err(|stop| exhausted(op, stop))
    }

    fn decode<T: DeserializeOwned>(op: &'static str, bytes: &[u8]) -> Result<T, KustomerError> {
        crate::connectors::json_from_bytes(bytes)
            .map_err(|source| KustomerError::Decode { op, source })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: Url,
    ) -> Result<T, KustomerError> {
        let bytes = self.call(op, Method::GET, url, None, None).await?;
        Self::decode(op, &bytes)
    }

    /// GET of one object; 404 → `None`.
    async fn get_optional<A: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
    ) -> Result<Option<Resource<A>>, KustomerError> {
        match self.get::<Document<Resource<A>>>(op, self.url(path)?).await {
            Ok(d) => Ok(Some(d.data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write<A: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: &impl Serialize,
        customer: Option<&str>,
    ) -> Result<Resource<A>, KustomerError> {
        Ok(self
            .send::<Document<Resource<A>>>(op, method, path, body, customer)
            .await?
            .data)
    }

    /// Sends a JSON body and reads the answer as `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: &impl Serialize,
        customer: Option<&str>,
    ) -> Result<T, KustomerError> {
        // Written once, straight from the request's type.
        let body =
            serde_json::to_vec(body).map_err(|source| KustomerError::Decode { op, source })?;
        let bytes = self
            .call(op, method, self.url(path)?, Some(body), customer)
            .await?;
        Self::decode(op, &bytes)
    }

    /// A create that resolves a conflict (409: the id/externalId exists, e.g.
    /// because an earlier attempt succeeded but its response was lost) to
    /// the existing object instead of failing or duplicating.
    async fn create_or_find<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        body: &impl Serialize,
        customer: Option<&str>,
        find_existing: F,
    ) -> Result<T, KustomerError>
    where
        T: DeserializeOwned + Created,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, KustomerError>>,
    {
        let created = self
            .send::<Document<T>>(op, Method::POST, path, body, customer)
            .await
            .map(|d| d.data);
        match created {
            Err(e) if e.is_conflict() => match find_existing().await? {
                Some(existing) => {
                    tracing::info!(op, id = %existing.id(), "kustomer create resolved to the existing object");
                    Ok(existing)
                }
                None => Err(e),
            },
            other => other,
        }
    }

    /// [`Self::create_or_find`] for a caller that keeps only the new
    /// object's id: the rest of Kustomer's answer is skipped unread.
    async fn create_for_id<A, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        body: &impl Serialize,
        customer: Option<&str>,
        find_existing: F,
    ) -> Result<String, KustomerError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Resource<A>>, KustomerError>>,
    {
        let created: IdOnly = self
            .create_or_find(op, path, body, customer, || async {
                Ok(find_existing().await?.map(|r| IdOnly { id: r.id }))
            })
            .await?;
        Ok(created.id)
    }

    /// All pages of a list, following `links.next`.
    async fn list_all<A: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
    ) -> Result<Vec<Resource<A>>, KustomerError> {
        self.list_up_to(op, self.url(path)?, usize::MAX).await
    }

    async fn list_up_to<A: DeserializeOwned>(
        &self,
        op: &'static str,
        mut url: Url,
        limit: usize,
    ) -> Result<Vec<Resource<A>>, KustomerError> {
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: ListDocument<Resource<A>> = self.get(op, url).await?;
            out.extend(page.data);
            if out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
            match page.links.and_then(|l| l.next) {
                Some(next) => url = self.resolve_link(op, &next)?,
                None => return Ok(out),
            }
        }
        Err(KustomerError::invalid(
            op,
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    // ------------------------------------------------------------ customers

    /// Creates a customer. If Kustomer rejects it as a duplicate (its
    /// externalId, email or phone belongs to a customer already), returns
    /// that customer.
    #[tracing::instrument(name = "switchboard.kustomer.create_customer", skip_all)]
    pub async fn create_customer(&self, new: &NewCustomer) -> Result<Customer, KustomerError> {
        self.create_or_find("create_customer", "/v1/customers", new, None, || async {
            if let Some(x) = &new.external_id {
                if let Some(c) = self.find_customer_by_external_id(x).await? {
                    return Ok(Some(c));
                }
            }
            for e in &new.emails {
                if let Some(c) = self.find_customer_by_email(&e.email).await? {
                    return Ok(Some(c));
                }
            }
            for p in &new.phones {
                if let Some(c) = self.find_customer_by_phone(&p.phone).await? {
                    return Ok(Some(c));
                }
            }
            Ok(None)
        })
        .await
    }

    pub async fn get_customer(&self, id: &str) -> Result<Option<Customer>, KustomerError> {
        self.get_optional("get_customer", &format!("/v1/customers/{}", seg(id)))
            .await
    }

    /// Lookup by E.164 phone; `None` when no customer has it.
    #[tracing::instrument(name = "switchboard.kustomer.find_customer_by_phone", skip_all)]
    pub async fn find_customer_by_phone(
        &self,
        phone: &str,
    ) -> Result<Option<Customer>, KustomerError> {
        self.get_optional(
            "find_customer_by_phone",
            &format!("/v1/customers/phone={}", seg(phone)),
        )
        .await
    }

    pub async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<Customer>, KustomerError> {
        self.get_optional(
            "find_customer_by_email",
            &format!("/v1/customers/email={}", seg(email)),
        )
        .await
    }

    pub async fn find_customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Customer>, KustomerError> {
        self.get_optional(
            "find_customer_by_external_id",
            &format!("/v1/customers/externalId={}", seg(external_id)),
        )
        .await
    }

    #[tracing::instrument(name = "switchboard.kustomer.update_customer", skip_all)]
    pub async fn update_customer(
        &self,
        id: &str,
        patch: &CustomerPatch,
    ) -> Result<Customer, KustomerError> {
        self.write(
            "update_customer",
            Method::PATCH,
            &format!("/v1/customers/{}", seg(id)),
            patch,
            None,
        )
        .await
    }

    // -------------------------------------------------------- conversations

    /// Creates a conversation; with a caller-supplied `id` (or `externalId`)
    /// a retry after a lost response returns the conversation created the
    /// first time.
    #[tracing::instrument(name = "switchboard.kustomer.create_conversation", skip_all)]
    pub async fn create_conversation(
        &self,
        new: &NewConversation,
    ) -> Result<Conversation, KustomerError> {
        self.create_or_find(
            "create_conversation",
            "/v1/conversations",
            new,
            Some(&new.customer),
            || async {
                if let Some(id) = &new.id {
                    return self.get_conversation(id).await;
                }
                match &new.external_id {
                    Some(x) => self.find_conversation_by_external_id(x).await,
                    None => Ok(None),
                }
            },
        )
        .await
    }

    pub async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, KustomerError> {
        self.get_optional(
            "get_conversation",
            &format!("/v1/conversations/{}", seg(id)),
        )
        .await
    }

    pub async fn find_conversation_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Conversation>, KustomerError> {
        self.get_optional(
            "find_conversation_by_external_id",
            &format!("/v1/conversations/externalId={}", seg(external_id)),
        )
        .await
    }

    /// Up to `limit` of the customer's conversations, newest first.
    #[tracing::instrument(name = "switchboard.kustomer.recent_conversations", skip_all)]
    pub async fn recent_conversations(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<Conversation>, KustomerError> {
        let size = limit.clamp(1, MAX_PAGE_SIZE);
        let url = self.url(&format!(
            "/v1/customers/{}/conversations?sort=desc&page=1&pageSize={size}",
            seg(customer_id)
        ))?;
        self.list_up_to("recent_conversations", url, limit).await
    }

    /// The customer's conversations, newest first by creation time, at most
    /// `limit`. Kustomer sorts lists by id, which is not creation order for
    /// ids chosen by clients: one page of 100 is read and ordered here by
    /// `createdAt` (ties: the larger id, which also leads with the time).
    pub async fn newest_conversations(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<Conversation>, KustomerError> {
        let mut all = self
            .recent_conversations(customer_id, MAX_PAGE_SIZE)
            .await?;
        all.sort_by(|a, b| (b.attributes.created_at, &b.id).cmp(&(a.attributes.created_at, &a.id)));
        all.truncate(limit);
        Ok(all)
    }

    #[tracing::instrument(name = "switchboard.kustomer.update_conversation", skip_all)]
    pub async fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
    ) -> Result<Conversation, KustomerError> {
        self.write(
            "update_conversation",
            Method::PATCH,
            &format!("/v1/conversations/{}", seg(id)),
            patch,
            None,
        )
        .await
    }

    /// `open` | `snoozed` | `done`.
    pub async fn set_conversation_status(
        &self,
        id: &str,
        status: &str,
    ) -> Result<Conversation, KustomerError> {
        let patch = ConversationPatch {
            status: Some(status.to_string()),
            ..Default::default()
        };
        self.update_conversation(id, &patch).await
    }

    pub async fn assign_conversation(
        &self,
        id: &str,
        users: Vec<String>,
    ) -> Result<Conversation, KustomerError> {
        let patch = ConversationPatch {
            assigned_users: Some(users),
            ..Default::default()
        };
        self.update_conversation(id, &patch).await
    }

    /// Merges custom attributes (names carry a type suffix, e.g.
    /// `ccaiQueueNameStr`); `null` clears one.
    pub async fn set_conversation_custom(
        &self,
        id: &str,
        custom: serde_json::Map<String, Value>,
    ) -> Result<Conversation, KustomerError> {
        let patch = ConversationPatch {
            custom: Some(custom),
            ..Default::default()
        };
        self.update_conversation(id, &patch).await
    }

    pub async fn set_conversation_queue(
        &self,
        id: &str,
        queue: QueueRef,
    ) -> Result<Conversation, KustomerError> {
        let patch = ConversationPatch {
            queue: Some(queue),
            ..Default::default()
        };
        self.update_conversation(id, &patch).await
    }

    // ---------------------------------------------------- messages and notes

    /// Records a message (voice call, chat, …) in a conversation. Counts
    /// against `customer_id`'s per-minute create limit. Idempotent with a
    /// caller-supplied `id`/`externalId`.
    #[tracing::instrument(name = "switchboard.kustomer.create_message", skip_all)]
    pub async fn create_message(
        &self,
        customer_id: &str,
        conversation_id: &str,
        new: &NewMessage,
    ) -> Result<Message, KustomerError> {
        self.create_or_find(
            "create_message",
            &messages_path(conversation_id),
            new,
            Some(customer_id),
            || self.existing_message(new),
        )
        .await
    }

    /// The message an earlier attempt of `new` made, by its id or
    /// `externalId`.
    async fn existing_message(&self, new: &NewMessage) -> Result<Option<Message>, KustomerError> {
        match (&new.id, &new.external_id) {
            (Some(id), _) => self.get_message(id).await,
            (None, Some(x)) => self.find_message_by_external_id(x).await,
            (None, None) => Ok(None),
        }
    }

    /// [`Self::create_message`] for a caller that keeps nothing of the
    /// message but its id: the rest of Kustomer's answer is skipped, not
    /// read into a [`Message`]. A conflict (an earlier attempt's answer was
    /// lost) resolves to the existing message, as `create_message` does.
    pub async fn add_message(
        &self,
        customer_id: &str,
        conversation_id: &str,
        new: &NewMessage,
    ) -> Result<String, KustomerError> {
        self.create_for_id(
            "create_message",
            &messages_path(conversation_id),
            new,
            Some(customer_id),
            || self.existing_message(new),
        )
        .await
    }

    pub async fn get_message(&self, id: &str) -> Result<Option<Message>, KustomerError> {
        self.get_optional("get_message", &format!("/v1/messages/{}", seg(id)))
            .await
    }

    pub async fn find_message_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Message>, KustomerError> {
        self.get_optional(
            "find_message_by_external_id",
            &format!("/v1/messages/externalId={}", seg(external_id)),
        )
        .await
    }

    /// Adds an internal note. The 201 answer is sparse (body and timestamps);
    /// a conflict on the caller's `id` resolves to the full existing note.
    #[tracing::instrument(name = "switchboard.kustomer.create_note", skip_all)]
    pub async fn create_note(
        &self,
        conversation_id: &str,
        new: &NewNote,
    ) -> Result<Note, KustomerError> {
        self.create_or_find(
            "create_note",
            &notes_path(conversation_id),
            new,
            None,
            || self.existing_note(new),
        )
        .await
    }

    /// The note an earlier attempt of `new` made, by its id.
    async fn existing_note(&self, new: &NewNote) -> Result<Option<Note>, KustomerError> {
        match &new.id {
            Some(id) => self.get_note(id).await,
            None => Ok(None),
        }
    }

    /// [`Self::create_note`] for a caller that keeps nothing of the note but
    /// its id: the rest of Kustomer's answer is skipped, not read into a
    /// [`Note`]. A conflict (the note's id exists: an earlier attempt's
    /// answer was lost) resolves to that note, as `create_note` does.
    pub async fn add_note(
        &self,
        conversation_id: &str,
        new: &NewNote,
    ) -> Result<String, KustomerError> {
        self.create_for_id(
            "create_note",
            &notes_path(conversation_id),
            new,
            None,
            || self.existing_note(new),
        )
        .await
    }

    pub async fn get_note(&self, id: &str) -> Result<Option<Note>, KustomerError> {
        self.get_optional("get_note", &format!("/v1/notes/{}", seg(id)))
            .await
    }

    // ----------------------------------------------------------- attachments

    /// Step 1 of an attachment: registers it and returns it with the storage
    /// target its file goes to. Kustomer takes no client id here: keep the
    /// id and the target before uploading, so a retry reuses them.
    #[tracing::instrument(name = "switchboard.kustomer.register_attachment", skip_all)]
    pub async fn register_attachment(
        &self,
        name: &str,
        content_type: &str,
        content_length: u64,
    ) -> Result<(Attachment, UploadTarget), KustomerError> {
        const OP: &str = "register_attachment";
        let new = NewAttachment {
            name: name.to_string(),
            content_type: content_type.to_string(),
            content_length,
        };
        let created: Attachment = self
            .write(OP, Method::POST, "/v1/attachments", &new, None)
            .await?;
        let upload = created
            .meta
            .as_ref()
            .and_then(|m| m.get("upload"))
            .cloned()
            .ok_or_else(|| KustomerError::invalid(OP, "attachment response has no meta.upload"))?;
        let target: UploadTarget = serde_json::from_value(upload)
            .map_err(|source| KustomerError::Decode { op: OP, source })?;
        Ok((created, target))
    }

    /// Step 2 of an attachment: POSTs the file to its storage target (all
    /// the target's fields, the file last). Uploading again to the same
    /// target replaces the file.
    #[tracing::instrument(name = "switchboard.kustomer.upload_attachment_file", skip_all)]
    pub async fn upload_attachment_file(
        &self,
        target: &UploadTarget,
        name: &str,
        content_type: &str,
        data: Bytes,
    ) -> Result<(), KustomerError> {
        const OP: &str = "upload_attachment";
        let url = Url::parse(&target.url)
            .or_else(|_| self.url(&target.url))
            .map_err(|_| KustomerError::invalid(OP, format!("bad upload URL {}", target.url)))?;
        self.post_form(OP, url, &target.fields, name, content_type, data)
            .await
    }

    /// Steps 1 and 2 of an attachment: register it, then upload the file.
    /// Returns the attachment as registered; reference its id in a note or
    /// message.
    pub async fn upload_attachment(
        &self,
        name: &str,
        content_type: &str,
        data: Bytes,
    ) -> Result<Attachment, KustomerError> {
        let (created, target) = self
            .register_attachment(name, content_type, data.len() as u64)
            .await?;
        self.upload_attachment_file(&target, name, content_type, data)
            .await?;
        Ok(created)
    }

    /// The storage POST. Carries no API key: the presigned fields are the
    /// credential and the URL is usually not Kustomer's.
    async fn post_form(
        &self,
        op: &'static str,
        url: Url,
        fields: &BTreeMap<String, Value>,
        name: &str,
        content_type: &str,
        data: Bytes,
    ) -> Result<(), KustomerError> {
        let clock = self.inner.limiter.clock().clone();
        let outcome = retry::run(
            &self.inner.config.retry,
            clock.as_ref(),
            "kustomer",
            op,
            |_| {
                let url = url.clone();
                let data = data.clone();
                async move {
                    let mut form = reqwest::multipart::Form::new();
                    for (k, v) in fields {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        form = form.text(k.clone(), text);
                    }
                    let part = match reqwest::multipart::Part::stream(data)
                        .file_name(name.to_string())
                        .mime_str(content_type)
                    {
                        Ok(part) => part,
                        Err(source) => return Step::Fail(KustomerError::Transport { op, source }),
                    };
                    form = form.part("file", part);
                    match self.inner.http.post(url).multipart(form).send().await {
                        Err(source) => Step::Retry {
                            error: KustomerError::Transport { op, source },
                            after: None,
                        },
                        Ok(resp) if resp.status().is_success() => Step::Done(()),
                        Ok(resp) => {
                            let status = resp.status();
                            let text = resp.text().await.unwrap_or_default();
                            let error = KustomerError::Status {
                                op,
                                status,
                                code: None,
                                title: text.chars().take(300).collect(),
                                detail: None,
                            };
                            if status.is_server_error() {
                                Step::Retry { error, after: None }
                            } else {
                                Step::Fail(error)
                            }
                        }
                    }
                }
            },
        )
        .await;
        outcome.map_err(|stop| exhausted(op, stop))
    }

    /// Uploads a file and adds a note that references it (the transcript or
    /// recording pattern).
    pub async fn create_note_with_attachment(
        &self,
        conversation_id: &str,
        mut note: NewNote,
        file_name: &str,
        content_type: &str,
        data: Bytes,
    ) -> Result<(Attachment, Note), KustomerError> {
        if let Some(id) = &note.id {
            // A replay must not upload the file again.
            if let Some(existing) = self.get_note(id).await? {
                let att_id = existing
                    .attributes
                    .attachments
                    .as_ref()
                    .and_then(|a| a.get(0))
                    .and_then(|a| a.as_str().or_else(|| a.get("_id").and_then(Value::as_str)))
                    .map(str::to_string);
                if let Some(att_id) = att_id {
                    if let Some(att) = self
                        .get_optional::<AttachmentAttributes>(
                            "get_attachment",
                            &format!("/v1/attachments/{}", seg(&att_id)),
                        )
                        .await?
                    {
                        return Ok((att, existing));
                    }
                }
            }
        }
        let att = self
            .upload_attachment(file_name, content_type, data)
            .await?;
        note.attachments.push(att.id.clone());
        let created = self.create_note(conversation_id, &note).await?;
        Ok((att, created))
    }

    // -------------------------------------------------------------- metadata

    pub async fn get_metadata(
        &self,
        resource: MetadataResource,
    ) -> Result<Metadata, KustomerError> {
        let url = self.url(&format!("/v1/metadata/{}", resource.as_str()))?;
        Ok(self
            .get::<Document<Metadata>>("get_metadata", url)
            .await?
            .data)
    }

    /// Makes sure the `wanted` custom attributes exist as described. Reads
    /// the current metadata and sends only the missing or different
    /// properties, so properties this client did not create are never
    /// touched. A no-op (no write) when everything is in place.
    #[tracing::instrument(name = "switchboard.kustomer.merge_metadata", skip_all)]
    pub async fn merge_metadata(
        &self,
        resource: MetadataResource,
        wanted: &BTreeMap<String, PropertyDefinition>,
    ) -> Result<MetadataMerge, KustomerError> {
        let current = self.get_metadata(resource).await?;
        let changes: BTreeMap<&String, &PropertyDefinition> = wanted
            .iter()
            .filter(|(name, w)| {
                !current
                    .attributes
                    .properties
                    .get(*name)
                    .is_some_and(|c| c.satisfies(w))
            })
            .collect();
        if changes.is_empty() {
            return Ok(MetadataMerge {
                metadata: current,
                changed: Vec::new(),
            });
        }
        let changed: Vec<String> = changes.keys().map(|k| (*k).clone()).collect();
        let body = json!({ "properties": changes });
        let metadata: Metadata = self
            .write(
                "merge_metadata",
                Method::PUT,
                &format!("/v1/metadata/{}", resource.as_str()),
                &body,
                None,
            )
            .await?;
        let lost: Vec<&String> = current
            .attributes
            .properties
            .keys()
            .filter(|k| !metadata.attributes.properties.contains_key(*k))
            .collect();
        if !lost.is_empty() {
            tracing::error!(
                ?lost,
                "kustomer metadata update dropped existing properties"
            );
        }
        Ok(MetadataMerge { metadata, changed })
    }

    // --------------------------------------------------------------- routing

    /// The Kustomer user with this email (agents are linked by email).
    #[tracing::instrument(name = "switchboard.kustomer.find_user_by_email", skip_all)]
    /// The org's users, at most `limit` (pages of the largest size).
    pub async fn users(&self, limit: usize) -> Result<Vec<User>, KustomerError> {
        let size = limit.clamp(1, MAX_PAGE_SIZE);
        let url = self.url(&format!("/v1/users?page=1&pageSize={size}"))?;
        self.list_up_to("users", url, limit).await
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, KustomerError> {
        let mut url = self.url("/v1/users")?;
        url.query_pairs_mut().append_pair("email", email);
        let page: ListDocument<User> = self.get("find_user_by_email", url).await?;
        Ok(page.data.into_iter().find(|u| {
            u.attributes
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// The org's routing statuses (Available, Busy, custom ones…).
    pub async fn routing_statuses(&self) -> Result<Vec<RoutingStatus>, KustomerError> {
        self.list_all("routing_statuses", "/v1/routing/statuses")
            .await
    }

    pub async fn work_sessions_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<WorkSession>, KustomerError> {
        self.list_all(
            "work_sessions_for_user",
            &format!("/v1/routing/users/{}/work-sessions", seg(user_id)),
        )
        .await
    }

    /// The agent's status from their active work session; `None` when they
    /// have none (signed out).
    pub async fn current_status(
        &self,
        user_id: &str,
    ) -> Result<Option<AgentStatus>, KustomerError> {
        let sessions = self.work_sessions_for_user(user_id).await?;
        Ok(sessions
            .into_iter()
            .filter(|w| w.attributes.active != Some(false))
            .max_by_key(|w| w.attributes.signed_in_at)
            .map(|w| AgentStatus {
                status_id: w.related_id("status").map(str::to_string),
                status_type: w.attributes.status_type.clone(),
                work_session_id: w.id,
            }))
    }

    /// Changes an agent's status through their work session.
    #[tracing::instrument(name = "switchboard.kustomer.set_agent_status", skip_all)]
    pub async fn set_agent_status(
        &self,
        work_session_id: &str,
        status_id: &str,
    ) -> Result<WorkSession, KustomerError> {
        self.write(
            "set_agent_status",
            Method::PUT,
            &format!("/v1/routing/work-sessions/{}", seg(work_session_id)),
            &json!({ "status": status_id }),
            None,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_24_hex_and_stable() {
        let a = derive_id(1_768_467_600, "tenant-a/session-1/0");
        assert_eq!(a.len(), 24, "got {a}");
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "got {a}"
        );
        assert_eq!(a, derive_id(1_768_467_600, "tenant-a/session-1/0"));
        assert_ne!(a, derive_id(1_768_467_600, "tenant-a/session-1/1"));
        assert!(a.starts_with("6968ac90"), "the time comes first: {a}");
        assert!(
            derive_id(1_768_467_601, "z") > derive_id(1_768_467_600, "a"),
            "a later id sorts after an earlier one"
        );
    }

    proptest::proptest! {
        /// The API's URLs are exactly what `join` gives, on any base.
        #[test]
        fn api_urls_are_what_join_gives(
            base in proptest::sample::select(vec![
                "http://127.0.0.1:8080", "https://api.kustomerapp.com/",
                "https://proxy.example/kustomer/", "http://[::1]:9/a/b?x=1#f",
            ]),
            path in "(/|//)?[a-zA-Z0-9@+%./?&=#:_é€ \t\\\\-]{0,40}",
        ) {
            let base = Url::parse(base).expect("a valid base");
            proptest::prop_assert_eq!(
                api_url(&base, &path).map(String::from),
                base.join(&path).map(String::from)
            );
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a@b.com"), "a%40b.com");
        assert_eq!(seg("+15551234567"), "%2B15551234567");
    }

    #[test]
    fn both_error_shapes_give_a_title() {
        let simple = br#"{"errors":[{"code":"bad_request","message":"Invalid request body or parameters.","meta":{}}]}"#;
        let e = status_error("op", StatusCode::BAD_REQUEST, simple);
        assert!(e.to_string().contains("Invalid request body"), "got {e}");
        let jsonapi = br#"{"errors":[{"status":409,"code":"duplicate","title":"Conflict","detail":"x","source":{"pointer":"/id"}}]}"#;
        let e = status_error("op", StatusCode::CONFLICT, jsonapi);
        assert!(
            e.is_conflict() && e.to_string().contains("Conflict"),
            "got {e}"
        );
    }
}
