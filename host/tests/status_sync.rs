//! Agent status sync (SPEC §6, AS1–AS9) through the running sidecar, the
//! default rule module and both emulators. One test per rule id.
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use switchboard::demo::{Stack, StackOptions, AGENT_API_TOKEN, DEMO_STATUS_MAP};
use switchboard::status_sync::{Priority, StatusSyncConfig};
use switchboard_rule_artifacts::RULES_DEFAULT;

const ADA: (u64, &str) = (21, "ada@example.com");
const GRACE: (u64, &str) = (22, "grace@example.com");
const RAY: (u64, &str) = (13, "rayd@nelson.com");
const OFFLINE: (u64, &str) = (16, "offline@example.com");
const DARTH: (u64, &str) = (11, "notanakinskywalker@empire.com");

/// CCAI status ids of the emulated tenant.
const AVAILABLE: i64 = 0;
const BREAK: i64 = -2;
const WRAP_UP: i64 = -6;
const IN_CALL: i64 = -7;
const IN_CHAT: i64 = -8;

async fn within<T>(what: &str, secs: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// Polls `check` until it gives `Some`, failing with `what` after `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if started.elapsed() > Duration::from_secs(secs) {
            panic!("timed out after {secs} s: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(sync: StatusSyncConfig) -> Stack {
    start_in(sync, None).await
}

/// Starts the stack with its store in `data_dir` (default: a temporary one).
async fn start_in(sync: StatusSyncConfig, data_dir: Option<std::path::PathBuf>) -> Stack {
    let mut options = StackOptions::new(RULES_DEFAULT);
    options.status_sync = Some(sync);
    options.data_dir = data_dir;
    options.poll_interval = None;
    options.provision_fields = false;
    let stack = within("starting the stack", 120, Stack::start(options))
        .await
        .expect("stack starts");
    // AS8: the first CCAI read only records; changes count from then on.
    eventually("the first CCAI status poll", 30, || async {
        agents(&stack).await["ccai_polled_at"].as_str().map(drop)
    })
    .await;
    stack
}

fn one_way() -> StatusSyncConfig {
    StatusSyncConfig::one_way(DEMO_STATUS_MAP, AGENT_API_TOKEN)
}

async fn report(stack: &Stack, body: Value) -> Value {
    let (status, answer) = report_answer(stack, &body).await;
    assert_eq!(status, 200, "report {body}: {answer}");
    answer
}

/// A report's status code and answer, whatever they are.
async fn report_answer(stack: &Stack, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/tenants/acme/kustomer/status", stack.url()))
        .bearer_auth(AGENT_API_TOKEN)
        .json(body)
        .send()
        .await
        .expect("status report");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// One stored status change as `GET …/status-sync/changes/{id}` shows it.
async fn change(stack: &Stack, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/v1/tenants/acme/status-sync/changes/{id}",
            stack.url()
        ))
        .bearer_auth(AGENT_API_TOKEN)
        .send()
        .await
        .expect("change")
        .json()
        .await
        .expect("json")
}

/// Waits until a stored change is applied; returns its decision.
async fn change_done(stack: &Stack, id: &str) -> Value {
    eventually(&format!("status change {id} applied"), 30, || async {
        let shown = change(stack, id).await;
        (shown["state"] == "done").then(|| shown["decision"].clone())
    })
    .await
}

async fn agents(stack: &Stack) -> Value {
    reqwest::Client::new()
        .get(format!(
            "{}/v1/tenants/acme/status-sync/agents",
            stack.url()
        ))
        .bearer_auth(AGENT_API_TOKEN)
        .send()
        .await
        .expect("agents")
        .json()
        .await
        .expect("json")
}

async fn agent(stack: &Stack, email: &str) -> Value {
    agents(stack).await["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent_email"] == email).cloned())
        .unwrap_or(Value::Null)
}

/// The agent's CCAI status name (the tenant has two statuses named Meal,
/// so names are compared, not ids).
fn ccai_status(stack: &Stack, id: u64) -> String {
    let status = stack.ccai.agent(id).expect("agent").status_id;
    switchboard_emulators::ccai::default_statuses()
        .into_iter()
        .find(|s| s.id == status)
        .map(|s| s.name)
        .unwrap_or_default()
}

/// The agent's current Kustomer routing status name.
fn kustomer_status(stack: &Stack, email: &str) -> Option<String> {
    let k = stack.kustomer.control();
    let user = k
        .users()
        .into_iter()
        .find(|u| u["attributes"]["email"].as_str() == Some(email))?;
    let session = k.work_sessions().into_iter().find(|w| {
        w["relationships"]["user"]["data"]["id"] == user["id"]
            && w["attributes"]["active"] != json!(false)
    })?;
    let status = session["relationships"]["status"]["data"]["id"].clone();
    k.routing_statuses()
        .into_iter()
        .find(|s| s["id"] == status)
        .and_then(|s| s["attributes"]["name"].as_str().map(str::to_string))
}

/// The agent changes their own Kustomer status (work session API).
async fn set_kustomer_status(stack: &Stack, email: &str, name: &str) {
    let tenant = stack.app.tenant("acme").expect("tenant");
    let user = tenant.user_id(email).await.expect("lookup").expect("user");
    let current = tenant
        .kustomer
        .current_status(&user)
        .await
        .expect("status")
        .expect("work session");
    let statuses = tenant.kustomer.routing_statuses().await.expect("statuses");
    let id = statuses
        .iter()
        .find(|s| s.attributes.name.as_deref() == Some(name))
        .map(|s| s.id.clone())
        .expect("status id");
    tenant
        .kustomer
        .set_agent_status(&current.work_session_id, &id)
        .await
        .expect("set status");
}

/// Waits until the sync has decided a change of `source` to `status`.
async fn decided(stack: &Stack, email: &str, source: &str, status: &str) -> Value {
    eventually(
        &format!("a decision on {source} status {status:?} of {email}"),
        20,
        || async {
            agent(stack, email).await["recent"]
                .as_array()
                .and_then(|r| {
                    r.iter()
                        .rev()
                        .find(|d| d["source"] == source && d["status"] == status)
                })
                .cloned()
        },
    )
    .await
}

/// Waits until the CCAI poller has run `n` more times.
async fn polls_pass(stack: &Stack, n: u64) {
    let start = agents(stack).await["ccai_polls"].as_u64().unwrap_or(0);
    eventually("CCAI polls", 20, || async {
        (agents(stack).await["ccai_polls"].as_u64().unwrap_or(0) >= start + n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as1_many_to_one_mapping_applies_the_mapped_status() {
    let stack = start(one_way()).await;
    let (id, email) = ADA;
    for (kustomer, ccai) in [
        ("Lunch", "Meal"),
        ("Busy", "Unavailable"),
        ("Training", "Meal"),
    ] {
        let answer = report(
            &stack,
            json!({ "agent_email": email, "status": kustomer, "instance_id": "tab-1" }),
        )
        .await;
        assert_eq!(
            answer["decision"]["decision"], "apply",
            "{kustomer}: {answer}"
        );
        assert_eq!(
            ccai_status(&stack, id),
            ccai,
            "{kustomer} maps to CCAI {ccai}"
        );
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as2_one_way_kustomer_changes_apply_in_real_time_and_ccai_changes_do_not_flow_back() {
    let mut config = one_way();
    // One request per agent per poll counts against the org budget (1,000/min).
    config.kustomer_poll_interval = Some(Duration::from_millis(1000));
    let stack = start(config).await;
    eventually("the first Kustomer poll", 20, || async {
        (agents(&stack).await["kustomer_polls"].as_u64().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    let (id, email) = ADA;

    // Reported by the Kustomer app: applied before the answer.
    set_kustomer_status(&stack, email, "Lunch").await;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["applied"], true, "{answer}");
    assert_eq!(ccai_status(&stack, id), "Meal");

    // Not reported: the work session poll finds it.
    set_kustomer_status(&stack, email, "Busy").await;
    let d = decided(&stack, email, "kustomer", "Busy").await;
    assert_eq!(d["applied"], true, "{d}");
    assert_eq!(ccai_status(&stack, id), "Unavailable");

    // One-way: a CCAI change is not applied to Kustomer.
    stack.ccai.set_agent_status(id, BREAK).expect("break");
    let d = decided(&stack, email, "ccai", "Break").await;
    assert_eq!(d["decision"], "ignore", "{d}");
    assert_eq!(kustomer_status(&stack, email).as_deref(), Some("Busy"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as3_two_way_applies_both_ways_without_echo_loops() {
    // Asymmetric on purpose: an echo bounced back would be visible.
    let mut config = StatusSyncConfig::one_way(
        &[
            ("Available", "Available"),
            ("Training", "Meal"),
            ("Lunch", "Meal"),
        ],
        AGENT_API_TOKEN,
    )
    .two_way(&[
        ("Meal", "Lunch"),
        ("Break", "Lunch"),
        ("Available", "Available"),
    ]);
    // One request per agent per poll counts against the org budget (1,000/min).
    config.kustomer_poll_interval = Some(Duration::from_millis(1000));
    let stack = start(config).await;
    let (id, email) = ADA;

    // Kustomer → CCAI; CCAI's echo (Meal) must not turn Training into Lunch.
    set_kustomer_status(&stack, email, "Training").await;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Training", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["applied"], true, "{answer}");
    assert_eq!(ccai_status(&stack, id), "Meal");
    let echo = decided(&stack, email, "ccai", "Meal").await;
    assert_eq!(echo["decision"], "ignore", "{echo}");
    assert!(
        echo["reason"].as_str().unwrap_or_default().contains("echo"),
        "{echo}"
    );
    assert_eq!(kustomer_status(&stack, email).as_deref(), Some("Training"));

    // CCAI → Kustomer; the Kustomer app's report of it must not bounce
    // CCAI from Break to Meal.
    stack.ccai.set_agent_status(id, BREAK).expect("break");
    let d = decided(&stack, email, "ccai", "Break").await;
    assert_eq!(d["decision"], "apply", "{d}");
    assert_eq!(kustomer_status(&stack, email).as_deref(), Some("Lunch"));
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "ignore", "{answer}");
    polls_pass(&stack, 2).await;
    assert_eq!(ccai_status(&stack, id), "Break");
    assert_eq!(kustomer_status(&stack, email).as_deref(), Some("Lunch"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as4_agents_are_linked_by_email() {
    let stack = start(one_way()).await;
    // Case does not matter.
    let answer = report(
        &stack,
        json!({ "agent_email": "Grace@Example.COM", "status": "Lunch", "instance_id": "m-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["applied"], true, "{answer}");
    assert_eq!(ccai_status(&stack, GRACE.0), "Meal");

    // No CCAI agent with that email: a visible error, nothing guessed.
    let answer = report(
        &stack,
        json!({ "agent_email": "nobody@example.com", "status": "Lunch", "instance_id": "m-2" }),
    )
    .await;
    let error = answer["decision"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no CCAI Platform agent") && error.contains("AS4"),
        "{answer}"
    );
    let shown = agent(&stack, "nobody@example.com").await;
    assert!(shown["last_error"].as_str().is_some(), "{shown}");

    // A CCAI agent without a Kustomer user.
    let mut only_ccai =
        switchboard_emulators::ccai::Agent::new(40, "ccai-only@example.com", "C", "Only");
    only_ccai.status_id = AVAILABLE;
    stack.ccai.add_agent(only_ccai);
    let answer = report(
        &stack,
        json!({ "agent_email": "ccai-only@example.com", "status": "Lunch" }),
    )
    .await;
    assert!(
        answer["decision"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no Kustomer user"),
        "{answer}"
    );
    assert_eq!(ccai_status(&stack, 40), "Available");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as5_several_kustomer_instances_refuse_with_a_visible_error() {
    let stack = start(one_way()).await;
    let (id, email) = ADA;
    report(
        &stack,
        json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(ccai_status(&stack, id), "Meal");

    // A second tab signs in (heartbeat without a status).
    let answer = report(
        &stack,
        json!({ "agent_email": email, "instance_id": "tab-2" }),
    )
    .await;
    assert_eq!(answer["active_instances"], 2, "{answer}");
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Busy", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "reject", "{answer}");
    assert!(
        answer["decision"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("2 instances"),
        "{answer}"
    );
    assert_eq!(
        ccai_status(&stack, id),
        "Meal",
        "the current status is kept"
    );
    let shown = agent(&stack, email).await;
    assert!(
        shown["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("AS5"),
        "{shown}"
    );
    let metrics = reqwest::get(format!("{}/metrics", stack.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("switchboard_status_sync_errors_total{tenant=\"acme\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_status_decisions_total{tenant=\"acme\",decision=\"reject\"}"),
        "{metrics}"
    );

    // The second tab signs out: the change goes through again.
    report(
        &stack,
        json!({ "agent_email": email, "instance_id": "tab-2", "signed_out": true }),
    )
    .await;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Busy", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["applied"], true, "{answer}");
    assert_eq!(ccai_status(&stack, id), "Unavailable");
    stack.shutdown().await;
}

/// A CRM change deferred during a call meets the agent's own next status
/// (Break) when the call ends.
async fn deferred_meets_next_status(priority: Priority) -> (String, Value) {
    let stack = start(one_way().with_priority(priority)).await;
    let (id, email) = ADA;
    stack.ccai.set_agent_status(id, IN_CALL).expect("in call");
    decided(&stack, email, "ccai", "In-call").await;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "defer", "{answer}");
    stack.ccai.set_agent_status(id, BREAK).expect("next status");
    let d = decided(&stack, email, "ccai", "Break").await;
    polls_pass(&stack, 2).await;
    let status = ccai_status(&stack, id);
    let shown = agent(&stack, email).await;
    assert!(
        shown["pending"].is_null(),
        "the deferred status is consumed: {shown}"
    );
    stack.shutdown().await;
    (status, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as6_priority_last_change_wins_and_crm_overrides() {
    let (status, d) = deferred_meets_next_status(Priority::LastChangeWins).await;
    assert_eq!(status, "Break", "last change (the agent's Break) wins: {d}");
    let (status, d) = deferred_meets_next_status(Priority::CrmOverrides).await;
    assert_eq!(status, "Meal", "the CRM's Lunch → Meal overrides: {d}");
    assert_eq!(d["decision"], "apply", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as7_deferred_in_call_chat_wrap_up_applied_when_it_ends_offline_ignored_unmapped_reported()
{
    let stack = start(one_way()).await;
    for ((id, email), busy, name) in [
        (ADA, IN_CALL, "In-call"),
        (GRACE, IN_CHAT, "In-chat"),
        (RAY, WRAP_UP, "Wrap-up"),
    ] {
        stack.ccai.set_agent_status(id, busy).expect("session");
        decided(&stack, email, "ccai", name).await;
        let answer = report(
            &stack,
            json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
        )
        .await;
        assert_eq!(answer["decision"]["decision"], "defer", "{name}: {answer}");
        assert_eq!(ccai_status(&stack, id), name, "{name}: not applied yet");
        let shown = agent(&stack, email).await;
        assert_eq!(shown["pending"]["status"], "Meal", "{name}: {shown}");

        // The session ends: the platform returns the agent to Available.
        stack.ccai.set_agent_status(id, AVAILABLE).expect("end");
        eventually(
            &format!("{name}: Meal applied when it ends"),
            20,
            || async { (ccai_status(&stack, id) == "Meal").then_some(()) },
        )
        .await;
        // The deferred status is consumed once the change is recorded,
        // just after CCAI Platform answered it.
        eventually(
            &format!("{name}: the deferred status consumed"),
            20,
            || async {
                agent(&stack, email).await["pending"]
                    .is_null()
                    .then_some(())
            },
        )
        .await;
    }

    // Offline in CCAI: ignored.
    let (id, email) = OFFLINE;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "ignore", "{answer}");
    assert_eq!(ccai_status(&stack, id), "Offline");

    // Unmapped: an error, reported, nothing guessed.
    let (id, email) = DARTH;
    let answer = report(
        &stack,
        json!({ "agent_email": email, "status": "Vacation", "instance_id": "tab-1" }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "reject", "{answer}");
    let shown = agent(&stack, email).await;
    assert!(
        shown["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("no CCAI Platform mapping"),
        "{shown}"
    );
    assert_eq!(ccai_status(&stack, id), "Lunch", "Darth stays at Lunch");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as8_nothing_is_applied_at_login() {
    let config = StatusSyncConfig::one_way(DEMO_STATUS_MAP, AGENT_API_TOKEN).two_way(&[
        ("Available", "Available"),
        ("Lunch", "Lunch"),
        ("Break", "Lunch"),
    ]);
    let stack = start(config).await;
    polls_pass(&stack, 2).await;
    // Statuses found at start (Darth's Lunch) were not pushed to Kustomer.
    assert_eq!(
        kustomer_status(&stack, DARTH.1).as_deref(),
        Some("Available")
    );
    assert!(agent(&stack, DARTH.1).await.is_null());

    // Kustomer login: reported, not applied.
    let answer = report(
        &stack,
        json!({ "agent_email": ADA.1, "status": "Lunch", "instance_id": "tab-1", "login": true }),
    )
    .await;
    assert_eq!(answer["decision"]["decision"], "ignore", "{answer}");
    assert_eq!(ccai_status(&stack, ADA.0), "Available");

    // CCAI login (out of Offline): not applied to Kustomer.
    stack
        .ccai
        .set_agent_status(OFFLINE.0, BREAK)
        .expect("login");
    let d = decided(&stack, OFFLINE.1, "ccai", "Break").await;
    assert_eq!(d["decision"], "ignore", "{d}");
    assert_eq!(d["login"], true, "{d}");
    assert_eq!(
        kustomer_status(&stack, OFFLINE.1).as_deref(),
        Some("Available")
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as9_adapter_drop_down_change_is_a_ccai_side_change() {
    let config = StatusSyncConfig::one_way(DEMO_STATUS_MAP, AGENT_API_TOKEN)
        .two_way(&[("Available", "Available"), ("Break", "Lunch")]);
    let stack = start(config).await;
    let (id, email) = GRACE;
    // The adapter's drop-down inside Kustomer calls the CCAI agent status
    // API, exactly as any CCAI-side change.
    let ccai = switchboard::connectors::ccai::CcaiClient::new(
        stack
            .app
            .tenant("acme")
            .expect("tenant")
            .config
            .ccai
            .clone(),
    )
    .expect("client");
    ccai.set_agent_status(id, "Break").await.expect("drop-down");
    let d = decided(&stack, email, "ccai", "Break").await;
    assert_eq!(d["decision"], "apply", "{d}");
    assert_eq!(d["target"], "kustomer", "{d}");
    assert_eq!(kustomer_status(&stack, email).as_deref(), Some("Lunch"));
    stack.shutdown().await;
}

/// A status report is stored before it is answered: with CCAI Platform
/// refusing every status change, the report is answered 202 with its id; the
/// change survives a restart and is applied once CCAI Platform recovers. The
/// same report sent again is recognised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is5_a_status_change_is_stored_before_the_answer_and_applied_after_a_restart() {
    let data = tempfile::tempdir().expect("data dir");
    let mut sync = one_way();
    sync.decision_wait = Duration::from_millis(300);
    let stack = start_in(sync, Some(data.path().to_path_buf())).await;
    let (id, email) = ADA;
    let before = ccai_status(&stack, id);
    stack.ccai.inject_fault(
        switchboard_emulators::ccai::Fault::status(503, 1_000_000).on_path("agent_statuses"),
    );
    let body = json!({ "agent_email": email, "status": "Lunch", "instance_id": "tab-1", "change_id": "lunch-1" });
    let (status, answer) = report_answer(&stack, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["pending"], true, "{answer}");
    let change_id = answer["change_id"].as_str().expect("change id").to_string();
    let shown = change(&stack, &change_id).await;
    assert_eq!(shown["state"], "pending", "{shown}");
    assert_eq!(shown["change"]["status"], "Lunch", "{shown}");
    let (status, again) = report_answer(&stack, &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (&again["duplicate"], &again["change_id"]),
        (&json!(true), &json!(change_id)),
        "{again}"
    );
    assert_eq!(ccai_status(&stack, id), before, "nothing applied yet");

    let stack = within("restarting the sidecar", 120, stack.restart())
        .await
        .expect("restart");
    stack.ccai.clear_faults();
    let decision = change_done(&stack, &change_id).await;
    assert_eq!(
        (&decision["decision"], &decision["applied"]),
        (&json!("apply"), &json!(true)),
        "{decision}"
    );
    assert_eq!(ccai_status(&stack, id), "Meal");
    // Sent once more after it was applied: answered with the decision.
    let again = report(&stack, body).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["decision"]["applied"], true, "{again}");
    stack.shutdown().await;
}

/// One queue per agent: while Kustomer fails every read of Ada's work
/// session, her three changes wait (202) and Grace's change is decided at
/// once; when Kustomer recovers, Ada's changes are applied in the order they
/// arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is6_an_agents_changes_apply_in_arrival_order_and_a_retrying_agent_holds_only_itself() {
    let mut sync = one_way();
    // Long enough for a healthy decision on a loaded machine; a retrying one
    // stays pending far longer.
    sync.decision_wait = Duration::from_millis(1500);
    let stack = start(sync).await;
    let tenant = stack.app.tenant("acme").expect("tenant");
    let ada_user = tenant.user_id(ADA.1).await.expect("lookup").expect("user");
    stack.kustomer.control().inject(
        switchboard_emulators::kustomer::Fault::new(
            switchboard_emulators::kustomer::FaultKind::ServerError { status: 503 },
            1_000_000,
        )
        .on_path(&format!("/v1/routing/users/{ada_user}/work-sessions")),
    );
    let mut ids = Vec::new();
    for status in ["Lunch", "Busy", "Available"] {
        let body = json!({ "agent_email": ADA.1, "status": status, "instance_id": "tab-1" });
        let (code, answer) = report_answer(&stack, &body).await;
        assert_eq!(code, 202, "{status}: {answer}");
        ids.push(answer["change_id"].as_str().expect("id").to_string());
    }
    let grace = report(
        &stack,
        json!({ "agent_email": GRACE.1, "status": "Lunch", "instance_id": "tab-9" }),
    )
    .await;
    assert_eq!(grace["decision"]["decision"], "apply", "{grace}");
    assert_eq!(ccai_status(&stack, GRACE.0), "Meal");
    for id in &ids {
        assert_eq!(change(&stack, id).await["state"], "pending", "{id}");
    }

    stack.kustomer.control().clear_faults();
    let mut decided_at = Vec::new();
    for id in &ids {
        let decision = change_done(&stack, id).await;
        assert_eq!(decision["decision"], "apply", "{decision}");
        decided_at.push(
            decision["decided_at"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let mut sorted = decided_at.clone();
    sorted.sort();
    assert_eq!(decided_at, sorted, "applied in arrival order");
    assert_eq!(
        ccai_status(&stack, ADA.0),
        "Available",
        "Available came last"
    );
    stack.shutdown().await;
}
