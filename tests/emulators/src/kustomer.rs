//! Kustomer API emulator: a real HTTP server on loopback that follows the
//! public Kustomer REST API reference and answers in the shapes of the
//! recorded samples (`tests/fixtures/samples/kustomer`). `README.md` beside
//! this crate lists every endpoint with what is faithful and what is not.
//!
//! What it does:
//! - Bearer auth (401 with `errors[]`), 24-hex ids, the `{"data":…}` envelope
//!   with relative links and relationships (messages point at their customer
//!   with type `customers`), 201 on create (note create sparse), 200 on read
//!   and update, 404/400/409/413/429 error bodies in both Kustomer shapes.
//! - Customers (unique emails/phones/whatsapps/externalIds → 409, lookups by
//!   `email=`/`phone=`/`externalId=`), conversations (caller `id`, status
//!   rules, derived fields from messages and notes), messages (`/v1/messages`
//!   without a conversation creates one), notes, the three-step attachment
//!   upload (the presigned-POST target is the emulator's own
//!   `/__upload/attachments`), custom-attribute suffix checks, metadata
//!   GET/PUT with merge semantics, users (and `users/current`, the key's
//!   machine user), teams, tags, shortcuts, routing statuses, work sessions.
//! - `POST /v1/customers/search` (and `archive/search`): `queryContext`,
//!   nested `and`/`or`/`not` criteria across customer, conversation, message
//!   and note fields, `sort`, `timeZone`, pages of up to 500, the 100-page
//!   limit and the 100 searches per minute of API keys.
//! - JSON `{"errors":[…]}` bodies for every error, unknown routes (404) and
//!   methods (405) included.
//! - Storage indexed by id, contact point, parent and external id, so no
//!   request scans a whole kind; the request and webhook logs are bounded.
//! - The org budget per 60-second window (default 1,000) and 120 creates per
//!   customer per minute, with `x-ratelimit-limit/-remaining/-reset` (epoch
//!   seconds, strings) on every `/v1` response and a `date` header from the
//!   emulator clock.
//! - Signed outbound webhooks for customer, conversation and message writes.
//!
//! Test control ([`KustomerControl`], also under `/__control/…` as JSON):
//! state inspection, reset, fault injection (429 bursts, 5xx, latency, dropped
//! connections, apply-then-drop), the clock and the rate budget.
//!
//! | Route | Does |
//! |---|---|
//! | `GET /__control/state` | every object by kind |
//! | `POST /__control/reset` | clear data, faults, logs, windows |
//! | `GET`/`DELETE /__control/requests` | request log (newest `log_capacity` entries) |
//! | `GET /__control/stats` | `{"requestsServed"}` since start or reset |
//! | `GET`/`POST`/`DELETE /__control/faults` | `{"kind":"rate_limited"\|"server_error"\|"latency"\|"drop_connection"\|"apply_then_drop", "count", "method"?, "pathPrefix"?, …}` |
//! | `GET`/`POST /__control/clock` | `{"set"}` \| `{"advanceMs"}` \| `{"advanceTo"}` \| `{"system":true,"offsetMs"}` |
//! | `GET`/`POST /__control/rate-limit` | `{"perMinute","customerCreatesPerMinute"}` |
//! | `POST`/`DELETE /__control/webhook` | `{"url","token"}` |
//! | `GET /__control/webhooks` | events raised and their delivery |
//! | `POST /__control/users` | `{"email","name"}` → agent with a work session |

mod api;
mod control;
mod multipart;
mod objects;
mod org;
mod render;
mod search;
mod server;
mod state;
mod webhooks;

pub use control::KustomerControl;
pub use server::{start, KustomerEmulator, KustomerEmulatorConfig, DEFAULT_API_KEY};
pub use state::{ClockMode, Fault, FaultKind, RecordedRequest, WebhookDelivery, WebhookTarget};
pub use webhooks::sign as sign_webhook;

/// Command-line options of `switchboard-emulators kustomer`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// The Bearer token the emulator accepts.
    #[arg(long, env = "KUSTOMER_EMULATOR_API_KEY", default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Org budget: requests per 60-second window.
    #[arg(long, default_value_t = 1000)]
    pub rate_limit: u32,
    /// Conversation/message creates per customer per minute.
    #[arg(long, default_value_t = 120)]
    pub customer_create_limit: u32,
    /// Send signed outbound webhooks to this URL.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// HMAC token of the outbound webhooks.
    #[arg(long, default_value = "emulator-webhook-token")]
    pub webhook_token: String,
    /// Order lists by creation instead of by id under `sort=` (Kustomer
    /// documents id order, the default).
    #[arg(long)]
    pub sort_by_creation: bool,
    /// Searches per minute before 429.
    #[arg(long, default_value_t = 100)]
    pub search_per_minute: u32,
    /// Entries the request log and the webhook log keep each.
    #[arg(long, default_value_t = 20_000)]
    pub log_capacity: usize,
}

/// Runs the emulator until interrupted.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    let emulator = start(KustomerEmulatorConfig {
        port: args.port,
        api_key: args.api_key.clone(),
        rate_limit_per_minute: args.rate_limit,
        customer_creates_per_minute: args.customer_create_limit,
        webhook: args.webhook_url.map(|url| WebhookTarget {
            url,
            token: args.webhook_token.clone(),
        }),
        sort_lists_by_id: !args.sort_by_creation,
        search_per_minute: args.search_per_minute,
        log_capacity: args.log_capacity,
        ..KustomerEmulatorConfig::default()
    })
    .await?;
    println!("kustomer emulator listening on {}", emulator.base_url());
    println!("api key: {}", args.api_key);
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(())
}
