//! IS1: the scheduler keeps which customers have work, not their events, so
//! the sidecar's memory does not grow with the events pending in the inbox.
use crate::crash::{spawn, Run};
use std::path::Path;
use std::time::{Duration, Instant};
use switchboard::runtime::types as t;
use switchboard::store::{NewInboxEvent, Store};
use switchboard_emulators::kustomer as kustomer_emu;

const EVENTS: usize = 100_000;
const CUSTOMERS: usize = 2_000;
/// Bytes of custom data each stored event carries.
const PAD: usize = 1_500;

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// An ended inbound IVR call of caller `customer`, padded with custom data.
fn event(i: usize, customer: usize) -> t::SessionEvent {
    let (mut event, _) = switchboard::runtime::sample_inputs("acme");
    event.id = format!("mem-{i}");
    event.kind = t::EventKind::Ended;
    event.session.id = format!("call-{i}");
    event.session.end_user.phone = Some(format!("+1212555{customer:04}"));
    event.session.custom_data = vec![t::CustomDatum {
        key: "history".into(),
        label: None,
        value: "x".repeat(PAD),
    }];
    event
}

/// Stores `EVENTS` pending events over `CUSTOMERS` callers; returns the
/// bytes of their bodies.
fn fill(data_dir: &Path) -> usize {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let store = Store::open(Store::path_in(data_dir)).expect("store");
    let mut bytes = 0;
    for first in (0..EVENTS).step_by(5_000) {
        let batch: Vec<NewInboxEvent> = (first..first + 5_000)
            .map(|i| {
                let customer = i % CUSTOMERS;
                let event = event(i, customer);
                let body = serde_json::value::to_raw_value(&event).expect("body");
                bytes += body.get().len();
                NewInboxEvent {
                    tenant: "acme".into(),
                    event_id: event.id.clone(),
                    source: "session-events".into(),
                    session_id: event.session.id.clone(),
                    customer_key: format!("+1212555{customer:04}"),
                    at_ms: 1_795_000_000_000 + i64::try_from(i).unwrap_or(0),
                    at: event.at.clone(),
                    body: body.into(),
                }
            })
            .collect();
        assert_eq!(store.insert_events(&batch).expect("insert"), batch.len());
    }
    bytes
}

/// Runs the sidecar on `run` with Kustomer down for `watch`; returns its
/// largest resident size.
async fn peak_rss(run: &Run, watch: Duration) -> u64 {
    run.kustomer.control().inject(kustomer_emu::Fault::new(
        kustomer_emu::FaultKind::ServerError { status: 503 },
        u32::MAX,
    ));
    let sidecar = spawn(&run.config, &run.env, &run.log()).await;
    let pid = sidecar.child.id().expect("pid");
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < watch {
        peak = peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = reqwest::get(format!("{}/healthz", sidecar.url))
        .await
        .expect("healthz");
    assert!(health.status().is_success(), "the sidecar stays healthy");
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is1_memory_does_not_grow_with_100k_pending_events_e2e() {
    let watch = Duration::from_secs(10);
    let empty = Run::new().await;
    let baseline = peak_rss(&empty, watch).await;

    let loaded = Run::new().await;
    let bytes = fill(&loaded.dir.path().join("data"));
    let peak = peak_rss(&loaded, watch).await;
    let counts = loaded.counts();
    let pending = counts.inbox("pending");
    let mib = |b: u64| b / (1 << 20);
    eprintln!(
        "is1: {EVENTS} events ({} MiB of bodies) over {CUSTOMERS} customers: peak RSS {} MiB, {} MiB with an empty inbox; {pending} still pending",
        mib(bytes as u64),
        mib(peak),
        mib(baseline)
    );
    assert!(pending > 0, "Kustomer was down: events stay pending");
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < (bytes as u64) / 4,
        "memory grew by {} MiB with {} MiB of events pending",
        mib(grown),
        mib(bytes as u64)
    );
}
