//! Shadow runs (RM7): a candidate module decides every live event beside the
//! live one; its plans are recorded and compared, never carried out, and it
//! can be promoted in one atomic swap.
use crate::support::*;
use serde_json::{json, Value};
use std::time::Instant;
use switchboard::demo::{Stack, ADMIN_TOKEN};
use switchboard_emulators::ccai::load;
use switchboard_rule_artifacts as artifacts;

async fn upload(stack: &Stack, module: &str, mode: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/tenants/acme/modules?mode={mode}",
            stack.url()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .body(artifacts::bytes(module))
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn report(stack: &Stack) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/admin/tenants/acme/shadow", stack.url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("report");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// New mobile chats `first..first + n`; those `vip` picks carry `vip=true`.
async fn chats(stack: &Stack, first: u64, n: u64, vip: impl Fn(u64) -> bool) {
    let client = reqwest::Client::new();
    let ids: Vec<u64> = (first..first + n).collect();
    for chunk in ids.chunks(50) {
        let events = chunk
            .iter()
            .map(|&i| {
                let mut event = load::created_event(i, i);
                if vip(i) {
                    event["item"]["custom_data"] =
                        json!({ "vip": { "value": "true", "type": "string", "label": "VIP" } });
                }
                event
            })
            .collect();
        let answer = client
            .post(stack.target.session_events_url())
            .basic_auth(&stack.target.username, Some(&stack.target.password))
            .json(&load::batch(events))
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), 200);
    }
    settle(stack, "the chats").await;
}

/// A stack whose Kustomer org budget is not what is tested.
async fn unpaced() -> Stack {
    let mut options = switchboard::demo::StackOptions::new(artifacts::RULES_DEFAULT);
    options.kustomer_emulator.rate_limit_per_minute = 1_000_000;
    start(options).await
}

fn is_vip(i: u64) -> bool {
    i.is_multiple_of(27)
}

/// 1,000 events with a candidate (the VIP example) that differs from the
/// live default rules on one rule: each VIP chat's plan differs, every other
/// is the same; the report counts exactly that; nothing the shadow decided
/// reaches Kustomer; promotion makes it live at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm7_a_shadow_module_decides_beside_the_live_one_and_is_never_carried_out_e2e() {
    let stack = unpaced().await;
    let (status, body) = upload(&stack, artifacts::RULES_EXAMPLE_VIP, "shadow").await;
    assert_eq!(status, 201, "{body}");
    let digest = body["shadow"]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let live = stack
        .app
        .registry()
        .live("acme")
        .expect("live")
        .info
        .clone();
    assert_eq!(live.version, 1, "the live module is unchanged");

    const N: u64 = 1_000;
    chats(&stack, 0, N, is_vip).await;
    let store = stack.app.store().clone();
    let rows = store.events("acme").expect("events");
    assert_eq!(rows.len(), N as usize);
    // Shadow decisions run beside the live path; wait for the last.
    let outcomes: Vec<(bool, String)> = eventually("every shadow decision recorded", 60, || {
        rows.iter()
            .map(|r| {
                let chat: u64 = r.session_id.trim_start_matches("chat-").parse().ok()?;
                let outcome = store.shadow_outcome("acme", &digest, &r.event_id).ok()??;
                Some((is_vip(chat - 500_000), outcome))
            })
            .collect::<Option<Vec<_>>>()
    })
    .await;
    let vip = outcomes.iter().filter(|(v, _)| *v).count() as u64;
    let count = |vip: bool, outcome: &str| {
        outcomes
            .iter()
            .filter(|(v, o)| *v == vip && o == outcome)
            .count() as u64
    };
    let skipped = count(true, "skipped") + count(false, "skipped");
    assert_eq!(
        count(true, "different"),
        vip - count(true, "skipped"),
        "every VIP chat differs"
    );
    assert_eq!(count(false, "different"), 0, "no other chat differs");
    assert_eq!(count(true, "error") + count(false, "error"), 0);
    let (status, shown) = report(&stack).await;
    assert_eq!(status, 200, "{shown}");
    let r = &shown["report"];
    println!("rm7: {N} events, {vip} VIP: report {r:#}");
    assert_eq!(r["differed"], json!(vip - count(true, "skipped")), "{r}");
    assert_eq!(
        r["matched"],
        json!(N - vip - count(false, "skipped")),
        "{r}"
    );
    assert_eq!(r["skipped"], json!(skipped), "{r}");
    assert!(
        skipped * 10 < N,
        "shadow decisions were mostly made: {skipped} skipped"
    );
    let difference = &r["differences"][0];
    assert_ne!(
        difference["live_plan"], difference["shadow_plan"],
        "{difference}"
    );

    // Nothing the shadow decided reached Kustomer.
    let view = View::of(&stack);
    assert!(
        view.conversations
            .iter()
            .all(|c| c["attributes"]["priority"] != json!(5)
                && !c["attributes"]["tags"].to_string().contains("\"vip\"")),
        "no VIP conversation while shadowing"
    );

    // The same report from the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "rules",
            "shadow",
            "--tenant",
            "acme",
            "--json",
            "--data-dir",
        ])
        .arg(stack.data_dir())
        .output()
        .expect("switchboard rules shadow");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cli["report"]["differed"], r["differed"], "{cli}");

    // Promotion: the candidate is live at once, as the next version.
    let promoted = admin_post(&stack, "/admin/tenants/acme/shadow/promote").await;
    assert_eq!(promoted["live"]["version"], 2, "{promoted}");
    assert_eq!(promoted["live"]["digest"], json!(digest), "{promoted}");
    assert_eq!(report(&stack).await.0, 404, "no shadow after promotion");
    chats(&stack, 27 * 1_000, 1, is_vip).await;
    let view = View::of(&stack);
    assert!(
        view.conversations
            .iter()
            .any(|c| c["attributes"]["priority"] == json!(5)),
        "the promoted module decides"
    );
    stack.shutdown().await;
}

/// A shadow module that panics on every live event fails only its own
/// decisions: every live event is applied, the failures are reported, and
/// the live path's time is printed beside a run without a shadow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm7_a_failing_shadow_never_touches_the_live_path_e2e() {
    let stack = unpaced().await;
    let started = Instant::now();
    chats(&stack, 0, 200, |_| false).await;
    let without = started.elapsed();

    let (status, body) = upload(&stack, artifacts::FIXTURE_PANIC_FOR_ACME, "shadow").await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    chats(&stack, 1_000, 200, |_| false).await;
    let with = started.elapsed();
    assert_no_failures(&stack);
    let r = eventually("the shadow's failures reported", 60, || {
        let digest = body["shadow"]["digest"].as_str()?;
        let report = stack.app.store().shadow_report("acme", digest, 5).ok()?;
        (report.errors + report.skipped == 200).then_some(report)
    })
    .await;
    assert!(r.errors > 0, "{r:?}");
    assert!(r.failures[0].error.contains("panic"), "{r:?}");
    println!(
        "rm7: 200 live events in {:.2} s without a shadow, {:.2} s with a panicking one ({:.2}x); {} shadow errors, {} skipped",
        without.as_secs_f64(),
        with.as_secs_f64(),
        with.as_secs_f64() / without.as_secs_f64().max(1e-9),
        r.errors,
        r.skipped
    );
    stack.shutdown().await;
}
