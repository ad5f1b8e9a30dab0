//! `switchboard-emulators bench`: drives a Kustomer emulator running in its
//! own process with the request mix the sidecar sends per session event, and
//! reports requests per second, the emulator's CPU per request and its memory.
//!
//! The emulator runs as a child process so its CPU time and resident memory
//! can be read from `/proc/<pid>` without counting the load generator.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// Command-line options of `switchboard-emulators bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Session events to simulate (each is 3 to 5 API requests).
    #[arg(long, default_value_t = 4000)]
    pub events: u64,
    /// Distinct customers the events belong to.
    #[arg(long, default_value_t = 1000)]
    pub customers: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub requests: u64,
    pub wall: Duration,
    /// User + system CPU of the emulator process.
    pub cpu: Duration,
    /// Resident memory at the end, and the peak.
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

impl BenchReport {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn cpu_per_request(&self) -> Duration {
        self.cpu / u32::try_from(self.requests.max(1)).unwrap_or(u32::MAX)
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests in {:.2} s: {:.0} requests/s, emulator CPU {:.3} ms/request \
             ({:.2} s total), RSS {:.1} MiB (peak {:.1} MiB)",
            self.requests,
            self.wall.as_secs_f64(),
            self.requests_per_second(),
            self.cpu_per_request().as_secs_f64() * 1e3,
            self.cpu.as_secs_f64(),
            self.rss_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / 1024.0,
        )
    }
}

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields are counted after its `)`.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (1-based),
    // i.e. 12 and 13 after the command name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    // USER_HZ is 100 on every Linux the project builds on.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 10))
}

/// Current and peak resident memory of a process in KiB.
fn process_rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One simulated session event, as the sidecar handles it: find the
/// customer by phone (create on 404), find their latest conversation, create
/// or update it, then log a message.
async fn one_event(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: u64,
    customers: u64,
    count: &AtomicU64,
) -> anyhow::Result<()> {
    let send = |req: reqwest::RequestBuilder| async {
        let resp = req.bearer_auth(key).send().await?;
        count.fetch_add(1, Ordering::Relaxed);
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::Ok((status.as_u16(), body))
    };
    let phone = format!("+1555{:07}", n % customers.max(1));
    let (status, found) = send(http.get(format!("{base}/v1/customers/phone={phone}"))).await?;
    let customer = if status == 200 {
        found["data"]["id"].as_str().unwrap_or_default().to_string()
    } else {
        let (status, made) = send(http.post(format!("{base}/v1/customers")).json(&json!({
            "name": format!("Bench Customer {n}"),
            "phones": [{"type": "mobile", "phone": phone}],
        })))
        .await?;
        if status == 409 {
            // A concurrent event created the same customer first.
            let (_, again) = send(http.get(format!("{base}/v1/customers/phone={phone}"))).await?;
            again["data"]["id"].as_str().unwrap_or_default().to_string()
        } else {
            made["data"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    if customer.is_empty() {
        bail!("no customer id for event {n}");
    }
    let (_, latest) = send(http.get(format!(
        "{base}/v1/customers/{customer}/conversations?sort=desc&pageSize=1"
    )))
    .await?;
    let conversation = match latest["data"][0]["id"].as_str() {
        Some(id) if !n.is_multiple_of(3) => {
            send(
                http.patch(format!("{base}/v1/conversations/{id}"))
                    .json(&json!({"custom": null, "tags": ["bench"]})),
            )
            .await?;
            id.to_string()
        }
        _ => {
            let (_, made) = send(
                http.post(format!("{base}/v1/customers/{customer}/conversations"))
                    .json(&json!({"name": format!("Call {n}")})),
            )
            .await?;
            made["data"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    send(http.post(format!("{base}/v1/messages")).json(&json!({
        "conversation": conversation,
        "channel": "voice",
        "app": "switchboard",
        "direction": "in",
        "preview": format!("call event {n}"),
        "meta": {"callId": n},
    })))
    .await?;
    Ok(())
}

/// Starts this binary's `kustomer` subcommand on a free port, drives it and
/// reports.
pub async fn run(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    run_with(&std::env::current_exe()?, args).await
}

/// [`run`] against the `switchboard-emulators` binary at `exe`.
pub async fn run_with(exe: &std::path::Path, args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let port = free_port()?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "kustomer",
            "--port",
            &port.to_string(),
            "--rate-limit",
            "4000000000",
            "--customer-create-limit",
            "4000000000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the kustomer emulator")?;
    let pid = child.id().context("emulator pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http
        .get(format!("{base}/__control/clock"))
        .send()
        .await
        .is_err()
    {
        if ready.elapsed() > Duration::from_secs(20) {
            bail!("emulator did not start on {base}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = crate::kustomer::DEFAULT_API_KEY;
    let cpu_before = process_cpu(pid)?;
    let count = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, base, count, next) = (http.clone(), base.clone(), count.clone(), next.clone());
        let (events, customers) = (args.events, args.customers);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return anyhow::Ok(());
                }
                one_event(&http, &base, key, n, customers, &count).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let wall = started.elapsed();
    let cpu = process_cpu(pid)?.saturating_sub(cpu_before);
    let (rss_kib, peak_rss_kib) = process_rss(pid)?;
    let _ = child.kill().await;
    Ok(BenchReport {
        requests: count.load(Ordering::Relaxed),
        wall,
        cpu,
        rss_kib,
        peak_rss_kib,
    })
}
