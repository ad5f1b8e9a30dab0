//! {{name}}: a Switchboard rule module in Rust.
//!
//! The default rules (SPEC §2–6) with one decision changed: a voicemail's
//! conversation gets priority 4 and the tag `voicemail`.
use switchboard_guest_sdk::prelude::*;

/// Kustomer priority of a voicemail's conversation (1 lowest, 5 highest).
const VOICEMAIL_PRIORITY: u8 = 4;

#[derive(Default)]
struct Rules;

impl Rule for Rules {
    fn new_conversation(&self, event: &SessionEvent, ctx: &Context) -> NewConversation {
        let mut conversation = defaults::new_conversation(event, ctx);
        if conversation.voicemail {
            conversation.priority = Some(VOICEMAIL_PRIORITY);
            conversation.tags.push("voicemail".into());
        }
        conversation
    }
}

register_rule!(Rules);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_guest_sdk::testing::{self, check_plan, PlanExt};

    #[test]
    fn a_voicemail_gets_a_high_priority_conversation() {
        let event = testing::ivr_call("call-1")
            .phone("+14155550100")
            .event(EventKind::VoicemailLeft(Voicemail {
                recording: None,
                duration_seconds: Some(20),
            }));
        let ctx = testing::context().build();
        let plan = Rules.on_session_event(&event, &ctx).unwrap();
        check_plan(&plan, &ctx).unwrap();
        let conversation = plan.conversation_created().unwrap();
        assert_eq!(conversation.priority, Some(VOICEMAIL_PRIORITY));
        assert!(conversation.tags.contains(&"voicemail".to_string()));
    }
}
