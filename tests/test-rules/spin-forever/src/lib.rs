//! Spin forever: an infinite loop (expects the epoch deadline, `Trap::Interrupt`).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Spin;

fn spin(seed: usize) -> usize {
    let mut x = seed;
    loop {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        if x == usize::MAX {
            return x;
        }
    }
}

impl Rule for Spin {
    fn on_session_event(&self, event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        let n = spin(event.id.len());
        Ok(Plan {
            actions: vec![Action::Skip(n.to_string())],
        })
    }

    fn on_status_change(&self, change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        StatusDecision::Ignore(spin(change.status.len()).to_string())
    }
}

register_rule!(Spin);
