//! Connections to the two SaaS platforms. Only the host talks to them; rule
//! modules never do I/O.

pub mod ccai;
pub mod clock;
pub mod kustomer;
pub mod retry;

/// JSON read from bytes, which are nearly always UTF-8: checked once as a
/// whole, so that the parser does not check every string it reads again.
/// Bytes that are not UTF-8 go to the byte parser, which says where.
pub(crate) fn json_from_bytes<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
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

#[cfg(test)]
mod tests {
    use super::json_from_bytes;
    use proptest::prelude::*;
    use serde_json::Value;

    proptest! {
        /// Whatever the bytes, the same value or the same error as reading
        /// them with `from_slice`.
        #[test]
        fn json_from_bytes_reads_what_from_slice_reads(
            text in r#"\{"[a-zé\\"]{0,8}": ?("[^"]{0,12}"|[0-9]{1,4}|\[\]|null)\}"#,
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = text.into_bytes();
            let same = |bytes: &[u8]| {
                let ours = json_from_bytes::<Value>(bytes).map_err(|e| e.to_string());
                let theirs = serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string());
                prop_assert_eq!(ours, theirs);
                Ok(())
            };
            same(&bytes)?;
            // And with one byte replaced anywhere: often not UTF-8, or not JSON.
            let at = cut.index(bytes.len());
            bytes[at] = byte;
            same(&bytes)?;
        }
    }
}
