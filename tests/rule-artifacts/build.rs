//! Compiles every cdylib crate of the `rules/` and `tests/test-rules/` cargo
//! workspaces for `wasm32-wasip2` (rustc emits components directly) and writes
//! `artifacts.rs` with one path constant per crate.
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .context("rule-artifacts must live at tests/rule-artifacts")?
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    for dir in [
        "rules",
        "tests/test-rules",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    ensure_target_installed()?;

    let mut generated = String::new();
    for (workspace, prefix) in [("rules", "rules"), ("tests/test-rules", "fixture")] {
        let manifest = root.join(workspace).join("Cargo.toml");
        let names = build_workspace(&manifest, &out_dir.join(prefix))?;
        let target_dir = out_dir.join(prefix).join(TARGET).join("release");
        let mut idents = Vec::new();
        for name in names {
            let file = target_dir.join(format!("{}.wasm", name.replace('-', "_")));
            if !file.exists() {
                bail!("{} was built but {} is missing", name, file.display());
            }
            let ident = name.to_uppercase().replace('-', "_");
            writeln!(generated, "/// Compiled `{name}` component.")?;
            writeln!(
                generated,
                "pub const {ident}: &str = {:?};",
                file.display().to_string()
            )?;
            idents.push(ident);
        }
        writeln!(
            generated,
            "/// Calls `$m!(name)` for each `{prefix}` artifact.\n#[macro_export]\nmacro_rules! foreach_{prefix} {{ ($m:ident) => {{ {} }}; }}",
            idents
                .iter()
                .map(|i| format!("$m!({});", i.to_lowercase()))
                .collect::<String>()
        )?;
    }
    std::fs::write(out_dir.join("artifacts.rs"), generated)?;
    Ok(())
}

fn ensure_target_installed() -> Result<()> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = String::from_utf8(sysroot.stdout)?;
    let lib = Path::new(sysroot.trim()).join("lib/rustlib").join(TARGET);
    if !lib.exists() {
        bail!("the {TARGET} target is not installed; run: rustup target add {TARGET}");
    }
    Ok(())
}

/// Builds the workspace and returns the names of its cdylib packages.
fn build_workspace(manifest: &Path, target_dir: &Path) -> Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    let metadata = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .with_context(|| format!("cargo metadata for {}", manifest.display()))?;
    if !metadata.status.success() {
        bail!(
            "cargo metadata failed for {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&metadata.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let mut names = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let is_cdylib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                t["crate_types"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c == "cdylib")
            });
        if is_cdylib {
            if let Some(name) = package["name"].as_str() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();

    // Forward -D warnings only when the outer build denies warnings.
    let outer = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let deny = outer
        .split('\x1f')
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w == ["-D", "warnings"])
        || outer.split('\x1f').any(|f| f == "-Dwarnings");

    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("RUSTFLAGS", if deny { "-D warnings" } else { "" });
    let status = cmd
        .status()
        .with_context(|| format!("running cargo build for {}", manifest.display()))?;
    if !status.success() {
        bail!("building rule modules in {} failed", manifest.display());
    }
    Ok(names)
}
