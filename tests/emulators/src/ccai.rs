//! CCAI Platform API emulator and scenario player.

/// Command-line options of `switchboard-emulators ccai`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8082)]
    pub port: u16,
}

/// Command-line options of `switchboard-emulators scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario name.
    pub name: Option<String>,
}

/// Runs the emulator until interrupted.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    anyhow::bail!("ccai emulator not implemented yet (port {})", args.port)
}

/// Plays scenarios.
pub async fn run_scenario_cli(args: ScenarioArgs) -> anyhow::Result<()> {
    anyhow::bail!("scenario player not implemented yet ({:?})", args.name)
}
