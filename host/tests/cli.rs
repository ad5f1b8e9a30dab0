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

/// DX4: a case names only what matters to it (the rest takes neutral
/// defaults), and `--bless` writes a missing `expect` without spelling out
/// the defaults.
#[test]
fn dx4_a_minimal_case_takes_defaults_and_bless_writes_its_missing_expect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let minimal = r#"{
  "description": "a new caller's mobile chat gets a customer and a conversation",
  "session": {
    "event": {
      "session": { "id": "chat-9", "kind": "MobileChat", "channel": "Chat",
                   "end_user": { "phone": "+14155550199" } }
    }
  }
}"#;
    let path = dir.path().join("minimal.json");
    std::fs::write(&path, minimal).expect("write case");
    let cases = dir.path().to_str().expect("utf8 path");

    let (code, stdout, _) = switchboard(&["rules", "test", artifacts::RULES_DEFAULT, cases]);
    assert_ne!(code, 0, "no expectation yet:\n{stdout}");
    assert!(
        stdout.contains("FAIL minimal") && stdout.contains("run with --bless"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CreateCustomer"),
        "the output is shown:\n{stdout}"
    );

    let (code, _, stderr) =
        switchboard(&["rules", "test", artifacts::RULES_DEFAULT, cases, "--bless"]);
    assert_eq!(code, 0, "{stderr}");
    let blessed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    assert!(
        blessed["session"]["expect"]["ok"]["actions"].is_array(),
        "{blessed}"
    );
    assert!(
        blessed["session"].get("context").is_none(),
        "defaults stay out of the file: {blessed}"
    );
    let (code, stdout, _) = switchboard(&["rules", "test", artifacts::RULES_DEFAULT, cases]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("PASS minimal"), "{stdout}");
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

/// A config for tenant `acme` whose secrets come from files beside it, and
/// a store in its data directory holding `events` pending events.
fn config_with_events(dir: &std::path::Path, events: u64) -> std::path::PathBuf {
    for name in ["kustomer", "ccai", "events", "webhook"] {
        std::fs::write(dir.join(format!("{name}.secret")), "s3cret").expect("secret");
    }
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        r#"[server]
data_dir = "data"

[[tenant]]
id = "acme"

[tenant.kustomer]
base_url = "http://127.0.0.1:9"
api_key = { file = "kustomer.secret" }

[tenant.ccai]
base_url = "http://127.0.0.1:9"
subdomain = "acme"
api_token = { file = "ccai.secret" }
events_username = "ccai"
events_password = { file = "events.secret" }
webhook_primary_secret = { file = "webhook.secret" }
"#,
    )
    .expect("config");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    let store =
        switchboard::store::Store::open(switchboard::store::Store::path_in(&dir.join("data")))
            .expect("store");
    let rows: Vec<switchboard::store::NewInboxEvent> = (0..events)
        .map(|i| switchboard::store::NewInboxEvent {
            tenant: "acme".into(),
            event_id: format!("evt-{i}"),
            source: "session-events".into(),
            session_id: format!("call-{i}"),
            customer_key: format!("phone:+1415555{:04}", i % 10_000),
            at_ms: i64::try_from(i).expect("small"),
            at: "2026-01-15T09:00:00.000Z".into(),
            body: serde_json::value::to_raw_value(&serde_json::json!({}))
                .expect("json")
                .into(),
        })
        .collect();
    store.insert_events(&rows).expect("insert");
    config
}

#[test]
fn cf4_fields_provision_since_dates_the_fields_earlier_and_the_earliest_time_stands() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let kustomer = runtime
        .block_on(switchboard_emulators::kustomer::start(
            switchboard_emulators::kustomer::KustomerEmulatorConfig {
                api_key: "s3cret".into(),
                ..Default::default()
            },
        ))
        .expect("Kustomer emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_events(dir.path(), 0);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen("http://127.0.0.1:9", &kustomer.base_url(), 1),
    )
    .expect("config");
    let config = config.to_str().expect("utf8 path");
    let provision = |extra: &[&str]| {
        let mut args = vec![
            "fields",
            "provision",
            "--config",
            config,
            "--tenant",
            "acme",
        ];
        args.extend_from_slice(extra);
        switchboard(&args)
    };

    let (code, stdout, stderr) = provision(&["--since", "2026-01-15T02:00:00+02:00"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("fields are filled for sessions starting after 2026-01-15T00:00:00.000Z"),
        "{stdout}"
    );
    // Run again without `--since` (now) and with a later time: the earliest
    // time stands.
    for extra in [&[][..], &["--since", "2026-02-01T00:00:00Z"][..]] {
        let (code, stdout, stderr) = provision(extra);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("after 2026-01-15T00:00:00.000Z"),
            "{stdout}"
        );
    }
    let (code, _, stderr) = provision(&["--since", "yesterday"]);
    assert_eq!(code, 2, "a value clap refuses: {stderr}");
    assert!(
        stderr.contains("not an RFC 3339 time") && stderr.contains("--since"),
        "{stderr}"
    );
}

#[test]
fn op6_events_commands_refuse_an_unknown_tenant_and_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_events(dir.path(), 3);
    let config = config.to_str().expect("utf8 path");
    for args in [
        vec!["events", "list", "--config", config, "--tenant", "nobody"],
        vec!["events", "retry", "--config", config, "--tenant", "nobody"],
        vec!["events", "skip", "--config", config, "--tenant", "nobody"],
    ] {
        let (code, _, stderr) = switchboard(&args);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(
            stderr.contains("no tenant `nobody`") && stderr.contains("acme"),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = switchboard(&[
        "events", "retry", "--config", config, "--tenant", "acme", "--event", "evt-404",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("evt-404"), "{stderr}");
    let (code, stdout, stderr) =
        switchboard(&["events", "list", "--config", config, "--tenant", "acme"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 event(s)"), "{stdout}");
    // `--json`: one object per line, for jq and scripts.
    let (code, stdout, stderr) = switchboard(&[
        "events", "list", "--config", config, "--tenant", "acme", "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[0]["event_id"], "evt-0");
    assert_eq!(rows[0]["customer"], "phone:+14155550000");
}

#[test]
fn op6_events_list_into_a_closed_pipe_exits_cleanly() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_events(dir.path(), 20_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["events", "list", "--config"])
        .arg(&config)
        .args(["--tenant", "acme"])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one line, then hang up, as `| head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert!(first.starts_with("pending"), "{first}");
    let out = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn se1_sessions_show_prints_the_ledger_and_each_derived_transition() {
    use switchboard::intake::{ledger, normalize, SessionEventEnvelope};
    use switchboard_emulators::ccai::{call_updates, CallOutcome, CallSpec};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_events(dir.path(), 0);
    let store = switchboard::store::Store::open(switchboard::store::Store::path_in(
        &dir.path().join("data"),
    ))
    .expect("store");
    let spec = CallSpec {
        recording: true,
        event_types: false,
        ..CallSpec::new(7001, "+1 415-555-7001", CallOutcome::Answered)
    };
    let updates: Vec<ledger::Update> = call_updates(&spec)
        .into_iter()
        .rev()
        .map(|v| {
            let envelope: SessionEventEnvelope = serde_json::from_value(v).expect("update");
            normalize::update_from_envelope(&envelope)
        })
        .collect();
    let stored = ledger::reconcile(
        &store,
        "acme",
        Default::default(),
        "session-events",
        updates,
        None,
    )
    .expect("reconcile");
    assert_eq!(
        stored.new, 6,
        "the last update, first, implies all six steps"
    );
    assert_eq!(stored.unchanged, 5, "the earlier ones add nothing");
    drop(store);
    let config = config.to_str().expect("utf8 path");
    let (code, stdout, stderr) = switchboard(&[
        "sessions", "show", "--config", config, "--tenant", "acme", "7001",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("session   call-7001"), "{stdout}");
    assert!(stdout.contains("updates   6 merged"), "{stdout}");
    assert!(stdout.contains("phone:+14155557001"), "{stdout}");
    for key in [
        "created",
        "queued",
        "assigned:21",
        "connected:21",
        "ended",
        "recording-ready",
    ] {
        assert!(
            stdout.contains(&format!("pending  call-7001:{key} ")),
            "{key}: {stdout}"
        );
    }
    let (code, stdout, _) = switchboard(&[
        "sessions",
        "show",
        "--config",
        config,
        "--tenant",
        "acme",
        "call-7001",
        "--json",
    ]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(doc["transitions"].as_array().map(Vec::len), Some(6));
    assert_eq!(doc["ledger"]["item"]["call_duration"], 60);
    let (code, _, stderr) = switchboard(&[
        "sessions", "show", "--config", config, "--tenant", "acme", "call-404",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no session `call-404`"), "{stderr}");
}

/// OP6: shell completions for every command, e.g. bash.
#[test]
fn op6_completions_cover_every_command() {
    let (code, stdout, stderr) = switchboard(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    for word in [
        "_switchboard",
        "serve",
        "rules",
        "shadow",
        "replay",
        "events",
        "sessions",
    ] {
        assert!(stdout.contains(word), "{word} in the bash completion");
    }
    let (code, _, stderr) = switchboard(&["completions", "tcsh"]);
    assert_ne!(code, 0, "an unknown shell is refused");
    assert!(stderr.contains("bash"), "the shells are named: {stderr}");
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

#[test]
fn dx5_the_published_case_schema_is_the_one_the_binary_prints() {
    let (code, stdout, stderr) = switchboard(&["rules", "schema"]);
    assert_eq!(code, 0, "{stderr}");
    let published = std::fs::read_to_string(repo().join("docs/case.schema.json"))
        .expect("docs/case.schema.json");
    assert_eq!(
        stdout.trim(),
        published.trim(),
        "docs/case.schema.json is stale: run `switchboard rules schema > docs/case.schema.json`"
    );
}

#[test]
fn dx5_every_shipped_case_is_valid_under_the_schema_and_a_wrong_one_is_not() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/case.schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut files = Vec::new();
    for dir in [
        "rules/default/cases",
        "rules/examples/csat-py/cases",
        "rules/examples/smart-actions-js/cases",
    ] {
        for entry in std::fs::read_dir(repo().join(dir)).expect(dir) {
            files.push(entry.expect("entry").path());
        }
    }
    for lang in ["rust", "python", "js"] {
        files.push(repo().join(format!("host/src/cli/templates/{lang}/case.json")));
    }
    assert!(files.len() >= 13, "{files:?}");
    for file in &files {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("read")).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&case)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    // What a case may leave out, it may leave out under the schema too.
    for minimal in [
        serde_json::json!({"session": {}}),
        serde_json::json!({"session": {"event": {"session": {"end_user": {"phone": "+14155550100"}}}}}),
        serde_json::json!({"status": {"change": {"status": "Busy"}}}),
    ] {
        assert!(validator.is_valid(&minimal), "{minimal}");
    }
    for wrong in [
        serde_json::json!({"session": {"event": {"kind": "Exploded"}}}),
        serde_json::json!({"session": {"expect": {"ok": {"actions": [{"Teleport": 1}]}}}}),
        serde_json::json!({"sesion": {}}),
    ] {
        assert!(!validator.is_valid(&wrong), "{wrong} accepted");
    }
}

#[test]
fn op6_rules_check_json_prints_one_object() {
    let (code, stdout, stderr) =
        switchboard(&["rules", "check", "--json", artifacts::RULES_DEFAULT]);
    assert_eq!(code, 0, "{stderr}");
    let info: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(info["world"], "switchboard:rules/rule@0.1.0");
    assert!(
        info["digest"].as_str().is_some_and(|d| d.len() == 64),
        "{info}"
    );
}
