//! The HTTP server: an accept loop with a cap on connections, each served
//! with hyper's HTTP/1 and watched for slow and idle clients.
//!
//! A client that opens a connection and sends half a request holds a file
//! descriptor for as long as the server lets it. Without bounds, enough of
//! them exhaust the process's descriptors: the listener can no longer accept,
//! `/healthz` times out, and the store and the outbound clients fail to open
//! files and sockets. Here every connection is bounded:
//!
//! - **Header read** ([`ConnectionLimits::header_read_timeout`]): a new
//!   connection's request headers must be complete this soon after it is
//!   accepted; on a kept-alive connection the clock starts at the first byte
//!   of the next request. Trickling bytes does not extend it.
//! - **Idle** ([`ConnectionLimits::idle_timeout`]): a kept-alive connection
//!   that sends nothing after an answer is closed after this long. A client
//!   that stops reading its answer also ends up idle once the answer is
//!   handed to the socket, and is closed the same way.
//! - **Request** ([`ConnectionLimits::request_timeout`]): reading one
//!   request's body and answering it; past it the answer is a JSON 408 and
//!   the connection is closed.
//! - **Cap** ([`ConnectionLimits::max_connections`]): at the cap the server
//!   stops accepting until a connection closes. New connections wait in the
//!   kernel's listen backlog and are served as soon as a slot frees, which
//!   the timeouts above guarantee within one header-read timeout of any
//!   slow client. Waiting was chosen over accepting and closing at once: a
//!   refused webhook or session-event delivery is retried by the platform
//!   immediately, which adds load exactly when there is too much, while a
//!   queued one is simply answered late. The cap is lowered at start to fit
//!   the process's open-file limit when that can be read, so the server can
//!   never take the descriptors the rest of the process needs.
//!
//! Shutdown: when the given signal resolves the listener is closed, every
//! connection finishes the request it is serving and closes, and [`serve`]
//! returns once all of them have.
use crate::config::ConnectionLimits;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Descriptors left for everything else the process opens (the SQLite store
/// and its journal, deployed modules, the module watcher, the pooled
/// connections of every tenant's Kustomer and CCAI clients) when the cap is
/// fitted to the open-file limit.
const RESERVED_FDS: u64 = 256;

/// Pause after an accept error that is not a client giving up (out of
/// descriptors or memory): retrying at once would only spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(250);

/// Serves `router` on `listener` until `shutdown` resolves, then lets every
/// open connection finish its request and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let cap = fitted_cap(limits.max_connections, open_file_limit());
    tracing::info!(
        max_connections = cap,
        header_read_timeout_ms = limits.header_read_timeout.as_millis(),
        idle_timeout_ms = limits.idle_timeout.as_millis(),
        request_timeout_ms = limits.request_timeout.as_millis(),
        "HTTP server limits"
    );
    let slots = Arc::new(Semaphore::new(cap));
    // Connections learn of shutdown through a watch channel: each can check
    // it at any time, and one send reaches all of them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) if client_gave_up(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            router.clone(),
            limits.clone(),
            stop_rx.clone(),
            slot,
        ));
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    // Every open connection holds a slot until it closes, so having all the
    // slots back means every connection is done.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// A client closed or reset its connection before it was accepted: nothing
/// is wrong with the server.
fn client_gave_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// The process's soft limit on open files, where the system says (Linux
/// `/proc`); `None` when unknown or unlimited.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The configured cap, lowered to leave [`RESERVED_FDS`] of the open-file
/// limit to the rest of the process (but never below half the limit, so a
/// small limit still serves).
fn fitted_cap(configured: usize, file_limit: Option<u64>) -> usize {
    // The semaphore's own ceiling, and `acquire_many` counts in u32.
    let ceiling = Semaphore::MAX_PERMITS.min(u32::MAX as usize);
    let configured = configured.clamp(1, ceiling);
    let Some(limit) = file_limit else {
        return configured;
    };
    let room = limit.saturating_sub(RESERVED_FDS).max(limit / 2).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if configured > room {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = limit,
            serving = room,
            "server.max_connections is above what the open-file limit leaves; \
             serving fewer (raise `ulimit -n` to serve more)"
        );
        room
    } else {
        configured
    }
}

/// Where one connection is between requests, as far as its timeouts go.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers to be complete, since `since`.
    Head { since: Instant },
    /// A request is being read and answered (the request timeout applies).
    Busy,
    /// Answered; nothing sent since `since`.
    Idle { since: Instant },
}

/// What the watchdog of one connection knows of it.
struct Activity {
    /// `std` mutex: held for one read or write of the phase, never across an
    /// await.
    phase: Mutex<Phase>,
    /// Woken on every change of phase, so the watchdog re-reads its deadline.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            // A client opens a connection to send a request at once: the
            // header-read clock starts at accept.
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        // The phase is a plain value; a panic elsewhere cannot leave it torn.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection they start the next request.
    fn bytes_read(&self) {
        let mut phase = self.lock();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed if nothing changes, and why.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        match *self.lock() {
            Phase::Head { since } => Some((since + limits.header_read_timeout, "header_read")),
            Phase::Idle { since } => Some((since + limits.idle_timeout, "idle")),
            Phase::Busy => None,
        }
    }
}

/// The socket, reporting reads to the connection's [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until the client closes it, a timeout closes it,
/// or shutdown lets its last request finish. `_slot` is given back when it
/// ends.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Answers are small JSON bodies; without this, Nagle's algorithm can
    // hold an answer's last segment back until the client's delayed ACK.
    let _ = stream.set_nodelay(true);
    metrics::gauge!("switchboard_http_connections").increment(1.0);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = {
        let router = TowerToHyperService::new(router);
        let activity = activity.clone();
        let limit = limits.request_timeout;
        hyper::service::service_fn(move |req: Request<Incoming>| {
            activity.set(Phase::Busy);
            let answer = router.call(req);
            let activity = activity.clone();
            async move {
                let response = match tokio::time::timeout(limit, answer).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => request_timed_out(limit),
                };
                activity.set(Phase::Idle {
                    since: Instant::now(),
                });
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        let expiry = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            () = expiry => {
                // The phase may have moved on while we slept; close only if
                // the deadline still stands.
                if let Some((at, reason)) = activity.deadline(&limits) {
                    if Instant::now() >= at {
                        tracing::debug!(reason, "closing a slow or idle HTTP connection");
                        metrics::counter!("switchboard_http_connections_closed_total", "reason" => reason)
                            .increment(1);
                        break;
                    }
                }
            }
            () = activity.changed.notified() => {}
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    metrics::gauge!("switchboard_http_connections").decrement(1.0);
}

/// The answer to a request that took longer than `request_timeout`. The
/// connection is closed after it: the request's body may be half read.
fn request_timed_out(limit: Duration) -> Response<Body> {
    metrics::counter!("switchboard_http_connections_closed_total", "reason" => "request")
        .increment(1);
    let mut response = crate::web::error(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request was not read and answered within {} ms",
            limit.as_millis()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        assert_eq!(fitted_cap(1024, None), 1024);
        assert_eq!(fitted_cap(1024, Some(20_000)), 1024);
        assert_eq!(fitted_cap(1024, Some(1024)), 768, "256 left for the rest");
        assert_eq!(fitted_cap(1024, Some(300)), 150, "never below half");
        assert_eq!(fitted_cap(0, None), 1);
    }

    struct Server {
        addr: std::net::SocketAddr,
        stop: watch::Sender<bool>,
        done: tokio::task::JoinHandle<()>,
    }

    async fn server(limits: ConnectionLimits) -> Server {
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, mut rx) = watch::channel(false);
        let done = tokio::spawn(serve(listener, router, limits, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Server { addr, stop, done }
    }

    fn limits(header_ms: u64, idle_ms: u64, request_ms: u64) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(header_ms),
            idle_timeout: Duration::from_millis(idle_ms),
            request_timeout: Duration::from_millis(request_ms),
            max_connections: 64,
        }
    }

    /// Reads until the server closes the connection; returns what it sent
    /// and how long that took.
    async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
        let started = Instant::now();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out));
        match read.await {
            Ok(_) => (
                String::from_utf8_lossy(&out).into_owned(),
                started.elapsed(),
            ),
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }

    const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

    #[tokio::test]
    async fn is8_half_sent_headers_are_cut_off_at_the_header_read_timeout() {
        let s = server(limits(300, 5_000, 5_000)).await;
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("half a request");
        // Trickling more header lines does not extend the deadline.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = stream.write_all(b"x-slow: 1\r\n").await;
        }
        let (_, took) = until_closed(&mut stream).await;
        assert!(
            took < Duration::from_secs(2),
            "closed {took:?} after the last byte"
        );
    }

    #[tokio::test]
    async fn is8_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
        let s = server(limits(200, 1_000, 5_000)).await;
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        stream.write_all(GET_HEALTHZ).await.expect("request");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Idle for longer than the header-read timeout: still open, and a
        // second request is answered.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stream.write_all(GET_HEALTHZ).await.expect("second request");
        let n = stream.read(&mut buf).await.expect("second answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let (_, took) = until_closed(&mut stream).await;
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "idle connection closed after {took:?}"
        );
    }

    #[tokio::test]
    async fn is8_a_request_over_the_request_timeout_gets_a_json_408_and_closes() {
        let s = server(limits(1_000, 5_000, 300)).await;
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("request");
        let (answer, took) = until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/json"), "{answer}");
        assert!(answer.contains(r#"{"error":"#), "{answer}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test]
    async fn is8_past_the_cap_connections_wait_and_shutdown_waits_for_them() {
        let mut l = limits(500, 5_000, 5_000);
        l.max_connections = 2;
        let s = server(l).await;
        // Two silent connections take both slots…
        let _a = TcpStream::connect(s.addr).await.expect("connect a");
        let _b = TcpStream::connect(s.addr).await.expect("connect b");
        tokio::time::sleep(Duration::from_millis(50)).await;
        // …so a third waits in the backlog until the header-read timeout
        // frees one, then is answered.
        let started = Instant::now();
        let mut c = TcpStream::connect(s.addr).await.expect("connect c");
        c.write_all(GET_HEALTHZ).await.expect("request");
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("answered within 5 s")
            .expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited for a slot: {:?}",
            started.elapsed()
        );
        let _ = s.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), s.done)
            .await
            .expect("shutdown completes once connections close")
            .expect("server task");
    }
}
