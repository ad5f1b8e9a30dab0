//! The store backends side by side, through the real binary: the same load
//! posted to (a) one `switchboard serve` process on SQLite and (b, c, d) one,
//! two and three `switchboard serve` replicas sharing one PostgreSQL schema
//! (a fresh schema per configuration, each replica with its own data
//! directory). Batches go round robin over the replicas, as a load balancer
//! would send them. Replicas start one after another, each only once the
//! previous one's `/readyz` answers 200, and the load starts when all are
//! ready: start-up (compiling the rule module) is not measured. Each
//! configuration gets fresh emulators.
//!
//! For each configuration it prints accepted events/s (every POST answered
//! 2xx), intake latency per POST (p50, p99), applied events/s (from the first
//! POST until every event is `done` in the inbox) and the sidecar CPU time per
//! applied event (user + system time of all replicas, from `/proc/<pid>/stat`),
//! then the PostgreSQL-with-one-replica against SQLite ratios and one summary
//! line.
//!
//! `cargo bench -p switchboard --bench replicas`; `SWITCHBOARD_BENCH_EVENTS`
//! (default 5,000), `SWITCHBOARD_BENCH_CUSTOMERS` (500; event `i` is from
//! customer `i % customers`), `SWITCHBOARD_BENCH_BATCH` (events per POST, 20)
//! and `SWITCHBOARD_BENCH_SENDERS` (concurrent posters, 8) change the load;
//! `SWITCHBOARD_TEST_POSTGRES` names the PostgreSQL server (default
//! `postgres://root@127.0.0.1:5432/test`; the bench fails, naming it, when it
//! cannot be reached). The replicas' stderr (`RUST_LOG=warn`) goes to a log
//! file each in a temporary directory; the bench prints the warnings and
//! errors it finds there, and keeps the directory when
//! `SWITCHBOARD_BENCH_KEEP_LOGS` is set.
//!
//! Emulators, load generator, replicas and PostgreSQL all run on this
//! machine. On a 2-core machine they share the cores, so the point is the
//! per-event overhead of PostgreSQL against SQLite (CPU per event, applied
//! rate with one replica), not the scaling with more replicas.

#[path = "../tests/support/postgres.rs"]
mod pg;
#[path = "support/sidecar.rs"]
mod sidecar;

use anyhow::Context;
use sidecar::{Backend, Load, Progress, Replica, STORE_URL_ENV};
use std::path::Path;
use std::time::{Duration, Instant};

/// One configuration's results.
struct Row {
    backend: Backend,
    replicas: usize,
    accepted_per_s: f64,
    p50: Duration,
    p99: Duration,
    applied_per_s: f64,
    cpu_ms_per_event: f64,
}

fn main() -> anyhow::Result<()> {
    let load = Load {
        events: sidecar::setting("SWITCHBOARD_BENCH_EVENTS", 5_000),
        customers: sidecar::setting("SWITCHBOARD_BENCH_CUSTOMERS", 500),
        batch: sidecar::setting("SWITCHBOARD_BENCH_BATCH", 20),
        senders: sidecar::setting("SWITCHBOARD_BENCH_SENDERS", 8),
        rate: 0,
        intake_log: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(load))
}

async fn run(load: Load) -> anyhow::Result<()> {
    let server = pg::base_url();
    check_postgres(&server).await?;
    let ticks_per_s = sidecar::clock_ticks_per_second();
    let logs = tempfile::Builder::new()
        .prefix("switchboard-replicas-bench-")
        .tempdir()
        .context("a temporary directory for the replicas")?;
    println!(
        "replicas bench: {} events over {} customers, {} per POST, {} senders; replica logs in {}",
        load.events,
        load.customers,
        load.batch,
        load.senders,
        logs.path().display()
    );

    let configurations = [
        (Backend::Sqlite, 1),
        (Backend::Postgres, 1),
        (Backend::Postgres, 2),
        (Backend::Postgres, 3),
    ];
    let mut rows = Vec::new();
    for (backend, replicas) in configurations {
        let dir = logs.path().join(format!("{}-{replicas}", backend.name()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        rows.push(measure(backend, replicas, load, &dir, ticks_per_s).await?);
    }

    println!();
    println!(
        "{:<9} {:>8} {:>10} {:>8} {:>8} {:>10} {:>16}",
        "backend", "replicas", "accepted/s", "p50_ms", "p99_ms", "applied/s", "cpu_ms_per_event"
    );
    for row in &rows {
        println!(
            "{:<9} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>10.0} {:>16.3}",
            row.backend.name(),
            row.replicas,
            row.accepted_per_s,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.applied_per_s,
            row.cpu_ms_per_event,
        );
    }
    let find = |backend: Backend, replicas: usize| -> anyhow::Result<&Row> {
        rows.iter()
            .find(|r| r.backend == backend && r.replicas == replicas)
            .with_context(|| format!("no {} x{replicas} result", backend.name()))
    };
    let (sqlite, pg1, pg2, pg3) = (
        find(Backend::Sqlite, 1)?,
        find(Backend::Postgres, 1)?,
        find(Backend::Postgres, 2)?,
        find(Backend::Postgres, 3)?,
    );
    println!(
        "postgres_1_vs_sqlite applied={:.2} cpu={:.2}",
        pg1.applied_per_s / sqlite.applied_per_s,
        pg1.cpu_ms_per_event / sqlite.cpu_ms_per_event
    );
    println!(
        "replicas sqlite_applied_per_s={:.0} pg1_applied_per_s={:.0} pg2_applied_per_s={:.0} \
         pg3_applied_per_s={:.0} pg1_cpu_ms_per_event={:.3} sqlite_cpu_ms_per_event={:.3}",
        sqlite.applied_per_s,
        pg1.applied_per_s,
        pg2.applied_per_s,
        pg3.applied_per_s,
        pg1.cpu_ms_per_event,
        sqlite.cpu_ms_per_event
    );

    if std::env::var_os("SWITCHBOARD_BENCH_KEEP_LOGS").is_some() {
        let kept = logs.keep();
        println!("replica logs kept in {}", kept.display());
    }
    Ok(())
}

/// Fails with the server's URL (password hidden) unless it answers.
async fn check_postgres(url: &str) -> anyhow::Result<()> {
    let shown = switchboard::store::postgres::redact_url(url);
    let owned = url.to_string();
    let reached = tokio::task::spawn_blocking(move || connect(&owned).map(drop))
        .await
        .context("the PostgreSQL check panicked")?;
    reached.with_context(|| {
        format!(
            "PostgreSQL is not reachable at {shown}: the replicas bench needs it; start it, or \
             point {} at one",
            pg::ENV
        )
    })
}

fn connect(url: &str) -> anyhow::Result<postgres::Client> {
    let mut config: postgres::Config = url.parse().context("parsing the PostgreSQL URL")?;
    config.connect_timeout(Duration::from_secs(5));
    Ok(config.connect(postgres::NoTls)?)
}

async fn measure(
    backend: Backend,
    count: usize,
    load: Load,
    dir: &Path,
    ticks_per_s: f64,
) -> anyhow::Result<Row> {
    let label = format!("{} x{count}", backend.name());
    println!("{label}: starting");
    let (kustomer, ccai) = sidecar::start_emulators(1_000_000).await?;
    let mut env = sidecar::secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = tokio::task::spawn_blocking(pg::TestDb::new)
                .await
                .context("creating a PostgreSQL schema")?;
            env.push((STORE_URL_ENV.to_string(), db.url().to_string()));
            Some(db)
        }
    };

    let mut replicas = Vec::new();
    for n in 0..count {
        let config = sidecar::write_config(
            &dir.join(format!("replica-{n}")),
            &kustomer,
            &ccai,
            backend,
            false,
        )?;
        let log = dir.join(format!("replica-{n}.log"));
        replicas.push(sidecar::spawn(&config, &env, &log).await?);
    }
    let progress = match &db {
        None => Progress::sqlite(&dir.join("replica-0"))?,
        Some(db) => {
            let url = db.url().to_string();
            let client = tokio::task::spawn_blocking(move || connect(&url))
                .await
                .context("connecting for progress counts panicked")??;
            Progress::Postgres(Some(client))
        }
    };

    let bodies = sidecar::batches(load)?;
    let total = load.events;
    let cpu = |replicas: &[Replica]| -> anyhow::Result<u64> {
        replicas.iter().map(|r| sidecar::cpu_ticks(r.pid)).sum()
    };
    let cpu_before = cpu(&replicas)?;
    let started = Instant::now();
    let posting = tokio::spawn(sidecar::post_all(
        replicas.iter().map(|r| r.url.clone()).collect(),
        bodies,
        load.senders,
    ));
    let latencies = posting.await.context("the load generator panicked")??;
    let accepted_in = started.elapsed();

    let (progress, applied_in) =
        sidecar::wait_applied(&label, progress, &mut replicas, total, started, dir).await?;
    let cpu_after = cpu(&replicas)?;

    drop(progress);
    for r in &mut replicas {
        sidecar::stop(r).await;
    }
    for (n, r) in replicas.iter().enumerate() {
        let (bad, shown) = sidecar::log_findings(r);
        if bad > 0 {
            println!("  {label} replica {n}: {bad} warning/error lines in its log, e.g.:");
            for line in shown {
                println!("    {line}");
            }
        }
    }
    drop(replicas);
    if let Some(db) = db {
        // Dropping the schema blocks on a thread of its own.
        tokio::task::spawn_blocking(move || drop(db))
            .await
            .context("dropping the schema panicked")?;
    }

    let per_s = |n: f64, d: Duration| n / d.as_secs_f64();
    let cpu_ms = cpu_after.saturating_sub(cpu_before) as f64 * 1e3 / ticks_per_s;
    let row = Row {
        backend,
        replicas: count,
        accepted_per_s: per_s(total as f64, accepted_in),
        p50: sidecar::percentile(&latencies, 0.50),
        p99: sidecar::percentile(&latencies, 0.99),
        applied_per_s: per_s(total as f64, applied_in),
        cpu_ms_per_event: cpu_ms / total as f64,
    };
    println!(
        "{label}: accepted in {:.1} s, applied in {:.1} s, {:.0} ms sidecar CPU",
        accepted_in.as_secs_f64(),
        applied_in.as_secs_f64(),
        cpu_ms
    );
    Ok(row)
}
