//! Connections to the two SaaS platforms. Only the host talks to them; rule
//! modules never do I/O.

pub mod ccai;
pub mod kustomer;

/// One tenant's clients. Built once per tenant and cloned into every part of
/// the service: clones share the connection pool and, above all, the
/// rate-limit state, so the tenant's traffic as a whole stays within
/// Kustomer's org budget and CCAI Platform's 10 requests per second.
#[derive(Debug, Clone)]
pub struct Clients {
    pub kustomer: kustomer::KustomerClient,
    pub ccai: ccai::CcaiClient,
}

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
