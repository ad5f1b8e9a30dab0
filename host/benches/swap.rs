//! Hot swap, measured in one run: distinct versions of the default module
//! uploaded one after another to one tenant of a registry that persists
//! into a directory and keeps compiled modules on disk, as `serve` does.
//!
//! Prints the process's resident memory after 10 uploads and after all of
//! them (only the live version and the rollback window stay compiled), the
//! median time of a distinct upload (compiling it) and of uploading again a
//! version that is still compiled and one that left the window (read back
//! from the compiled-module cache), then one summary line.
//!
//! `cargo bench -p switchboard --bench swap`; `SWITCHBOARD_BENCH_UPLOADS`
//! (default 1,000) sets the number of distinct uploads. Each is compiled, so
//! the default run takes several minutes. `SWITCHBOARD_BENCH_MODULE=<file.wasm>`
//! uploads another build of the default rules instead.
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::runtime::{Registry, Runtime, RuntimeConfig};

#[path = "support/module.rs"]
mod module;

/// `bytes` with a custom section carrying `n`: the same rules, a new digest.
fn distinct(bytes: &[u8], n: u32) -> Vec<u8> {
    let name = b"switchboard-bench";
    let mut section = vec![u8::try_from(name.len()).expect("short name")];
    section.extend_from_slice(name);
    section.extend_from_slice(&n.to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(u8::try_from(section.len()).expect("short section"));
    out.extend(section);
    out
}

/// Resident set size of this process, in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let uploads: u32 = std::env::var("SWITCHBOARD_BENCH_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v >= 20)
        .unwrap_or(1_000);
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig::default())?.with_disk_cache(dir.path().join("compiled")),
    );
    let registry = Registry::new(runtime.clone(), Some(dir.path().join("modules")));
    let bytes = module::default_rules()?;
    println!(
        "hot swap bench: {uploads} distinct uploads of the default module ({} KiB)",
        bytes.len() / 1024
    );

    let rss_start = rss_mib();
    let mut compile_times = Vec::new();
    let mut rss_after_10 = 0.0;
    let started = Instant::now();
    for n in 0..uploads {
        let module = distinct(&bytes, n);
        let sent = Instant::now();
        registry.deploy("acme", &module, "bench")?;
        compile_times.push(sent.elapsed());
        if n + 1 == 10 {
            rss_after_10 = rss_mib();
        }
        if (n + 1) % 100 == 0 {
            println!(
                "  {} uploads, {:.1} MiB resident, {} compiled in memory",
                n + 1,
                rss_mib(),
                runtime.cached_modules()
            );
        }
    }
    let rss_after_all = rss_mib();
    let all_in = started.elapsed();

    // Uploading again a version still compiled: the one before the live
    // one and the live one, alternately. Then versions that left the
    // rollback window long ago: read back from the compiled-module cache.
    let mut in_window = Vec::new();
    for round in 0..10u32 {
        let again = distinct(&bytes, uploads - 2 + (round + 1) % 2);
        let sent = Instant::now();
        registry.deploy("acme", &again, "bench again")?;
        in_window.push(sent.elapsed());
    }
    let mut evicted = Vec::new();
    for n in 0..10u32 {
        let sent = Instant::now();
        registry.deploy("acme", &distinct(&bytes, n), "bench evicted")?;
        evicted.push(sent.elapsed());
    }

    println!(
        "resident memory: {rss_start:.1} MiB at start, {rss_after_10:.1} MiB after 10 uploads, \
         {rss_after_all:.1} MiB after {uploads} ({:.2}x of after 10)",
        rss_after_all / rss_after_10
    );
    println!(
        "distinct upload (compile + smoke test + persist): median {:.1} ms ({uploads} in {:.1} s)",
        ms(median(compile_times)),
        all_in.as_secs_f64()
    );
    let (in_window, evicted) = (median(in_window), median(evicted));
    println!(
        "upload again, still compiled: median {:.2} ms; left the window (disk cache): median {:.2} ms",
        ms(in_window),
        ms(evicted)
    );
    println!(
        "rss_after_10_mib={rss_after_10:.1} rss_after_all_mib={rss_after_all:.1} \
         rss_ratio={:.2} reupload_compiled_ms={:.2} reupload_evicted_ms={:.2}",
        rss_after_all / rss_after_10,
        ms(in_window),
        ms(evicted)
    );
    Ok(())
}
