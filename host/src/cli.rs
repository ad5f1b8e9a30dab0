//! The `switchboard` command line.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod rules;

/// Switchboard: CCAI Platform → Kustomer, decided by WebAssembly rule modules.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, test and compare rule modules.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
}

/// Entry point of the `switchboard` binary.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rules(cmd) => rules::run(cmd),
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second init (tests calling main twice) is harmless; ignore it.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
