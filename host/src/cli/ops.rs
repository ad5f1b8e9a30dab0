//! `switchboard serve`, `fields provision`, `events list|retry|skip` and
//! `sessions show`.
use crate::app::App;
use crate::config::Config;
use crate::connectors::kustomer::KustomerClient;
use crate::intake::ledger::Ledger;
use crate::store::{InboxStatus, Store};
use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the service until Ctrl-C or SIGTERM; then stops taking requests
/// and lets the events in flight finish within `pipeline.shutdown_grace`.
/// A second signal exits at once (what was not applied stays pending).
pub(crate) fn serve(config: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    runtime()?.block_on(async {
        let app = App::start(config).await?;
        println!("switchboard listening on http://{}", app.addr());
        shutdown_signal().await;
        tracing::info!("shutting down: no new requests; finishing the events in flight");
        tokio::select! {
            () = app.shutdown() => Ok(ExitCode::SUCCESS),
            () = shutdown_signal() => {
                tracing::warn!("second signal: exiting now; unfinished events stay pending");
                Ok(ExitCode::from(130))
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    Store::from_config(&config.store, dir).with_context(|| match &config.store {
        crate::config::StoreConfig::Sqlite => {
            format!("cannot open the store {}", Store::path_in(dir).display())
        }
        crate::config::StoreConfig::Postgres { .. } => "cannot open the PostgreSQL store".into(),
    })
}

/// CF1, KU5: declares in Kustomer every custom attribute the tenant's
/// sessions may write (standard fields, CU1's assignment, mapped SDK keys)
/// and records when (now, or `since`), so only sessions starting afterwards
/// are filled (CF4).
pub(crate) fn provision(
    config: &Path,
    tenant: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let t = config
        .tenant(tenant)
        .with_context(|| format!("no tenant `{tenant}` in the config"))?;
    let store = open_store(&config)?;
    let client = KustomerClient::new(t.kustomer.clone())?;
    let declared = crate::fields::Declared::of(&t.fields, &t.field_mapping);
    let done = runtime()?.block_on(crate::fields::provision(&client, &declared))?;
    let recorded = since
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let names = declared.names();
    store.record_field_provisioning(tenant, &recorded, &serde_json::json!(names))?;
    let (at, _) = store
        .field_provisioning(tenant)?
        .unwrap_or((recorded, serde_json::Value::Null));
    if done.customer.is_empty() && done.conversation.is_empty() {
        println!(
            "{tenant}: all {} fields already present; nothing changed",
            names.len()
        );
    } else {
        println!(
            "{tenant}: created or updated {} customer and {} conversation fields",
            done.customer.len(),
            done.conversation.len()
        );
        for name in done.customer.iter().chain(&done.conversation) {
            println!("  {name}");
        }
    }
    println!("fields are filled for sessions starting after {at}");
    Ok(ExitCode::SUCCESS)
}

/// Lists a tenant's events (all, or failed and dead-lettered only): a line
/// each and a count, or with `json` one JSON object per line (no count), for
/// `jq` and scripts.
pub(crate) fn list_events(
    config: &Path,
    tenant: &str,
    failed: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load_without_secrets(config)?;
    known_tenant(&config, tenant)?;
    let store = open_store(&config)?;
    let rows = store.events(tenant)?;
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    for row in rows
        .iter()
        .filter(|r| !failed || matches!(r.status, InboxStatus::Failed | InboxStatus::Dead))
    {
        shown += 1;
        let line = if json {
            serde_json::json!({
                "status": row.status,
                "event_id": row.event_id,
                "session_id": row.session_id,
                "customer": row.customer_key,
                "source": row.source,
                "at": row.at,
                "attempts": row.attempts,
                "reason": row.reason,
                "received_at": row.received_at,
            })
            .to_string()
        } else {
            format!(
                "{:<8} {:<40} {:<16} {} {}",
                format!("{:?}", row.status).to_lowercase(),
                row.event_id,
                row.session_id,
                row.at,
                row.reason.as_deref().unwrap_or("")
            )
        };
        if !print_line(&mut out, &line)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !json {
        print_line(&mut out, &format!("{shown} event(s)"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one line; `false` once the reader has gone (`… | head`), which
/// is the reader's choice, not an error.
fn print_line(out: &mut impl std::io::Write, line: &str) -> anyhow::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

/// Fails, naming the configured tenants, when `tenant` is not one of them.
fn known_tenant(config: &Config, tenant: &str) -> anyhow::Result<()> {
    if config.tenant(tenant).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
    anyhow::bail!(
        "no tenant `{tenant}` in the config (configured: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Puts failed and dead-lettered events back in the queue (`skip`: gives
/// up on dead letters instead, releasing the customers they held); a
/// running service picks the change up at its next rescan.
pub(crate) fn release_events(
    config: &Path,
    tenant: &str,
    event: Option<&str>,
    skip: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load_without_secrets(config)?;
    known_tenant(&config, tenant)?;
    let store = open_store(&config)?;
    let (n, what) = if skip {
        (
            store.skip_dead(tenant, event)?,
            "dead-lettered event(s) skipped",
        )
    } else {
        (
            store.requeue_failed(tenant, event)?,
            "failed or dead-lettered event(s) requeued",
        )
    };
    if let (0, Some(id)) = (n, event) {
        anyhow::bail!(
            "tenant `{tenant}` has no {} event `{id}`",
            if skip {
                "dead-lettered"
            } else {
                "failed or dead-lettered"
            }
        );
    }
    println!("{n} {what} for `{tenant}`");
    Ok(ExitCode::SUCCESS)
}

/// Prints one session's ledger and the state of each transition derived
/// from it. Exits 1 when the tenant never saw the session.
pub(crate) fn show_session(
    config: &Path,
    tenant: &str,
    session: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load_without_secrets(config)?;
    known_tenant(&config, tenant)?;
    let store = open_store(&config)?;
    // CCAI Platform's own numeric id names a call or a chat.
    let candidates = if session.bytes().all(|b| b.is_ascii_digit()) {
        vec![format!("call-{session}"), format!("chat-{session}")]
    } else {
        vec![session.to_string()]
    };
    let mut found = None;
    for id in candidates {
        if let Some(state) = store.session_state(tenant, &id)? {
            found = Some((id, state));
            break;
        }
    }
    let Some((id, state)) = found else {
        anyhow::bail!("tenant `{tenant}` has no session `{session}`");
    };
    let ledger: Ledger = serde_json::from_str(&state)
        .with_context(|| format!("the stored ledger of {id} cannot be read"))?;
    let key = ledger.customer_key.clone().unwrap_or_default();
    let rows = store.session_events(tenant, &key, &id)?;
    let mut out = std::io::stdout().lock();
    if json {
        let transitions: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "event_id": r.event_id,
                    "status": r.status,
                    "at": r.at,
                    "source": r.source,
                    "reason": r.reason,
                })
            })
            .collect();
        let doc =
            serde_json::json!({ "session": id, "ledger": ledger, "transitions": transitions });
        print_line(&mut out, &serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let item = &ledger.item;
    let summary = [
        format!("session   {id}"),
        format!("customer  {key}"),
        format!("updates   {} merged", ledger.updates),
        format!("status    {}", item.status.as_deref().unwrap_or("-")),
        format!(
            "created   {}   ended {}",
            item.created_at.as_deref().unwrap_or("-"),
            item.ends_at.as_deref().unwrap_or("-")
        ),
        format!("transitions ({}):", rows.len()),
    ];
    for line in summary {
        if !print_line(&mut out, &line)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    for r in &rows {
        let line = format!(
            "  {:<8} {:<40} {} {}",
            format!("{:?}", r.status).to_lowercase(),
            r.event_id,
            r.at,
            r.reason.as_deref().unwrap_or("")
        );
        if !print_line(&mut out, &line)? {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
