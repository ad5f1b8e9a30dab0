//! Kustomer API emulator.

/// Command-line options of `switchboard-emulators kustomer`.
#[derive(Debug, clap::Args)]
pub struct CliArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
}

/// Runs the emulator until interrupted.
pub async fn run_cli(args: CliArgs) -> anyhow::Result<()> {
    anyhow::bail!("kustomer emulator not implemented yet (port {})", args.port)
}
