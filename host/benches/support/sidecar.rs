//! What the benches that run the real binary share: the emulators, a
//! configuration against them, `switchboard serve` as a child process (ready
//! once `/readyz` answers 200), the load posted to its intake, the inbox
//! counts read beside it, its CPU time and syscall counts from `/proc`, and
//! the warnings in its log.
//!
//! Include it with `#[path = "support/sidecar.rs"] mod sidecar;`. It is not a
//! bench target of its own: Cargo only finds `benches/*.rs` and
//! `benches/*/main.rs`.

#![allow(dead_code, reason = "each bench uses part of the helper")]

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai::{self as ccai_emu, load};
use switchboard_emulators::kustomer as kustomer_emu;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const TENANT: &str = "acme";
pub const EVENTS_USER: &str = "ccai-events";
pub const EVENTS_PASSWORD: &str = "bench-events-password";
/// The variable the PostgreSQL configurations read the store URL from.
pub const STORE_URL_ENV: &str = "SWITCHBOARD_BENCH_STORE_URL";
/// How long one configuration may take to apply everything.
pub const APPLY_LIMIT: Duration = Duration::from_secs(900);

/// The positive number in variable `name`, or `default`.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// The number in variable `name` (0 included: a load it sizes is skipped),
/// or `default`.
pub fn count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub events: u64,
    pub customers: u64,
    pub batch: u64,
    /// Concurrent posters of a closed loop (each posts its next batch once
    /// the last one is answered); unused when `rate` is set.
    pub senders: u64,
    /// Events per second offered on a fixed schedule whatever the answers
    /// (an open loop); 0 for a closed loop of `senders`.
    pub rate: u64,
    /// Session events through the intake log (`server.intake_log`, PF6).
    pub intake_log: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` (this crate has no libc);
/// 100 (Linux's value) when that fails.
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Pins every thread of process `pid` to CPU `cpu`; threads it starts later
/// inherit the pin from the thread that starts them.
pub fn pin(pid: u32, cpu: usize) -> anyhow::Result<()> {
    use rustix::thread::{sched_setaffinity, CpuSet, Pid};
    let mut set = CpuSet::new();
    set.set(cpu);
    let tasks = format!("/proc/{pid}/task");
    for task in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        let tid: i32 = task?
            .file_name()
            .to_string_lossy()
            .parse()
            .context("a thread id")?;
        let tid = Pid::from_raw(tid).context("a positive thread id")?;
        sched_setaffinity(Some(tid), &set)
            .with_context(|| format!("pinning thread {tid:?} of {pid} to CPU {cpu}"))?;
    }
    Ok(())
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let (user, system) = cpu_user_system(pid)?;
    Ok(user + system)
}

/// User and system CPU time of a process so far, in clock ticks, from
/// `/proc/<pid>/stat` (all its threads, including those that have ended).
pub fn cpu_user_system(pid: u32) -> anyhow::Result<(u64, u64)> {
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
    Ok((field(14)?, field(15)?))
}

/// Read and write syscalls of a process (all its threads, including those
/// that have ended), from `/proc/<pid>/io`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syscalls {
    /// `syscr`: read(2), readv(2), pread64(2), …
    pub reads: u64,
    /// `syscw`: write(2), writev(2), pwrite64(2), … (socket writes, file
    /// writes and eventfd wake-ups alike).
    pub writes: u64,
}

impl Syscalls {
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let path = format!("/proc/{pid}/io");
        let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            io.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .with_context(|| format!("{path} has no {name}: {io}"))?
                .trim()
                .parse()
                .with_context(|| format!("{name} in {path} is not a number: {io}"))
        };
        Ok(Self {
            reads: field("syscr")?,
            writes: field("syscw")?,
        })
    }

    /// The counts since `before`.
    pub fn since(self, before: Self) -> Self {
        Self {
            reads: self.reads.saturating_sub(before.reads),
            writes: self.writes.saturating_sub(before.writes),
        }
    }
}

/// A running `switchboard serve` child.
pub struct Replica {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub url: String,
    pub log: PathBuf,
    /// The log's length when the replica was ready: what it logged before
    /// includes the bench's own readiness probes.
    pub ready_at: usize,
}

/// The `switchboard` binary the benches run: `SWITCHBOARD_BENCH_BINARY` when
/// set (to compare two builds side by side), else the one Cargo built.
pub fn binary() -> PathBuf {
    std::env::var_os("SWITCHBOARD_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchboard")))
}

/// Starts `switchboard serve --config <config>` and waits for its
/// "listening on" line.
pub async fn spawn(config: &Path, env: &[(String, String)], log: &Path) -> anyhow::Result<Replica> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = tokio::process::Command::new(binary())
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

/// For each bound in `les` (a bucket bound of its histograms, as written
/// in the page), the share of the session-event POSTs the replica answered
/// 200 within it, timed inside it: `switchboard_intake_seconds` on its
/// `/metrics` page. Empty when the page has no such answers.
pub async fn intake_shares(replica: &Replica, les: &[&str]) -> anyhow::Result<Vec<f64>> {
    let page = reqwest::get(format!("{}/metrics", replica.url))
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("reading the sidecar's /metrics")?
        .text()
        .await
        .context("reading the sidecar's /metrics")?;
    let mut within = vec![0.0; les.len()];
    let mut all = 0.0;
    for line in page.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if !series.contains("route=\"session_events\"") || !series.contains("status=\"200\"") {
            continue;
        }
        let value: f64 = value
            .parse()
            .with_context(|| format!("a sample of /metrics: {line:?}"))?;
        if series.starts_with("switchboard_intake_seconds_count{") {
            all += value;
        } else if series.starts_with("switchboard_intake_seconds_bucket{") {
            for (le, sum) in les.iter().zip(&mut within) {
                if series.contains(&format!("le=\"{le}\"")) {
                    *sum += value;
                }
            }
        }
    }
    if all == 0.0 {
        return Ok(Vec::new());
    }
    Ok(within.into_iter().map(|n| n / all).collect())
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
pub async fn stop(replica: &mut Replica) {
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

/// Both emulators, with every CCAI Platform agent a Kustomer user (AS4);
/// `rate_limit_per_minute` is the Kustomer org budget (not what is measured).
pub async fn start_emulators(
    rate_limit_per_minute: u32,
) -> anyhow::Result<(kustomer_emu::KustomerEmulator, ccai_emu::CcaiEmulator)> {
    let kustomer = kustomer_emu::start(kustomer_emu::KustomerEmulatorConfig {
        rate_limit_per_minute,
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
    Ok((kustomer, ccai))
}

/// The secrets the configuration reads from the environment.
pub fn secret_env(kustomer_key: &str, ccai_token: &str) -> Vec<(String, String)> {
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
/// shared store, its URL read from [`STORE_URL_ENV`]; `intake_log` turns the
/// intake log on.
pub fn write_config(
    dir: &Path,
    kustomer: &kustomer_emu::KustomerEmulator,
    ccai: &ccai_emu::CcaiEmulator,
    backend: Backend,
    intake_log: bool,
) -> anyhow::Result<PathBuf> {
    let creds = ccai.credentials();
    let store = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => format!(
            "\n[store]\nbackend = \"postgres\"\nurl = {{ env = \"{STORE_URL_ENV}\" }}\npool_size = 16\n"
        ),
    };
    // The pipeline threads' priority (`pipeline.nice`) and number
    // (`pipeline.threads`), when set.
    let pipeline_setting = |var: &str, key: &str| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse::<u8>().ok())
            .map(|value| format!("{key} = {value}\n"))
            .unwrap_or_default()
    };
    let pipeline = [
        pipeline_setting("SWITCHBOARD_BENCH_NICE", "nice"),
        pipeline_setting("SWITCHBOARD_BENCH_PIPELINE_THREADS", "threads"),
    ]
    .concat();
    let pipeline = if pipeline.is_empty() {
        pipeline
    } else {
        format!("\n[pipeline]\n{pipeline}")
    };
    // Customers applied at once (`server.workers`).
    let workers = setting("SWITCHBOARD_BENCH_WORKERS", 16);
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"
admin_token = {{ env = "BENCH_ADMIN_TOKEN" }}
workers = {workers}
intake_log = {intake_log}
{store}{pipeline}
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
pub struct Counts {
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
    pub other: u64,
}

/// A second connection to the store, for counting progress.
pub enum Progress {
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
    /// The SQLite store of the configuration in `config_dir` (its
    /// `data/switchboard.db`), opened read-only.
    pub fn sqlite(config_dir: &Path) -> anyhow::Result<Self> {
        let file = config_dir.join("data").join("switchboard.db");
        let conn = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", file.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Progress::Sqlite(conn))
    }

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
pub async fn counts(mut progress: Progress) -> anyhow::Result<(Progress, Counts)> {
    tokio::task::spawn_blocking(move || {
        let counts = progress.counts();
        counts.map(|c| (progress, c))
    })
    .await
    .context("the progress query panicked")?
}

/// Polls the inbox every 100 ms until all `total` events are `done`; returns
/// the connection and the time since `started`. Fails when an event failed
/// or was dead-lettered, a replica exited, or [`APPLY_LIMIT`] passed; prints
/// progress every 5 s. `label` and `dir` (where the logs are) go into the
/// messages.
pub async fn wait_applied(
    label: &str,
    mut progress: Progress,
    replicas: &mut [Replica],
    total: u64,
    started: Instant,
    dir: &Path,
) -> anyhow::Result<(Progress, Duration)> {
    let mut last_report = Instant::now();
    loop {
        let (back, c) = counts(progress).await?;
        progress = back;
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
            return Ok((progress, started.elapsed()));
        }
        for r in replicas.iter_mut() {
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
    }
}

/// The batches to post, serialized once: event `i` from customer
/// `i % customers`, in order.
pub fn batches(load: Load) -> anyhow::Result<Vec<bytes::Bytes>> {
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

/// Posts the batches round robin over `urls`: from `load.senders` tasks in
/// a closed loop, or on a fixed schedule of `load.rate` events per second
/// (see [`post_paced`]). Returns each POST's latency, sorted.
pub async fn post(
    urls: Vec<String>,
    batches: Vec<bytes::Bytes>,
    load: Load,
) -> anyhow::Result<Vec<Duration>> {
    if load.rate > 0 {
        // On a thread and runtime of its own, so the schedule does not
        // queue behind the emulators' tasks on this process's workers.
        let posts_per_s = load.rate as f64 / load.batch as f64;
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(post_paced(urls, batches, posts_per_s))
        })
        .await
        .context("the paced poster panicked")?
    } else {
        post_all(urls, batches, load.senders).await
    }
}

/// Sends batch `k` at `k / posts_per_s` seconds after the start, each on a
/// task of its own, whether or not the ones before were answered: the
/// latency of a POST counts from when it was due, so a stalled intake shows
/// in every POST it delayed (no coordinated omission). A refused POST stops
/// everything with its body.
pub async fn post_paced(
    urls: Vec<String>,
    batches: Vec<bytes::Bytes>,
    posts_per_s: f64,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let urls: Vec<String> = urls
        .iter()
        .map(|u| format!("{u}/v1/tenants/{TENANT}/ccai/session-events"))
        .collect();
    let gap = Duration::from_secs_f64(1.0 / posts_per_s);
    let start = tokio::time::Instant::now();
    let mut posting = tokio::task::JoinSet::<anyhow::Result<Duration>>::new();
    let mut latencies = Vec::with_capacity(batches.len());
    for (k, body) in batches.into_iter().enumerate() {
        let due = start + gap.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        let (client, url) = (client.clone(), urls[k % urls.len()].clone());
        posting.spawn(async move {
            post_batch(&client, &url, k, body).await?;
            Ok(due.elapsed())
        });
        // Reap what finished, so a refusal stops the schedule early.
        while let Some(joined) = posting.try_join_next() {
            latencies.push(joined.context("a poster panicked")??);
        }
    }
    while let Some(joined) = posting.join_next().await {
        latencies.push(joined.context("a poster panicked")??);
    }
    latencies.sort();
    Ok(latencies)
}

/// Posts batch `k` to `url`; a refusal is an error with its body.
async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    k: usize,
    body: bytes::Bytes,
) -> anyhow::Result<()> {
    let answer = client
        .post(url)
        .basic_auth(EVENTS_USER, Some(EVENTS_PASSWORD))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting batch {k} to {url}"))?;
    let status = answer.status();
    if !status.is_success() {
        let body = answer.text().await.unwrap_or_default();
        bail!("{url} answered batch {k} with {status}: {body}");
    }
    Ok(())
}

/// Posts the batches round robin over `urls` from `senders` tasks; returns
/// each POST's latency. A refused POST stops everything with its body.
pub async fn post_all(
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
    let mut posting = tokio::task::JoinSet::<anyhow::Result<Vec<Duration>>>::new();
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
                post_batch(&client, url, k, body.clone()).await?;
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
pub fn log_findings(replica: &Replica) -> (usize, Vec<String>) {
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
