//! The CCAI Platform HTTP client: one `reqwest::Client`, a client-side rate
//! limiter, and bounded retries with exponential backoff.

use super::config::CcaiConfig;
use super::error::{CallRejection, CcaiError};
use super::model::{
    next_link, ActivityLog, Agent, AgentStatusResult, Call, CallPlaced, Chat, OutboundCall, Page,
    UserStatus,
};
use crate::connectors::clock::SystemClock;
use crate::connectors::retry::{self, Step, Stop};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Spaces requests at least `interval` apart across all clones of a client.
#[derive(Debug)]
struct Limiter {
    interval: Duration,
    /// The earliest instant the next request may start. A `std` mutex: it
    /// is held only to reserve a slot, never across the wait.
    next: Mutex<Option<Instant>>,
}

impl Limiter {
    fn new(per_second: u32) -> Self {
        // 5% slack: the platform counts arrivals in its own one-second
        // windows, and network jitter can bunch evenly spaced requests.
        let interval = Duration::from_secs(1) * 21 / 20 / per_second.max(1);
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    async fn acquire(&self) {
        let wait_until = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.filter(|n| *n > now).unwrap_or(now);
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

/// A request the client may retry: the body is kept as bytes so it can be
/// sent again.
struct Request<'a> {
    op: &'static str,
    method: Method,
    url: Url,
    body: Option<&'a serde_json::Value>,
    /// Safe to send twice. Non-idempotent requests (placing a call) are
    /// retried only when the platform certainly did not act: 429, or a
    /// connection that was never made.
    idempotent: bool,
}

/// What ended an attempt that [`retry::run`] may repeat.
enum Failure {
    /// An answer worth retrying (429, or 5xx to an idempotent request).
    Answer(Response),
    /// No answer.
    Transport(reqwest::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Answer(response) => write!(f, "answered {}", response.status()),
            Failure::Transport(source) => write!(f, "{source}"),
        }
    }
}

/// Client of one tenant's CCAI Platform instance. Cheap to clone: clones
/// share the connection pool and the rate limiter.
#[derive(Debug, Clone)]
pub struct CcaiClient {
    http: reqwest::Client,
    config: Arc<CcaiConfig>,
    limiter: Arc<Limiter>,
}

/// The `updated_at[from]` / `started_at[from]` format the API accepts.
fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl CcaiClient {
    pub fn new(config: CcaiConfig) -> Result<Self, CcaiError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| CcaiError::Request {
                op: "build client",
                source,
            })?;
        let limiter = Arc::new(Limiter::new(config.requests_per_second));
        Ok(Self {
            http,
            config: Arc::new(config),
            limiter,
        })
    }

    pub fn config(&self) -> &CcaiConfig {
        &self.config
    }

    fn url(&self, path: &str) -> Result<Url, CcaiError> {
        self.config
            .base_url
            .join(path)
            .map_err(|e| CcaiError::BaseUrl {
                base: self.config.base_url.to_string(),
                reason: e.to_string(),
            })
    }

    fn retry_after(response: &Response) -> Option<Duration> {
        let secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        secs.trim().parse().ok().map(Duration::from_secs)
    }

    /// Sends with rate limiting and retries; returns the first response that
    /// is not retried (any status), or the error of the last attempt.
    async fn send(&self, request: Request<'_>) -> Result<Response, CcaiError> {
        let (user, password) = self.config.credentials.basic();
        let request = &request;
        let outcome = retry::run(
            &self.config.retry,
            &SystemClock,
            "ccai",
            request.op,
            |_| async move {
                self.limiter.acquire().await;
                let mut builder = self
                    .http
                    .request(request.method.clone(), request.url.clone())
                    .basic_auth(user, Some(password))
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(body) = request.body {
                    builder = builder.json(body);
                }
                let result = builder.send().await;
                crate::connectors::record_request(
                    "ccai",
                    request.op,
                    result.as_ref().ok().map(|r| r.status().as_u16()),
                );
                match result {
                    Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                        Step::Retry {
                            after: Self::retry_after(&response),
                            error: Failure::Answer(response),
                        }
                    }
                    // The platform answered; only a request that is safe to
                    // send twice is sent again.
                    Ok(response) if response.status().is_server_error() && request.idempotent => {
                        Step::Retry {
                            error: Failure::Answer(response),
                            after: None,
                        }
                    }
                    Ok(response) => Step::Done(response),
                    // A connection never made certainly did nothing.
                    Err(source) if request.idempotent || source.is_connect() => Step::Retry {
                        error: Failure::Transport(source),
                        after: None,
                    },
                    Err(source) => Step::Fail(Failure::Transport(source)),
                }
            },
        )
        .await;
        match outcome {
            Ok(response) => Ok(response),
            Err(Stop::GaveUp {
                attempts,
                last: Failure::Answer(response),
            }) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                Err(CcaiError::RateLimited {
                    op: request.op,
                    attempts,
                })
            }
            // A 5xx after the last attempt goes to the caller like any answer.
            Err(Stop::Failed(Failure::Answer(response)))
            | Err(Stop::GaveUp {
                last: Failure::Answer(response),
                ..
            }) => Ok(response),
            Err(Stop::Failed(Failure::Transport(source)))
            | Err(Stop::GaveUp {
                last: Failure::Transport(source),
                ..
            }) => Err(CcaiError::Request {
                op: request.op,
                source,
            }),
        }
    }

    /// Maps a non-success answer to an error; passes success through.
    async fn check(op: &'static str, response: Response) -> Result<Response, CcaiError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(CcaiError::Unauthorized { op, status });
        }
        let body = response.text().await.unwrap_or_default();
        Err(CcaiError::status(op, status, body))
    }

    async fn decode<T: DeserializeOwned>(
        op: &'static str,
        response: Response,
    ) -> Result<T, CcaiError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|source| CcaiError::Request { op, source })?;
        crate::connectors::json_from_bytes(&bytes)
            .map_err(|source| CcaiError::Decode { op, source })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: Url,
    ) -> Result<T, CcaiError> {
        let response = self
            .send(Request {
                op,
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
            })
            .await?;
        Self::decode(op, Self::check(op, response).await?).await
    }

    async fn get_page<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: Url,
    ) -> Result<Page<T>, CcaiError> {
        let response = self
            .send(Request {
                op,
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
            })
            .await?;
        let response = Self::check(op, response).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let total = header("total").and_then(|v| v.trim().parse().ok());
        let per_page = header("per-page").and_then(|v| v.trim().parse().ok());
        let next = header("link").as_deref().and_then(next_link);
        let items = Self::decode(op, response).await?;
        Ok(Page {
            items,
            total,
            per_page,
            next,
        })
    }

    /// A Manager API list URL with paging, ascending `sort_column`, and an
    /// optional `<time_key>[from]` filter.
    fn list_url(
        &self,
        path: &str,
        time_key: &str,
        from: Option<DateTime<Utc>>,
        page: u32,
        per: u32,
    ) -> Result<Url, CcaiError> {
        let mut url = self.url(path)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page", &page.max(1).to_string());
            q.append_pair("per", &per.clamp(1, 100).to_string());
            q.append_pair("sort_column", time_key);
            q.append_pair("sort_direction", "ASC");
            if let Some(from) = from {
                q.append_pair(&format!("{time_key}[from]"), &iso(from));
            }
        }
        Ok(url)
    }

    /// Follows a `link: rel="next"` URL, which must stay on the configured host.
    pub async fn next_page<T: DeserializeOwned>(
        &self,
        op: &'static str,
        next: &str,
    ) -> Result<Page<T>, CcaiError> {
        let url = Url::parse(next).map_err(|e| CcaiError::BaseUrl {
            base: next.into(),
            reason: e.to_string(),
        })?;
        if url.origin() != self.config.base_url.origin() {
            return Err(CcaiError::BaseUrl {
                base: next.into(),
                reason: "next link points to another host".into(),
            });
        }
        self.get_page(op, url).await
    }

    // ------------------------------------------------------------ statuses

    /// `GET /manager/api/v1/user_statuses`: system (id ≤ 0) and custom statuses.
    pub async fn user_statuses(&self) -> Result<Vec<UserStatus>, CcaiError> {
        self.get_json("user_statuses", self.url("/manager/api/v1/user_statuses")?)
            .await
    }

    /// `POST /apps/api/v1/agent_statuses`: sets status `status` (by name) on
    /// agents and teams; one result per agent, refusals included.
    pub async fn set_agent_statuses(
        &self,
        status: &str,
        agent_ids: &[u64],
        team_ids: &[u64],
    ) -> Result<Vec<AgentStatusResult>, CcaiError> {
        let op = "agent_statuses";
        let body =
            serde_json::json!({ "status": status, "agent_ids": agent_ids, "team_ids": team_ids });
        let url = self.url("/apps/api/v1/agent_statuses")?;
        // Setting a status twice is harmless, so it is retried like a read.
        let response = self
            .send(Request {
                op,
                method: Method::POST,
                url,
                body: Some(&body),
                idempotent: true,
            })
            .await?;
        if response.status() == StatusCode::BAD_REQUEST {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(if message.contains("not found") {
                CcaiError::UnknownStatus {
                    name: status.into(),
                }
            } else {
                CcaiError::status(op, StatusCode::BAD_REQUEST, message)
            });
        }
        Self::decode(op, Self::check(op, response).await?).await
    }

    /// Sets one agent's status. A refusal (the agent is in, or the target is,
    /// a system status such as In-call) is [`CcaiError::StatusRefused`] with
    /// the platform's message; it is not retried.
    pub async fn set_agent_status(
        &self,
        agent_id: u64,
        status: &str,
    ) -> Result<AgentStatusResult, CcaiError> {
        let results = self.set_agent_statuses(status, &[agent_id], &[]).await?;
        let result = results
            .into_iter()
            .find(|r| r.agent_id == agent_id)
            .ok_or_else(|| CcaiError::UnknownAgent {
                who: agent_id.to_string(),
            })?;
        match &result.message {
            Some(message) => Err(CcaiError::StatusRefused {
                agent_id,
                message: message.clone(),
            }),
            None => Ok(result),
        }
    }

    // -------------------------------------------------------------- agents

    pub async fn agents_page(&self, page: u32, per: u32) -> Result<Page<Agent>, CcaiError> {
        self.get_page(
            "agents",
            self.list_url(
                "/manager/api/v1/agents",
                "status_updated_at",
                None,
                page,
                per,
            )?,
        )
        .await
    }

    /// Every agent, following pages.
    pub async fn agents(&self) -> Result<Vec<Agent>, CcaiError> {
        let mut page = self.agents_page(1, 100).await?;
        let mut all = std::mem::take(&mut page.items);
        let mut number = 1;
        while let Some(next) = self.next_after(&page, number, all.len()) {
            number += 1;
            page = match next {
                Some(link) => self.next_page("agents", &link).await?,
                None => self.agents_page(number, 100).await?,
            };
            if page.items.is_empty() {
                break;
            }
            all.append(&mut page.items);
        }
        Ok(all)
    }

    /// Whether another page follows: `Some(Some(link))` from the `link`
    /// header, `Some(None)` when only `total` says so (the header is known
    /// to be missing at times), `None` when done.
    fn next_after<T>(&self, page: &Page<T>, _number: u32, seen: usize) -> Option<Option<String>> {
        if let Some(next) = &page.next {
            return Some(Some(next.clone()));
        }
        match page.total {
            Some(total) if (seen as u64) < total && !page.items.is_empty() => Some(None),
            _ => None,
        }
    }

    pub async fn agent(&self, id: u64) -> Result<Agent, CcaiError> {
        let url = self.url(&format!("/manager/api/v1/agents/{id}"))?;
        match self.get_json("agent", url).await {
            Err(CcaiError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                Err(CcaiError::UnknownAgent {
                    who: id.to_string(),
                })
            }
            other => other,
        }
    }

    /// The agent whose email matches (case-insensitive), AS4.
    pub async fn agent_by_email(&self, email: &str) -> Result<Agent, CcaiError> {
        self.agents()
            .await?
            .into_iter()
            .find(|a| {
                a.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .ok_or_else(|| CcaiError::UnknownAgent { who: email.into() })
    }

    pub async fn agent_id_by_email(&self, email: &str) -> Result<u64, CcaiError> {
        Ok(self.agent_by_email(email).await?.id)
    }

    /// The agent's current status, read from the Manager API.
    pub async fn agent_status(&self, id: u64) -> Result<Option<UserStatus>, CcaiError> {
        Ok(self.agent(id).await?.status)
    }

    /// `GET /manager/api/v1/agent_activity_logs` from `started_at[from]`.
    pub async fn activity_logs(
        &self,
        from: Option<DateTime<Utc>>,
        page: u32,
        per: u32,
    ) -> Result<Page<ActivityLog>, CcaiError> {
        let url = self.list_url(
            "/manager/api/v1/agent_activity_logs",
            "started_at",
            from,
            page,
            per,
        )?;
        self.get_page("agent_activity_logs", url).await
    }

    // --------------------------------------------------------- calls, chats

    /// `POST /apps/api/v1/calls` for an outbound call (C2C2). A documented
    /// 400 becomes [`CcaiError::CallRejected`] with the platform's message.
    pub async fn place_outbound_call(&self, call: &OutboundCall) -> Result<CallPlaced, CcaiError> {
        let op = "place_call";
        let body = serde_json::to_value(call).map_err(|source| CcaiError::Decode { op, source })?;
        let url = self.url("/apps/api/v1/calls")?;
        let response = self
            .send(Request {
                op,
                method: Method::POST,
                url,
                body: Some(&body),
                idempotent: false,
            })
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::OK => Ok(CallPlaced::Created(Box::new(
                Self::decode(op, response).await?,
            ))),
            StatusCode::ACCEPTED => Ok(CallPlaced::NeedsAgentAction(Box::new(
                Self::decode(op, response).await?,
            ))),
            StatusCode::BAD_REQUEST => {
                let text = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                Err(CcaiError::CallRejected {
                    kind: CallRejection::from_message(&message),
                    message,
                })
            }
            _ => Err(Self::check(op, response).await.err().unwrap_or_else(|| {
                CcaiError::status(
                    op,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unexpected success status",
                )
            })),
        }
    }

    /// One page of `GET /manager/api/v1/calls` updated since `from`, oldest first.
    pub async fn calls_updated_since(
        &self,
        from: Option<DateTime<Utc>>,
        page: u32,
        per: u32,
    ) -> Result<Page<Call>, CcaiError> {
        self.get_page(
            "calls",
            self.list_url("/manager/api/v1/calls", "updated_at", from, page, per)?,
        )
        .await
    }

    /// One page of `GET /manager/api/v1/chats` updated since `from`, oldest first.
    pub async fn chats_updated_since(
        &self,
        from: Option<DateTime<Utc>>,
        page: u32,
        per: u32,
    ) -> Result<Page<Chat>, CcaiError> {
        self.get_page(
            "chats",
            self.list_url("/manager/api/v1/chats", "updated_at", from, page, per)?,
        )
        .await
    }

    pub async fn call(&self, id: u64) -> Result<Call, CcaiError> {
        self.get_json("call", self.url(&format!("/manager/api/v1/calls/{id}"))?)
            .await
    }

    pub async fn chat(&self, id: u64) -> Result<Chat, CcaiError> {
        self.get_json("chat", self.url(&format!("/manager/api/v1/chats/{id}"))?)
            .await
    }
}
