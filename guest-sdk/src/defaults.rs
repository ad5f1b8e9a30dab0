//! The default rules (SPEC §2–6) as reusable functions.
use crate::*;

/// Default flow for a session event.
pub fn on_session_event<R: Rule + ?Sized>(
    rule: &R,
    event: &SessionEvent,
    ctx: &Context,
) -> Result<Plan, RuleError> {
    let _ = (rule, event, ctx);
    Ok(Plan { actions: vec![Action::Skip("not yet implemented".into())] })
}

/// Default status decision.
pub fn on_status_change(change: &StatusChange, ctx: &StatusContext) -> StatusDecision {
    let _ = (change, ctx);
    StatusDecision::Ignore("not yet implemented".into())
}

/// TU1 match.
pub fn append_target(event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
    let _ = (event, ctx);
    None
}

/// New conversation for a session.
pub fn new_conversation(event: &SessionEvent, ctx: &Context) -> NewConversation {
    let _ = ctx;
    NewConversation {
        name: event.session.id.clone(),
        channel: event.session.channel,
        direction: event.session.direction,
        priority: None,
        voicemail: false,
        menu_selection: None,
        status: ConversationStatus::Open,
        tags: vec![],
        fields: vec![],
        assign_to: None,
    }
}

/// New customer for a session.
pub fn new_customer(event: &SessionEvent, ctx: &Context) -> NewCustomer {
    let _ = ctx;
    NewCustomer {
        name: event.session.end_user.name.clone(),
        phone: event.session.end_user.phone.clone(),
        external_id: event.session.end_user.sdk_identifier.clone(),
        email: event.session.end_user.email.clone(),
        fields: vec![],
    }
}

/// TU9 mapping.
pub fn map_custom_data(data: &[CustomDatum], ctx: &Context) -> (Vec<CustomField>, Vec<CustomField>) {
    let _ = (data, ctx);
    (vec![], vec![])
}
