//! IS1–IS2: one tenant's trouble never stalls another, and a customer
//! waiting on a retry holds only its own queue.
use crate::support::*;
use std::time::{Duration, Instant};
use switchboard::demo::{Stack, StackOptions};
use switchboard::store::InboxStatus;
use switchboard_emulators::kustomer::{Fault, FaultKind};

const OTHER: &str = "beta";

async fn two_tenants() -> Stack {
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.extra_tenants = vec![OTHER.to_string()];
    // The CCAI poller is not what is measured here.
    options.poll_interval = None;
    // Retries come back quickly once Kustomer recovers.
    options.pipeline.retry_max = Duration::from_secs(2);
    start(options).await
}

fn count(stack: &Stack, tenant: &str, status: InboxStatus) -> usize {
    stack
        .app
        .store()
        .events(tenant)
        .expect("inbox rows")
        .iter()
        .filter(|r| r.status == status)
        .count()
}

/// Posts `n` new callers to `tenant` and returns how long until every
/// event of the tenant is applied.
async fn applied_in(stack: &Stack, tenant: &str, first: u64, n: u64) -> Duration {
    let before = count(stack, tenant, InboxStatus::Done);
    let started = Instant::now();
    let (status, body) = post_batch_to(
        &stack.url(),
        tenant,
        &stack.target.username,
        &stack.target.password,
        &created_batch(first, n),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let want = before + usize::try_from(n).expect("small");
    eventually(&format!("{tenant}'s {n} events applied"), 120, || {
        (count(stack, tenant, InboxStatus::Done) >= want).then_some(())
    })
    .await;
    started.elapsed()
}

/// Within twice the baseline, with a little room for a loaded machine.
fn within_twice(measured: Duration, baseline: Duration) -> bool {
    measured <= (baseline * 2).max(baseline + Duration::from_secs(2))
}

/// Measures beta's 40 events alone, then again while acme's Kustomer
/// misbehaves as `fault` says and acme has 200 events to apply.
async fn beta_beside_troubled_acme(fault: FaultKind, what: &str) {
    let stack = two_tenants().await;
    let baseline = applied_in(&stack, OTHER, 0, 40).await;

    stack.kustomer.control().inject(Fault::new(fault, u32::MAX));
    let (status, _) = post_batch(
        &stack.url(),
        &stack.target.username,
        &stack.target.password,
        &created_batch(10_000, 200),
    )
    .await;
    assert_eq!(status, 200);
    // Let acme's customers start failing and retrying.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let measured = applied_in(&stack, OTHER, 20_000, 40).await;
    println!("is1: beta's 40 events in {measured:?} (baseline {baseline:?}) while acme's Kustomer {what}");
    assert!(
        within_twice(measured, baseline),
        "beta took {measured:?} against a baseline of {baseline:?} while acme's Kustomer {what}"
    );
    assert_eq!(
        count(&stack, "acme", InboxStatus::Failed),
        0,
        "a transient failure is retried, not failed"
    );
    assert!(count(&stack, "acme", InboxStatus::Pending) > 0);

    // Kustomer is back: acme's events go through, none lost.
    stack.kustomer.control().clear_faults();
    eventually(
        "acme's 200 events applied once Kustomer is back",
        120,
        || (count(&stack, "acme", InboxStatus::Done) == 200).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is1_a_tenant_whose_kustomer_fails_does_not_stall_another_e2e() {
    beta_beside_troubled_acme(FaultKind::ServerError { status: 503 }, "answers 503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is1_a_rate_limited_tenant_does_not_stall_another_e2e() {
    beta_beside_troubled_acme(
        FaultKind::RateLimited { reset_in_secs: 20 },
        "rate-limits with a 20 s reset",
    )
    .await;
}

/// 2,000 events of acme hit a module that panics on them; beta's 40
/// events, decided by the same module without panicking, are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is1_a_tenant_whose_module_panics_does_not_stall_another_e2e() {
    let mut options = StackOptions::new(switchboard_rule_artifacts::FIXTURE_PANIC_FOR_ACME);
    options.extra_tenants = vec![OTHER.to_string()];
    options.poll_interval = None;
    // Each of acme's events still reads its context from Kustomer; the org
    // budget is not what is measured here.
    options.kustomer_emulator.rate_limit_per_minute = 1_000_000;
    let stack = start(options).await;
    let baseline = applied_in(&stack, OTHER, 0, 40).await;

    // Posted as the platform would, in batches under the body limit.
    for first in (10_000..12_000).step_by(200) {
        let (status, body) = post_batch(
            &stack.url(),
            &stack.target.username,
            &stack.target.password,
            &created_batch(first, 200),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let measured = applied_in(&stack, OTHER, 20_000, 40).await;
    println!("is1: beta's 40 events in {measured:?} (baseline {baseline:?}) beside 2,000 panicking calls of acme");
    assert!(
        within_twice(measured, baseline),
        "beta took {measured:?} against a baseline of {baseline:?}"
    );
    // Every one of acme's events is failed with the guest's panic message,
    // none left hanging.
    eventually("acme's 2,000 events all failed", 120, || {
        (count(&stack, "acme", InboxStatus::Failed) == 2_000).then_some(())
    })
    .await;
    let failed = stack.app.store().events("acme").expect("rows");
    assert!(
        failed.iter().all(|r| r
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("fixture panic for acme")),
        "the panic message is the reason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is2_an_event_failing_past_max_event_age_is_dead_lettered_and_holds_its_customer_e2e() {
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.poll_interval = None;
    options.pipeline.max_event_age = Duration::from_secs(2);
    options.pipeline.retry_base = Duration::from_millis(100);
    options.pipeline.retry_max = Duration::from_millis(400);
    let stack = start(options).await;
    stack
        .kustomer
        .control()
        .inject(Fault::new(FaultKind::ServerError { status: 503 }, u32::MAX));

    // Two events of one caller: the call, then a later call from the same
    // number.
    let mut batch = created_batch(0, 1);
    let mut later = batch["events"][0].clone();
    later["event_id"] = "is2-later-call".into();
    later["timestamp"] = (1_768_467_600_000_i64 + 60_000).into();
    later["item"]["id"] = 600_001.into();
    batch["events"].as_array_mut().expect("events").push(later);
    batch["count"] = 2.into();
    let (status, body) = post_batch(
        &stack.url(),
        &stack.target.username,
        &stack.target.password,
        &batch,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    eventually("the first call is dead-lettered", 60, || {
        (count(&stack, "acme", InboxStatus::Dead) == 1).then_some(())
    })
    .await;
    stack.kustomer.control().clear_faults();
    // The later call waits behind the dead letter, visibly, and nothing
    // failed for good.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rows = stack.app.store().events("acme").expect("rows");
    let statuses: Vec<(String, InboxStatus)> = rows
        .iter()
        .map(|r| (r.event_id.clone(), r.status))
        .collect();
    assert!(
        statuses.contains(&("chat-600001:created".to_string(), InboxStatus::Pending)),
        "{statuses:?}"
    );
    assert_eq!(
        count(&stack, "acme", InboxStatus::Failed),
        0,
        "{statuses:?}"
    );
    let dead = rows
        .iter()
        .find(|r| r.status == InboxStatus::Dead)
        .expect("dead letter");
    assert!(
        dead.reason.as_deref().unwrap_or("").contains("503"),
        "the reason is kept: {:?}",
        dead.reason
    );

    // The operator retries: both calls are applied, in order.
    let retried = admin_post(&stack, "/admin/tenants/acme/events/retry").await;
    assert_eq!(retried["requeued"], 1, "{retried}");
    eventually("both calls applied after the retry", 60, || {
        (count(&stack, "acme", InboxStatus::Done) == 2).then_some(())
    })
    .await;
    assert_eq!(
        stack.kustomer.control().customers().len(),
        1,
        "one caller, one customer"
    );
}

/// A Kustomer outage longer than any single request's retries (two minutes
/// by default; `SWITCHBOARD_E2E_OUTAGE_SECS` to change): nothing fails, and
/// once Kustomer is back every event is applied, each customer's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is2_a_two_minute_kustomer_outage_fails_nothing_and_keeps_order_e2e() {
    let outage = std::env::var("SWITCHBOARD_E2E_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(120), Duration::from_secs);
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.pipeline.retry_max = Duration::from_secs(5);
    let stack = start(options).await;
    stack
        .kustomer
        .control()
        .inject(Fault::new(FaultKind::ServerError { status: 503 }, u32::MAX));
    for name in [
        "tc1_inbound_ivr_call",
        "tu2_outbound_follow_up",
        "tu5_hangup_and_callback",
        "tu11_voicemail_actions",
    ] {
        await_or_timeout(
            &format!("delivering {name}"),
            60,
            stack.play(&scenario(name)),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    tokio::time::sleep(outage).await;
    assert_eq!(count(&stack, "acme", InboxStatus::Failed), 0);
    assert_eq!(count(&stack, "acme", InboxStatus::Dead), 0);
    assert!(count(&stack, "acme", InboxStatus::Pending) > 0);

    stack.kustomer.control().clear_faults();
    settle(&stack, "every event once Kustomer is back").await;
    for r in stack.app.store().events("acme").expect("rows") {
        if r.session_id.contains("1007") || r.customer_key.contains("0106") {
            eprintln!(
                "is2 state: {} {} {} {} {:?}",
                r.seq, r.at, r.customer_key, r.event_id, r.status
            );
        }
    }
    {
        let view = View::of(&stack);
        for c in view.conversations_of(view.customer_with_phone("+14155550106")) {
            eprintln!("is2 state: conversation {} {}", id(c), attrs(c));
            for n in view.notes_of(c) {
                eprintln!("is2 state:   note {n}");
            }
        }
    }
    let view = View::of(&stack);
    assert_eq!(
        view.directions_of_phone("+14155550101"),
        ["in", "out"],
        "TC1, then TU2"
    );
    assert_eq!(
        view.directions_of_phone("+14155550112"),
        ["in", "out"],
        "TU5, then the call-back"
    );
    assert_eq!(
        view.voicemail_actions_of_phone("+14155550106"),
        VOICEMAIL_ACTIONS,
        "voicemail actions once each, in order"
    );
}
