//! Errors of the Kustomer connector.

use reqwest::StatusCode;

/// What went wrong talking to Kustomer.
#[derive(Debug, thiserror::Error)]
pub enum KustomerError {
    /// Kustomer answered with an error status. `title` is the error's
    /// `title` or `message`, whichever body shape the endpoint uses.
    #[error("kustomer {op} failed with {status}: {title}")]
    Status {
        op: &'static str,
        status: StatusCode,
        code: Option<String>,
        title: String,
        detail: Option<String>,
    },
    #[error("kustomer {op}: request failed: {source}")]
    Transport {
        op: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("kustomer {op}: unexpected response body: {source}")]
    Decode {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Transient failures (5xx, connection errors) or rate-limit waits went on
    /// past the retry policy.
    #[error("kustomer {op} gave up after {attempts} attempts: {last}")]
    Exhausted {
        op: &'static str,
        attempts: u32,
        #[source]
        last: Box<KustomerError>,
    },
    #[error("kustomer {op}: {reason}")]
    Invalid { op: &'static str, reason: String },
    #[error("invalid kustomer configuration: {0}")]
    Config(String),
}

impl KustomerError {
    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        KustomerError::Invalid {
            op,
            reason: reason.into(),
        }
    }

    /// The HTTP status Kustomer answered, looking through `Exhausted`.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            KustomerError::Status { status, .. } => Some(*status),
            KustomerError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// 409: a duplicate id, externalId, email or phone (or a lock conflict).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether the same request may succeed later: 5xx, 429, a conflict
    /// (Kustomer answers 409 to concurrent writes of one record), a network
    /// failure, or retries that ran out on one of those.
    pub fn is_transient(&self) -> bool {
        match self.status() {
            Some(s) => s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 409,
            None => matches!(
                self,
                KustomerError::Transport { .. } | KustomerError::Exhausted { .. }
            ),
        }
    }
}
