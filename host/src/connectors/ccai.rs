//! CCAI Platform (ex-UJET) Apps and Manager API client.
//!
//! # Limits of the API (the public CCAI Platform documentation)
//! - **Rate**: 10 requests/second per customer; throttled requests get 429.
//!   The client spaces its own requests to [`CcaiConfig::requests_per_second`]
//!   (default 10) across all clones and retries 429 after `Retry-After`.
//! - **Retries**: the connectors' one [`RetryPolicy`](crate::connectors::retry::RetryPolicy)
//!   ([`CcaiConfig::retry`]: jittered exponential backoff) on 5xx, 429 and
//!   connection errors. Placing a call is not idempotent, so
//!   it is retried only on 429 or when the connection was never made.
//!   A refused status change (system status such as In-call) is an answer,
//!   not a failure: [`CcaiError::StatusRefused`], never retried.
//! - **Paging** (Manager API): `page`, `per` (default and max 100, clamped),
//!   `total`/`per-page` headers and `link: <…>; rel="next"`, which is known
//!   to be missing at times, so `total` is used as a fallback.
//! - **Sync key**: `updated_at[from]` with `sort_column=updated_at&
//!   sort_direction=ASC`; the filter is inclusive, so pollers skip the ids
//!   they already saw at the cursor's timestamp.
//! - **Auth**: HTTP Basic, `subdomain:api-token` or `company_key:secret`;
//!   no refresh.
//! - **Idempotency**: none documented for writes; `POST /end_users` upserts
//!   by identifier.
//! - **Unknown keys**: the platform may add JSON keys; every model ignores them.

mod client;
mod config;
mod error;
mod model;

pub use client::CcaiClient;
pub use config::{ApiCredentials, CcaiConfig, InboundBasic, WebhookSecrets};
pub use error::{CallRejection, CcaiError};
pub use model::*;
