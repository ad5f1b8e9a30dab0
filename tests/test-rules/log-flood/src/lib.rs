//! Log flood: writes far more log lines than the host keeps per call (expects truncation, call succeeds).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Flood;

impl Rule for Flood {
    fn on_session_event(&self, event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        for i in 0..10_000 {
            log(
                LogLevel::Info,
                &format!("flood line {i} for {}: {}", event.id, "y".repeat(4096)),
            );
        }
        Ok(Plan {
            actions: vec![Action::Skip("flooded".into())],
        })
    }
}

register_rule!(Flood);
