//! `switchboard rules new|check|test|replay|shadow|schema`.
use super::scaffold::{scaffold, Lang, SdkSource};
use crate::runtime::{types, CallError, CallMeta, LoadedModule, Runtime, RuntimeConfig};
use anyhow::{bail, Context as _};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rule-module commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Create a rule-module project: build script, one decision, one case
    /// and a README; it builds and passes `rules test` as written.
    New {
        /// The module's name: lowercase letters, digits and '-'.
        name: String,
        /// The language to write the module in.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// The directory to create (default: ./NAME); must not exist or be
        /// empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust: take the guest SDK from this checkout's `guest-sdk`
        /// directory (the version is kept for a registry).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Rust: take the guest SDK from this git repository.
        #[arg(long)]
        sdk_git: Option<String>,
    },
    /// Validate a module: print its world, exports, size and compile time, or
    /// exit non-zero with the reason it would be refused.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Print what was found as one JSON object.
        #[arg(long)]
        json: bool,
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
        /// Also write each replayed decision as a case file (event, context
        /// and the recorded plan as `expect`) into this directory.
        #[arg(long)]
        save_cases: Option<PathBuf>,
    },
    /// Print the JSON Schema of the case files `rules test` reads (also in
    /// the repository as `docs/case.schema.json`).
    Schema,
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
        RulesCommand::New {
            name,
            lang,
            dir,
            sdk_path,
            sdk_git,
        } => {
            let sdk = match (sdk_path, sdk_git) {
                (Some(path), _) => SdkSource::Path(path),
                (None, Some(url)) => SdkSource::Git(url),
                (None, None) => SdkSource::Registry,
            };
            new(
                &name,
                lang,
                dir.unwrap_or_else(|| PathBuf::from(&name)),
                &sdk,
            )
        }
        RulesCommand::Check { file, json } => check(&file, json),
        RulesCommand::Test { file, cases, bless } => test(&file, &cases, bless),
        RulesCommand::Replay {
            file,
            data_dir,
            tenant,
            limit,
            show,
            save_cases,
        } => replay(
            &file,
            &data_dir,
            &tenant,
            limit,
            show,
            save_cases.as_deref(),
        ),
        RulesCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&case_schema())?);
            Ok(ExitCode::SUCCESS)
        }
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

fn new(name: &str, lang: Lang, dir: PathBuf, sdk: &SdkSource) -> anyhow::Result<ExitCode> {
    let files = scaffold(name, lang, &dir, sdk)?;
    println!("created {} ({} files):", dir.display(), files.len());
    for file in &files {
        println!("  {}", file.strip_prefix(&dir).unwrap_or(file).display());
    }
    println!("next:");
    println!("  cd {}", dir.display());
    match lang {
        Lang::Rust => println!("  rustup target add wasm32-wasip2   # once"),
        Lang::Python => println!(
            "  pip install componentize-py=={}   # once",
            super::scaffold::tool_version("COMPONENTIZE_PY").unwrap_or("latest")
        ),
        Lang::Js => println!("  npm install"),
    }
    println!("  sh build.sh");
    println!("  switchboard rules test {name}.wasm cases");
    Ok(ExitCode::SUCCESS)
}

fn check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let runtime = runtime(None)?;
    let module = load(&runtime, file)?;
    let info = &module.info;
    if json {
        println!("{}", serde_json::to_string(info)?);
        return Ok(ExitCode::SUCCESS);
    }
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
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Where an editor finds this format's JSON Schema (not read here).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
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
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCase {
    /// The event.
    pub event: types::SessionEvent,
    /// The context the host would have loaded.
    pub context: types::Context,
    /// The plan, or the rule error, the module must return; `--bless`
    /// writes it when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expected<types::Plan>>,
}

/// `on-status-change` input and expected output.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusCase {
    /// The change.
    pub change: types::StatusChange,
    /// The status context.
    pub context: types::StatusContext,
    /// The decision the module must return; `--bless` writes it when
    /// missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<types::StatusDecision>,
}

/// A neutral value of every field a case may leave out (DX4): an inbound
/// IVR call created at the case's time, no customer, no conversations, the
/// standard settings; a Kustomer-side change to Available of an idle agent.
fn defaults() -> serde_json::Value {
    let at = "2026-01-01T00:00:00.000Z";
    serde_json::json!({
        "session": {
            "event": {
                "id": "case", "at": at, "kind": "Created",
                "session": {
                    "id": "call-1", "kind": "IvrCall", "channel": "Voice",
                    "direction": "Inbound", "session_type": "Voice Inbound (IVR)",
                    "end_user": { "phone": null, "sdk_identifier": null, "email": null, "name": null },
                    "menu": null, "queue_name": null, "language": null, "agent": null,
                    "started_at": null, "ended_at": null,
                    "durations": { "call_seconds": null, "hold_seconds": null, "wait_seconds": null },
                    "parent_session_id": null, "custom_data": []
                }
            },
            "context": {
                "tenant": "case", "now": at, "customer": null,
                "recent_conversations": [], "linked_conversation": null,
                "settings": { "recording_enabled": true, "fields": [], "field_mapping": [], "options": [] }
            }
        },
        "status": {
            "change": {
                "source": "Kustomer", "agent_email": "agent@example.com", "status": "Available",
                "instance_id": null, "at": at, "login": false
            },
            "context": {
                "kustomer_to_ccai": [], "ccai_to_kustomer": [], "two_way": false,
                "priority": "LastChangeWins", "ccai_status": null, "ccai_activity": "Idle",
                "kustomer_status": null, "active_instances": 1, "pending": null,
                "last_applied": null, "now": at
            }
        }
    })
}

/// `over` laid on `base`: objects merged key by key, anything else replaced.
fn merge(base: &serde_json::Value, over: &serde_json::Value) -> serde_json::Value {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            let mut merged = b.clone();
            for (key, value) in o {
                let next = match b.get(key) {
                    Some(inner) => merge(inner, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            serde_json::Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

/// A case as written, with the defaults filled in under what it gives.
fn complete(written: &serde_json::Value) -> serde_json::Value {
    let defaults = defaults();
    let mut case = written.clone();
    for kind in ["session", "status"] {
        if let Some(given) = written.get(kind) {
            let mut full = merge(&defaults[kind], given);
            if let Some(at) = given
                .pointer("/event/at")
                .or_else(|| given.pointer("/change/at"))
            {
                // The context's "now" follows the case's own time unless given.
                if given.pointer("/context/now").is_none() {
                    full["context"]["now"] = at.clone();
                }
            }
            case[kind] = full;
        }
    }
    case
}

/// The JSON Schema of a case file as written: every object the defaults
/// fill (the neutral defaults of DX4) has no required fields.
pub fn case_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Case)).unwrap_or_default();
    let defaults = defaults();
    if let Some(properties) = schema.get("properties").cloned() {
        for kind in ["session", "status"] {
            relax(&mut schema, &properties[kind], &defaults[kind]);
        }
    }
    schema
}

/// Drops `required` from the definition `node` refers to (directly or
/// through an `anyOf` with null) and from those of its properties that
/// `defaults` fills with an object.
fn relax(schema: &mut serde_json::Value, node: &serde_json::Value, defaults: &serde_json::Value) {
    let refs: Vec<String> = std::iter::once(node)
        .chain(
            node.get("anyOf")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten(),
        )
        .filter_map(|n| n.get("$ref").and_then(|r| r.as_str()))
        .filter_map(|r| r.strip_prefix("#/$defs/").map(str::to_string))
        .collect();
    let Some(fields) = defaults.as_object() else {
        return;
    };
    for name in refs {
        let Some(definition) = schema.pointer_mut(&format!("/$defs/{name}")) else {
            continue;
        };
        if let Some(object) = definition.as_object_mut() {
            object.remove("required");
        }
        let properties = definition.get("properties").cloned().unwrap_or_default();
        for (field, value) in fields {
            if value.is_object() {
                relax(schema, &properties[field.as_str()], value);
            }
        }
    }
}

/// An expected result: a value, or a rule error with this code.
#[derive(Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
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
    let mut written: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let case: Case = serde_json::from_value(complete(&written))
        .with_context(|| format!("{} is not a valid case", path.display()))?;
    let meta = CallMeta::new("case", name);
    // (kind, expected, actual) as JSON.
    let (kind, expected, actual) = match (&case.session, &case.status) {
        (Some(session), None) => {
            let actual =
                match runtime.on_session_event(module, &meta, &session.event, &session.context) {
                    Ok(plan) => Expected::Ok(plan),
                    Err(CallError::Rule { code, .. }) => Expected::RuleError(code),
                    Err(other) => return Err(other.into()),
                };
            (
                "session",
                session
                    .expect
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()?,
                serde_json::to_value(&actual)?,
            )
        }
        (None, Some(status)) => {
            let actual =
                runtime.on_status_change(module, &meta, &status.change, &status.context)?;
            (
                "status",
                status
                    .expect
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()?,
                serde_json::to_value(&actual)?,
            )
        }
        _ => bail!(
            "{}: a case needs exactly one of `session` or `status`",
            path.display()
        ),
    };
    if expected.as_ref() == Some(&actual) {
        return Ok(None);
    }
    if bless {
        // Only `expect` changes: what the case leaves to the defaults stays out.
        written[kind]["expect"] = actual;
        std::fs::write(path, serde_json::to_string_pretty(&written)? + "\n")?;
        return Ok(None);
    }
    let Some(expected) = expected else {
        return Ok(Some(format!(
            "no `expect`; the module returns\n{}\n(run with --bless to record it)",
            serde_json::to_string_pretty(&actual)?
        )));
    };
    let (expected, actual) = (
        serde_json::to_string_pretty(&expected)?,
        serde_json::to_string_pretty(&actual)?,
    );
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
    save_cases: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let db = crate::store::Store::path_in(data_dir);
    if !db.exists() {
        bail!("no store at {}", db.display());
    }
    let store = crate::store::Store::open(db)?;
    let outcomes = store.outcomes(tenant)?;
    if outcomes.is_empty() {
        let known = store.tenants()?;
        bail!(
            "tenant `{tenant}` has no recorded decisions in {} (tenants with decisions: {})",
            data_dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let runtime = runtime(Some(data_dir.join("compiled")))?;
    let module = load(&runtime, file)?;
    if let Some(dir) = save_cases {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Session decisions only: status decisions are recorded without a
    // replayable context.
    let mut recorded = Vec::new();
    for outcome in &outcomes {
        let (Some(plan), Some(context)) = (&outcome.plan, &outcome.context) else {
            continue;
        };
        let Some(row) = store.event(tenant, &outcome.event_id)? else {
            continue;
        };
        if row.source.starts_with(crate::pipeline::AGENT_STATUS_SOURCE) {
            continue;
        }
        recorded.push((outcome, row, plan, context));
    }
    let start = recorded.len().saturating_sub(limit);
    let (mut same, mut different, mut errors, mut shown) = (0usize, 0usize, 0usize, 0usize);
    for (outcome, row, plan, context) in &recorded[start..] {
        let decoded =
            serde_json::from_str::<types::SessionEvent>(row.body.get()).and_then(|event| {
                Ok((
                    event,
                    serde_json::from_value::<types::Context>((*context).clone())?,
                ))
            });
        let (event, ctx) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                errors += 1;
                println!(
                    "ERROR {}: the recorded event cannot be read: {e}",
                    row.event_id
                );
                continue;
            }
        };
        if let Some(dir) = save_cases {
            let case = serde_json::json!({
                "description": format!("recorded decision of {} ({})", event.id, row.session_id),
                "session": { "event": &event, "context": &ctx, "expect": { "ok": plan } },
            });
            let name: String = event
                .id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(&case)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let meta =
            CallMeta::new(tenant, &event.id).with_clock_ms(crate::pipeline::clock_ms(&event.at));
        let recorded_plan = serde_json::to_string_pretty(plan)?;
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
    use crate::runtime::registry::{DirModules, ModuleStore};
    let modules = data_dir.join("modules");
    let persisted = DirModules::new(&modules)
        .load(tenant)
        .with_context(|| format!("cannot read the module registry in {}", modules.display()))?;
    let Some(info) = persisted.and_then(|p| p.shadow) else {
        bail!(
            "tenant `{tenant}` has no shadow module (none recorded in {})",
            modules.join(tenant).join("registry.json").display()
        )
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
