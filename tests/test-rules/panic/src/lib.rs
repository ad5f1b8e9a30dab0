//! Panic: the guest panics on every call (expects `Trap::UnreachableCodeReached`).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Panic;

impl Rule for Panic {
    fn on_session_event(&self, event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        panic!("fixture panic on {}", event.id)
    }

    fn on_status_change(&self, change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        panic!("fixture panic on {}", change.status)
    }
}

register_rule!(Panic);
