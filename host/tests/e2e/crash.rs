//! OP2: the real `switchboard serve` binary is SIGKILLed mid-stream and
//! restarted on the same data directory; the Kustomer state it leaves equals
//! an uninterrupted run's, with no duplicates.
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai::{self as ccai_emu, PlayTarget};
use switchboard_emulators::kustomer as kustomer_emu;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `switchboard serve` child process.
pub(crate) struct Sidecar {
    pub(crate) child: tokio::process::Child,
    pub(crate) url: String,
}

/// Starts the binary on `config` and waits for its "listening on" line.
pub(crate) async fn spawn(config: &Path, env: &[(&'static str, String)], log: &Path) -> Sidecar {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("switchboard starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = await_or_timeout("waiting for `switchboard serve` to listen", 120, async {
        while let Some(line) = lines.next_line().await.expect("stdout line") {
            if let Some(url) = line.strip_prefix("switchboard listening on ") {
                return url.trim().to_string();
            }
        }
        panic!(
            "switchboard serve exited before listening; see {}",
            log.display()
        );
    })
    .await;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Sidecar { child, url }
}

/// One unit of input: a scenario or a `session_created` batch.
#[derive(Clone)]
enum Delivery {
    Scenario(ccai_emu::Scenario),
    Batch(u64, u64),
}

/// Delivers one unit; `false` if the sidecar could not be reached or
/// refused it (as the platform would, it is delivered again later).
async fn deliver(delivery: &Delivery, target: &PlayTarget, ccai: &ccai_emu::CcaiEmulator) -> bool {
    match delivery {
        Delivery::Scenario(s) => {
            let s = ccai.localize(s);
            tokio::time::timeout(Duration::from_secs(60), ccai_emu::play(&s, target))
                .await
                .is_ok_and(|r| r.is_ok())
        }
        Delivery::Batch(first, n) => {
            let sent = tokio::time::timeout(
                Duration::from_secs(60),
                reqwest::Client::new()
                    .post(target.session_events_url())
                    .basic_auth(&target.username, Some(&target.password))
                    .json(&created_batch(*first, *n))
                    .send(),
            )
            .await;
            matches!(sent, Ok(Ok(r)) if r.status().is_success())
        }
    }
}

fn inputs() -> Vec<Delivery> {
    let scenarios = ccai_emu::scenarios();
    let half = scenarios.len() / 2;
    let mut all = vec![Delivery::Batch(0, 100), Delivery::Batch(100, 100)];
    all.extend(scenarios[..half].iter().cloned().map(Delivery::Scenario));
    all.push(Delivery::Batch(200, 100));
    all.extend(scenarios[half..].iter().cloned().map(Delivery::Scenario));
    all.push(Delivery::Batch(300, 100));
    all
}

/// Emulators, a config and a data directory for one run.
pub(crate) struct Run {
    pub(crate) kustomer: kustomer_emu::KustomerEmulator,
    pub(crate) ccai: ccai_emu::CcaiEmulator,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) env: Vec<(&'static str, String)>,
}

impl Run {
    pub(crate) async fn new() -> Run {
        let (kustomer, ccai) = emulators().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            dir.path(),
            &kustomer,
            &ccai,
            Some(switchboard_rule_artifacts::RULES_DEFAULT),
            Secrets::Env,
        );
        let env = secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
        Run {
            kustomer,
            ccai,
            dir,
            config,
            env,
        }
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.dir.path().join("switchboard.log")
    }

    fn target(&self, url: &str) -> PlayTarget {
        PlayTarget {
            base_url: url.to_string(),
            tenant: "acme".into(),
            username: EVENTS_USER.into(),
            password: EVENTS_PASSWORD.into(),
            webhook_primary_secret: WEBHOOK_SECRET.into(),
            webhook_secondary_secret: None,
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts::open(&self.dir.path().join("data"))
    }

    /// Waits until nothing is pending and the done count has been still for
    /// a second; fails if anything failed.
    async fn settle(&self, what: &str) {
        let counts = self.counts();
        let mut last = (u64::MAX, Instant::now());
        eventually(what, 180, || {
            let done = counts.inbox("done");
            if counts.inbox("pending") > 0 || done != last.0 {
                last = (done, Instant::now());
                return None;
            }
            (last.1.elapsed() > Duration::from_secs(1)).then_some(())
        })
        .await;
        assert_eq!(
            counts.inbox("failed"),
            0,
            "{what}: failed events; see {}",
            self.log().display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn op2_sigkill_mid_stream_then_restart_matches_an_uninterrupted_run_e2e() {
    sigkill_mid_stream_then_restart(false).await;
}

/// The same with session events answered from the intake log (PF6): what
/// was logged and not merged when the process died is merged at the next
/// start, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pf6_op2_sigkill_mid_stream_with_the_intake_log_matches_an_uninterrupted_run_e2e() {
    sigkill_mid_stream_then_restart(true).await;
}

/// Plays the deliveries into a sidecar killed half way and restarted (with
/// `server.intake_log` as given), and compares Kustomer with an
/// uninterrupted run's.
async fn sigkill_mid_stream_then_restart(intake_log: bool) {
    let deliveries = inputs();

    // Reference: the same input, uninterrupted.
    let reference = Run::new().await;
    let mut sidecar = spawn(&reference.config, &reference.env, &reference.log()).await;
    for d in &deliveries {
        assert!(
            deliver(d, &reference.target(&sidecar.url), &reference.ccai).await,
            "reference delivery refused"
        );
    }
    reference.settle("the uninterrupted run finishing").await;
    sidecar.child.kill().await.expect("stop reference");
    let expected = content(&reference.kustomer);

    // Interrupted: SIGKILL while events are being processed.
    let run = Run::new().await;
    let text = std::fs::read_to_string(&run.config).expect("config");
    assert!(text.contains("[server]\n"), "{text}");
    let setting = format!("[server]\nintake_log = {intake_log}\n");
    std::fs::write(&run.config, text.replacen("[server]\n", &setting, 1)).expect("config");
    let mut sidecar = spawn(&run.config, &run.env, &run.log()).await;
    let counts = run.counts();
    let half = deliveries.len() / 2;
    for d in &deliveries[..half] {
        assert!(
            deliver(d, &run.target(&sidecar.url), &run.ccai).await,
            "delivery before the crash refused"
        );
    }
    eventually("some events applied before the crash", 120, || {
        (counts.inbox("done") >= 150).then_some(())
    })
    .await;
    let pending_at_kill = counts.inbox("pending");
    sidecar.child.kill().await.expect("SIGKILL");
    let _ = sidecar.child.wait().await;
    // Deliveries while the sidecar is down fail; the platform retries them.
    let mut undelivered = Vec::new();
    for d in &deliveries[half..half + 2] {
        if !deliver(d, &run.target(&sidecar.url), &run.ccai).await {
            undelivered.push(d.clone());
        }
    }
    assert_eq!(
        undelivered.len(),
        2,
        "nothing answers while the sidecar is down"
    );

    let sidecar = spawn(&run.config, &run.env, &run.log()).await;
    for d in undelivered.iter().chain(&deliveries[half + 2..]) {
        assert!(
            deliver(d, &run.target(&sidecar.url), &run.ccai).await,
            "delivery after the restart refused"
        );
    }
    run.settle("the restarted run finishing").await;
    let actual = content(&run.kustomer);
    assert_eq!(
        run.dir.path().join("data/intake-log").is_dir(),
        intake_log,
        "the run went through the intake log, or not, as configured"
    );
    eprintln!(
        "op2 (intake log {intake_log}): killed with {pending_at_kill} events pending; {} customers, {} conversations, {} messages, {} notes",
        actual["customers"].as_array().map_or(0, Vec::len),
        actual["conversations"].as_array().map_or(0, Vec::len),
        actual["messages"].as_array().map_or(0, Vec::len),
        actual["notes"].as_array().map_or(0, Vec::len),
    );
    for kind in ["customers", "conversations", "messages", "notes"] {
        assert_eq!(
            actual[kind], expected[kind],
            "{kind} differ from the uninterrupted run"
        );
    }
    let objects = |v: &Value| v.as_array().map_or(0, Vec::len);
    assert!(
        objects(&actual["customers"]) > 400,
        "the stream reached Kustomer"
    );
    drop(sidecar);
}

/// Kustomer's state by content, without ids or times: sorted lists of
/// customers, conversations (named by their customer), messages and notes
/// (named by their conversation).
pub(crate) fn content(kustomer: &kustomer_emu::KustomerEmulator) -> Value {
    let k = kustomer.control();
    let users: BTreeMap<String, String> = k
        .users()
        .iter()
        .map(|u| (id(u), attr_str(u, "email")))
        .collect();
    let customers = k.customers();
    let customer_key: BTreeMap<String, String> = customers
        .iter()
        .map(|c| {
            let a = attrs(c);
            let phones: Vec<&Value> = a["phones"]
                .as_array()
                .map(|p| p.iter().map(|p| &p["phone"]).collect())
                .unwrap_or_default();
            (id(c), format!("{phones:?}/{}", a["externalId"]))
        })
        .collect();
    let conversations = k.conversations();
    let conversation_key: BTreeMap<String, String> = conversations
        .iter()
        .map(|c| {
            let a = attrs(c);
            let owner = customer_key
                .get(&rel(c, "customer"))
                .cloned()
                .unwrap_or_default();
            (
                id(c),
                format!("{owner}/{}/{}", a["name"], a["custom"]["ccaiSessionIdStr"]),
            )
        })
        .collect();
    let mut out = serde_json::Map::new();
    let mut sorted = |name: &str, mut items: Vec<Value>| {
        items.sort_by_key(|v| v.to_string());
        out.insert(name.into(), Value::Array(items));
    };
    sorted(
        "customers",
        customers
            .iter()
            .map(|c| {
                let a = attrs(c);
                serde_json::json!({ "key": customer_key[&id(c)], "name": a["name"], "custom": a["custom"], "tags": a["tags"], "emails": a["emails"] })
            })
            .collect(),
    );
    sorted(
        "conversations",
        conversations
            .iter()
            .map(|c| {
                let a = attrs(c);
                let assignees: Vec<String> = a["assignedUsers"]
                    .as_array()
                    .map(|u| u.iter().map(|u| users.get(u.as_str().unwrap_or_default()).cloned().unwrap_or_default()).collect())
                    .unwrap_or_default();
                serde_json::json!({
                    "key": conversation_key[&id(c)], "status": a["status"], "priority": a["priority"],
                    "assignees": assignees, "tags": a["tags"], "custom": a["custom"], "direction": a["direction"],
                })
            })
            .collect(),
    );
    sorted(
        "messages",
        k.messages()
            .iter()
            .map(|m| {
                let a = attrs(m);
                serde_json::json!({
                    "conversation": conversation_key.get(&rel(m, "conversation")), "preview": a["preview"],
                    "direction": a["direction"], "channel": a["channel"], "sentAt": a["sentAt"], "meta": a["meta"],
                })
            })
            .collect(),
    );
    let attachment_names: BTreeMap<String, String> = k
        .attachments()
        .iter()
        .map(|a| (id(a), attr_str(a, "name")))
        .collect();
    sorted(
        "notes",
        k.notes()
            .iter()
            .map(|n| {
                let a = attrs(n);
                let files: Vec<String> = a["attachments"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|x| {
                                let aid = x["id"].as_str().or(x.as_str()).unwrap_or_default();
                                attachment_names.get(aid).cloned().unwrap_or_else(|| x.to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                serde_json::json!({ "conversation": conversation_key.get(&rel(n, "conversation")), "body": a["body"], "files": files })
            })
            .collect(),
    );
    Value::Object(out)
}

/// IS4: SIGTERM stops the intake, lets the events in flight finish within
/// `shutdown_grace`, and leaves the rest pending for the next start; nothing
/// is marked failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is4_sigterm_drains_within_the_grace_and_leaves_the_rest_pending_e2e() {
    let run = Run::new().await;
    let mut text = std::fs::read_to_string(&run.config).expect("config");
    text.push_str("\n[pipeline]\nshutdown_grace_seconds = 1\n");
    std::fs::write(&run.config, text).expect("config");
    // Every Kustomer request takes two seconds: events are in flight when
    // the signal comes, and most cannot finish within the grace.
    run.kustomer.control().inject(kustomer_emu::Fault::new(
        kustomer_emu::FaultKind::Latency { ms: 2_000 },
        u32::MAX,
    ));
    let mut sidecar = spawn(&run.config, &run.env, &run.log()).await;
    assert!(
        deliver(
            &Delivery::Batch(0, 30),
            &run.target(&sidecar.url),
            &run.ccai
        )
        .await,
        "delivery refused"
    );
    let counts = run.counts();
    // Answered from the intake log (PF6): merged into the store a moment later.
    eventually("the 30 events stored", 30, || {
        (counts.inbox("pending") == 30).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = sidecar.child.id().expect("pid").to_string();
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = await_or_timeout(
        "switchboard exiting after SIGTERM",
        30,
        sidecar.child.wait(),
    )
    .await
    .expect("exit status");
    let took = signalled.elapsed();
    println!("is4: exited {exit} {took:?} after SIGTERM");
    assert!(exit.success(), "a drained shutdown exits 0: {exit}");
    // The grace (1 s) plus one in-flight Kustomer request (2 s) and start-up
    // noise; far below the 30 events × several requests × 2 s it would take
    // to apply everything.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        counts.inbox("failed"),
        0,
        "nothing failed because of the shutdown"
    );
    assert!(
        counts.inbox("pending") > 0,
        "what did not finish stays pending for the next start"
    );
}
