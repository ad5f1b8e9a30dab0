//! Huge alloc: grows memory far past any per-call cap (expects the memory limit to stop it).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct Hog;

fn hog() -> usize {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![7u8; 8 << 20]);
        if blocks.len() > 1_000 {
            return blocks.iter().map(|b| b.len()).sum();
        }
    }
}

impl Rule for Hog {
    fn on_session_event(&self, _event: &SessionEvent, _ctx: &Context) -> Result<Plan, RuleError> {
        Ok(Plan {
            actions: vec![Action::Skip(hog().to_string())],
        })
    }

    fn on_status_change(&self, _change: &StatusChange, _ctx: &StatusContext) -> StatusDecision {
        StatusDecision::Ignore(hog().to_string())
    }
}

register_rule!(Hog);
