//! `switchboard rules replay`: a candidate module re-decides recorded events
//! and its plans are compared with the recorded ones (RM5).
use std::process::Command;
use std::time::Duration;
use switchboard::demo::{Stack, StackOptions};
use switchboard_emulators::ccai::scenario_named;
use switchboard_rule_artifacts as artifacts;

fn replay(module: &str, data_dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["rules", "replay", module, "--tenant", "acme", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "error")
        .output()
        .expect("run switchboard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A data directory in which the default module decided these scenarios.
async fn recorded(scenarios: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StackOptions::new(artifacts::RULES_DEFAULT);
    options.data_dir = Some(dir.path().to_path_buf());
    let stack = Stack::start(options).await.expect("stack");
    for name in scenarios {
        let scenario = scenario_named(name).unwrap_or_else(|| panic!("scenario {name}"));
        stack.play(&scenario).await.expect("play");
    }
    tokio::time::timeout(
        Duration::from_secs(60),
        stack.wait_idle(Duration::from_secs(60)),
    )
    .await
    .expect("waiting for the pipeline")
    .expect("idle");
    stack.shutdown().await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm5_replay_compares_a_candidate_with_recorded_decisions() {
    let dir = recorded(&[
        "tc1_inbound_ivr_call",
        "tu1_repeat_call_same_menu",
        "tc5_voicemail",
    ])
    .await;

    // The live module replays to the same plans.
    let (code, stdout) = replay(artifacts::RULES_DEFAULT, dir.path());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(" different, 0 errors") && stdout.contains(" 0 different"),
        "{stdout}"
    );

    // A module that decides differently is caught, with a diff.
    let (code, stdout) = replay(artifacts::FIXTURE_ECHO, dir.path());
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stdout.contains("DIFF ") && stdout.contains("+++ candidate"),
        "{stdout}"
    );
}

/// DX4: `--save-cases` turns recorded decisions into case files that the
/// live module passes; a tenant with no recorded decisions is an error that
/// names the tenants there are, not an empty success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dx4_replay_saves_passing_cases_and_refuses_an_unknown_tenant() {
    let dir = recorded(&["tu1_repeat_call_same_menu"]).await;

    let cases = dir.path().join("cases");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "rules",
            "replay",
            artifacts::RULES_DEFAULT,
            "--tenant",
            "acme",
            "--save-cases",
        ])
        .arg(&cases)
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .output()
        .expect("replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let saved = std::fs::read_dir(&cases).expect("cases").count();
    assert!(saved > 0, "cases written");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["rules", "test", artifacts::RULES_DEFAULT])
        .arg(&cases)
        .output()
        .expect("test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("{saved} passed, 0 failed")),
        "{stdout}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "rules",
            "replay",
            artifacts::RULES_DEFAULT,
            "--tenant",
            "nobody",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown tenant is an error");
    assert!(
        stderr.contains("`nobody`") && stderr.contains("acme"),
        "{stderr}"
    );
}
