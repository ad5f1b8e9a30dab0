//! The service's edges under misuse: slow clients holding connections (IS8)
//! and the shape of every error answer (IS10).
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use switchboard::app::App;
use switchboard::config::Config;
use switchboard::demo::{ADMIN_TOKEN, AGENT_API_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Half-open connections the slowloris test opens when the open-file limit
/// allows.
const SLOW_CLIENTS: usize = 2_000;

/// Descriptors the test leaves for everything else in this process (the
/// sidecar's store, the test harness, the other tests running beside it).
const FD_MARGIN: u64 = 512;

/// IS8: 2,000 connections that each send half a request, against a sidecar
/// whose connection cap (1,000) is below that. The cap keeps the sidecar's
/// descriptors bounded, the header-read timeout (1 s here) frees the slots
/// the slow clients hold, and `/healthz`, queued behind them, is answered
/// within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is8_slowloris_half_open_connections_do_not_stop_healthz() {
    // Each slow client costs this process two descriptors: the client's
    // socket and, once accepted, the sidecar's.
    let slow_clients = match switchboard::http::server::open_file_limit() {
        Some(limit) if limit < SLOW_CLIENTS as u64 * 2 + FD_MARGIN => {
            let fits = usize::try_from(limit.saturating_sub(FD_MARGIN) / 2).unwrap_or(0);
            eprintln!(
                "open-file limit {limit} is below what {SLOW_CLIENTS} slow clients need; \
                 opening {fits} instead"
            );
            fits
        }
        _ => SLOW_CLIENTS,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"
header_read_timeout_ms = 1000
idle_timeout_ms = 5000
request_timeout_ms = 5000
max_connections = 1000
"#,
        dir.path(),
    )
    .expect("config");
    let app = await_or_timeout("starting the sidecar", 60, App::start(config))
        .await
        .expect("sidecar starts");
    let addr = app.addr();

    let mut slow = Vec::with_capacity(slow_clients);
    await_or_timeout("opening the slow connections", 60, async {
        for i in 0..slow_clients {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            // The request line and one header, never the blank line.
            let half =
                format!("POST /v1/tenants/acme/ccai/session-events HTTP/1.1\r\nhost: slow-{i}\r\n");
            stream
                .write_all(half.as_bytes())
                .await
                .expect("half a request");
            slow.push(stream);
        }
    })
    .await;

    let started = Instant::now();
    let healthz = await_or_timeout(
        "GET /healthz behind the slow connections",
        10,
        reqwest::get(format!("http://{addr}/healthz")),
    )
    .await
    .expect("healthz answers");
    let took = started.elapsed();
    assert_eq!(healthz.status().as_u16(), 200);
    eprintln!("{slow_clients} half-open connections; /healthz answered in {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "/healthz took {took:?} behind {slow_clients} half-open connections"
    );

    // The sidecar closed the slow connections it accepted: the first one
    // reads end-of-stream instead of hanging.
    let first = slow.first_mut().expect("at least one slow client");
    let mut buf = Vec::new();
    await_or_timeout(
        "the first slow connection being closed",
        10,
        first.read_to_end(&mut buf),
    )
    .await
    .expect("read until closed");
    drop(slow);
    await_or_timeout("shutting the sidecar down", 30, app.shutdown()).await;
}

/// One request against the running sidecar; returns its status, headers
/// and body.
async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = await_or_timeout(what, 30, request.send())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = await_or_timeout(what, 30, response.text())
        .await
        .unwrap_or_default();
    (status, headers, body)
}

/// IS10: every error answer is `{"error": "..."}` with a JSON content type,
/// whether a route or the framework produced it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is10_every_error_body_is_json() {
    let stack = start_default().await;
    let url = stack.url();
    let http = reqwest::Client::new();
    let status_url = format!("{url}/v1/tenants/acme/kustomer/status");
    let cases: Vec<(&str, u16, reqwest::RequestBuilder)> = vec![
        (
            "unknown route",
            404,
            http.get(format!("{url}/no/such/route")),
        ),
        (
            "wrong method",
            405,
            http.get(format!("{url}/v1/tenants/acme/ccai/session-events")),
        ),
        (
            "body over the framework's limit",
            413,
            http.post(&status_url)
                .bearer_auth(AGENT_API_TOKEN)
                .header("content-type", "application/json")
                // One byte over axum's default limit (2 MiB): the refusal
                // comes after the whole body is in, so the connection closes
                // cleanly instead of being reset under the unread rest.
                .body(vec![b' '; (2 << 20) + 1]),
        ),
        (
            "query the extractor refuses",
            400,
            http.post(format!(
                "{url}/admin/tenants/acme/modules/rollback?version=not-a-number"
            ))
            .bearer_auth(ADMIN_TOKEN),
        ),
        (
            "path that is not UTF-8",
            400,
            http.get(format!("{url}/admin/tenants/%FF/modules"))
                .bearer_auth(ADMIN_TOKEN),
        ),
        (
            "malformed status report",
            400,
            http.post(&status_url)
                .bearer_auth(AGENT_API_TOKEN)
                .header("content-type", "application/json")
                .body("{not json"),
        ),
        (
            "wrong credentials",
            401,
            http.post(format!("{url}/v1/tenants/acme/ccai/session-events"))
                .basic_auth("ccai-events", Some("wrong"))
                .body("{}"),
        ),
        (
            "unknown tenant",
            404,
            http.get(format!("{url}/admin/tenants/nobody/modules"))
                .bearer_auth(ADMIN_TOKEN),
        ),
    ];
    for (what, expected, request) in cases {
        let (status, headers, body) = send(request, what).await;
        assert_eq!(status, expected, "{what}: {body}");
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "{what}: content type {content_type:?}, body {body:?}"
        );
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {body:?}"));
        let message = json["error"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: no error message in {json}");
        if expected == 405 {
            assert!(
                headers.get("allow").is_some(),
                "{what}: the 405 keeps its Allow header"
            );
        }
        if expected == 413 {
            assert_eq!(
                headers.get("connection").and_then(|v| v.to_str().ok()),
                Some("close"),
                "{what}: a refused body ends the connection"
            );
        }
    }
}

/// OP9: the routes a browser calls (the Kustomer app's status report and
/// agents list, click-to-call, the screen pop) answer a CORS preflight for
/// the configured origins only; the operator routes never do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op9_agent_routes_allow_cors_for_configured_origins_only_e2e() {
    const ORIGIN: &str = "https://acme.kustomerapp.com";
    let mut options =
        switchboard::demo::StackOptions::new(switchboard_rule_artifacts::RULES_DEFAULT);
    options.cors_origins = vec![ORIGIN.to_string()];
    let stack = start(options).await;
    let client = reqwest::Client::new();
    let preflight = |path: &str, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", stack.url()))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    for path in [
        "/v1/tenants/acme/kustomer/status",
        "/v1/tenants/acme/status-sync/agents",
        "/v1/tenants/acme/click-to-call",
        "/v1/tenants/acme/sessions/1001/conversation",
    ] {
        let allowed = preflight(path, ORIGIN).await.expect("preflight");
        assert!(
            allowed.status().is_success(),
            "{path}: {}",
            allowed.status()
        );
        assert_eq!(
            allowed
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(ORIGIN),
            "{path}"
        );
        let other = preflight(path, "https://evil.example")
            .await
            .expect("preflight");
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "{path}: another origin is not allowed"
        );
    }
    let admin = preflight("/admin/tenants/acme/modules", ORIGIN)
        .await
        .expect("preflight");
    assert!(
        admin.headers().get("access-control-allow-origin").is_none(),
        "operator routes take no cross-origin calls"
    );
    let report = client
        .post(format!("{}/v1/tenants/acme/kustomer/status", stack.url()))
        .header("origin", ORIGIN)
        .bearer_auth(AGENT_API_TOKEN)
        .json(&serde_json::json!({ "agent_email": "ada@example.com", "instance_id": "tab-1" }))
        .send()
        .await
        .expect("report");
    assert_eq!(report.status(), 200);
    assert_eq!(
        report
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    stack.shutdown().await;
}
