//! The `switchboard` binary's rule commands, run as a user would.
use std::process::Command;
use switchboard_rule_artifacts as artifacts;

fn switchboard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run switchboard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rules_check_prints_world_exports_size_and_compile_time() {
    let (code, stdout, stderr) = switchboard(&["rules", "check", artifacts::RULES_DEFAULT]);
    assert_eq!(code, 0, "stderr: {stderr}");
    for expected in [
        "world         switchboard:rules/rule@0.1.0",
        "on-session-event, on-status-change",
        "size",
        "compile time",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn rules_check_refuses_a_text_file_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello\n").expect("write");
    let (code, stdout, stderr) =
        switchboard(&["rules", "check", path.to_str().expect("utf8 path")]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
}

#[test]
fn rules_check_refuses_a_component_of_another_world() {
    let (code, _, stderr) = switchboard(&["rules", "check", artifacts::FIXTURE_WRONG_WORLD]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("missing export `on-session-event`"),
        "{stderr}"
    );
}

const ECHO_CASE: &str = r#"{
  "description": "echo answers with one note",
  "session": {
    "event": {
      "id": "evt-1", "at": "2026-11-24T10:00:00.000Z",
      "session": {
        "id": "call-1", "kind": "IvrCall", "channel": "Voice", "direction": "Inbound",
        "session_type": "Voice Inbound (IVR)",
        "end_user": {"phone": "+14155550100", "sdk_identifier": null, "email": null, "name": null},
        "menu": null, "queue_name": null, "language": "en", "agent": null,
        "started_at": null, "ended_at": null,
        "durations": {"call_seconds": null, "hold_seconds": null, "wait_seconds": null},
        "parent_session_id": null, "custom_data": []
      },
      "kind": "Created"
    },
    "context": {
      "tenant": "acme", "now": "2026-11-24T10:00:00.000Z", "customer": null,
      "recent_conversations": [], "linked_conversation": null,
      "settings": {"recording_enabled": true, "fields": [], "field_mapping": [], "options": []}
    },
    "expect": {"ok": {"actions": [{"AddNote": "WRONG"}]}}
  }
}"#;

#[test]
fn rules_test_prints_a_diff_and_bless_records_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("echo.json"), ECHO_CASE).expect("write case");
    let cases = dir.path().to_str().expect("utf8 path");

    let (code, stdout, _) = switchboard(&["rules", "test", artifacts::FIXTURE_ECHO, cases]);
    assert_ne!(code, 0, "a wrong expectation fails:\n{stdout}");
    assert!(stdout.contains("FAIL echo"), "{stdout}");
    assert!(
        stdout.contains("--- expected") && stdout.contains("+++ actual"),
        "unified diff:\n{stdout}"
    );
    assert!(
        stdout.contains("-        \"AddNote\": \"WRONG\""),
        "the expected line is shown:\n{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");

    let (code, _, stderr) =
        switchboard(&["rules", "test", artifacts::FIXTURE_ECHO, cases, "--bless"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = switchboard(&["rules", "test", artifacts::FIXTURE_ECHO, cases]);
    assert_eq!(code, 0, "blessed case passes:\n{stdout}");
    assert!(
        stdout.contains("PASS echo") && stdout.contains("1 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn rules_test_names_a_malformed_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("broken.json"), "{\"session\": 3}").expect("write case");
    let (code, stdout, _) = switchboard(&[
        "rules",
        "test",
        artifacts::FIXTURE_ECHO,
        dir.path().to_str().expect("utf8"),
    ]);
    assert_ne!(code, 0);
    assert!(
        stdout.contains("FAIL broken") && stdout.contains("is not a valid case"),
        "{stdout}"
    );
}

#[test]
fn default_module_passes_its_recorded_cases() {
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/default/cases");
    let (code, stdout, stderr) = switchboard(&["rules", "test", artifacts::RULES_DEFAULT, cases]);
    assert_eq!(
        code, 0,
        "recorded cases of the default module:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
