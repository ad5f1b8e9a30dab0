//! DX3: the port opens at once; rule modules load behind it, `/readyz`
//! answering 503 until they have, while events are already accepted.
use crate::support::*;
use switchboard::app::App;
use switchboard::config::Config;
use switchboard_emulators::ccai as ccai_emu;
use switchboard_emulators::kustomer as kustomer_emu;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dx3_the_port_opens_at_once_and_readyz_is_503_while_modules_load_e2e() {
    let kustomer = kustomer_emu::start(kustomer_emu::KustomerEmulatorConfig::default())
        .await
        .expect("kustomer emulator");
    let ccai = ccai_emu::start(ccai_emu::CcaiConfig::default())
        .await
        .expect("ccai emulator");
    let dir = tempfile::tempdir().expect("dir");
    // The module is a named pipe: loading it waits until the test writes it.
    let fifo = dir.path().join("rules.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    let path = write_config(
        dir.path(),
        &kustomer,
        &ccai,
        Some(fifo.to_str().expect("utf-8 path")),
        Secrets::Files,
    );
    let config = Config::load(&path).expect("config");
    let app = await_or_timeout("starting the sidecar", 60, App::start(config))
        .await
        .expect("the port opens while the module is not even readable");
    let url = format!("http://{}", app.addr());

    let health = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert!(
        body["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "rule modules are loading")),
        "{body}"
    );
    let accepted = reqwest::Client::new()
        .post(format!("{url}/v1/tenants/acme/ccai/session-events"))
        .basic_auth(EVENTS_USER, Some(EVENTS_PASSWORD))
        .json(&created_batch(0, 5))
        .send()
        .await
        .expect("post");
    assert_eq!(accepted.status(), 200, "events are accepted while loading");

    let bytes = switchboard_rule_artifacts::bytes(switchboard_rule_artifacts::RULES_DEFAULT);
    let writer = std::thread::spawn(move || std::fs::write(fifo, bytes));
    await_or_timeout("the modules loading", 60, app.modules_loaded()).await;
    writer.join().expect("writer").expect("module written");
    let ready = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let store = app.store().clone();
    eventually("the events accepted while loading applied", 60, || {
        store
            .pending(Some("acme"), 1)
            .is_ok_and(|p| p.is_empty())
            .then_some(())
    })
    .await;
    assert!(
        store.events("acme").expect("events").len() >= 5,
        "stored while loading"
    );
    app.shutdown().await;
}
