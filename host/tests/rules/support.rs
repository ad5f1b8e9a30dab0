//! Shared helpers: a runtime with test-friendly limits and minimal inputs in
//! the host's types.
use std::sync::Arc;
use std::time::Duration;
use switchboard::runtime::types as t;
use switchboard::runtime::{LoadedModule, Runtime, RuntimeConfig};

/// A runtime whose deadline is short enough to keep the timeout test quick.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        deadline: Duration::from_millis(25),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A runtime for modules whose work takes milliseconds before the limit
/// under test (memory, output size) is reached: a loaded machine must not
/// turn that into a timeout.
pub fn patient_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        deadline: Duration::from_secs(5),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// `bytes` with a custom section appended: the same module, another digest.
pub fn distinct(bytes: &[u8], n: u8) -> Vec<u8> {
    let name = b"switchboard-test";
    let mut section = vec![u8::try_from(name.len()).expect("short name")];
    section.extend_from_slice(name);
    section.push(n);
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(u8::try_from(section.len()).expect("short section"));
    out.extend(section);
    out
}

pub fn load(rt: &Runtime, path: &str) -> Arc<LoadedModule> {
    rt.load(&switchboard_rule_artifacts::bytes(path))
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

/// A minimal inbound IVR call event.
pub fn event(id: &str) -> t::SessionEvent {
    t::SessionEvent {
        id: id.into(),
        at: "2026-11-24T10:00:00.000Z".into(),
        session: t::Session {
            id: "call-1".into(),
            kind: t::SessionKind::IvrCall,
            channel: t::Channel::Voice,
            direction: t::Direction::Inbound,
            session_type: "Voice Inbound (IVR)".into(),
            end_user: t::EndUser {
                phone: Some("+14155550100".into()),
                sdk_identifier: None,
                email: None,
                name: None,
            },
            menu: Some(t::Menu {
                id: 9,
                name: "Billing".into(),
                path: "9".into(),
            }),
            queue_name: Some("Billing".into()),
            language: Some("en".into()),
            agent: None,
            started_at: Some("2026-11-24T10:00:00.000Z".into()),
            ended_at: None,
            durations: t::Durations {
                call_seconds: None,
                hold_seconds: None,
                wait_seconds: None,
            },
            parent_session_id: None,
            custom_data: vec![],
        },
        kind: t::EventKind::Created,
    }
}

pub fn context(tenant: &str) -> t::Context {
    t::Context {
        tenant: tenant.into(),
        now: "2026-11-24T10:00:00.000Z".into(),
        customer: None,
        recent_conversations: vec![],
        linked_conversation: None,
        settings: t::Settings {
            recording_enabled: true,
            fields: vec![],
            field_mapping: vec![],
            options: vec![],
        },
    }
}

pub fn status_change(status: &str) -> t::StatusChange {
    t::StatusChange {
        source: t::System::Kustomer,
        agent_email: "ana@example.com".into(),
        status: status.into(),
        instance_id: Some("tab-1".into()),
        at: "2026-11-24T10:00:00.000Z".into(),
        login: false,
    }
}

pub fn status_context() -> t::StatusContext {
    t::StatusContext {
        kustomer_to_ccai: vec![t::StatusMap {
            from: "Online".into(),
            to: "Available".into(),
        }],
        ccai_to_kustomer: vec![],
        two_way: false,
        priority: t::PriorityMode::LastChangeWins,
        ccai_status: Some("Unavailable".into()),
        ccai_activity: t::AgentActivity::Idle,
        kustomer_status: None,
        active_instances: 1,
        pending: None,
        last_applied: None,
        now: "2026-11-24T10:00:00.000Z".into(),
    }
}
