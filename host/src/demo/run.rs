//! The `switchboard demo` program: a contact-centre day through the sidecar.
use super::{Stack, StackOptions};
use anyhow::{bail, Context as _};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai as ccai_emu;

/// Options of `switchboard demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory holding `rules_default.wasm` and `rules_example_vip.wasm`;
    /// by default they are built from this checkout's `rules/`.
    #[arg(long)]
    pub modules: Option<PathBuf>,
}

/// The repository's `rules/` workspace, as seen from this crate's sources.
fn rules_workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("rules")
}

/// Builds the shipped rule modules for wasm32-wasip2 and returns their directory.
fn build_modules() -> anyhow::Result<PathBuf> {
    let workspace = rules_workspace();
    if !workspace.join("Cargo.toml").exists() {
        bail!(
            "cannot find the rules workspace at {}; pass --modules DIR with rules_default.wasm and rules_example_vip.wasm",
            workspace.display()
        );
    }
    let target_dir = workspace.join("..").join("target").join("rules");
    let started = Instant::now();
    println!(
        "  building rule modules from {} for wasm32-wasip2 …",
        workspace.display()
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("running cargo to build the rule modules")?;
    if !status.success() {
        bail!("building the rule modules failed (is the target installed? run: rustup target add wasm32-wasip2)");
    }
    println!("  built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(target_dir.join("wasm32-wasip2").join("release"))
}

fn attrs(v: &Value) -> &Value {
    &v["attributes"]
}

fn s(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| {
        if v.is_null() {
            "-".into()
        } else {
            v.to_string()
        }
    })
}

/// Runs the demo; returns an error (non-zero exit) if any event failed.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!("Switchboard demo: one contact-centre day from CCAI Platform into Kustomer, all on 127.0.0.1.\n");
    println!("1. Rule modules");
    let dir = match args.modules {
        Some(dir) => dir,
        None => build_modules()?,
    };
    let default = dir.join("rules_default.wasm");
    let vip = dir.join("rules_example_vip.wasm");
    for path in [&default, &vip] {
        if !path.exists() {
            bail!("missing {}", path.display());
        }
    }

    println!("\n2. Starting the Kustomer emulator, the CCAI Platform emulator and the sidecar");
    let stack = Stack::start(StackOptions::new(&default)).await?;
    let live = stack
        .app
        .registry()
        .live(&stack.options.tenant)
        .context("default module is live")?;
    println!("  Kustomer emulator      {}", stack.kustomer.base_url());
    println!("  CCAI Platform emulator {}", stack.ccai.base_url());
    println!(
        "  sidecar                {}  (metrics: {}/metrics)",
        stack.url(),
        stack.url()
    );
    println!(
        "  tenant `acme` runs the default module v{} ({}…)",
        live.info.version,
        &live.info.digest[..12]
    );
    let fields = |resource: &str| {
        stack.kustomer.control().metadata(resource)["attributes"]["properties"]
            .as_object()
            .map_or(0, |p| p.len())
    };
    println!(
        "  custom fields provisioned in Kustomer (CF1): {} on customers, {} on conversations",
        fields("customer"),
        fields("conversation")
    );

    println!("\n3. Playing the day's sessions (External Session Events, chat webhooks, Manager API final records)");
    let scenarios = ccai_emu::scenarios();
    let half = scenarios.len() / 2;
    let mut failures = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        if i == half {
            let (status, body) = stack.upload_module(std::fs::read(&vip)?).await?;
            if status != 201 {
                bail!("uploading the example module failed with {status}: {body}");
            }
            println!(
                "  -- hot swap: the VIP example module is live as v{} (uploaded through the admin API, no restart) --",
                body["version"]
            );
        }
        let started = Instant::now();
        let deliveries = stack.play(scenario).await?;
        stack.wait_idle(Duration::from_secs(30)).await?;
        println!(
            "  [{:>2}/{}] {:<34} {:<10} {} deliveries, {:>4} ms",
            i + 1,
            scenarios.len(),
            scenario.name,
            scenario.spec_ids.join(","),
            deliveries,
            started.elapsed().as_millis()
        );
    }
    let store = stack.app.store();
    for row in store.events(&stack.options.tenant)? {
        if row.status == crate::store::InboxStatus::Failed {
            failures.push(format!(
                "{} ({}): {}",
                row.event_id,
                row.session_id,
                row.reason.unwrap_or_default()
            ));
        }
    }

    println!("\n4. Agent status sync and click-to-call");
    agent_features(&stack).await?;

    println!("\n5. What Switchboard did in Kustomer");
    summary(&stack)?;
    let outcomes = store.outcomes(&stack.options.tenant)?;
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        *by_version
            .entry(
                o.module_version
                    .map_or("native defaults".into(), |v| format!("module v{v}")),
            )
            .or_default() += 1;
    }
    println!(
        "\n  events decided: {} ({})",
        outcomes.len(),
        by_version
            .iter()
            .map(|(k, v)| format!("{v} by {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    stack.shutdown().await;
    if !failures.is_empty() {
        println!("\n  {} event(s) failed:", failures.len());
        for f in &failures {
            println!("    {f}");
        }
        bail!("{} event(s) failed", failures.len());
    }
    println!("\nDone: every event applied. `host/switchboard.example.toml` runs the service against the emulators (the steps are in its header).");
    Ok(())
}

fn summary(stack: &Stack) -> anyhow::Result<()> {
    let k = stack.kustomer.control();
    let customers = k.customers();
    let conversations = k.conversations();
    let messages = k.messages();
    let notes = k.notes();
    let attachments = k.attachments();
    let users: BTreeMap<String, String> = k
        .users()
        .iter()
        .map(|u| (s(&u["id"]), s(&attrs(u)["email"])))
        .collect();
    println!(
        "  {} customers, {} conversations, {} messages, {} notes, {} attachments",
        customers.len(),
        conversations.len(),
        messages.len(),
        notes.len(),
        attachments.len()
    );
    println!(
        "\n  {:<26} {:<8} {:<4} {:<20} {:<22} custom fields",
        "conversation", "status", "prio", "assignee", "tags"
    );
    for c in &conversations {
        let a = attrs(c);
        let assignee = a["assignedUsers"]
            .as_array()
            .and_then(|u| u.first())
            .map(|id| users.get(&s(id)).cloned().unwrap_or_else(|| s(id)))
            .unwrap_or_else(|| "-".into());
        let tags = a["tags"]
            .as_array()
            .map(|t| t.iter().map(s).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let custom = a["custom"].as_object().map_or(0, |m| m.len());
        println!(
            "  {:<26} {:<8} {:<4} {:<20} {:<22} {}",
            s(&a["name"]).chars().take(26).collect::<String>(),
            s(&a["status"]),
            s(&a["priority"]),
            assignee,
            if tags.is_empty() { "-".into() } else { tags },
            custom
        );
    }
    Ok(())
}

// ------------------------------------------- status sync and click-to-call

/// Step 4: one Kustomer status change synced to CCAI Platform (AS1, AS2) and
/// one click-to-call, prefilled then dialled (C2C1, C2C2).
async fn agent_features(stack: &Stack) -> anyhow::Result<()> {
    use super::AGENT_API_TOKEN;
    let http = reqwest::Client::new();
    let agent = stack
        .ccai
        .agents()
        .into_iter()
        .find(|a| a.email == "grace@example.com")
        .context("demo agent Grace")?;
    let status_name = |id: i64| {
        ccai_emu::default_statuses()
            .into_iter()
            .find(|s| s.id == id)
            .map_or_else(|| id.to_string(), |s| s.name)
    };
    println!(
        "  Grace's CCAI Platform status: {}",
        status_name(agent.status_id)
    );
    let answer: Value = http
        .post(format!("{}/v1/tenants/{}/kustomer/status", stack.url(), stack.options.tenant))
        .bearer_auth(AGENT_API_TOKEN)
        .json(&serde_json::json!({ "agent_email": agent.email, "status": "Lunch", "instance_id": "demo-tab" }))
        .send()
        .await?
        .json()
        .await?;
    let decision = &answer["decision"];
    println!(
        "  Kustomer reports Grace at \"Lunch\" → rule decision: {} {} \"{}\" (applied: {})",
        s(&decision["decision"]),
        s(&decision["target"]),
        s(&decision["target_status"]),
        decision["applied"]
    );
    let now = stack
        .ccai
        .agent(agent.id)
        .map(|a| a.status_id)
        .unwrap_or(agent.status_id);
    println!("  Grace's CCAI Platform status now: {}", status_name(now));

    let click = |mode: &str| {
        http.post(format!("{}/v1/tenants/{}/click-to-call", stack.url(), stack.options.tenant))
            .bearer_auth(AGENT_API_TOKEN)
            .json(&serde_json::json!({ "agent_email": "ada@example.com", "phone": "(415) 555-0101", "mode": mode }))
            .send()
    };
    let prefill: Value = click("prefill").await?.json().await?;
    println!(
        "  click-to-call prefill of (415) 555-0101 for Ada → {}, conversation to follow: {}",
        s(&prefill["number"]),
        s(&prefill["conversation_id"])
    );
    let response = click("dial").await?;
    let status = response.status().as_u16();
    let dial: Value = response.json().await?;
    if status != 201 {
        bail!("click-to-call dial answered {status}: {dial}");
    }
    let call_id = dial["call_id"].as_u64().context("call id")?;
    println!(
        "  click-to-call dial → CCAI Platform call {call_id} ({})",
        s(&dial["status"])
    );
    let session = stack
        .ccai
        .api_call_scenario(call_id, 45)
        .context("the placed call")?;
    stack.play(&session).await?;
    stack.wait_idle(Duration::from_secs(30)).await?;
    let link = stack
        .app
        .store()
        .session_link(&stack.options.tenant, &format!("call-{call_id}"))?;
    println!(
        "  the outbound call went through the pipeline: conversation {} (TU2 follow-up: {})",
        link.as_ref()
            .map_or("-".into(), |l| l.conversation_id.clone()),
        link.as_ref().is_some_and(
            |l| Some(l.conversation_id.as_str()) == prefill["conversation_id"].as_str()
        )
    );
    Ok(())
}
