//! The `switchboard` command line.
use clap::{CommandFactory as _, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod ops;
pub mod rules;
mod scaffold;

/// Switchboard: CCAI Platform → Kustomer, decided by WebAssembly rule modules.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a contact-centre day through the sidecar against both emulators
    /// on loopback, and print what happened in Kustomer.
    #[cfg(feature = "demo")]
    Demo(crate::demo::run::DemoArgs),
    /// Run the sidecar.
    Serve {
        /// The configuration file.
        #[arg(long, short, default_value = "switchboard.toml")]
        config: PathBuf,
    },
    /// Validate, test and compare rule modules.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Kustomer custom fields.
    #[command(subcommand)]
    Fields(FieldsCommand),
    /// Inspect and retry processed events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// What the sidecar knows of contact-centre sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Print a shell completion script, e.g.
    /// `switchboard completions bash > /etc/bash_completion.d/switchboard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum FieldsCommand {
    /// Create the standard custom fields in Kustomer (idempotent; never
    /// removes fields it did not create).
    Provision {
        #[arg(long, short, default_value = "switchboard.toml")]
        config: PathBuf,
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Record the fields as provisioned since this time (RFC 3339, e.g.
        /// `2026-01-15T00:00:00Z`) instead of now: for fields that existed in
        /// Kustomer before, so sessions that started after it are filled too.
        /// The earliest time ever recorded for the tenant stands.
        #[arg(long, value_parser = since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// `--since`: an RFC 3339 time, in any offset.
fn since(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-01-15T00:00:00Z"))
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List a tenant's events with their status and failure reason.
    List {
        #[arg(long, short, default_value = "switchboard.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// Only failed and dead-lettered events.
        #[arg(long)]
        failed: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Requeue failed and dead-lettered events (all of the tenant's, or one).
    Retry(SelectedEvents),
    /// Give up on dead-lettered events (all of the tenant's, or one): they
    /// are marked skipped and the customers' later events go ahead.
    Skip(SelectedEvents),
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// One session's ledger: what every source said of it, merged, and each
    /// transition derived from it with its state (pending, done, failed…).
    Show {
        #[arg(long, short, default_value = "switchboard.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// `call-1001`, `chat-77`, or CCAI Platform's own numeric id.
        session: String,
        /// The whole ledger and the transitions as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A tenant's events, or one of them.
#[derive(Debug, clap::Args)]
struct SelectedEvents {
    #[arg(long, short, default_value = "switchboard.toml")]
    config: PathBuf,
    #[arg(long)]
    tenant: String,
    /// Only this event id.
    #[arg(long)]
    event: Option<String>,
}

/// Entry point of the `switchboard` binary.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => ops::runtime()
            .and_then(|rt| rt.block_on(crate::demo::run::run(args)))
            .map(|()| ExitCode::SUCCESS),
        Command::Serve { config } => ops::serve(&config),
        Command::Rules(cmd) => rules::run(cmd),
        Command::Fields(FieldsCommand::Provision {
            config,
            tenant,
            since,
        }) => ops::provision(&config, &tenant, since),
        Command::Events(EventsCommand::List {
            config,
            tenant,
            failed,
            json,
        }) => ops::list_events(&config, &tenant, failed, json),
        Command::Sessions(SessionsCommand::Show {
            config,
            tenant,
            session,
            json,
        }) => ops::show_session(&config, &tenant, &session, json),
        Command::Events(EventsCommand::Retry(e)) => {
            ops::release_events(&e.config, &e.tenant, e.event.as_deref(), false)
        }
        Command::Events(EventsCommand::Skip(e)) => {
            ops::release_events(&e.config, &e.tenant, e.event.as_deref(), true)
        }
        Command::Completions { shell } => {
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "switchboard", &mut script);
            // A reader that stops early (`| head`) is not an error.
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::new(e).context("writing the completion script"))
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` filters them and `SWITCHBOARD_LOG_FORMAT=json`
/// switches to one JSON object per line.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // The demo prints its own progress; keep the log to warnings unless asked.
    let quiet = std::env::args().nth(1).is_some_and(|a| a == "demo");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(if quiet { "warn" } else { "info" }));
    use std::io::IsTerminal as _;
    // Colour only for a person at a terminal, never in a file or a pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json =
        std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second init (tests calling main twice) is harmless; ignore it.
    let _ = if json {
        // One flat object per line: `message` beside the other fields.
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
