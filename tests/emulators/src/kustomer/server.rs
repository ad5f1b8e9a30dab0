//! The HTTP server: a listener whose connections can be cut mid-request, the
//! gate every request passes (request log, faults, auth, org rate budget,
//! `x-ratelimit-*` and `date` headers) and the emulator handle.

use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::control::KustomerControl;
use super::render::ApiError;
use super::state::{ClockMode, FaultKind, Inner, RecordedRequest, Settings, WebhookTarget};
use super::{api, control, objects, org, webhooks};

/// Options of [`start`].
#[derive(Debug, Clone)]
pub struct KustomerEmulatorConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The API key (Bearer token) the emulator accepts.
    pub api_key: String,
    pub org_id: String,
    pub org_name: String,
    /// Org budget per 60-second window (Kustomer Enterprise: 1,000).
    pub rate_limit_per_minute: u32,
    /// Conversation/message creates per customer per minute (Kustomer: 120).
    pub customer_creates_per_minute: u32,
    /// Outbound webhook target, if any.
    pub webhook: Option<WebhookTarget>,
    /// Start with the clock stopped at this instant instead of system time.
    pub fixed_time: Option<DateTime<Utc>>,
    /// Order lists by id under `sort=`, as Kustomer documents (the default);
    /// off, lists keep creation order.
    pub sort_lists_by_id: bool,
    /// Searches per minute (Kustomer: 100 for API keys).
    pub search_per_minute: u32,
    /// Entries the request log and the webhook log each keep (oldest dropped).
    pub log_capacity: usize,
}

impl Default for KustomerEmulatorConfig {
    fn default() -> Self {
        KustomerEmulatorConfig {
            port: 0,
            api_key: DEFAULT_API_KEY.to_string(),
            org_id: "5ff4bc2b5c152a0e272c923a".to_string(),
            org_name: "switchboard-emulator".to_string(),
            rate_limit_per_minute: 1000,
            customer_creates_per_minute: 120,
            webhook: None,
            fixed_time: None,
            sort_lists_by_id: true,
            search_per_minute: 100,
            log_capacity: 20_000,
        }
    }
}

/// The key `switchboard-emulators kustomer` accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "emulator-kustomer-api-key";

/// Largest request body the server reads; the API itself answers 413 above
/// 100 kb, this only bounds memory.
const READ_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Default, Debug)]
pub(crate) struct KillSwitch(AtomicBool);

impl KillSwitch {
    fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP stream that fails every read and write once killed, so hyper drops
/// the connection without sending a byte of the response.
pub(crate) struct KillableStream {
    inner: TcpStream,
    kill: Arc<KillSwitch>,
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by fault injection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

pub(crate) struct KillableListener(TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let _ = inner.set_nodelay(true);
                    let kill = Arc::new(KillSwitch::default());
                    return (KillableStream { inner, kill }, addr);
                }
                // Out of file descriptors and the like: back off briefly.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Per-connection handle a handler uses to cut its own connection.
#[derive(Clone, Debug)]
pub(crate) struct Conn(Arc<KillSwitch>);

impl Connected<IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Conn(stream.io().kill.clone())
    }
}

/// Shared application state of the router.
#[derive(Clone)]
pub(crate) struct App {
    pub state: Arc<Mutex<Inner>>,
    pub base_url: Arc<str>,
    pub events: mpsc::UnboundedSender<(String, Value)>,
}

pub(crate) fn lock(state: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panicking handler must not take the whole emulator down with it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    /// Runs `f` under the state lock, then hands raised webhook events to the
    /// delivery worker.
    pub fn write<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = lock(&self.state);
        let out = f(&mut inner);
        for ev in inner.outbox.drain(..) {
            // The worker only stops at shutdown; events after that are moot.
            let _ = self.events.send(ev);
        }
        out
    }
}

fn header(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn set_rate_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: i64) {
    h.insert("x-ratelimit-limit", header(limit));
    h.insert("x-ratelimit-remaining", header(remaining));
    h.insert("x-ratelimit-reset", header(reset));
}

async fn gate(
    State(app): State<App>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| path.clone());
    if path.starts_with("/__control") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return ApiError::too_large().into_response();
    };
    // Validated without building a `Value`; the log keeps the text.
    let logged_body: Option<Box<str>> = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .ok()
        .map(|_| String::from_utf8_lossy(&bytes).into());
    let req = Request::from_parts(parts, Body::from(bytes));
    let is_api = path.starts_with("/v1/");

    let log = |status: u16, fault: Option<&str>, window: Option<DateTime<Utc>>| {
        let mut inner = lock(&app.state);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let at = inner.now();
        inner.record_request(
            RecordedRequest {
                seq,
                method: method.clone(),
                path: path_q.clone(),
                at,
                status,
                body: None,
                fault: fault.map(str::to_string),
                window_start: window,
            },
            logged_body.clone(),
        );
    };

    let fault = app.write(|i| i.take_fault(&method, &path));
    let mut fault_name = None;
    let mut drop_after = false;
    match fault {
        None => {}
        Some(FaultKind::Latency { ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            fault_name = Some("latency");
        }
        Some(FaultKind::RateLimited { reset_in_secs }) => {
            let (limit, now) = {
                let inner = lock(&app.state);
                (inner.settings.rate_limit_per_minute, inner.now())
            };
            let mut resp = ApiError::rate_limited("rate limit exceeded").into_response();
            set_rate_headers(
                resp.headers_mut(),
                limit,
                0,
                now.timestamp() + reset_in_secs.max(1),
            );
            resp.headers_mut().insert("date", header(http_date(now)));
            log(429, Some("rate_limited"), None);
            return resp;
        }
        Some(FaultKind::ServerError { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            log(status.as_u16(), Some("server_error"), None);
            return ApiError::server_error(status).into_response();
        }
        Some(FaultKind::DropConnection) => {
            conn.0.kill();
            log(0, Some("drop_connection"), None);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(FaultKind::ApplyThenDrop) => {
            drop_after = true;
            fault_name = Some("apply_then_drop");
        }
    }

    let mut window = None;
    if is_api {
        let (api_key, now) = {
            let inner = lock(&app.state);
            (inner.settings.api_key.clone(), inner.now())
        };
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if auth != Some(api_key.as_str()) {
            log(401, fault_name, None);
            let mut resp = ApiError::unauthorized().into_response();
            resp.headers_mut().insert("date", header(http_date(now)));
            return resp;
        }
        match app.write(|i| i.charge_org()) {
            Ok(start) => window = Some(start),
            Err(()) => {
                let (limit, remaining, reset, now) = {
                    let mut inner = lock(&app.state);
                    let (l, r, reset) = inner.org_headers();
                    (l, r, reset, inner.now())
                };
                let mut resp =
                    ApiError::rate_limited("org rate limit reached; wait for x-ratelimit-reset")
                        .into_response();
                set_rate_headers(resp.headers_mut(), limit, remaining, reset);
                resp.headers_mut().insert("date", header(http_date(now)));
                log(429, fault_name, None);
                return resp;
            }
        }
    }

    let mut resp = next.run(req).await;
    let now = {
        let mut inner = lock(&app.state);
        if is_api {
            let (limit, remaining, reset) = inner.org_headers();
            set_rate_headers(resp.headers_mut(), limit, remaining, reset);
        }
        inner.now()
    };
    resp.headers_mut().insert("date", header(http_date(now)));
    if drop_after {
        conn.0.kill();
    }
    log(resp.status().as_u16(), fault_name, window);
    resp
}

/// A running emulator. Dereferences to [`KustomerControl`] for state
/// inspection, fault injection and the clock; stops on drop or
/// [`KustomerEmulator::shutdown`].
pub struct KustomerEmulator {
    addr: SocketAddr,
    control: KustomerControl,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
}

impl KustomerEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A cloneable handle to the control surface (e.g. to drive the clock from
    /// another task).
    pub fn control(&self) -> KustomerControl {
        self.control.clone()
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

impl Deref for KustomerEmulator {
    type Target = KustomerControl;
    fn deref(&self) -> &KustomerControl {
        &self.control
    }
}

impl Drop for KustomerEmulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

pub(crate) fn fresh_inner(config: &KustomerEmulatorConfig) -> Inner {
    let mut inner = Inner {
        settings: Settings {
            api_key: config.api_key.clone(),
            org_id: config.org_id.clone(),
            org_name: config.org_name.clone(),
            machine_user_id: super::state::new_id(),
            rate_limit_per_minute: config.rate_limit_per_minute,
            customer_creates_per_minute: config.customer_creates_per_minute,
            webhook: config.webhook.clone(),
            sort_lists_by_id: config.sort_lists_by_id,
            search_per_minute: config.search_per_minute,
            log_capacity: config.log_capacity,
        },
        clock: match config.fixed_time {
            Some(at) => ClockMode::Fixed { at },
            None => ClockMode::System { offset_ms: 0 },
        },
        db: Default::default(),
        org_window: None,
        customer_windows: Default::default(),
        faults: Default::default(),
        requests: Default::default(),
        deliveries: Default::default(),
        search_window: None,
        outbox: Vec::new(),
        next_seq: 1,
    };
    objects::seed(&mut inner);
    org::seed(&mut inner);
    inner
}

/// Starts the emulator on `127.0.0.1:<port>` (0 = any free port).
pub async fn start(config: KustomerEmulatorConfig) -> anyhow::Result<KustomerEmulator> {
    let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let base_url: Arc<str> = Arc::from(format!("http://{addr}"));
    let state = Arc::new(Mutex::new(fresh_inner(&config)));
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = tokio::spawn(webhooks::worker(state.clone(), rx));
    let app = App {
        state: state.clone(),
        base_url,
        events: tx,
    };
    let router: Router = api::routes()
        .merge(control::routes())
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate))
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(app.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(
            KillableListener(listener),
            router.into_make_service_with_connect_info::<Conn>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "kustomer emulator stopped");
        }
    });
    Ok(KustomerEmulator {
        addr,
        control: KustomerControl::new(app),
        stop: Some(stop),
        task: Some(task),
        worker: Some(worker),
    })
}
