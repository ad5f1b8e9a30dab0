//! `switchboard rules check|test`.
use crate::runtime::{types, CallError, CallMeta, LoadedModule, Runtime, RuntimeConfig};
use anyhow::{bail, Context as _};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rule-module commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a module: print its world, exports, size and compile time, or
    /// exit non-zero with the reason it would be refused.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Run recorded cases (event + context in, expected plan out) and print a
    /// diff for each failure.
    Test {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Directory of `*.json` cases.
        cases: PathBuf,
        /// Write the actual output into each case as its expectation.
        #[arg(long)]
        bless: bool,
    },
    /// Re-decide a tenant's recorded events with a candidate module and
    /// compare its plans with the recorded ones (before it goes live, RM5).
    /// Exits non-zero when any plan differs.
    Replay {
        /// The candidate component (`.wasm`).
        file: PathBuf,
        /// The service's data directory (`server.data_dir`).
        #[arg(long)]
        data_dir: PathBuf,
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Replay at most this many of the most recent decisions.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Diffs printed at most.
        #[arg(long, default_value_t = 5)]
        show: usize,
    },
    /// How the tenant's shadow module's decisions compare with the live
    /// ones (RM7): counts, then the latest differences and failures.
    Shadow {
        /// The service's data directory (`server.data_dir`).
        #[arg(long)]
        data_dir: PathBuf,
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Differences and failures listed at most.
        #[arg(long, default_value_t = 5)]
        show: usize,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Check { file } => check(&file),
        RulesCommand::Test { file, cases, bless } => test(&file, &cases, bless),
        RulesCommand::Replay {
            file,
            data_dir,
            tenant,
            limit,
            show,
        } => replay(&file, &data_dir, &tenant, limit, show),
        RulesCommand::Shadow {
            data_dir,
            tenant,
            show,
            json,
        } => shadow(&data_dir, &tenant, show, json),
    }
}

/// Where the rules commands keep compiled modules: `SWITCHBOARD_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/switchboard/compiled`, else
/// `~/.cache/switchboard/compiled`; `SWITCHBOARD_CACHE_DIR=""` turns it off.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("switchboard").join("compiled"))
}

/// The runtime of the rules commands, with the compiled-module cache in
/// `dir` (or the user's cache directory).
fn runtime(dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    Ok(match dir.or_else(cache_dir) {
        Some(dir) => runtime.with_disk_cache(dir),
        None => runtime,
    })
}

fn load(runtime: &Runtime, file: &Path) -> anyhow::Result<std::sync::Arc<LoadedModule>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    runtime
        .load(&bytes)
        .with_context(|| format!("{} is not a usable rule module", file.display()))
}

fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = runtime(None)?;
    let module = load(&runtime, file)?;
    let info = &module.info;
    println!("{}: ok", file.display());
    println!("  world         {}", info.world);
    println!("  exports       {}", info.exports.join(", "));
    println!("  imports       {}", info.imports.join(", "));
    println!(
        "  size          {} bytes ({:.1} KiB)",
        info.size_bytes,
        info.size_bytes as f64 / 1024.0
    );
    println!("  digest        {}", info.digest);
    println!(
        "  compile time  {:.1} ms{}",
        info.compile_time.as_secs_f64() * 1e3,
        match info.compiled {
            crate::runtime::Compiled::Now => "",
            crate::runtime::Compiled::FromCache => " (read from the compiled-module cache)",
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One recorded case. Exactly one of `session` and `status` is present.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A session event case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionCase>,
    /// A status change case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusCase>,
}

/// `on-session-event` input and expected output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCase {
    /// The event.
    pub event: types::SessionEvent,
    /// The context the host would have loaded.
    pub context: types::Context,
    /// The plan, or the rule error, the module must return.
    pub expect: Expected<types::Plan>,
}

/// `on-status-change` input and expected output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCase {
    /// The change.
    pub change: types::StatusChange,
    /// The status context.
    pub context: types::StatusContext,
    /// The decision the module must return.
    pub expect: types::StatusDecision,
}

/// An expected result: a value, or a rule error with this code.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Expected<T> {
    /// The call returns this value.
    Ok(T),
    /// The call fails with a rule error carrying this code.
    RuleError(String),
}

fn test(file: &Path, dir: &Path, bless: bool) -> anyhow::Result<ExitCode> {
    let runtime = runtime(None)?;
    let module = load(&runtime, file)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read cases directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no *.json cases in {}", dir.display());
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match run_case(&runtime, &module, path, &name, bless) {
            Ok(None) => {
                passed += 1;
                println!("PASS {name}");
            }
            Ok(Some(diff)) => {
                failed += 1;
                println!("FAIL {name}\n{diff}");
            }
            Err(error) => {
                failed += 1;
                println!("FAIL {name}: {error:#}");
            }
        }
    }
    println!("\n{passed} passed, {failed} failed ({} cases)", paths.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one case; `Ok(Some(diff))` when the output differs.
fn run_case(
    runtime: &Runtime,
    module: &LoadedModule,
    path: &Path,
    name: &str,
    bless: bool,
) -> anyhow::Result<Option<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut case: Case = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid case", path.display()))?;
    let meta = CallMeta::new("case", name);
    let (expected, actual) = match (&mut case.session, &mut case.status) {
        (Some(session), None) => {
            let actual =
                match runtime.on_session_event(module, &meta, &session.event, &session.context) {
                    Ok(plan) => Expected::Ok(plan),
                    Err(CallError::Rule { code, .. }) => Expected::RuleError(code),
                    Err(other) => return Err(other.into()),
                };
            let pair = (
                serde_json::to_string_pretty(&session.expect)?,
                serde_json::to_string_pretty(&actual)?,
            );
            session.expect = actual;
            pair
        }
        (None, Some(status)) => {
            let actual =
                runtime.on_status_change(module, &meta, &status.change, &status.context)?;
            let pair = (
                serde_json::to_string_pretty(&status.expect)?,
                serde_json::to_string_pretty(&actual)?,
            );
            status.expect = actual;
            pair
        }
        _ => bail!(
            "{}: a case needs exactly one of `session` or `status`",
            path.display()
        ),
    };
    if expected == actual {
        return Ok(None);
    }
    if bless {
        std::fs::write(path, serde_json::to_string_pretty(&case)? + "\n")?;
        return Ok(None);
    }
    let diff = similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string();
    Ok(Some(diff))
}

fn replay(
    file: &Path,
    data_dir: &Path,
    tenant: &str,
    limit: usize,
    show: usize,
) -> anyhow::Result<ExitCode> {
    let db = crate::store::Store::path_in(data_dir);
    if !db.exists() {
        bail!("no store at {}", db.display());
    }
    let store = crate::store::Store::open(db)?;
    let runtime = runtime(Some(data_dir.join("compiled")))?;
    let module = load(&runtime, file)?;
    let outcomes = store.outcomes(tenant)?;
    let recorded: Vec<_> = outcomes
        .iter()
        .filter(|o| o.plan.is_some() && o.context.is_some())
        .collect();
    let start = recorded.len().saturating_sub(limit);
    let (mut same, mut different, mut errors, mut shown) = (0usize, 0usize, 0usize, 0usize);
    for outcome in &recorded[start..] {
        let Some(row) = store.event(tenant, &outcome.event_id)? else {
            continue;
        };
        let event: types::SessionEvent = serde_json::from_value(row.body.clone())?;
        let ctx: types::Context =
            serde_json::from_value(outcome.context.clone().unwrap_or_default())?;
        let meta =
            CallMeta::new(tenant, &event.id).with_clock_ms(crate::pipeline::clock_ms(&event.at));
        let recorded_plan = serde_json::to_string_pretty(
            outcome.plan.as_ref().unwrap_or(&serde_json::Value::Null),
        )?;
        let candidate = match runtime.on_session_event(&module, &meta, &event, &ctx) {
            // Through `Value` so both sides have the same (sorted) key order.
            Ok(plan) => serde_json::to_string_pretty(&serde_json::to_value(&plan)?)?,
            Err(e) => {
                errors += 1;
                println!("ERROR {}: {e}", event.id);
                continue;
            }
        };
        if candidate == recorded_plan {
            same += 1;
            continue;
        }
        different += 1;
        if shown < show {
            shown += 1;
            let by = outcome
                .module_version
                .map_or("native defaults".to_string(), |v| format!("v{v}"));
            println!("DIFF {} (recorded by {by})", event.id);
            print!(
                "{}",
                similar::TextDiff::from_lines(&recorded_plan, &candidate)
                    .unified_diff()
                    .context_radius(2)
                    .header("recorded", "candidate")
            );
        }
    }
    let total = same + different + errors;
    println!("\n{total} recorded decisions replayed: {same} same, {different} different, {errors} errors");
    Ok(if different == 0 && errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn shadow(data_dir: &Path, tenant: &str, show: usize, json: bool) -> anyhow::Result<ExitCode> {
    let path = data_dir.join("modules").join(tenant).join("shadow.json");
    let info: crate::runtime::ShadowInfo = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a shadow record", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "tenant `{tenant}` has no shadow module (no {})",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let db = crate::store::Store::path_in(data_dir);
    if !db.exists() {
        bail!("no store at {}", db.display());
    }
    let store = crate::store::Store::open(db)?;
    let report = store.shadow_report(tenant, &info.digest, show)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "tenant": tenant, "shadow": info, "report": report })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{tenant}: shadow {} (from {}, since {})",
        &info.digest[..12.min(info.digest.len())],
        info.source,
        info.since
    );
    println!(
        "  decided {}: {} same, {} different, {} failed; {} skipped (no free slot)",
        report.decided, report.matched, report.differed, report.errors, report.skipped
    );
    for d in &report.differences {
        println!("  differs on {} ({})", d.event_id, d.decided_at);
        let pretty =
            |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
        print!(
            "{}",
            similar::TextDiff::from_lines(&pretty(&d.live_plan), &pretty(&d.shadow_plan))
                .unified_diff()
                .context_radius(2)
                .header("live", "shadow")
        );
    }
    for f in &report.failures {
        println!("  failed on {}: {}", f.event_id, f.error);
    }
    Ok(ExitCode::SUCCESS)
}
