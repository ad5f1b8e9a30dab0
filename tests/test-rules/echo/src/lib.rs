//! Echo: a well-behaved module that answers every event with a note naming the event and tenant.
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Echo;

impl Rule for Echo {
    fn on_session_event(&self, event: &SessionEvent, ctx: &Context) -> Result<Plan, RuleError> {
        log(LogLevel::Info, &format!("echo {}", event.id));
        Ok(Plan {
            actions: vec![Action::AddNote(format!("{} {} {}", ctx.tenant, event.id, ctx.now))],
        })
    }

    fn on_status_change(&self, change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        StatusDecision::Ignore(format!("echo {}", change.status))
    }
}

register_rule!(Echo);
