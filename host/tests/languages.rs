//! Rule modules in Rust, Python and JavaScript, as a tenant developer makes
//! them: `switchboard rules new` (DX1) and the examples under
//! `rules/examples/` (DX2), each built by its own `build.sh` and run through
//! `switchboard rules test` against its cases.
//!
//! The Python and JavaScript tests need componentize-py and componentize-js
//! on `PATH`; `tests/run` installs the pinned versions.
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ lives in the repository")
        .to_path_buf()
}

/// The cargo target directory the tests were built in.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_switchboard"))
        .ancestors()
        .nth(2)
        .expect("target/<profile>/switchboard")
        .to_path_buf()
}

/// Fails with the way to install `tool` when it is not on `PATH`.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not on PATH: run the tests with tests/run, which installs the pinned \
         version (host/src/cli/templates/tools.env)"
    );
}

/// Runs `command`, fails with its output unless it succeeds, returns stdout.
fn run(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn switchboard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.env("RUST_LOG", "error").env(
        "SWITCHBOARD_CACHE_DIR",
        target_dir().join("rule-tests-compiled"),
    );
    command
}

/// Builds the project in `dir` with its `build.sh` and runs its cases;
/// every case must pass.
fn build_and_test(dir: &Path, name: &str) {
    run(
        Command::new("sh")
            .arg("build.sh")
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir().join("rule-templates")),
        &format!("{name}/build.sh"),
    );
    let wasm = dir.join(format!("{name}.wasm"));
    let stdout = run(
        switchboard()
            .args(["rules", "test"])
            .arg(&wasm)
            .arg(dir.join("cases")),
        &format!("rules test {name}"),
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("\n0 passed"), "no case ran: {stdout}");
}

/// `rules new NAME --lang LANG` into a fresh directory.
fn scaffold(lang: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("my-rules");
    let stdout = run(
        switchboard()
            .args(["rules", "new", "my-rules", "--lang", lang, "--dir"])
            .arg(&dir)
            .args(extra),
        "rules new",
    );
    assert!(stdout.contains("sh build.sh"), "next steps shown: {stdout}");
    (parent, dir)
}

#[test]
fn dx1_the_rust_template_builds_and_passes_its_case_and_unit_test() {
    let sdk = repo().join("guest-sdk");
    let (_keep, dir) = scaffold("rust", &["--sdk-path", sdk.to_str().expect("utf-8")]);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("switchboard-guest-sdk = { version = \"0.1\", path = "),
        "{manifest}"
    );
    build_and_test(&dir, "my-rules");
    run(
        Command::new(env!("CARGO"))
            .arg("test")
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target_dir().join("rule-templates")),
        "cargo test in the Rust template",
    );
}

#[test]
fn dx1_the_python_template_builds_and_passes_its_case() {
    require("componentize-py");
    let (_keep, dir) = scaffold("python", &[]);
    build_and_test(&dir, "my-rules");
}

#[test]
fn dx1_the_js_template_builds_and_passes_its_case() {
    require("componentize-js");
    let (_keep, dir) = scaffold("js", &[]);
    build_and_test(&dir, "my-rules");
}

#[test]
fn dx1_rules_new_refuses_a_bad_name_and_an_sdk_source_for_python() {
    let parent = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["rules", "new", "My Rules"],
        vec!["rules", "new", "ok", "--lang", "python", "--sdk-path", "x"],
    ] {
        let out = switchboard()
            .args(&args)
            .current_dir(parent.path())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(!out.stderr.is_empty(), "{args:?}: no reason given");
    }
    assert_eq!(
        std::fs::read_dir(parent.path()).expect("read").count(),
        0,
        "nothing written"
    );
}

/// Copies an example out of the repository so its build leaves no files.
fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    // The examples reach the WIT at ../../../wit: keep that shape.
    let dir = parent.path().join("rules/examples").join(name);
    let wit = parent.path().join("wit/since_v0.1.0");
    std::fs::create_dir_all(dir.join("cases")).expect("mkdir");
    std::fs::create_dir_all(&wit).expect("mkdir");
    std::fs::copy(
        repo().join("wit/since_v0.1.0/rules.wit"),
        wit.join("rules.wit"),
    )
    .expect("copy wit");
    let source = repo().join("rules/examples").join(name);
    for file in ["build.sh", "app.py", "app.js"] {
        if source.join(file).exists() {
            std::fs::copy(source.join(file), dir.join(file)).expect("copy");
        }
    }
    for case in std::fs::read_dir(source.join("cases")).expect("cases") {
        let case = case.expect("entry").path();
        std::fs::copy(
            &case,
            dir.join("cases").join(case.file_name().expect("name")),
        )
        .expect("copy case");
    }
    (parent, dir)
}

#[test]
fn dx2_the_python_example_builds_and_passes_its_cases() {
    require("componentize-py");
    let (_keep, dir) = example("csat-py");
    build_and_test(&dir, "csat-py");
}

#[test]
fn dx2_the_js_example_builds_and_passes_its_cases() {
    require("componentize-js");
    let (_keep, dir) = example("smart-actions-js");
    build_and_test(&dir, "smart-actions-js");
}
