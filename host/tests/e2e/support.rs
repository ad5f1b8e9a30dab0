//! Shared helpers: named timeouts, polling, stack start-up and views of the
//! Kustomer emulator's state.
#![allow(dead_code, reason = "each test module uses a different subset")]

use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};
use switchboard::demo::{Stack, StackOptions};
use switchboard::store::InboxStatus;
use switchboard_emulators::ccai as ccai_emu;

/// Timeouts are multiplied by `SWITCHBOARD_E2E_TIMEOUT_SCALE` (default 1).
fn scaled(secs: u64) -> Duration {
    let scale = std::env::var("SWITCHBOARD_E2E_TIMEOUT_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs as f64 * scale)
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `secs`.
pub async fn await_or_timeout<T>(what: &str, secs: u64, fut: impl Future<Output = T>) -> T {
    let limit = scaled(secs);
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what`
/// (and the last value `describe` gives) after `secs`.
pub async fn eventually<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let limit = scaled(secs);
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for a check that awaits (an HTTP call).
pub async fn eventually_async<T, Fut>(what: &str, secs: u64, mut check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let limit = scaled(secs);
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts emulators and sidecar with the default rule module.
pub async fn start_default() -> Stack {
    start(StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT)).await
}

pub async fn start(options: StackOptions) -> Stack {
    await_or_timeout("starting the stack", 120, Stack::start(options))
        .await
        .expect("stack starts")
}

/// The scenario called `name`.
pub fn scenario(name: &str) -> ccai_emu::Scenario {
    ccai_emu::scenario_named(name).unwrap_or_else(|| panic!("no scenario named {name}"))
}

/// Plays the named scenario and waits until the sidecar has applied it.
pub async fn play(stack: &Stack, name: &str) {
    let scenario = scenario(name);
    await_or_timeout(&format!("playing {name}"), 60, stack.play(&scenario))
        .await
        .unwrap_or_else(|e| panic!("playing {name}: {e:#}"));
    settle(stack, name).await;
}

/// Waits until nothing is pending and asserts nothing failed.
pub async fn settle(stack: &Stack, what: &str) {
    await_or_timeout(
        &format!("waiting for the sidecar to apply {what}"),
        120,
        stack.wait_idle(scaled(110)),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    assert_no_failures(stack);
}

/// Every inbox row of the tenant is done (none failed, none pending).
pub fn assert_no_failures(stack: &Stack) {
    let rows = stack
        .app
        .store()
        .events(&stack.options.tenant)
        .expect("inbox rows");
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.status != InboxStatus::Done)
        .map(|r| {
            format!(
                "{} {:?}: {}",
                r.event_id,
                r.status,
                r.reason.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(bad.is_empty(), "events not applied: {bad:#?}");
}

/// `attributes` of a JSON:API object.
pub fn attrs(v: &Value) -> &Value {
    &v["attributes"]
}

/// `attributes.<key>` as a string ("" when absent).
pub fn attr_str(v: &Value, key: &str) -> String {
    attrs(v)[key].as_str().unwrap_or_default().to_string()
}

/// The id of a related object (`relationships.<rel>.data.id`).
pub fn rel(v: &Value, rel: &str) -> String {
    v["relationships"][rel]["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// The notes TU11 adds when a voicemail is read, closed and called back.
pub const VOICEMAIL_ACTIONS: [&str; 3] = [
    "Voicemail read.",
    "Voicemail closed.",
    "Voicemail called back.",
];

/// A snapshot of the Kustomer emulator, with lookups by relation.
pub struct View {
    pub customers: Vec<Value>,
    pub conversations: Vec<Value>,
    pub messages: Vec<Value>,
    pub notes: Vec<Value>,
    pub attachments: Vec<Value>,
    /// User id → email.
    pub users: std::collections::HashMap<String, String>,
}

impl View {
    pub fn of(stack: &Stack) -> View {
        let k = stack.kustomer.control();
        View {
            customers: k.customers(),
            conversations: k.conversations(),
            messages: k.messages(),
            notes: k.notes(),
            attachments: k.attachments(),
            users: k
                .users()
                .iter()
                .map(|u| (id(u), attr_str(u, "email")))
                .collect(),
        }
    }

    /// The only customer with this (E.164) phone.
    pub fn customer_with_phone(&self, phone: &str) -> &Value {
        let found: Vec<&Value> = self
            .customers
            .iter()
            .filter(|c| {
                attrs(c)["phones"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["phone"] == phone))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one customer with phone {phone}: {found:#?}"
        );
        found[0]
    }

    /// The customer's conversations, oldest first.
    pub fn conversations_of(&self, customer: &Value) -> Vec<&Value> {
        let cid = id(customer);
        self.conversations
            .iter()
            .filter(|c| rel(c, "customer") == cid)
            .collect()
    }

    /// The conversation's messages, in creation order.
    pub fn messages_of(&self, conversation: &Value) -> Vec<&Value> {
        let cid = id(conversation);
        self.messages
            .iter()
            .filter(|m| rel(m, "conversation") == cid)
            .collect()
    }

    /// The message directions (`in`, `out`) of the first conversation of the
    /// customer with this phone, in creation order.
    pub fn directions_of_phone(&self, phone: &str) -> Vec<String> {
        let c = self.conversations_of(self.customer_with_phone(phone))[0];
        self.messages_of(c)
            .iter()
            .map(|m| attr_str(m, "direction"))
            .collect()
    }

    /// The voicemail-action notes (TU11) of the customer with this phone,
    /// in creation order.
    pub fn voicemail_actions_of_phone(&self, phone: &str) -> Vec<String> {
        self.conversations_of(self.customer_with_phone(phone))
            .iter()
            .flat_map(|c| self.notes_of(c))
            .filter(|n| VOICEMAIL_ACTIONS.contains(&n.as_str()))
            .collect()
    }

    /// The conversation's note bodies, in creation order.
    pub fn notes_of(&self, conversation: &Value) -> Vec<String> {
        let cid = id(conversation);
        self.notes
            .iter()
            .filter(|n| rel(n, "conversation") == cid)
            .map(|n| attr_str(n, "body"))
            .collect()
    }

    /// Emails of the conversation's assigned users.
    pub fn assignees(&self, conversation: &Value) -> Vec<String> {
        attrs(conversation)["assignedUsers"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|u| {
                        let uid = u.as_str().unwrap_or_default();
                        self.users
                            .get(uid)
                            .cloned()
                            .unwrap_or_else(|| uid.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The attachment named `name`.
    pub fn attachment(&self, name: &str) -> &Value {
        self.attachments
            .iter()
            .find(|a| attr_str(a, "name") == name)
            .unwrap_or_else(|| panic!("no attachment {name}: {:#?}", self.attachments))
    }
}

/// `custom.<key>` of a customer or conversation.
pub fn custom<'a>(object: &'a Value, key: &str) -> &'a Value {
    &attrs(object)["custom"][key]
}

/// Tags of a conversation.
pub fn tags(conversation: &Value) -> Vec<String> {
    attrs(conversation)["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Splits a two-session scenario after the first session's final record.
pub fn split_after_first_final(
    scenario: &ccai_emu::Scenario,
) -> (ccai_emu::Scenario, ccai_emu::Scenario) {
    use ccai_emu::Step;
    let at = scenario
        .steps
        .iter()
        .position(|s| matches!(s, Step::FinalCall(_) | Step::FinalChat(_)))
        .expect("a final record")
        + 1;
    let mut first = scenario.clone();
    let mut second = scenario.clone();
    first.steps.truncate(at);
    second.steps.drain(..at);
    (first, second)
}

/// Plays an ad-hoc scenario and waits until it is applied.
pub async fn play_scenario(stack: &Stack, scenario: &ccai_emu::Scenario, what: &str) {
    await_or_timeout(&format!("playing {what}"), 60, stack.play(scenario))
        .await
        .unwrap_or_else(|e| panic!("playing {what}: {e:#}"));
    settle(stack, what).await;
}

/// The tenant's Kustomer client (to set up prior state as an agent would).
pub fn kustomer_client(stack: &Stack) -> &switchboard::connectors::kustomer::KustomerClient {
    &stack
        .app
        .tenant(&stack.options.tenant)
        .expect("tenant")
        .kustomer
}

/// Credentials a config written by [`write_config`] expects.
pub const EVENTS_USER: &str = "ccai-events";
pub const EVENTS_PASSWORD: &str = "e2e-events-password";
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// Where a config's secrets come from.
pub enum Secrets {
    /// `{ env = "…" }`: the caller sets [`secret_env`] on the child process.
    Env,
    /// `{ file = "…" }` files next to the config.
    Files,
}

/// The environment a config written with [`Secrets::Env`] needs.
pub fn secret_env(kustomer_key: &str, ccai_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("E2E_KUSTOMER_API_KEY", kustomer_key.to_string()),
        ("E2E_CCAI_API_TOKEN", ccai_token.to_string()),
        ("E2E_EVENTS_PASSWORD", EVENTS_PASSWORD.to_string()),
        ("E2E_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("E2E_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
    ]
}

/// Writes `switchboard.toml` for tenant `acme` against both emulators into
/// `dir` and returns its path. `module: None` leaves the tenant without one.
pub fn write_config(
    dir: &std::path::Path,
    kustomer: &switchboard_emulators::kustomer::KustomerEmulator,
    ccai: &ccai_emu::CcaiEmulator,
    module: Option<&str>,
    secrets: Secrets,
) -> std::path::PathBuf {
    let creds = ccai.credentials();
    let values = secret_env(&kustomer.control().api_key(), &creds.api_token);
    let secret = |var: &str| -> String {
        match secrets {
            Secrets::Env => format!("{{ env = \"{var}\" }}"),
            Secrets::Files => {
                let value = values
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| v.clone())
                    .expect("known secret");
                let file = dir.join(format!("{var}.secret"));
                std::fs::write(&file, value).expect("secret file");
                format!("{{ file = \"{}\" }}", file.display())
            }
        }
    };
    let module_line = module
        .map(|m| format!("module = \"{m}\""))
        .unwrap_or_default();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"
admin_token = {admin}
workers = 16

[[tenant]]
id = "acme"
{module_line}
failure_policy = "hold"
recording = true

[tenant.kustomer]
base_url = "{kustomer_url}"
api_key = {kustomer_key}

[tenant.ccai]
base_url = "{ccai_url}"
subdomain = "{subdomain}"
api_token = {ccai_token}
events_username = "{EVENTS_USER}"
events_password = {events_password}
webhook_primary_secret = {webhook}
"#,
        admin = secret("E2E_ADMIN_TOKEN"),
        kustomer_url = kustomer.base_url(),
        kustomer_key = secret("E2E_KUSTOMER_API_KEY"),
        ccai_url = ccai.base_url(),
        subdomain = creds.subdomain,
        ccai_token = secret("E2E_CCAI_API_TOKEN"),
        events_password = secret("E2E_EVENTS_PASSWORD"),
        webhook = secret("E2E_WEBHOOK_SECRET"),
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).expect("config file");
    path
}

/// A `{count, events[]}` batch of `session_created` updates, one per new
/// caller `first..first + n` (phone `+1 212-55x-xxxx`), in the intake's
/// documented item shape. Each caller has already chosen a menu, so the
/// default rules record the call at once (TC1).
pub fn created_batch(first: u64, n: u64) -> Value {
    ccai_emu::load::batch(
        (first..first + n)
            .map(|i| ccai_emu::load::created_event(i, i))
            .collect(),
    )
}

/// POSTs to the sidecar's admin API (`path` after the base URL) with the
/// demo stack's admin token; returns the JSON answer.
pub async fn admin_post(stack: &Stack, path: &str) -> Value {
    await_or_timeout(&format!("POST {path}"), 30, async {
        reqwest::Client::new()
            .post(format!("{}{path}", stack.url()))
            .bearer_auth(switchboard::demo::ADMIN_TOKEN)
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("json")
    })
    .await
}

/// POSTs a session-events batch with the given Basic credentials; returns
/// the status and JSON body.
pub async fn post_batch(url: &str, user: &str, password: &str, batch: &Value) -> (u16, Value) {
    post_batch_to(url, "acme", user, password, batch).await
}

/// [`post_batch`] for another tenant.
pub async fn post_batch_to(
    url: &str,
    tenant: &str,
    user: &str,
    password: &str,
    batch: &Value,
) -> (u16, Value) {
    let response = await_or_timeout(
        "posting a session-events batch",
        60,
        reqwest::Client::new()
            .post(format!("{url}/v1/tenants/{tenant}/ccai/session-events"))
            .basic_auth(user, Some(password))
            .json(batch)
            .send(),
    )
    .await
    .expect("sidecar answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Cheap progress counts read straight from a store file through a second,
/// read-only connection (WAL lets it read beside the service), so polling
/// does not load thousands of rows through the service's own connection.
pub struct Counts {
    conn: rusqlite::Connection,
}

impl Counts {
    pub fn open(data_dir: &std::path::Path) -> Counts {
        let conn = rusqlite::Connection::open_with_flags(
            data_dir.join("switchboard.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("store opens read-only");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        Counts { conn }
    }

    /// Inbox rows of the tenant with this status (`pending`, `done`, `failed`).
    pub fn inbox(&self, status: &str) -> u64 {
        self.conn
            .query_row(
                "SELECT count(*) FROM inbox WHERE tenant = 'acme' AND status = ?1",
                [status],
                |r| r.get(0),
            )
            .unwrap_or(0)
    }

    /// Recorded decisions of the tenant.
    pub fn decided(&self) -> u64 {
        self.conn
            .query_row(
                "SELECT count(*) FROM outcomes WHERE tenant = 'acme'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0)
    }
}

/// The two emulators, unthrottled, with the CCAI agents known to Kustomer: the
/// setup of the runs that spawn the real binary.
pub async fn emulators() -> (
    switchboard_emulators::kustomer::KustomerEmulator,
    ccai_emu::CcaiEmulator,
) {
    let kustomer = switchboard_emulators::kustomer::start(
        switchboard_emulators::kustomer::KustomerEmulatorConfig {
            rate_limit_per_minute: 1_000_000,
            ..Default::default()
        },
    )
    .await
    .expect("kustomer emulator");
    let ccai = ccai_emu::start(ccai_emu::CcaiConfig {
        rate_limit: None,
        ..Default::default()
    })
    .await
    .expect("ccai emulator");
    for agent in ccai.agents() {
        kustomer.control().add_user(&agent.email, &agent.name());
    }
    (kustomer, ccai)
}
