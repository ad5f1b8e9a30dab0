//! Kustomer REST API client (facts: the public Kustomer API documentation; sample payloads in `tests/fixtures/samples/kustomer`).
//!
//! Layout: [`config`] (base URL, secret API key, retry and pacing knobs),
//! [`client`] (one `Clone` client over one pooled `reqwest::Client`),
//! [`model`] (serde types; unknown fields ignored), [`error`], pacing in
//! `ratelimit`, outbound-webhook checks in [`webhook`].
//!
//! # Limits of the API this client honours
//! - **Org budget**: all API keys of an org share one budget per 60-second
//!   window (Enterprise 1,000/min; Ultimate 2,000; legacy plans 300–500).
//!   Responses carry `x-ratelimit-limit`, `-remaining` and `-reset` (epoch
//!   seconds, as strings). The client counts down locally, and when nothing
//!   is left, or on a 429, it sleeps until the reset (measured against the
//!   server's `Date`) instead of retrying blindly.
//! - **Per customer**: at most 120 conversation/message creates per minute
//!   per customer, or 429. The client keeps a sliding one-minute window per
//!   customer ([`KustomerConfig::customer_creates_per_minute`]).
//! - **Search** by API keys is limited to 100/min: this client uses direct
//!   lookups (`/v1/customers/phone=…`, `email=…`, `externalId=…`) instead.
//! - **Bodies** over 100 kb are refused (413); the client refuses them first.
//! - **Pages**: `page` (1-based) and `pageSize` (≤ 100; users ≤ 500); the
//!   client follows the relative `links.next` until it is `null`.
//! - **Retries**: 5xx and connection failures are retried with jittered,
//!   bounded exponential backoff ([`RetryPolicy`]); other 4xx are not.
//! - **Idempotency**: Kustomer has no idempotency header. Creates carry a
//!   caller-chosen 24-hex `id` ([`derive_id`]) or `externalId`; a retry
//!   whose first attempt did succeed gets 409 and resolves to the existing
//!   object by a lookup, so a lost response never makes a duplicate.
//!   Customers are unique by email/phone/externalId, so a duplicate customer
//!   create resolves the same way.
//! - **Auth**: `Authorization: Bearer <API key>`; keys do not expire unless
//!   configured to and need no refresh. The key is never logged.

pub mod client;
pub mod config;
pub mod error;
pub mod model;
mod ratelimit;
pub mod webhook;

pub use crate::connectors::clock::{Clock, SystemClock};
pub use crate::connectors::retry::RetryPolicy;
pub use client::{derive_id, AgentStatus, KustomerClient, MetadataMerge};
pub use config::{ApiKey, KustomerConfig};
pub use error::KustomerError;
pub use ratelimit::RateHeaders;
pub use webhook::{parse_webhook_event, verify_webhook_signature, WebhookError};
