//! Connections to the two SaaS platforms. Only the host talks to them; rule
//! modules never do I/O.

pub mod ccai;
pub mod clock;
pub mod kustomer;
pub mod retry;

/// Counts one HTTP exchange with a platform: `status` is the HTTP status
/// code, or `error` when no response arrived.
pub(crate) fn record_request(api: &'static str, op: &'static str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    metrics::counter!("switchboard_api_requests_total", "api" => api, "op" => op, "status" => status).increment(1);
}

/// Counts a retry (after a 5xx or a connection error) or a wait for a rate
/// limit to reset (`reason = "rate_limited"`).
pub(crate) fn record_retry(api: &'static str, op: &'static str, reason: &'static str) {
    metrics::counter!("switchboard_api_retries_total", "api" => api, "op" => op, "reason" => reason).increment(1);
}
