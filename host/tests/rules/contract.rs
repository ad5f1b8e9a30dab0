//! The WIT contract (RM1), one module per tenant (RM2) and guest logs in the
//! host's log (RM6).
use crate::support::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::{Arc, Mutex};
use switchboard::runtime::types as t;
use switchboard::runtime::{CallMeta, Registry, WORLD};
use switchboard_rule_artifacts as artifacts;

/// SHA-256 of `wit/since_v0.1.0/rules.wit` as published. A published WIT
/// version is frozen: a change belongs in a new `since_vX.Y.Z` directory.
const PUBLISHED_V0_1_0: &str = "a053b0678818c36c3906ef6a98d972bafcc167a274743e0450c1deb7ddaaf01b";

#[test]
fn rm1_published_wit_is_frozen() {
    let wit = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wit/since_v0.1.0/rules.wit"
    ))
    .expect("read WIT");
    assert_eq!(
        hex::encode(Sha256::digest(&wit)),
        PUBLISHED_V0_1_0,
        "wit/since_v0.1.0/rules.wit changed; published versions are frozen (add a new version instead)"
    );
}

#[test]
fn rm1_modules_implement_the_published_world() {
    let rt = runtime();
    for path in [artifacts::RULES_DEFAULT, artifacts::RULES_EXAMPLE_VIP] {
        let module = load(&rt, path);
        assert_eq!(module.info.world, WORLD);
        assert_eq!(WORLD, "switchboard:rules/rule@0.1.0");
        for export in ["on-session-event", "on-status-change"] {
            assert!(
                module.info.exports.iter().any(|e| e == export),
                "{path} exports {export}"
            );
        }
    }
}

#[test]
fn rm2_each_tenant_runs_its_own_module() {
    let reg = Registry::new(Arc::new(runtime()), None);
    reg.deploy("acme", &artifacts::bytes(artifacts::RULES_DEFAULT), "test")
        .expect("deploy acme");
    reg.deploy("globex", &artifacts::bytes(artifacts::FIXTURE_ECHO), "test")
        .expect("deploy globex");
    let decide = |tenant: &str| {
        let live = reg.live(tenant).expect("live module");
        reg.runtime()
            .on_session_event(
                &live.module,
                &CallMeta::new(tenant, "evt-1"),
                // An inbound call that ended: the default rules record it.
                &t::SessionEvent {
                    kind: t::EventKind::Ended,
                    ..event("evt-1")
                },
                &context(tenant),
            )
            .expect("call")
    };
    let acme = decide("acme");
    let globex = decide("globex");
    assert!(
        matches!(acme.actions.first(), Some(t::Action::CreateCustomer(_))),
        "acme runs the default rules: {:?}",
        acme.actions
    );
    assert!(
        matches!(globex.actions.as_slice(), [t::Action::AddNote(n)] if n.starts_with("globex evt-1")),
        "globex runs its own module: {:?}",
        globex.actions
    );
}

/// A `MakeWriter` that keeps everything written in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything logged at INFO and above on this thread while `f` runs.
pub(crate) fn capture_info_log(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().expect("log buffer").clone();
    String::from_utf8(bytes).expect("utf8 log")
}

#[test]
fn rm6_guest_logs_reach_the_host_log_tagged_with_tenant_module_and_event() {
    let rt = runtime();
    let echo = load(&rt, artifacts::FIXTURE_ECHO);
    // The call runs on this thread, so a thread-local subscriber sees it.
    let log = capture_info_log(|| {
        rt.on_session_event(
            &echo,
            &CallMeta::new("acme", "evt-42"),
            &event("evt-42"),
            &context("acme"),
        )
        .expect("echo call");
    });
    let line = log
        .lines()
        .find(|l| l.contains("echo evt-42"))
        .unwrap_or_else(|| panic!("guest line in:\n{log}"));
    assert!(line.contains("tenant=\"acme\""), "{line}");
    assert!(
        line.contains(&format!("module=\"{}\"", &echo.info.digest[..12])),
        "{line}"
    );
    assert!(line.contains("event_id=\"evt-42\""), "{line}");
}
