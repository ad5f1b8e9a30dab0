//! OP10: the operator dashboard (`/ui`) in a real browser. The sidecar runs
//! against the emulators; one event is dead-lettered (Kustomer answers 503
//! past the event's maximum age); then headless Chromium, driven over the
//! DevTools protocol, signs in with the admin token, finds the event with its
//! reason, opens its timeline and clicks its Retry button, and the event is
//! applied in the Kustomer emulator.
//!
//! Needs Debian's `chromium` (`tests/run` installs it, or
//! `apt-get install chromium`). `SWITCHBOARD_SCREENSHOT=1` saves the
//! screenshot as `docs/dashboard.png`; otherwise it goes to the temp dir.
//! Every wait has a deadline naming its step, scaled by
//! `SWITCHBOARD_E2E_TIMEOUT_SCALE`.
//!
//! Run: `cargo test -p switchboard --test dashboard`.

use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::demo::{Stack, StackOptions, ADMIN_TOKEN};
use switchboard::store::{InboxStatus, Store};
use switchboard_emulators::ccai::load;
use switchboard_emulators::kustomer::{Fault, FaultKind, KustomerControl};
use tungstenite::{Message, WebSocket};

/// Timeouts are multiplied by `SWITCHBOARD_E2E_TIMEOUT_SCALE` (default 1).
fn scaled(secs: u64) -> Duration {
    let scale = std::env::var("SWITCHBOARD_E2E_TIMEOUT_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs as f64 * scale)
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `secs`.
async fn await_or_timeout<T>(
    what: &str,
    secs: u64,
    fut: impl std::future::Future<Output = T>,
) -> T {
    let limit = scaled(secs);
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what`
/// after `secs`. Blocking: for the browser thread.
fn eventually<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let limit = scaled(secs);
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() <= limit,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Chromium on `PATH`, else Debian's `/usr/bin/chromium`; fails the test
/// with what to install when there is neither.
fn chromium() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/chromium");
        debian.is_file().then_some(debian)
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed, and this test drives it: run `tests/run` \
             (which installs it) or `apt-get install chromium`"
        )
    })
}

/// Where the screenshot goes.
fn screenshot_path() -> PathBuf {
    if std::env::var("SWITCHBOARD_SCREENSHOT").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png")
    } else {
        std::env::temp_dir().join("switchboard-dashboard.png")
    }
}

/// The Chromium process, killed when dropped (also when a step fails
/// while it starts).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium and one DevTools session on one of its pages.
struct Browser {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: String,
    /// Chromium's latest stderr lines, for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Declared after the websocket: the process goes first, then its
    /// profile directory.
    _process: Process,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium on a fresh profile, connects to its DevTools
    /// websocket and opens a page.
    fn launch(path: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let child = Command::new(path)
            .args([
                "--headless=new",
                "--remote-debugging-port=0",
                // Containers and root have no usable sandbox; the browser
                // loads only the sidecar on loopback.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let mut process = Process(child);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (found, url) = mpsc::channel();
        let pipe = process.0.stderr.take().expect("chromium's stderr");
        let lines = stderr.clone();
        // Reads stderr to its end, so Chromium never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(at) = line.find("DevTools listening on ") {
                    let _ = found.send(
                        line[at + "DevTools listening on ".len()..]
                            .trim()
                            .to_string(),
                    );
                }
                let mut kept = lines.lock().unwrap_or_else(|p| p.into_inner());
                kept.push(line);
                if kept.len() > 40 {
                    kept.remove(0);
                }
            }
        });
        let limit = scaled(30);
        let url = url.recv_timeout(limit).unwrap_or_else(|_| {
            let tail = stderr.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
            panic!("timed out after {limit:?}: Chromium announcing its DevTools websocket; stderr:\n{tail}")
        });
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("a ws:// DevTools URL, not {url}"));
        let stream = TcpStream::connect(authority).expect("connecting to DevTools");
        stream
            .set_read_timeout(Some(scaled(30)))
            .expect("read timeout");
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools websocket handshake: {e}"));
        // Short reads from now on, so every wait checks its own deadline.
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut browser = Browser {
            ws,
            next_id: 0,
            session: String::new(),
            stderr,
            _process: process,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a DevTools session id")
            .to_string();
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// One DevTools command (on the page's session once attached); its
    /// result, or a panic naming the method.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        let limit = scaled(30);
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() <= limit,
                "timed out after {limit:?}: DevTools answering {method}; Chromium said:\n{}",
                self.stderr_tail()
            );
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("reading DevTools' answer to {method}: {e}"),
            };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if answer["id"] != json!(id) {
                continue; // an event, or another session's message
            }
            if let Some(error) = answer.get("error") {
                panic!("{method} failed: {error}");
            }
            return answer["result"].clone();
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its value; an exception is returned as `Err`.
    fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        match result.get("exceptionDetails") {
            Some(details) => Err(details.to_string()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Polls `expression` every 100 ms until it gives a truthy value (not
    /// null, false, 0 or ""), failing with `step` after `secs`.
    fn wait_for(&mut self, step: &str, secs: u64, expression: &str) -> Value {
        let limit = scaled(secs);
        let started = Instant::now();
        loop {
            let last = self.eval(expression);
            if let Ok(value) = &last {
                let falsy = matches!(value, Value::Null | Value::Bool(false))
                    || *value == json!(0)
                    || *value == json!("");
                if !falsy {
                    return value.clone();
                }
            }
            if started.elapsed() > limit {
                let page = self
                    .eval("document.body ? document.body.innerText.slice(0, 3000) : ''")
                    .unwrap_or_default();
                panic!(
                    "timed out after {limit:?}: {step}\nlast value: {last:?}\npage text:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the whole page.
    fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let height = self
            .eval("Math.min(3000, document.documentElement.scrollHeight)")
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000)
            .max(600);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("dashboard screenshot: {}", path.display());
    }
}

/// A JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// The browser's part: sign in, find the dead letter, open its timeline,
/// retry it; returns once the event is applied.
fn drive(chromium: &Path, url: &str, event_id: &str, store: &Store, kustomer: &KustomerControl) {
    let mut browser = Browser::launch(chromium);
    browser.call("Page.navigate", json!({ "url": format!("{url}/ui") }));
    browser.wait_for(
        "the page loads and asks for the admin token",
        30,
        "(() => { const s = document.getElementById('login'); \
               return !!s && !s.hidden && document.getElementById('token').type === 'password'; })()",
    );

    browser
        .eval(&format!(
            "(() => {{ document.getElementById('token').value = {token}; \
                      document.getElementById('login-form').requestSubmit(); return true; }})()",
            token = js(ADMIN_TOKEN)
        ))
        .expect("entering the token");
    browser.wait_for(
        "the token is kept in sessionStorage and the dashboard shows",
        10,
        &format!(
            "sessionStorage.getItem('switchboard.adminToken') === {token} \
             && !document.getElementById('app').hidden",
            token = js(ADMIN_TOKEN)
        ),
    );

    let row = format!(
        "Array.from(document.querySelectorAll('#failed-body tr'))\
           .find(r => r.dataset.tenant === 'acme' && r.dataset.eventId === {id})",
        id = js(event_id)
    );
    let listed = browser.wait_for(
        "the dead-lettered event is listed with its reason and a Retry button",
        30,
        &format!(
            "(() => {{ const r = {row}; if (!r) return null; \
                return {{ status: r.dataset.status, \
                          reason: r.querySelector('td.reason').textContent, \
                          retry: !!r.querySelector('button[data-action=retry]') }}; }})()"
        ),
    );
    assert_eq!(listed["status"], "dead", "{listed}");
    assert!(
        listed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "the reason names Kustomer's 503: {listed}"
    );
    assert_eq!(listed["retry"], true, "{listed}");
    browser.wait_for(
        "the tenant's row counts the dead letter",
        10,
        "(() => { const r = document.querySelector('#tenants-body tr[data-tenant=acme]'); \
                  return !!r && r.cells[5].textContent === '1'; })()",
    );

    browser
        .eval(&format!(
            "{row}.querySelector('button[data-action=view]').click()"
        ))
        .expect("opening the timeline");
    let timeline = browser.wait_for(
        "the event's timeline shows its state, attempts and reason",
        15,
        &format!(
            "(() => {{ const t = document.getElementById('timeline'); \
                const text = t.hidden ? '' : t.innerText; \
                return text.includes({id}) && text.includes('503') && text.includes('attempt') ? text : null; }})()",
            id = js(event_id)
        ),
    );
    assert!(
        timeline.as_str().unwrap_or_default().contains("dead"),
        "the timeline names the state: {timeline}"
    );

    browser.screenshot(&screenshot_path());

    browser
        .eval(&format!(
            "{row}.querySelector('button[data-action=retry]').click()"
        ))
        .expect("clicking Retry");
    browser.wait_for(
        "the page says the event was requeued",
        15,
        "document.getElementById('notice').textContent.includes('Requeued 1')",
    );

    eventually("the retried event is applied", 60, || {
        let row = store.event("acme", event_id).expect("the inbox answers")?;
        (row.status == InboxStatus::Done).then_some(())
    });
    eventually(
        "the caller is a customer in the Kustomer emulator",
        30,
        || (kustomer.customers().len() == 1).then_some(()),
    );
    browser.wait_for(
        "the event leaves the failed list and the counts show it done",
        20,
        &format!(
            "(() => {{ const r = document.querySelector('#tenants-body tr[data-tenant=acme]'); \
                return !({row}) && !!r && r.cells[5].textContent === '0' && r.cells[3].textContent === '1'; }})()"
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op10_dashboard_shows_a_failed_event_and_its_retry_button_requeues_it() {
    let chromium = chromium();
    let mut options = StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.poll_interval = None;
    // Kustomer's 503s outlast the event's maximum age quickly.
    options.pipeline.max_event_age = Duration::from_secs(2);
    options.pipeline.retry_base = Duration::from_millis(100);
    options.pipeline.retry_max = Duration::from_millis(400);
    let stack = await_or_timeout("starting the stack", 120, Stack::start(options))
        .await
        .expect("the stack starts");
    stack
        .kustomer
        .control()
        .inject(Fault::new(FaultKind::ServerError { status: 503 }, u32::MAX));

    let batch = load::batch(vec![load::created_event(0, 0)]);
    let answer = await_or_timeout(
        "posting a session-events batch",
        30,
        reqwest::Client::new()
            .post(format!(
                "{}/v1/tenants/acme/ccai/session-events",
                stack.url()
            ))
            .basic_auth(&stack.target.username, Some(&stack.target.password))
            .json(&batch)
            .send(),
    )
    .await
    .expect("the sidecar answers");
    assert_eq!(answer.status(), 200, "the batch is accepted");

    let store = stack.app.store().clone();
    let event_id = {
        let mut found = None;
        let limit = scaled(60);
        let started = Instant::now();
        while found.is_none() {
            assert!(
                started.elapsed() <= limit,
                "timed out after {limit:?}: the event is dead-lettered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            found = store
                .events("acme")
                .expect("inbox rows")
                .into_iter()
                .find(|r| r.status == InboxStatus::Dead)
                .map(|r| r.event_id);
        }
        found.expect("a dead letter")
    };
    // Kustomer is back; the event stays dead until an operator retries it.
    stack.kustomer.control().clear_faults();

    let url = stack.url();
    let kustomer = stack.kustomer.control();
    let browser = tokio::task::spawn_blocking(move || {
        drive(&chromium, &url, &event_id, &store, &kustomer);
    });
    // The browser's own steps have deadlines; this bounds the whole.
    match await_or_timeout("driving the dashboard in Chromium", 240, browser).await {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the browser task: {e}"),
    }
    await_or_timeout("stopping the stack", 60, stack.shutdown()).await;
}
