//! Bad plan: returns a plan far larger than the host accepts (expects a plan-size error).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct BadPlan;

impl Rule for BadPlan {
    fn on_session_event(&self, _event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        let actions = (0..20_000)
            .map(|i| Action::AddNote(format!("note {i}")))
            .collect();
        Ok(Plan { actions })
    }

    fn on_status_change(&self, _change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        StatusDecision::Reject("x".repeat(1 << 20))
    }
}

register_rule!(BadPlan);
