//! Operation: health, readiness and metrics (OP4), refusing bad input
//! (OP5), and custom field provisioning (CF1, CF4).
use crate::support::*;
use serde_json::{json, Value};
use switchboard::demo::StackOptions;
use switchboard_emulators::ccai as ccai_emu;
use switchboard_emulators::kustomer as kustomer_emu;

async fn get(url: String) -> (u16, String) {
    let response = await_or_timeout(&format!("GET {url}"), 30, reqwest::get(&url))
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (
        status,
        await_or_timeout("reading the body", 30, response.text())
            .await
            .unwrap_or_default(),
    )
}

/// HA4: `/readyz` names the store's backend and this process's replica id
/// (the PostgreSQL side is read by the replica tests, `replicas.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha4_readyz_names_the_store_backend_and_the_replica_e2e() {
    let stack = start_default().await;
    let (status, body) = get(format!("{}/readyz", stack.url())).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["store"]["backend"], "sqlite", "{body}");
    let replica = body["store"]["replica"].as_str().unwrap_or_default();
    assert!(replica.contains(&std::process::id().to_string()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op4_health_ready_and_metrics_with_a_live_module_e2e() {
    let stack = start_default().await;
    play(&stack, "tc2_ivr_call_answered").await;
    assert_eq!(get(format!("{}/healthz", stack.url())).await.0, 200);
    let (status, body) = get(format!("{}/readyz", stack.url())).await;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = get(format!("{}/metrics", stack.url())).await;
    assert_eq!(status, 200);
    let events = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchboard_events_total{")
                && l.contains("tenant=\"acme\"")
                && l.contains("outcome=\"applied\"")
        })
        .unwrap_or_else(|| panic!("no applied-events counter for acme:\n{metrics}"));
    let count: f64 = events
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(count >= 1.0, "{events}");
    let live = stack.app.registry().live("acme").expect("live module");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_module_version{")
                && l.contains("tenant=\"acme\"")
                && l.contains(&live.info.digest)),
        "module version gauge with the live digest:\n{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_build_info{")
                && l.contains(concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""))
                && l.ends_with(" 1")),
        "build info gauge:\n{metrics}"
    );
    stack.shutdown().await;
}

/// OP8: every metric family has HELP text, latencies are histograms, and
/// the per-tenant counters an alert reads exist from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op8_metrics_have_help_text_histograms_and_zero_counters_e2e() {
    let stack = start_default().await;
    let (_, before) = get(format!("{}/metrics", stack.url())).await;
    assert!(
        before
            .lines()
            .any(|l| l.starts_with("switchboard_dead_letters_total{")
                && l.contains("tenant=\"acme\"")),
        "dead-letter counter registered before any event:\n{before}"
    );
    play(&stack, "tc2_ivr_call_answered").await;
    let (status, metrics) = get(format!("{}/metrics", stack.url())).await;
    assert_eq!(status, 200);
    let families: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.contains(&"switchboard_events_total"), "{metrics}");
    for family in &families {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("# TYPE switchboard_event_seconds histogram")
            && metrics.contains("switchboard_event_seconds_bucket{"),
        "event latency as a histogram:\n{metrics}"
    );
    assert!(
        metrics.contains("# TYPE switchboard_intake_seconds histogram")
            && metrics
                .lines()
                .any(|l| l.starts_with("switchboard_intake_seconds_count{")
                    && l.contains("route=\"session_events\"")
                    && l.contains("status=\"200\"")),
        "the intake's answers timed:\n{metrics}"
    );
    for gauge in [
        "switchboard_pool_component_instances",
        "switchboard_pool_memories",
        "switchboard_pool_unused_warm_memories",
    ] {
        assert!(
            metrics.contains(&format!("\n{gauge} ")),
            "pooling gauge {gauge}:\n{metrics}"
        );
    }
    promtool_accepts(&metrics);
    stack.shutdown().await;
}

/// `promtool check metrics` (Prometheus's own linter) finds nothing to say.
fn promtool_accepts(metrics: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool cannot run ({e}): run the tests with tests/run, which unpacks it \
                 from Debian's prometheus package"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write metrics to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both emulators with their default credentials.
async fn emulators() -> (kustomer_emu::KustomerEmulator, ccai_emu::CcaiEmulator) {
    let kustomer = kustomer_emu::start(kustomer_emu::KustomerEmulatorConfig::default())
        .await
        .expect("kustomer");
    let ccai = ccai_emu::start(ccai_emu::CcaiConfig::default())
        .await
        .expect("ccai");
    (kustomer, ccai)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op4_not_ready_without_a_live_module_names_the_tenant_e2e() {
    let (kustomer, ccai) = emulators().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &kustomer, &ccai, None, Secrets::Files);
    let config = switchboard::config::Config::load(&path).expect("config loads");
    let app = await_or_timeout(
        "starting the service",
        60,
        switchboard::app::App::start(config),
    )
    .await
    .expect("app");
    let base = format!("http://{}", app.addr());
    assert_eq!(
        get(format!("{base}/healthz")).await.0,
        200,
        "alive even without a module"
    );
    let (status, body) = get(format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["ready"], false);
    assert!(
        body["problems"].to_string().contains("acme"),
        "names the tenant: {body}"
    );
    // Deploying a module makes it ready.
    let response = await_or_timeout(
        "uploading a module",
        60,
        reqwest::Client::new()
            .post(format!("{base}/admin/tenants/acme/modules"))
            .bearer_auth(ADMIN_TOKEN)
            .body(std::fs::read(switchboard_rule_artifacts::RULES_DEFAULT).expect("module"))
            .send(),
    )
    .await
    .expect("answer");
    assert_eq!(response.status(), 201);
    assert_eq!(get(format!("{base}/readyz")).await.0, 200);
    await_or_timeout("shutting down", 30, app.shutdown()).await;
}

/// A refused request: its status, and a JSON error that mentions `needle`.
async fn refused(request: reqwest::RequestBuilder, status: u16, needle: &str, what: &str) {
    let response = await_or_timeout(what, 30, request.send())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(response.status().as_u16(), status, "{what}");
    let body: Value = await_or_timeout(what, 30, response.json())
        .await
        .unwrap_or_else(|e| panic!("{what}: JSON error body: {e}"));
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no `error` in {body}"));
    assert!(
        error.to_lowercase().contains(needle),
        "{what}: {error:?} should mention {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op5_bad_input_gets_a_clear_4xx_and_changes_nothing_e2e() {
    let stack = start_default().await;
    let http = reqwest::Client::new();
    let events = format!("{}/v1/tenants/acme/ccai/session-events", stack.url());
    let hooks = format!("{}/v1/tenants/acme/ccai/chat-webhooks", stack.url());
    let (user, password) = (stack.target.username.clone(), stack.target.password.clone());
    let good = created_batch(0, 1);

    refused(
        http.post(&events)
            .basic_auth(&user, Some(&password))
            .header("content-type", "application/json")
            .body("{\"events\": [ {"),
        400,
        "malformed",
        "malformed JSON",
    )
    .await;
    refused(
        http.post(&events)
            .basic_auth(&user, Some(&password))
            .json(&json!({ "count": 1, "events": [{ "event_id": 5 }] })),
        400,
        "malformed",
        "JSON of the wrong shape",
    )
    .await;
    refused(
        http.post(&events)
            .basic_auth(&user, Some("wrong"))
            .json(&good),
        401,
        "credentials",
        "wrong Basic password",
    )
    .await;
    refused(
        http.post(&events).json(&good),
        401,
        "credentials",
        "no credentials",
    )
    .await;
    refused(
        http.post(format!(
            "{}/v1/tenants/nobody/ccai/session-events",
            stack.url()
        ))
        .basic_auth(&user, Some(&password))
        .json(&good),
        404,
        "unknown tenant",
        "unknown tenant",
    )
    .await;
    let oversized = json!({ "count": 1, "events": [], "padding": "x".repeat(2 << 20) });
    refused(
        http.post(&events)
            .basic_auth(&user, Some(&password))
            .json(&oversized),
        413,
        "larger than",
        "oversized body",
    )
    .await;

    let hook = serde_json::to_vec(
        &json!({ "event_type": "chat_created", "chat_id": 77, "chat": { "id": 77 }, "body": {} }),
    )
    .expect("json");
    let now = chrono::Utc::now().timestamp().to_string();
    let wrong = ccai_emu::sign_webhook("not-the-secret", &now, &hook);
    refused(
        http.post(&hooks)
            .header("content-type", "application/json")
            .header("X-Signature", format!("primary={wrong}"))
            .header("X-Signature-Timestamp", &now)
            .body(hook.clone()),
        401,
        "signature",
        "wrong webhook signature",
    )
    .await;
    refused(
        http.post(&hooks)
            .header("content-type", "application/json")
            .body(hook.clone()),
        400,
        "x-signature",
        "unsigned webhook",
    )
    .await;
    let garbage = b"{not json".to_vec();
    let signed = ccai_emu::signature_header(&stack.target, &now, &garbage);
    refused(
        http.post(&hooks)
            .header("content-type", "application/json")
            .header("X-Signature", signed)
            .header("X-Signature-Timestamp", &now)
            .body(garbage),
        400,
        "malformed",
        "signed but malformed webhook",
    )
    .await;
    refused(
        http.post(format!(
            "{}/v1/tenants/nobody/ccai/chat-webhooks",
            stack.url()
        ))
        .body(hook),
        404,
        "unknown tenant",
        "webhook for an unknown tenant",
    )
    .await;

    let store = stack.app.store();
    assert!(
        store.events("acme").expect("rows").is_empty(),
        "nothing stored for acme"
    );
    assert!(
        store.events("nobody").expect("rows").is_empty(),
        "nothing stored for an unknown tenant"
    );
    let view = View::of(&stack);
    assert!(
        view.customers.is_empty() && view.conversations.is_empty(),
        "nothing reached Kustomer"
    );

    // The same intake still takes good input.
    let (status, body) = post_batch(&stack.url(), &user, &password, &good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["received"], 1, "{body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf1_provisioning_is_idempotent_and_keeps_foreign_fields_e2e() {
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.provision_fields = false;
    let stack = start(options).await;
    let client = kustomer_client(&stack);
    let tenant = stack.app.tenant("acme").expect("tenant");
    // Another integration's field, created before us.
    let foreign = std::collections::BTreeMap::from([(
        "otherCrmScoreNum".to_string(),
        switchboard::connectors::kustomer::model::PropertyDefinition::named("Other CRM score"),
    )]);
    await_or_timeout(
        "creating a foreign field",
        30,
        client.merge_metadata(
            switchboard::connectors::kustomer::model::MetadataResource::Conversation,
            &foreign,
        ),
    )
    .await
    .expect("foreign field");
    let properties = |resource: &str| {
        stack.kustomer.control().metadata(resource)["attributes"]["properties"].clone()
    };
    let before_foreign = properties("conversation")["otherCrmScoreNum"].clone();
    assert!(
        !before_foreign.is_null(),
        "foreign field present: {}",
        properties("conversation")
    );

    let declared =
        switchboard::fields::Declared::of(&tenant.config.fields, &tenant.config.field_mapping);
    // Before: /readyz names what the tenant's Kustomer lacks (KU5).
    stack.app.check_fields().await;
    let ready = readyz(&stack).await;
    let warnings = ready["warnings"].to_string();
    assert!(
        warnings.contains("ccaiAssignedAgentStr") && warnings.contains("fields provision"),
        "{ready}"
    );
    let first = await_or_timeout(
        "first provisioning",
        30,
        switchboard::fields::provision(client, &declared),
    )
    .await
    .expect("provisioned");
    assert_eq!(
        first.customer,
        declared.customer.keys().cloned().collect::<Vec<_>>(),
        "CF2's field, CU1's and the mapped customer fields"
    );
    assert!(first.customer.contains(&"ccaiAssignedAgentStr".to_string()));
    assert_eq!(
        first.conversation.len(),
        declared.conversation.len(),
        "{:?}",
        first.conversation
    );
    stack.app.check_fields().await;
    let ready = readyz(&stack).await;
    assert_eq!(ready["warnings"], serde_json::json!([]), "{ready}");
    let after_first = (properties("customer"), properties("conversation"));

    let second = await_or_timeout(
        "second provisioning",
        30,
        switchboard::fields::provision(client, &declared),
    )
    .await
    .expect("provisioned");
    assert!(
        second.customer.is_empty() && second.conversation.is_empty(),
        "second run changes nothing: {second:?}"
    );
    assert_eq!(
        (properties("customer"), properties("conversation")),
        after_first,
        "metadata unchanged"
    );
    assert_eq!(
        properties("conversation")["otherCrmScoreNum"],
        before_foreign,
        "foreign field left alone"
    );
    for name in declared.names() {
        let present = !properties("customer")[&name].is_null()
            || !properties("conversation")[&name].is_null();
        assert!(present, "{name} provisioned");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cf4_only_sessions_starting_after_provisioning_get_standard_fields_e2e() {
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.provision_fields = false;
    let stack = start(options).await;
    let tenant = stack.app.tenant("acme").expect("tenant");
    await_or_timeout(
        "provisioning",
        30,
        switchboard::fields::provision(
            kustomer_client(&stack),
            &switchboard::fields::Declared::of(&tenant.config.fields, &tenant.config.field_mapping),
        ),
    )
    .await
    .expect("provisioned");
    // Provisioned at 12:00 on the scenarios' day: TC2's call (09:30) started
    // before, AA1's (15:00) after.
    let names: Vec<String> = tenant
        .config
        .fields
        .all()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    stack
        .app
        .store()
        .record_field_provisioning("acme", "2026-01-15T12:00:00.000Z", &json!(names))
        .expect("recorded");
    play(&stack, "tc2_ivr_call_answered").await;
    play(&stack, "aa1_agent_answers").await;
    let view = View::of(&stack);
    let standard = |c: &Value| -> Vec<String> {
        attrs(c)["custom"]
            .as_object()
            .map(|m| m.keys().filter(|k| names.contains(k)).cloned().collect())
            .unwrap_or_default()
    };
    let before = view.conversations_of(view.customer_with_phone("+14155550102"))[0];
    assert!(
        standard(before).is_empty(),
        "nothing backfilled for a session that started before: {:?}",
        standard(before)
    );
    let after = view.conversations_of(view.customer_with_phone("+14155550124"))[0];
    for name in [
        "ccaiSessionIdStr",
        "ccaiFromPhoneNumberStr",
        "ccaiCallDurationNum",
    ] {
        assert!(
            standard(after).iter().any(|n| n == name),
            "{name} filled after provisioning: {:?}",
            standard(after)
        );
    }
    stack.shutdown().await;
}

/// OP6: the screen pop takes CCAI Platform's own numeric session id as well
/// as the sidecar's `call-…` form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op6_screen_pop_accepts_the_numeric_ccai_id_e2e() {
    let stack = start_default().await;
    play(&stack, "aa1_agent_answers").await;
    let get = |session: &'static str| {
        reqwest::Client::new()
            .get(format!(
                "{}/v1/tenants/acme/sessions/{session}/conversation",
                stack.url()
            ))
            .basic_auth(&stack.target.username, Some(&stack.target.password))
            .send()
    };
    let by_name: serde_json::Value =
        await_or_timeout("screen pop for call-1024", 30, get("call-1024"))
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
    let numeric = await_or_timeout("screen pop for 1024", 30, get("1024"))
        .await
        .expect("answer");
    assert_eq!(numeric.status(), 200);
    let by_number: serde_json::Value = numeric.json().await.expect("json");
    assert_eq!(by_number["conversation_id"], by_name["conversation_id"]);
    assert_eq!(by_number["session_id"], "call-1024");
    let unknown = await_or_timeout("screen pop for 9999", 30, get("9999"))
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404);
    stack.shutdown().await;
}

/// `GET /readyz`'s JSON body.
async fn readyz(stack: &switchboard::demo::Stack) -> serde_json::Value {
    await_or_timeout(
        "readyz",
        30,
        reqwest::get(format!("{}/readyz", stack.url())),
    )
    .await
    .expect("readyz answers")
    .json()
    .await
    .expect("json")
}

/// The `export NAME=value` lines of the example configuration's header.
fn documented_exports(example: &str) -> Vec<(String, String)> {
    example
        .lines()
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// OP12: `host/switchboard.example.toml` runs as shipped after its
/// documented `export` lines: only the listen port and the two emulator
/// addresses are moved to free ports for the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op12_the_example_config_runs_as_shipped_against_the_emulators_e2e() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf();
    let example =
        std::fs::read_to_string(repo.join("host/switchboard.example.toml")).expect("example");
    let exports = documented_exports(&example);
    let export = |name: &str| -> String {
        exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the example documents no `export {name}=…`"))
    };
    let (kustomer, ccai) = emulators().await;
    let mut config = example.clone();
    for (shipped, here) in [
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1:0\"".to_string(),
        ),
        (
            "base_url = \"http://127.0.0.1:8081\"",
            format!("base_url = \"{}\"", kustomer.base_url()),
        ),
        (
            "base_url = \"http://127.0.0.1:8082\"",
            format!("base_url = \"{}\"", ccai.base_url()),
        ),
    ] {
        assert_eq!(
            config.matches(shipped).count(),
            1,
            "{shipped} in the example"
        );
        config = config.replace(shipped, &here);
    }
    // The layout the example's relative paths assume: host/ beside rules/.
    let dir = tempfile::tempdir().expect("tempdir");
    let module = dir
        .path()
        .join("rules/target/wasm32-wasip2/release/rules_default.wasm");
    std::fs::create_dir_all(module.parent().expect("parent")).expect("mkdir");
    std::fs::copy(switchboard_rule_artifacts::RULES_DEFAULT, &module).expect("module");
    std::fs::create_dir_all(dir.path().join("host")).expect("mkdir");
    let path = dir.path().join("host/switchboard.example.toml");
    std::fs::write(&path, config).expect("config");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&path)
        .envs(exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map(KillOnDrop)
        .expect("spawn switchboard serve");
    let stdout = child.0.stdout.take().expect("stdout");
    let addr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("switchboard listening on ")
                    .map(str::to_string)
            })
    });
    let base = await_or_timeout("the service to print its address", 60, addr)
        .await
        .expect("reader")
        .expect("switchboard serve exited before listening");
    await_or_timeout("the example's service to be ready", 60, async {
        while get(format!("{base}/readyz")).await.0 != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let target = ccai_emu::PlayTarget {
        base_url: base.clone(),
        tenant: "acme".into(),
        username: "ccai".into(),
        password: export("ACME_CCAI_EVENTS_PASSWORD"),
        webhook_primary_secret: export("ACME_CCAI_WEBHOOK_SECRET"),
        webhook_secondary_secret: None,
    };
    await_or_timeout(
        "playing a call into the example's service",
        60,
        ccai.play(&scenario("tc2_ivr_call_answered"), &target),
    )
    .await
    .expect("played");
    eventually("the call's conversation in Kustomer", 60, || {
        (!kustomer.control().conversations().is_empty()).then_some(())
    })
    .await;
}

/// Kills the child process when dropped, so a failing test leaves none.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// OP13: `/openapi.json` describes every route, each described route
/// exists with its method, routes are registered only through the
/// description's annotations, and `docs/openapi.json` is the served copy
/// (`SWITCHBOARD_BLESS=1` rewrites it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op13_openapi_describes_the_routes_and_they_exist_e2e() {
    let stack = start_default().await;
    let (status, served) = get(format!("{}/openapi.json", stack.url())).await;
    assert_eq!(status, 200, "{served}");
    let api: Value = serde_json::from_str(&served).expect("JSON");
    assert!(
        api["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        api["openapi"]
    );
    let client = reqwest::Client::new();
    let mut operations = 0;
    for (path, item) in api["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "patch"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            operations += 1;
            assert!(
                !operation["responses"]
                    .as_object()
                    .is_none_or(|r| r.is_empty()),
                "{method} {path} documents its answers"
            );
            let concrete = path
                .replace("{tenant}", "acme")
                .split('/')
                .map(|part| if part.starts_with('{') { "x" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{}{concrete}", stack.url());
            let request = client.request(method.to_uppercase().parse().expect("method"), &url);
            let response = await_or_timeout(&format!("{method} {path}"), 30, request.send())
                .await
                .expect("answer");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.contains("no route for")),
                "{method} {path} is described but not routed: {status} {body}"
            );
        }
    }
    assert!(operations >= 21, "{operations} operations described");

    // Every route is registered from its annotation (`routes!`), never with
    // a bare `.route(…)` the description would not see.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack_dirs = vec![src];
    while let Some(dir) = stack_dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack_dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                assert!(
                    !code.contains(".route("),
                    "{} registers a route outside the OpenAPI description",
                    path.display()
                );
            }
        }
    }

    let published = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .join("docs/openapi.json");
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        std::fs::write(&published, format!("{}\n", served.trim())).expect("write");
    }
    let file = std::fs::read_to_string(&published).unwrap_or_default();
    assert_eq!(
        file.trim(),
        served.trim(),
        "docs/openapi.json is stale: SWITCHBOARD_BLESS=1 cargo test -p switchboard --test e2e op13"
    );
    stack.shutdown().await;
}

/// PF6: with the intake log on, the sidecar answers session events from the
/// log and applies them all; the log is empty once merged (its gauge says
/// so), and shutting down finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pf6_with_the_intake_log_every_event_is_applied_and_the_log_empties_e2e() {
    let stack = start(StackOptions {
        intake_log: Some(1 << 20),
        ..StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT)
    })
    .await;
    for name in [
        "tc1_inbound_ivr_call",
        "tc2_ivr_call_answered",
        "tc3_outbound_call",
    ] {
        play(&stack, name).await;
    }
    let (_, metrics) = get(format!("{}/metrics", stack.url())).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "switchboard_intake_log_unmoved_bytes 0"),
        "nothing waits in the log once applied:\n{metrics}"
    );
    let view = View::of(&stack);
    assert!(
        !view
            .conversations_of(view.customer_with_phone("+14155550101"))
            .is_empty(),
        "the first scenario's caller has a conversation"
    );
    await_or_timeout("shutting down", 60, stack.shutdown()).await;
}

/// PF6: the log is on by default; turned off, the next start merges what it
/// holds and then removes its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pf6_a_log_turned_off_is_merged_then_its_directory_removed_e2e() {
    let data = tempfile::tempdir().expect("data dir");
    let log_dir = data.path().join("intake-log");
    let options = || StackOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT)
    };
    let stack = start(options()).await;
    play(&stack, "tc1_inbound_ivr_call").await;
    assert!(log_dir.is_dir(), "the default intake went through the log");
    await_or_timeout("shutting down", 60, stack.shutdown()).await;

    let stack = start(StackOptions {
        intake_log: None,
        ..options()
    })
    .await;
    eventually("the turned-off log's directory removed", 30, || {
        (!log_dir.exists()).then_some(())
    })
    .await;
    play(&stack, "tc2_ivr_call_answered").await;
    assert!(
        !log_dir.exists(),
        "the intake stores directly once the log is off"
    );
    await_or_timeout("shutting down", 60, stack.shutdown()).await;
}
