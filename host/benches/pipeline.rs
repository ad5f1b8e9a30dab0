//! The end-to-end path, measured on the real binary: session events posted to
//! the intake of one `switchboard serve` process on SQLite, applied through
//! the default rules into the Kustomer emulator. The emulators and the load
//! generator run in this process and the sidecar in its own, so its CPU time
//! and syscalls are its alone.
//!
//! Three loads, each on a fresh sidecar, store and emulators: batches
//! (`SWITCHBOARD_BENCH_EVENTS`, default 20,000, over
//! `SWITCHBOARD_BENCH_CUSTOMERS`, 2,000, event `i` from customer
//! `i % customers`; `SWITCHBOARD_BENCH_BATCH` events per POST, 20), then one
//! event per POST (`SWITCHBOARD_BENCH_SINGLE_EVENTS`, 5,000, over
//! `SWITCHBOARD_BENCH_SINGLE_CUSTOMERS`, 500), both as fast as
//! `SWITCHBOARD_BENCH_SENDERS` concurrent posters (8) go, each waiting for
//! its answer before the next POST (a closed loop: throughput). Then a paced
//! load (`SWITCHBOARD_BENCH_PACED_EVENTS`, 20,000, over
//! `SWITCHBOARD_BENCH_PACED_CUSTOMERS`, 2,000, `SWITCHBOARD_BENCH_PACED_BATCH`
//! events per POST, 10) offered at `SWITCHBOARD_BENCH_PACED_RATE` events/s
//! (5,000) on a fixed schedule, each POST's latency counted from when it was
//! due (an open loop: the intake's latency at that rate while the pipeline
//! applies the events). These three run as the service does by default,
//! each POST answered once its body is in the intake log (PF6). Then the
//! paced load again with `server.intake_log = false` (`stored`: each POST
//! answered once its events are committed to the store).
//! `…_SINGLE_EVENTS=0` or `…_PACED_EVENTS=0` skips a load (the latter
//! both paced ones).
//! `SWITCHBOARD_BENCH_THREADS` sets the sidecar's async worker threads
//! (passed as `TOKIO_WORKER_THREADS`; default one per core),
//! `SWITCHBOARD_BENCH_NICE` its `pipeline.nice`,
//! `SWITCHBOARD_BENCH_PIPELINE_THREADS` its `pipeline.threads`,
//! `SWITCHBOARD_BENCH_WORKERS` its `server.workers` (customers applied at
//! once, 16), and `SWITCHBOARD_BENCH_BINARY` runs another build of `switchboard` (to compare
//! two side by side). `SWITCHBOARD_BENCH_PIN` (any value) pins the sidecar to
//! CPU 0 and this process to CPU 1, so that each has one core of its own and
//! the busy share of each core tells which of the two sets the applied rate.
//!
//! Before the sidecar starts, the tenant's custom fields are provisioned
//! (`switchboard fields provision`) and dated before the sessions start, so
//! the rules fill them (CF4). The load starts once `/readyz` answers 200:
//! compiling the rule module is not measured.
//!
//! For each load it prints accepted events/s (every POST answered 2xx),
//! intake latency per POST (p50, p99), applied events/s (from the first POST
//! until every event is `done` in the inbox), the Kustomer emulator's
//! requests/s and requests per event, and over the same span the sidecar's
//! CPU time per applied event (user + system, `/proc/<pid>/stat`) and its
//! write and read syscalls per applied event (`syscw`, `syscr` in
//! `/proc/<pid>/io`), the bench process's own CPU per applied event over
//! the same span (`bench_ms/e`: the emulators, the load generator), and the
//! share of POSTs the sidecar itself timed within
//! 5 ms (`switchboard_intake_seconds` on its `/metrics`: from the request's
//! headers read to its answer). For the paced load, accepted events/s is the rate the
//! schedule achieved. Then a table of the loads and one summary line for the
//! first: `accepted_per_s=… p99_ms=… applied_per_s=… cpu_ms_per_event=…
//! write_syscalls_per_event=…`.
//!
//! `cargo bench -p switchboard --bench pipeline`. The sidecar's stderr
//! (`RUST_LOG=warn`) goes to a log file in a temporary directory; the bench
//! prints the warnings and errors it finds there, and keeps the directory
//! when `SWITCHBOARD_BENCH_KEEP_LOGS` is set.
//!
//! Everything runs on this machine: on 2 cores the emulators and the load
//! generator take CPU from the sidecar, so the rates are floors for the
//! sidecar alone; its CPU and syscalls per event are its own.

#[path = "support/sidecar.rs"]
mod sidecar;

use anyhow::{bail, Context};
use sidecar::{Backend, Load, Progress, Syscalls, TENANT};
use std::path::Path;
use std::time::{Duration, Instant};

/// The standard fields count as provisioned just before the load's sessions
/// start (2026-01-15T09:00Z), as in the in-process demo stack.
const PROVISIONED_AT: &str = "2026-01-15T00:00:00.000Z";

/// One load's results.
struct Row {
    name: &'static str,
    load: Load,
    accepted_per_s: f64,
    posts: usize,
    p50: Duration,
    p99: Duration,
    /// The share of POSTs the sidecar itself timed within 5 ms.
    inside_5ms: Option<f64>,
    applied_per_s: f64,
    applied_in: Duration,
    kustomer_per_s: f64,
    kustomer_per_event: f64,
    cpu_ms: f64,
    cpu_ms_per_event: f64,
    /// This process's CPU per applied event over the same span: the
    /// emulators, the load generator and the progress polling.
    bench_cpu_ms_per_event: f64,
    syscalls: Syscalls,
    writes_per_event: f64,
    reads_per_event: f64,
}

fn main() -> anyhow::Result<()> {
    let senders = sidecar::setting("SWITCHBOARD_BENCH_SENDERS", 8);
    let mut loads = vec![(
        "batched",
        Load {
            events: sidecar::setting("SWITCHBOARD_BENCH_EVENTS", 20_000),
            customers: sidecar::setting("SWITCHBOARD_BENCH_CUSTOMERS", 2_000),
            batch: sidecar::setting("SWITCHBOARD_BENCH_BATCH", 20),
            senders,
            rate: 0,
            intake_log: true,
        },
    )];
    let single = sidecar::count("SWITCHBOARD_BENCH_SINGLE_EVENTS", 5_000);
    if single > 0 {
        loads.push((
            "single",
            Load {
                events: single,
                customers: sidecar::setting("SWITCHBOARD_BENCH_SINGLE_CUSTOMERS", 500),
                batch: 1,
                senders,
                rate: 0,
                intake_log: true,
            },
        ));
    }
    let paced = sidecar::count("SWITCHBOARD_BENCH_PACED_EVENTS", 20_000);
    if paced > 0 {
        let load = Load {
            events: paced,
            customers: sidecar::setting("SWITCHBOARD_BENCH_PACED_CUSTOMERS", 2_000),
            batch: sidecar::setting("SWITCHBOARD_BENCH_PACED_BATCH", 10),
            senders,
            rate: sidecar::setting("SWITCHBOARD_BENCH_PACED_RATE", 5_000),
            intake_log: true,
        };
        loads.push(("paced", load));
        // The same, answered once its events are stored (PF6 turned off).
        loads.push((
            "stored",
            Load {
                intake_log: false,
                ..load
            },
        ));
    }
    // Before the runtime starts its threads: they inherit the pin.
    let pinned = std::env::var_os("SWITCHBOARD_BENCH_PIN").is_some();
    if pinned {
        sidecar::pin(std::process::id(), BENCH_CPU)?;
    }
    let threads = std::env::var("SWITCHBOARD_BENCH_THREADS")
        .ok()
        .filter(|v| v.parse::<u64>().is_ok_and(|n| n > 0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&loads, threads, pinned))
}

/// The CPUs the sidecar and this process run on when pinned.
const SIDECAR_CPU: usize = 0;
const BENCH_CPU: usize = 1;

async fn run(
    loads: &[(&'static str, Load)],
    threads: Option<String>,
    pinned: bool,
) -> anyhow::Result<()> {
    let ticks_per_s = sidecar::clock_ticks_per_second();
    let logs = tempfile::Builder::new()
        .prefix("switchboard-pipeline-bench-")
        .tempdir()
        .context("a temporary directory for the sidecar")?;
    println!(
        "pipeline bench: one `switchboard serve` process on SQLite ({} async worker threads), \
         emulators and load generator in this process; sidecar logs in {}",
        threads.as_deref().unwrap_or("default"),
        logs.path().display()
    );
    if pinned {
        println!(
            "pinned: the sidecar on CPU {SIDECAR_CPU}, emulators and load generator on CPU {BENCH_CPU}"
        );
    }

    let mut rows = Vec::new();
    for (name, load) in loads {
        let dir = logs.path().join(name);
        rows.push(measure(name, *load, &dir, ticks_per_s, threads.as_deref(), pinned).await?);
    }

    println!();
    println!(
        "{:<8} {:>7} {:>9} {:>5} {:>10} {:>7} {:>7} {:>8} {:>9} {:>10} {:>8} {:>10} {:>8} {:>8}",
        "load",
        "events",
        "customers",
        "batch",
        "accepted/s",
        "p50_ms",
        "p99_ms",
        "in5ms_%",
        "applied/s",
        "kustomer/s",
        "cpu_ms/e",
        "bench_ms/e",
        "syscw/e",
        "syscr/e"
    );
    for row in &rows {
        println!(
            "{:<8} {:>7} {:>9} {:>5} {:>10.0} {:>7.2} {:>7.2} {:>8} {:>9.0} {:>10.0} {:>8.3} {:>10.3} {:>8.1} {:>8.1}",
            row.name,
            row.load.events,
            row.load.customers,
            row.load.batch,
            row.accepted_per_s,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.inside_5ms
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}", s * 100.0)),
            row.applied_per_s,
            row.kustomer_per_s,
            row.cpu_ms_per_event,
            row.bench_cpu_ms_per_event,
            row.writes_per_event,
            row.reads_per_event,
        );
    }
    if std::env::var_os("SWITCHBOARD_BENCH_KEEP_LOGS").is_some() {
        let kept = logs.keep();
        println!("sidecar logs kept in {}", kept.display());
    }
    let first = rows.first().context("no load was measured")?;
    println!(
        "accepted_per_s={:.0} p99_ms={:.2} applied_per_s={:.0} cpu_ms_per_event={:.3} \
         write_syscalls_per_event={:.1}",
        first.accepted_per_s,
        first.p99.as_secs_f64() * 1e3,
        first.applied_per_s,
        first.cpu_ms_per_event,
        first.writes_per_event,
    );
    Ok(())
}

/// Has `switchboard fields provision` create the tenant's fields in the
/// Kustomer emulator and record them as provisioned since
/// [`PROVISIONED_AT`], through the binary under test (so a build with
/// another store schema can be compared side by side).
async fn provision_fields(
    config: &Path,
    env: &[(String, String)],
    log: &Path,
) -> anyhow::Result<()> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let out = tokio::process::Command::new(sidecar::binary())
        .args(["fields", "provision", "--tenant", TENANT, "--since"])
        .arg(PROVISIONED_AT)
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stderr(stderr)
        .output()
        .await
        .context("running switchboard fields provision")?;
    if !out.status.success() {
        bail!(
            "switchboard fields provision failed ({}): {}; see {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            log.display()
        );
    }
    Ok(())
}

async fn measure(
    name: &'static str,
    load: Load,
    dir: &Path,
    ticks_per_s: f64,
    threads: Option<&str>,
    pinned: bool,
) -> anyhow::Result<Row> {
    println!();
    if load.rate > 0 {
        println!(
            "{name}: {} events over {} customers, {} per POST, offered at {} events/s",
            load.events, load.customers, load.batch, load.rate
        );
    } else {
        println!(
            "{name}: {} events over {} customers, {} per POST, {} senders",
            load.events, load.customers, load.batch, load.senders
        );
    }
    let (kustomer, ccai) = sidecar::start_emulators(10_000_000).await?;
    let mut env = sidecar::secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
    let config = sidecar::write_config(dir, &kustomer, &ccai, Backend::Sqlite, load.intake_log)?;
    provision_fields(&config, &env, &dir.join("provision.log")).await?;
    if let Some(threads) = threads {
        env.push(("TOKIO_WORKER_THREADS".to_string(), threads.to_string()));
    }
    let mut sidecars = vec![sidecar::spawn(&config, &env, &dir.join("sidecar.log")).await?];
    let progress = Progress::sqlite(dir)?;

    let bodies = sidecar::batches(load)?;
    let total = load.events;
    let pid = sidecars[0].pid;
    if pinned {
        sidecar::pin(pid, SIDECAR_CPU)?;
    }
    let served_before = kustomer.control().requests_served();
    let cpu_before = sidecar::cpu_user_system(pid)?;
    let bench_before = sidecar::cpu_ticks(std::process::id())?;
    let io_before = Syscalls::of(pid)?;
    let started = Instant::now();
    let posting = tokio::spawn(sidecar::post(vec![sidecars[0].url.clone()], bodies, load));
    let latencies = posting.await.context("the load generator panicked")??;
    let accepted_in = started.elapsed();
    let (progress, applied_in) =
        sidecar::wait_applied(name, progress, &mut sidecars, total, started, dir).await?;
    let cpu_after = sidecar::cpu_user_system(pid)?;
    let bench_after = sidecar::cpu_ticks(std::process::id())?;
    let syscalls = Syscalls::of(pid)?.since(io_before);
    let served = kustomer.control().requests_served() - served_before;
    let inside =
        sidecar::intake_shares(&sidecars[0], &["0.0025", "0.005", "0.01", "0.025"]).await?;
    let inside_5ms = inside.get(1).copied();

    drop(progress);
    for s in &mut sidecars {
        sidecar::stop(s).await;
    }
    let (bad, shown) = sidecar::log_findings(&sidecars[0]);
    if bad > 0 {
        println!("  {name}: {bad} warning/error lines in the sidecar's log, e.g.:");
        for line in shown {
            println!("    {line}");
        }
    }

    let per_s = |n: f64, d: Duration| n / d.as_secs_f64();
    let events = total as f64;
    let ms = |ticks: u64| ticks as f64 * 1e3 / ticks_per_s;
    let user_ms = ms(cpu_after.0.saturating_sub(cpu_before.0));
    let system_ms = ms(cpu_after.1.saturating_sub(cpu_before.1));
    let cpu_ms = user_ms + system_ms;
    let row = Row {
        name,
        load,
        accepted_per_s: per_s(events, accepted_in),
        posts: latencies.len(),
        p50: sidecar::percentile(&latencies, 0.50),
        p99: sidecar::percentile(&latencies, 0.99),
        inside_5ms,
        applied_per_s: per_s(events, applied_in),
        applied_in,
        kustomer_per_s: per_s(served as f64, applied_in),
        kustomer_per_event: served as f64 / events,
        cpu_ms,
        cpu_ms_per_event: cpu_ms / events,
        bench_cpu_ms_per_event: bench_after.saturating_sub(bench_before) as f64 * 1e3
            / ticks_per_s
            / events,
        syscalls,
        writes_per_event: syscalls.writes as f64 / events,
        reads_per_event: syscalls.reads as f64 / events,
    };
    println!(
        "accepted: {:.0} events/s ({} POSTs; intake latency p50 {:.2} ms, p99 {:.2} ms)",
        row.accepted_per_s,
        row.posts,
        row.p50.as_secs_f64() * 1e3,
        row.p99.as_secs_f64() * 1e3,
    );
    if let [a, b, c, d] = inside[..] {
        println!(
            "  timed inside the sidecar (headers read to answer): {:.1} / {:.1} / {:.1} / {:.1} % \
             of POSTs within 2.5 / 5 / 10 / 25 ms",
            a * 100.0,
            b * 100.0,
            c * 100.0,
            d * 100.0
        );
    }
    println!(
        "applied:  {:.0} events/s ({total} in {:.1} s)",
        row.applied_per_s,
        row.applied_in.as_secs_f64()
    );
    println!(
        "kustomer emulator: {:.0} requests/s, {:.2} requests per event",
        row.kustomer_per_s, row.kustomer_per_event
    );
    println!(
        "sidecar: {:.3} ms CPU per applied event ({:.0} ms user + {:.0} ms system in all); \
         {:.1} write syscalls (syscw) and {:.1} read syscalls (syscr) per applied event \
         ({} and {} in all)",
        row.cpu_ms_per_event,
        user_ms,
        system_ms,
        row.writes_per_event,
        row.reads_per_event,
        row.syscalls.writes,
        row.syscalls.reads,
    );
    println!(
        "bench process (emulators, load generator): {:.3} ms CPU per applied event; \
         the sidecar had {:.0} % of the CPU the two used",
        row.bench_cpu_ms_per_event,
        100.0 * row.cpu_ms_per_event / (row.cpu_ms_per_event + row.bench_cpu_ms_per_event),
    );
    // Busy time over the span, as a share of one core: pinned, a process near
    // 100 % is what holds the applied rate back.
    let span_ms = row.applied_in.as_secs_f64() * 1e3;
    println!(
        "busy from the first POST to the last event applied, in one core's time: \
         sidecar {:.0} %, bench process {:.0} %",
        100.0 * row.cpu_ms / span_ms,
        100.0 * row.bench_cpu_ms_per_event * events / span_ms,
    );
    Ok(row)
}
