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

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai::{self as ccai_emu, load};
use switchboard_emulators::kustomer as kustomer_emu;
use tokio::io::{AsyncBufReadExt, BufReader};

const TENANT: &str = "acme";
const EVENTS_USER: &str = "ccai-events";
const EVENTS_PASSWORD: &str = "bench-events-password";
/// The variable the PostgreSQL configurations read the store URL from.
const STORE_URL_ENV: &str = "SWITCHBOARD_BENCH_STORE_URL";
/// How long one configuration may take to apply everything.
const APPLY_LIMIT: Duration = Duration::from_secs(900);

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

#[derive(Debug, Clone, Copy)]
struct Load {
    events: u64,
    customers: u64,
    batch: u64,
    senders: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

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
        events: setting("SWITCHBOARD_BENCH_EVENTS", 5_000),
        customers: setting("SWITCHBOARD_BENCH_CUSTOMERS", 500),
        batch: setting("SWITCHBOARD_BENCH_BATCH", 20),
        senders: setting("SWITCHBOARD_BENCH_SENDERS", 8),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(load))
}

async fn run(load: Load) -> anyhow::Result<()> {
    let server = pg::base_url();
    check_postgres(&server).await?;
    let ticks_per_s = clock_ticks_per_second();
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

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` (this crate has no libc);
/// 100 (Linux's value) when that fails.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let (_, rest) = stat
        .rsplit_once(')')
        .with_context(|| format!("{path} has no command name: {stat}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("{path} has no field {n}: {stat}"))?
            .parse()
            .with_context(|| format!("field {n} of {path} is not a number: {stat}"))
    };
    Ok(field(14)? + field(15)?)
}

/// A running `switchboard serve` child.
struct Replica {
    child: tokio::process::Child,
    pid: u32,
    url: String,
    log: PathBuf,
    /// The log's length when the replica was ready: what it logged before
    /// includes the bench's own readiness probes.
    ready_at: usize,
}

/// Starts `switchboard serve --config <config>` and waits for its
/// "listening on" line.
async fn spawn(config: &Path, env: &[(String, String)], log: &Path) -> anyhow::Result<Replica> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("starting switchboard serve")?;
    let pid = child.id().context("the child has no pid")?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("switchboard listening on ") {
                return Ok(Some(url.trim().to_string()));
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await;
    let url = match listening {
        Ok(Ok(Some(url))) => url,
        Ok(Ok(None)) => bail!(
            "switchboard serve exited before listening; see {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        ),
        Ok(Err(e)) => bail!("reading switchboard serve's stdout: {e}"),
        Err(_) => bail!(
            "switchboard serve did not listen within 120 s; see {}",
            log.display()
        ),
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut replica = Replica {
        child,
        pid,
        url,
        log: log.to_path_buf(),
        ready_at: 0,
    };
    wait_ready(&mut replica).await?;
    replica.ready_at = std::fs::metadata(log)
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0);
    Ok(replica)
}

/// Waits until the replica's `/readyz` answers 200: it listens before its
/// rule module is compiled, and neither that compilation nor the events
/// waiting for it belong in the measurement.
async fn wait_ready(replica: &mut Replica) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("{}/readyz", replica.url);
    let started = Instant::now();
    loop {
        let answer = client.get(&url).send().await;
        let last = match answer {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        if let Some(status) = replica.child.try_wait()? {
            bail!(
                "switchboard serve exited ({status}) before it was ready; see {}",
                replica.log.display()
            );
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!(
                "{url} not ready within 120 s (last answer {last}); see {}",
                replica.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops a replica: SIGTERM (a graceful shutdown, so its log shows what
/// shutting down does), SIGKILL if it is still running 15 s later.
async fn stop(replica: &mut Replica) {
    let _ = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(replica.pid.to_string())
        .status()
        .await;
    if tokio::time::timeout(Duration::from_secs(15), replica.child.wait())
        .await
        .is_err()
    {
        println!(
            "  replica {} did not stop within 15 s of SIGTERM; killing it",
            replica.url
        );
        let _ = replica.child.kill().await;
    }
}

/// The secrets the configuration reads from the environment.
fn secret_env(kustomer_key: &str, ccai_token: &str) -> Vec<(String, String)> {
    [
        ("BENCH_KUSTOMER_API_KEY", kustomer_key),
        ("BENCH_CCAI_API_TOKEN", ccai_token),
        ("BENCH_EVENTS_PASSWORD", EVENTS_PASSWORD),
        ("BENCH_WEBHOOK_SECRET", "bench-webhook-secret"),
        ("BENCH_ADMIN_TOKEN", "bench-admin-token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Writes `switchboard.toml` for tenant `acme` against both emulators into
/// `dir` (data in `dir/data`) and returns its path; `postgres` adds the
/// shared store, its URL read from [`STORE_URL_ENV`].
fn write_config(
    dir: &Path,
    kustomer: &kustomer_emu::KustomerEmulator,
    ccai: &ccai_emu::CcaiEmulator,
    backend: Backend,
) -> anyhow::Result<PathBuf> {
    let creds = ccai.credentials();
    let store = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => format!(
            "\n[store]\nbackend = \"postgres\"\nurl = {{ env = \"{STORE_URL_ENV}\" }}\npool_size = 16\n"
        ),
    };
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"
admin_token = {{ env = "BENCH_ADMIN_TOKEN" }}
workers = 16
{store}
[[tenant]]
id = "{TENANT}"
module = "{module}"
failure_policy = "hold"
recording = true

[tenant.kustomer]
base_url = "{kustomer_url}"
api_key = {{ env = "BENCH_KUSTOMER_API_KEY" }}

[tenant.ccai]
base_url = "{ccai_url}"
subdomain = "{subdomain}"
api_token = {{ env = "BENCH_CCAI_API_TOKEN" }}
events_username = "{EVENTS_USER}"
events_password = {{ env = "BENCH_EVENTS_PASSWORD" }}
webhook_primary_secret = {{ env = "BENCH_WEBHOOK_SECRET" }}
"#,
        module = switchboard_rule_artifacts::RULES_DEFAULT,
        kustomer_url = kustomer.base_url(),
        ccai_url = ccai.base_url(),
        subdomain = creds.subdomain,
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Inbox counts by status, read beside the sidecar.
#[derive(Debug, Default)]
struct Counts {
    done: u64,
    failed: u64,
    dead: u64,
    other: u64,
}

/// A second connection to the store, for counting progress.
enum Progress {
    /// `data/switchboard.db` opened read-only (WAL lets it read beside the
    /// service).
    Sqlite(rusqlite::Connection),
    /// A client of its own on the shared schema (`None` only while being
    /// dropped).
    Postgres(Option<postgres::Client>),
}

impl Drop for Progress {
    /// A `postgres::Client` blocks (on a runtime of its own) when dropped,
    /// which must not happen on a tokio worker: drop it on a thread.
    fn drop(&mut self) {
        if let Progress::Postgres(client) = self {
            if let Some(client) = client.take() {
                let _ = std::thread::spawn(move || drop(client)).join();
            }
        }
    }
}

const COUNT_SQL: &str = "SELECT status, count(*) FROM inbox GROUP BY status";

impl Progress {
    /// Blocking: call it off the runtime's workers.
    fn counts(&mut self) -> anyhow::Result<Counts> {
        let by_status: Vec<(String, i64)> = match self {
            Progress::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(COUNT_SQL)?;
                let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            }
            Progress::Postgres(client) => client
                .as_mut()
                .context("the progress client is gone")?
                .query(COUNT_SQL, &[])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, postgres::Error>>()?,
        };
        let mut counts = Counts::default();
        for (status, n) in by_status {
            let n = u64::try_from(n).unwrap_or(0);
            match status.as_str() {
                "done" => counts.done += n,
                "failed" => counts.failed += n,
                "dead" => counts.dead += n,
                _ => counts.other += n,
            }
        }
        Ok(counts)
    }
}

/// Runs `progress.counts()` on a blocking thread and hands the connection back.
async fn counts(mut progress: Progress) -> anyhow::Result<(Progress, Counts)> {
    tokio::task::spawn_blocking(move || {
        let counts = progress.counts();
        counts.map(|c| (progress, c))
    })
    .await
    .context("the progress query panicked")?
}

/// The batches to post, serialized once: event `i` from customer
/// `i % customers`, in order.
fn batches(load: Load) -> anyhow::Result<Vec<bytes::Bytes>> {
    (0..load.events)
        .collect::<Vec<_>>()
        .chunks(usize::try_from(load.batch)?)
        .map(|chunk| {
            let body = load::batch(
                chunk
                    .iter()
                    .map(|i| load::created_event(*i, *i % load.customers))
                    .collect(),
            );
            Ok(bytes::Bytes::from(serde_json::to_vec(&body)?))
        })
        .collect()
}

/// Posts the batches round robin over `urls` from `senders` tasks; returns
/// each POST's latency. A refused POST stops everything with its body.
async fn post_all(
    urls: Vec<String>,
    batches: Vec<bytes::Bytes>,
    senders: u64,
) -> anyhow::Result<Vec<Duration>> {
    let urls: Arc<Vec<String>> = Arc::new(
        urls.iter()
            .map(|u| format!("{u}/v1/tenants/{TENANT}/ccai/session-events"))
            .collect(),
    );
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let mut posting = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (urls, batches, next) = (urls.clone(), batches.clone(), next.clone());
        posting.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?;
            let mut latencies = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = batches.get(k) else { break };
                let url = &urls[k % urls.len()];
                let sent = Instant::now();
                let answer = client
                    .post(url)
                    .basic_auth(EVENTS_USER, Some(EVENTS_PASSWORD))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .with_context(|| format!("posting batch {k} to {url}"))?;
                let status = answer.status();
                if !status.is_success() {
                    let body = answer.text().await.unwrap_or_default();
                    bail!("{url} answered batch {k} with {status}: {body}");
                }
                latencies.push(sent.elapsed());
            }
            Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = posting.join_next().await {
        latencies.extend(joined.context("a sender panicked")??);
    }
    latencies.sort();
    Ok(latencies)
}

/// The WARN and ERROR lines of a replica's log: how many, and the first few.
/// The 503 answers to the bench's readiness probes (logged as errors) are
/// left out.
fn log_findings(replica: &Replica) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(&replica.log).unwrap_or_default();
    let starting = text.get(..replica.ready_at).unwrap_or_default();
    let probe = |l: &&str| l.contains("tower_http::trace::on_failure") && l.contains("503");
    let running = text.get(replica.ready_at..).unwrap_or_default();
    let bad: Vec<&str> = starting
        .lines()
        .filter(|l| !probe(l))
        .chain(running.lines())
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
        .collect();
    let mut shown: Vec<String> = Vec::new();
    for line in &bad {
        if shown.len() >= 5 {
            break;
        }
        let line: String = line.chars().take(400).collect();
        if !shown.contains(&line) {
            shown.push(line);
        }
    }
    (bad.len(), shown)
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
    let kustomer = kustomer_emu::start(kustomer_emu::KustomerEmulatorConfig {
        rate_limit_per_minute: 1_000_000,
        ..Default::default()
    })
    .await
    .context("starting the Kustomer emulator")?;
    let ccai = ccai_emu::start(ccai_emu::CcaiConfig {
        rate_limit: None,
        ..Default::default()
    })
    .await
    .context("starting the CCAI Platform emulator")?;
    for agent in ccai.agents() {
        kustomer.control().add_user(&agent.email, &agent.name());
    }
    let mut env = secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
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
        let config = write_config(&dir.join(format!("replica-{n}")), &kustomer, &ccai, backend)?;
        let log = dir.join(format!("replica-{n}.log"));
        replicas.push(spawn(&config, &env, &log).await?);
    }
    let mut progress = Some(match &db {
        None => {
            let file = dir.join("replica-0").join("data").join("switchboard.db");
            let conn = rusqlite::Connection::open_with_flags(
                &file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("opening {} read-only", file.display()))?;
            conn.busy_timeout(Duration::from_secs(5))?;
            Progress::Sqlite(conn)
        }
        Some(db) => {
            let url = db.url().to_string();
            let client = tokio::task::spawn_blocking(move || connect(&url))
                .await
                .context("connecting for progress counts panicked")??;
            Progress::Postgres(Some(client))
        }
    });

    let bodies = batches(load)?;
    let total = load.events;
    let cpu = |replicas: &[Replica]| -> anyhow::Result<u64> {
        replicas.iter().map(|r| cpu_ticks(r.pid)).sum()
    };
    let cpu_before = cpu(&replicas)?;
    let started = Instant::now();
    let posting = tokio::spawn(post_all(
        replicas.iter().map(|r| r.url.clone()).collect(),
        bodies,
        load.senders,
    ));
    let latencies = posting.await.context("the load generator panicked")??;
    let accepted_in = started.elapsed();

    let mut last_report = Instant::now();
    let applied_in = loop {
        let (back, c) = counts(progress.take().context("progress connection")?).await?;
        progress = Some(back);
        if c.failed + c.dead > 0 {
            bail!(
                "{label}: {} events failed and {} were dead-lettered ({} done); see the logs in {}",
                c.failed,
                c.dead,
                c.done,
                dir.display()
            );
        }
        if c.done >= total {
            break started.elapsed();
        }
        for r in &mut replicas {
            if let Some(status) = r.child.try_wait()? {
                bail!(
                    "{label}: replica {} exited ({status}) with {} of {total} done; see {}",
                    r.url,
                    c.done,
                    r.log.display()
                );
            }
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!(
                "  {label}: {} of {total} done ({} pending) after {:.0} s",
                c.done,
                c.other,
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if started.elapsed() > APPLY_LIMIT {
            bail!(
                "{label}: only {} of {total} applied after {} s; see the logs in {}",
                c.done,
                APPLY_LIMIT.as_secs(),
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu_after = cpu(&replicas)?;

    drop(progress);
    for r in &mut replicas {
        stop(r).await;
    }
    for (n, r) in replicas.iter().enumerate() {
        let (bad, shown) = log_findings(r);
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
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
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
