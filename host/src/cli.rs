//! The `switchboard` command line.
use std::process::ExitCode;

/// Entry point of the `switchboard` binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
