//! The end-to-end path, measured: session events posted to the intake of a
//! running sidecar, applied through the default rules into the Kustomer
//! emulator. Prints accepted events/s, intake latency (p50, p99 per POST),
//! applied events/s and the emulator's requests/s, all from one run.
//!
//! `cargo bench -p switchboard --bench pipeline`; `SWITCHBOARD_BENCH_EVENTS`
//! (default 20,000), `SWITCHBOARD_BENCH_CUSTOMERS` (2,000),
//! `SWITCHBOARD_BENCH_BATCH` (events per POST, 20) and
//! `SWITCHBOARD_BENCH_SENDERS` (concurrent posters, 8) change the load;
//! `SWITCHBOARD_BENCH_THREADS` sets the async worker threads (default: one
//! per core).
//!
//! Emulators and sidecar share one process and the machine's cores, so the
//! applied rate is a floor for the sidecar alone.
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::demo::{Stack, StackOptions};
use switchboard::store::InboxStatus;
use switchboard_emulators::ccai::load;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let events = setting("SWITCHBOARD_BENCH_EVENTS", 20_000);
    let customers = setting("SWITCHBOARD_BENCH_CUSTOMERS", 2_000);
    let batch = setting("SWITCHBOARD_BENCH_BATCH", 20);
    let senders = setting("SWITCHBOARD_BENCH_SENDERS", 8);
    let threads = setting("SWITCHBOARD_BENCH_THREADS", 0);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(usize::try_from(threads)?);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(run(events, customers, batch, senders))
}

async fn run(events: u64, customers: u64, batch: u64, senders: u64) -> anyhow::Result<()> {
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.poll_interval = None;
    options.status_sync = None;
    // The org budget of a large Kustomer plan is not what is measured.
    options.kustomer_emulator.rate_limit_per_minute = 10_000_000;
    let stack = Arc::new(Stack::start(options).await?);
    println!(
        "pipeline bench: {events} events over {customers} customers, {batch} per POST, {senders} senders"
    );

    let batches: Vec<serde_json::Value> = (0..events)
        .collect::<Vec<_>>()
        .chunks(usize::try_from(batch)?)
        .map(|chunk| {
            load::batch(
                chunk
                    .iter()
                    .map(|i| load::created_event(*i, *i % customers))
                    .collect(),
            )
        })
        .collect();
    let batches = Arc::new(std::sync::Mutex::new(batches));
    let served_before = stack.kustomer.control().requests_served();
    let started = Instant::now();
    let mut posting = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (stack, batches) = (stack.clone(), batches.clone());
        posting.spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            loop {
                let next = batches.lock().map(|mut b| b.pop()).ok().flatten();
                let Some(body) = next else { break };
                let sent = Instant::now();
                let answer = client
                    .post(stack.target.session_events_url())
                    .basic_auth(&stack.target.username, Some(&stack.target.password))
                    .json(&body)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                    Ok(r) => anyhow::bail!("the intake answered {}", r.status()),
                    Err(e) => anyhow::bail!("posting failed: {e}"),
                }
            }
            Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = posting.join_next().await {
        latencies.extend(joined??);
    }
    let accepted_in = started.elapsed();
    latencies.sort();

    let store = stack.app.store();
    let tenant = stack.options.tenant.clone();
    let total = usize::try_from(events)?;
    let mut last_report = Instant::now();
    let applied_in = loop {
        let rows = store.events(&tenant)?;
        let done = rows
            .iter()
            .filter(|r| r.status == InboxStatus::Done)
            .count();
        let failed = rows
            .iter()
            .filter(|r| matches!(r.status, InboxStatus::Failed | InboxStatus::Dead))
            .count();
        if failed > 0 {
            anyhow::bail!("{failed} events failed");
        }
        if done >= total {
            break started.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("  applied {done} of {total}…");
            last_report = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            anyhow::bail!("only {done} of {total} applied after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let served = stack.kustomer.control().requests_served() - served_before;

    let per_s = |n: f64, d: Duration| n / d.as_secs_f64();
    println!(
        "accepted: {:.0} events/s ({} POSTs; intake latency p50 {:.2} ms, p99 {:.2} ms)",
        per_s(events as f64, accepted_in),
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "applied:  {:.0} events/s ({events} in {:.1} s)",
        per_s(events as f64, applied_in),
        applied_in.as_secs_f64()
    );
    println!(
        "kustomer emulator: {:.0} requests/s, {:.2} requests per event",
        per_s(served as f64, applied_in),
        served as f64 / events as f64
    );
    Ok(())
}
