//! Errors of the CCAI Platform client.

use reqwest::StatusCode;

/// Why `POST /apps/api/v1/calls` refused a call: one variant per message
/// the platform documents (400 `{"message": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRejection {
    AgentNotAvailable,
    TicketOrNumberRequired,
    InvalidAgentEmail,
    AgentEmailRequired,
    NoCallAccess,
    NumberNotWellFormed,
    ContactNotFound,
    InvalidCallType,
    MenuIdRequired,
    MenuNotFound,
    MenuIdNotWellFormed,
    MenuTypeNotPermitted,
    MenuManualRedirection,
    MenuAfterHours,
    LanguageNotAvailable,
    LanguageNotFound,
    NumberRequired,
    ScheduledAtRequired,
    /// A message this client does not know (the platform may add some).
    Other,
}

impl CallRejection {
    /// Classifies the platform's exact message.
    pub fn from_message(message: &str) -> Self {
        match message {
            "Agent is not available to take this call" => Self::AgentNotAvailable,
            "ticket_id or end_user_number required" => Self::TicketOrNumberRequired,
            "Not a valid agent email" => Self::InvalidAgentEmail,
            "Agent email required" => Self::AgentEmailRequired,
            "Agent does not have access to make calls" => Self::NoCallAccess,
            "end_user_number is not well-formed" | "end_user_number is not well formed" => {
                Self::NumberNotWellFormed
            }
            "Contact not found" => Self::ContactNotFound,
            "Invalid call type" => Self::InvalidCallType,
            "menu_id is required" => Self::MenuIdRequired,
            "menu_id is not well formed" => Self::MenuIdNotWellFormed,
            "Only IVR and mobile menu IDs are permitted"
            | "Only mobile and web menu IDs are permitted" => Self::MenuTypeNotPermitted,
            "Menu is in 'manual redirection' state, can't accept calls" => {
                Self::MenuManualRedirection
            }
            "Menu is in 'after hours' state, can't accept incoming calls" => Self::MenuAfterHours,
            "end_user_number is required" => Self::NumberRequired,
            "scheduled_at is required" => Self::ScheduledAtRequired,
            m if m.starts_with("menu_id ") && m.ends_with(" is not found") => Self::MenuNotFound,
            m if m.starts_with("Language '") && m.ends_with("' is not available") => {
                Self::LanguageNotAvailable
            }
            m if m.starts_with("Language '") && m.ends_with("' is not found") => {
                Self::LanguageNotFound
            }
            _ => Self::Other,
        }
    }
}

/// A failed CCAI Platform operation.
#[derive(Debug, thiserror::Error)]
pub enum CcaiError {
    /// The request never got an answer (connection, timeout), after retries.
    #[error("ccai {op} request failed: {source}")]
    Request {
        op: &'static str,
        source: reqwest::Error,
    },
    /// A non-success answer that has no more specific variant.
    #[error("ccai {op} failed with {status}: {body}")]
    Status {
        op: &'static str,
        status: StatusCode,
        body: String,
    },
    /// Still throttled (429) after the retries.
    #[error("ccai {op} still rate limited after {attempts} attempts")]
    RateLimited { op: &'static str, attempts: u32 },
    /// The credentials were refused (401/403).
    #[error("ccai {op}: credentials refused ({status})")]
    Unauthorized {
        op: &'static str,
        status: StatusCode,
    },
    /// `POST /calls` answered 400 with one of the documented messages.
    #[error("ccai refused the call: {message}")]
    CallRejected {
        kind: CallRejection,
        message: String,
    },
    /// The platform refused an agent's status change (e.g. the agent is in
    /// a system status such as In-call). Not retried: it is a decision.
    #[error("ccai refused the status change of agent {agent_id}: {message}")]
    StatusRefused { agent_id: u64, message: String },
    /// The status name is not one of the tenant's statuses.
    #[error("ccai has no status named {name:?}")]
    UnknownStatus { name: String },
    /// No agent with that email (or id).
    #[error("ccai has no agent {who}")]
    UnknownAgent { who: String },
    /// An answer that does not parse.
    #[error("ccai {op}: unexpected response: {source}")]
    Decode {
        op: &'static str,
        source: serde_json::Error,
    },
    /// The configured base URL cannot be joined with an API path.
    #[error("ccai base url {base} is not usable: {reason}")]
    BaseUrl { base: String, reason: String },
}

impl CcaiError {
    pub(crate) fn status(op: &'static str, status: StatusCode, body: impl Into<String>) -> Self {
        Self::Status {
            op,
            status,
            body: body.into(),
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Request { .. } | Self::RateLimited { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}
