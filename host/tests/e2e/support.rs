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
        .pipeline()
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
        .pipeline()
        .tenant(&stack.options.tenant)
        .expect("tenant")
        .kustomer
}
