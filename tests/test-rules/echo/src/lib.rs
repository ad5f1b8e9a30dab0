//! Echo: a well-behaved module that answers every event with a note naming tenant, event, the guest clock and a randomly seeded hash.
use std::hash::BuildHasher;
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Echo;

/// What the guest sees of the host's clock and randomness (both fixed per call).
fn environment() -> String {
    let clock_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let hash = std::collections::hash_map::RandomState::new().hash_one("switchboard");
    format!("clock={clock_ms} hash={hash:016x}")
}

impl Rule for Echo {
    fn on_session_event(&self, event: &SessionEvent, ctx: &Context) -> Result<Plan, RuleError> {
        log(LogLevel::Info, &format!("echo {}", event.id));
        Ok(Plan {
            actions: vec![Action::AddNote(format!(
                "{} {} {} {}",
                ctx.tenant,
                event.id,
                ctx.now,
                environment()
            ))],
        })
    }

    fn on_status_change(&self, change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        StatusDecision::Ignore(format!("echo {}", change.status))
    }
}

register_rule!(Echo);
