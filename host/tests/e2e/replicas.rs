//! HA2, HA3: three `switchboard serve` replicas share one PostgreSQL
//! database and the Kustomer emulator. Events go round robin to the replicas
//! (as behind any HTTP load balancer); one replica is SIGKILLed and another
//! restarted mid-stream; modules are swapped on one replica during a stream.
use crate::crash::{content, spawn, Sidecar};
use crate::pg::TestDb;
use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard_emulators::ccai::{self as ccai_emu, load};
use switchboard_emulators::kustomer as kustomer_emu;

/// Emulators, a database and one config (and data directory) per replica.
struct Cluster {
    kustomer: kustomer_emu::KustomerEmulator,
    _ccai: ccai_emu::CcaiEmulator,
    db: TestDb,
    dir: tempfile::TempDir,
    configs: Vec<PathBuf>,
    env: Vec<(&'static str, String)>,
    replicas: Vec<Option<Sidecar>>,
}

impl Cluster {
    async fn start(replicas: usize) -> Cluster {
        let (kustomer, ccai) = emulators().await;
        let db = TestDb::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut configs = Vec::new();
        for i in 0..replicas {
            let home = dir.path().join(format!("replica-{i}"));
            std::fs::create_dir_all(&home).expect("replica dir");
            let config = write_config(
                &home,
                &kustomer,
                &ccai,
                Some(switchboard_rule_artifacts::RULES_DEFAULT),
                Secrets::Env,
            );
            let mut text = std::fs::read_to_string(&config).expect("config");
            text.push_str(
                "\n[store]\nbackend = \"postgres\"\nurl = { env = \"E2E_DATABASE_URL\" }\npool_size = 8\n",
            );
            std::fs::write(&config, text).expect("config");
            configs.push(config);
        }
        let mut env = secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
        env.push(("E2E_DATABASE_URL", db.url().to_string()));
        let mut cluster = Cluster {
            kustomer,
            _ccai: ccai,
            db,
            dir,
            configs,
            env,
            replicas: Vec::new(),
        };
        for i in 0..replicas {
            let sidecar = cluster.spawn(i).await;
            cluster.replicas.push(Some(sidecar));
        }
        cluster
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("replica-{i}.log"))
    }

    async fn spawn(&self, i: usize) -> Sidecar {
        spawn(&self.configs[i], &self.env, &self.log(i)).await
    }

    fn url(&self, i: usize) -> Option<&str> {
        self.replicas[i].as_ref().map(|s| s.url.as_str())
    }

    /// Posts a batch to replica `first`, or the next one answering, as a
    /// load balancer retries elsewhere. Returns the replica that took it.
    async fn deliver(&self, first: usize, batch: &Value) -> usize {
        for k in 0..self.replicas.len() * 4 {
            let i = (first + k) % self.replicas.len();
            let Some(url) = self.url(i) else { continue };
            let sent = tokio::time::timeout(
                Duration::from_secs(30),
                reqwest::Client::new()
                    .post(format!("{url}/v1/tenants/acme/ccai/session-events"))
                    .basic_auth(EVENTS_USER, Some(EVENTS_PASSWORD))
                    .json(batch)
                    .send(),
            )
            .await;
            if matches!(sent, Ok(Ok(r)) if r.status().is_success()) {
                return i;
            }
        }
        panic!(
            "no replica accepted a batch; see the logs in {}",
            self.dir.path().display()
        );
    }

    /// Inbox rows by status.
    fn inbox(&self) -> BTreeMap<String, i64> {
        self.db.with_client(|c| {
            c.query("SELECT status, count(*) FROM inbox GROUP BY status", &[])
                .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Waits until `total` events are done; fails on a failed event.
    async fn settle(&self, total: i64, what: &str) {
        let logs = self.dir.path().display().to_string();
        eventually(what, 300, || {
            let counts = self.inbox();
            assert_eq!(
                counts.get("failed"),
                None,
                "{what}: failed events; see {logs}"
            );
            (counts.get("done").copied() == Some(total) && counts.len() == 1).then_some(())
        })
        .await;
    }

    /// The replica id of replica `i`, from its `/readyz`.
    async fn replica_id(&self, i: usize) -> String {
        let url = self.url(i).expect("running replica").to_string();
        let body: Value = eventually_async(&format!("replica {i} ready"), 120, || async {
            let r = reqwest::get(format!("{url}/readyz")).await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.json::<Value>().await.ok()
        })
        .await;
        assert_eq!(body["store"]["backend"], "postgres", "HA4: {body}");
        body["store"]["replica"]
            .as_str()
            .expect("readyz names the replica")
            .to_string()
    }

    async fn modules(&self, i: usize) -> Value {
        let url = self.url(i).expect("running replica");
        reqwest::Client::new()
            .get(format!("{url}/admin/tenants/acme/modules"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("modules answer")
            .json()
            .await
            .expect("modules json")
    }
}

/// `events` chats from `customers` callers, 50 per batch: event `i` is
/// customer `i % customers`' chat number `i / customers`, later events later.
fn batches(events: u64, customers: u64) -> Vec<Value> {
    let all: Vec<Value> = (0..events)
        .map(|i| load::created_event(i, i % customers))
        .collect();
    all.chunks(50).map(|c| load::batch(c.to_vec())).collect()
}

/// Customers replica `id` holds with events still to apply: only a lease
/// holder can apply them, so after its death they wait for a takeover.
fn waiting_on(cluster: &Cluster, id: &str) -> BTreeSet<String> {
    cluster.db.with_client(|c| {
        c.query(
            "SELECT l.customer_key FROM customer_leases l
             WHERE l.replica = $1
               AND EXISTS (SELECT 1 FROM inbox i
                           WHERE i.tenant = l.tenant AND i.customer_key = l.customer_key
                             AND i.status = 'pending')",
            &[&id],
        )
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    })
}

/// Of the customers `held` by the dead replica `dead`, how many still wait
/// for a takeover: 0 once every one was taken over.
fn stuck(cluster: &Cluster, dead: &str, held: &BTreeSet<String>) -> usize {
    waiting_on(cluster, dead).intersection(held).count()
}

fn sigterm(sidecar: &Sidecar) {
    let pid = sidecar.child.id().expect("running child");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGTERM sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha2_three_replicas_lose_nothing_and_keep_order_through_a_sigkill_and_a_restart_e2e() {
    const EVENTS: u64 = 5_000;
    const CUSTOMERS: u64 = 500;
    let batches = batches(EVENTS, CUSTOMERS);

    // Reference: the same events, one SQLite process, uninterrupted.
    let (kustomer, ccai) = emulators().await;
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        reference_dir.path(),
        &kustomer,
        &ccai,
        Some(switchboard_rule_artifacts::RULES_DEFAULT),
        Secrets::Env,
    );
    let env = secret_env(&kustomer.control().api_key(), &ccai.credentials().api_token);
    let log = reference_dir.path().join("switchboard.log");
    let reference = spawn(&config, &env, &log).await;
    for b in &batches {
        let (status, body) = post_batch(&reference.url, EVENTS_USER, EVENTS_PASSWORD, b).await;
        assert!(
            (200..300).contains(&status),
            "reference refused a batch: {body}"
        );
    }
    let counts = Counts::open(&reference_dir.path().join("data"));
    eventually("the reference run finishing", 300, || {
        (counts.inbox("done") == EVENTS).then_some(())
    })
    .await;
    let expected = content(&kustomer);
    drop(reference);

    // Three replicas, one database.
    let mut cluster = Cluster::start(3).await;
    let ids = [
        cluster.replica_id(0).await,
        cluster.replica_id(1).await,
        cluster.replica_id(2).await,
    ];
    let started = Instant::now();
    let mut took = [0usize; 3];
    let (kill_at, restart_at) = (batches.len() * 2 / 5, batches.len() * 7 / 10);
    let mut killed: Option<(Instant, String, BTreeSet<String>)> = None;
    let mut restarted = false;
    let mut taken_over: Option<Duration> = None;
    for (n, b) in batches.iter().enumerate() {
        if n >= kill_at && killed.is_none() {
            // SIGKILL replica 1 as soon as it holds customers with events
            // waiting, the stream still flowing.
            let dead = ids[1].clone();
            let held = waiting_on(&cluster, &dead);
            if !held.is_empty() {
                let mut sidecar = cluster.replicas[1].take().expect("replica 1");
                sidecar.child.kill().await.expect("SIGKILL");
                let _ = sidecar.child.wait().await;
                let at = Instant::now();
                // What it still held once dead (it may have finished one
                // between the look and the kill).
                let held = waiting_on(&cluster, &dead);
                killed = Some((at, dead, held));
            }
        }
        if n >= restart_at && killed.is_some() && !restarted {
            restarted = true;
            // Replica 2 is stopped (SIGTERM) and started again.
            let mut sidecar = cluster.replicas[2].take().expect("replica 2");
            sigterm(&sidecar);
            let _ = await_or_timeout("replica 2 stopping", 60, sidecar.child.wait()).await;
            cluster.replicas[2] = Some(cluster.spawn(2).await);
        }
        // The platforms send as calls happen, not all at once: the stream
        // keeps pace with what the replicas apply, so a takeover is not
        // queued behind a backlog the test itself built.
        eventually("the replicas keeping up", 120, || {
            (cluster.inbox().get("pending").copied().unwrap_or(0) < 250).then_some(())
        })
        .await;
        took[cluster.deliver(n % 3, b).await] += 1;
        if let (Some((at, dead, held)), None) = (&killed, taken_over) {
            if stuck(&cluster, dead, held) == 0 {
                taken_over = Some(at.elapsed());
            }
        }
    }
    let accepted = started.elapsed();

    // Takeover: every customer the dead replica held has its events applied
    // by another replica.
    let (killed_at, dead, held) =
        killed.expect("replica 1 held customers at some point of the stream, and was killed");
    let takeover = match taken_over {
        Some(d) => d,
        None => {
            eventually("the dead replica's customers taken over", 120, || {
                (stuck(&cluster, &dead, &held) == 0).then(|| killed_at.elapsed())
            })
            .await
        }
    };
    cluster.settle(EVENTS as i64, "every event applied").await;
    let applied = started.elapsed();

    // Per customer, events were applied in event-time order.
    let order: Vec<(String, i64, String)> = cluster.db.with_client(|c| {
        c.query(
            "SELECT i.customer_key, i.at_ms, o.updated_at FROM inbox i
             JOIN outcomes o ON o.tenant = i.tenant AND o.event_id = i.event_id
             ORDER BY i.customer_key, i.at_ms, i.seq",
            &[],
        )
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        })
    });
    let states: BTreeMap<String, i64> = cluster.db.with_client(|c| {
        c.query("SELECT state, count(*) FROM outcomes GROUP BY state", &[])
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    });
    assert_eq!(
        order.len() as u64,
        EVENTS,
        "every event has an outcome (outcomes by state: {states:?})"
    );
    assert_eq!(states.get("failed"), None, "no event failed: {states:?}");
    let mut out_of_order = 0;
    for pair in order.windows(2) {
        if pair[0].0 == pair[1].0 && pair[1].2 < pair[0].2 {
            out_of_order += 1;
        }
    }
    assert_eq!(
        out_of_order, 0,
        "a customer's later event was applied before an earlier one"
    );

    let actual = content(&cluster.kustomer);
    eprintln!(
        "ha2: {EVENTS} events over {CUSTOMERS} customers to 3 replicas (batches taken: {took:?}); \
         accepted in {:.1} s, applied in {:.1} s; replica 1 SIGKILLed holding {} customers, \
         taken over in {:.1} s; replica 2 restarted; {} customers, {} conversations, {} messages in Kustomer",
        accepted.as_secs_f64(),
        applied.as_secs_f64(),
        held.len(),
        takeover.as_secs_f64(),
        actual["customers"].as_array().map_or(0, Vec::len),
        actual["conversations"].as_array().map_or(0, Vec::len),
        actual["messages"].as_array().map_or(0, Vec::len),
    );
    for kind in ["customers", "conversations", "messages", "notes"] {
        assert_eq!(
            actual[kind], expected[kind],
            "{kind} differ from the uninterrupted single-process run: lost or duplicated"
        );
    }
    assert!(
        takeover <= Duration::from_secs(10),
        "takeover took {takeover:?}, more than 10 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha3_a_module_swapped_on_one_replica_goes_live_on_the_others_e2e() {
    const EVENTS: u64 = 2_000;
    let cluster = Cluster::start(3).await;
    for i in 0..3 {
        cluster.replica_id(i).await;
    }
    let batches = batches(EVENTS, 200);
    let modules = [
        std::fs::read(switchboard_rule_artifacts::RULES_EXAMPLE_VIP).expect("example module"),
        std::fs::read(switchboard_rule_artifacts::RULES_DEFAULT).expect("default module"),
    ];
    let swaps = 20;
    let mut seen = Vec::new();
    let per_swap = batches.len() / swaps;
    for (n, b) in batches.iter().enumerate() {
        cluster.deliver(n % 3, b).await;
        if n % per_swap != per_swap - 1 || seen.len() == swaps {
            continue;
        }
        // Swap on replica 0; time until replicas 1 and 2 have it live.
        let module = &modules[seen.len() % 2];
        let url = cluster.url(0).expect("replica 0").to_string();
        let answer: Value = reqwest::Client::new()
            .post(format!("{url}/admin/tenants/acme/modules"))
            .bearer_auth(ADMIN_TOKEN)
            .body(module.clone())
            .send()
            .await
            .expect("upload answers")
            .json()
            .await
            .expect("upload json");
        let version = answer["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("upload: {answer}"));
        let uploaded = Instant::now();
        for i in 1..3 {
            eventually_async(
                &format!("version {version} live on replica {i}"),
                30,
                || async {
                    (cluster.modules(i).await["live"].as_u64() == Some(version)).then_some(())
                },
            )
            .await;
        }
        seen.push(uploaded.elapsed());
    }
    cluster.settle(EVENTS as i64, "every event applied").await;

    // A rollback on replica 1 goes live on replicas 0 and 2 likewise.
    let url = cluster.url(1).expect("replica 1").to_string();
    let rolled: Value = reqwest::Client::new()
        .post(format!(
            "{url}/admin/tenants/acme/modules/rollback?version=1"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("rollback answers")
        .json()
        .await
        .expect("rollback json");
    assert_eq!(rolled["version"].as_u64(), Some(1), "rolled back: {rolled}");
    let rolled_back = Instant::now();
    for i in [0, 2] {
        eventually_async(&format!("the rollback live on replica {i}"), 30, || async {
            (cluster.modules(i).await["live"].as_u64() == Some(1)).then_some(())
        })
        .await;
    }
    let rollback_seen = rolled_back.elapsed();

    // Every event was decided by one recorded version: its number and
    // digest are a pair the registry recorded.
    let versions: BTreeSet<(u64, String)> = cluster.modules(2).await["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().expect("number"),
                v["digest"].as_str().expect("digest").to_string(),
            )
        })
        .collect();
    assert_eq!(
        versions.len(),
        swaps + 1,
        "one version per swap, and the first"
    );
    let decided: Vec<(Option<i64>, Option<String>)> = cluster.db.with_client(|c| {
        c.query("SELECT module_version, module_digest FROM outcomes", &[])
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    });
    assert_eq!(decided.len() as u64, EVENTS);
    let used: BTreeSet<u64> = decided
        .iter()
        .map(|(v, d)| {
            let pair = (
                v.and_then(|v| u64::try_from(v).ok()).expect("a version"),
                d.clone().expect("a digest"),
            );
            assert!(
                versions.contains(&pair),
                "decided by an unrecorded version: {pair:?}"
            );
            pair.0
        })
        .collect();
    seen.sort();
    let median = seen[seen.len() / 2];
    eprintln!(
        "ha3: {swaps} swaps on replica 0 during {EVENTS} events; live on replicas 1 and 2 after \
         median {} ms, max {} ms; events decided by {} distinct versions; a rollback on \
         replica 1 live on replicas 0 and 2 after {} ms",
        median.as_millis(),
        seen.last().map_or(0, |d| d.as_millis()),
        used.len(),
        rollback_seen.as_millis()
    );
    assert!(
        median <= Duration::from_secs(1),
        "a swap took {median:?} (median) to go live on every replica"
    );
}
