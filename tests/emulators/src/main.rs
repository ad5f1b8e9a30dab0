//! `switchboard-emulators kustomer --port 8081` / `switchboard-emulators ccai --port 8082`.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("no emulator is wired yet")
}
