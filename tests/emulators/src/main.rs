//! Run an emulator on its own:
//! `cargo run -p switchboard-emulators -- kustomer --port 8081`,
//! `cargo run -p switchboard-emulators -- ccai --port 8082`,
//! `cargo run -p switchboard-emulators -- scenario …` (CCAI scenario player),
//! `cargo run -p switchboard-emulators --release -- bench` (Kustomer load figures).
use clap::{Parser, Subcommand};
use switchboard_emulators::{bench, ccai, kustomer};

#[derive(Parser)]
#[command(
    name = "switchboard-emulators",
    about = "Loopback emulators of Kustomer and CCAI Platform"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Kustomer REST API emulator.
    Kustomer(kustomer::CliArgs),
    /// CCAI Platform Apps/Manager API emulator.
    Ccai(ccai::CliArgs),
    /// Play CCAI Platform contact-centre scenarios against a sidecar.
    Scenario(ccai::ScenarioArgs),
    /// Measure the Kustomer emulator: requests/s, CPU per request, memory.
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().cmd {
        Cmd::Kustomer(args) => kustomer::run_cli(args).await,
        Cmd::Ccai(args) => ccai::run_cli(args).await,
        Cmd::Scenario(args) => ccai::run_scenario_cli(args).await,
        Cmd::Bench(args) => {
            let report = bench::run(&args).await?;
            println!("kustomer emulator: {report}");
            Ok(())
        }
    }
}
