//! The default rules (SPEC §2–6) as reusable functions.
//!
//! Every function here is pure: it reads the event and the context the host
//! gathered and returns actions; nothing is stored between calls, so the same
//! inputs always give the same plan (RM5). The [`Rule`] trait's default
//! methods call these functions, and the session flow
//! ([`on_session_event`]) calls back into the trait for each overridable
//! decision, so a tenant can replace one decision and keep the rest.
//!
//! # Session events
//!
//! **Customer (CC1, CC2, CF2).** When `ctx.customer` is `None` and the event
//! creates or appends a conversation (or writes customer fields), the plan
//! starts with `create-customer` built by [`Rule::new_customer`]: the E.164
//! phone for callers (CC1), `external-id` = the SDK identifier for app users
//! (CC2), the email when known, the Custom user ID field (CF2) when that field
//! is live, and the name "Unknown user" when the end user is anonymous (no
//! phone, identifier, email or name).
//!
//! **Ensuring a conversation** (used by `created`, `assigned`, `connected`,
//! `ended`, `abandoned` and the call-backs). In order:
//! 1. `create-customer` when needed (above);
//! 2. `append-to(id)` when [`Rule::append_target`] returns a conversation,
//!    otherwise `create-conversation` from [`Rule::new_conversation`];
//! 3. `add-message`: the call/chat record from [`Rule::call_record`]
//!    (channel, direction, preview, meta: session id, session type, caller
//!    id, language, menu, menu path, queue);
//! 4. `add-note` with the E.164 phone when the contact has one (PN1,
//!    [`Rule::phone_note`]);
//! 5. SDK custom data mapped by [`Rule::map_custom_data`] (TU9): conversation
//!    fields go into the new conversation's fields, or a `set-fields` after an
//!    append; customer fields go into the new customer, or an
//!    `update-customer` for a known customer.
//!
//! [`append_target`] decides where a session is appended:
//! - outbound call (TU2/TC3): the customer's most recent conversation when it
//!   is open, otherwise none (a new outbound conversation);
//! - `hangup-and-callback` (TU5) and `short-call-callback` (TU6): the open
//!   conversation of the parent session, else the linked conversation if
//!   open, else the newest open conversation on the same channel; none open
//!   creates a new conversation;
//! - everything else (TU1): the newest **open** conversation (snoozed and
//!   done never match) on the same channel with the same menu selection. The
//!   menu selection is compared by [`menu_selection`] (the menu's id path,
//!   e.g. `"9/12"`); a session without a menu matches a conversation without
//!   one.
//!
//! [`new_conversation`] (TC1–TC5, SD1): name from session kind and caller,
//! the session's channel and direction, status open, `menu-selection`, the
//! live standard fields from [`standard_fields`] (SD1, CF3, CF4: only fields
//! listed in `ctx.settings.fields`, under the attribute names given there:
//! from-phone, menu-selection (menu name), session-type, session-id,
//! queue-name, email-in-web for web chats), and `voicemail: true` for a
//! voicemail (TC5).
//!
//! | event | default plan |
//! |---|---|
//! | `created` | mobile/web chat or SMS: TC1 — ensure a conversation (TU1 append or create). Outbound call: TU2 append to the most recent conversation when open, else TC3 create. Inbound call (IVR or mobile): `skip`, it is recorded once its outcome is known (answered, abandoned, ended, voicemail), so a voicemail gets only its voicemail conversation (TC5). `skip` when the session is already linked. |
//! | `queued` | like `created` |
//! | `assigned(agent)` | the call is served: ensure a conversation when none is linked (TC2, SP1); CU1: `update-customer{assign-to: agent email}` when the customer was created recently (or by this plan) |
//! | `connected(agent)` | TC2: ensure a conversation when none is linked; AA1: `assign(agent email)` |
//! | `transferred` | TU4: `assign(to-agent email)` when the receiving agent has an email, and a note describing the transfer |
//! | `ended` | TC1: ensure a conversation when none is linked (a call that ends in the IVR is recorded too); `set-fields` with call-duration, hold-time, wait-time when live and known |
//! | `abandoned` | TC4: ensure a conversation when none is linked, then a note that the caller abandoned |
//! | `voicemail-left` | TC5: always `create-conversation{voicemail: true}`, even when an open conversation exists or the session is linked; message, PN1 note, and `attach-file` with the recording when present |
//! | `voicemail-updated` | TU11: on the session's voicemail conversation (linked, or found among recent conversations by session id, then `append-to` it first): a note; `closed` also `set-status(done)` |
//! | `recording-ready(file)` | TU3: `attach-file` when `settings.recording-enabled`; otherwise `skip` naming the setting |
//! | `transcript-ready(file)` | CT1: `attach-file` with the transcript and `attachment.note` so it shows as a comment |
//! | `smart-action-completed` | TU7: a note with the results, then `attach-file` for each shared file |
//! | `smart-action-failed` | TU8: a note with the error message when `caused-by-customer`; otherwise `skip` |
//! | `rated` | TU10: a note with score and comment, and `set-fields` csat-rating / csat-comment when live |
//! | `hangup-and-callback` | TU5: append to the open conversation (see above); `skip` when the session is already linked |
//! | `short-call-callback` | TU6: same as TU5 |
//! | `custom-data(data)` | TU9: mapped customer fields → `update-customer{fields}` (or into `create-customer`); mapped conversation fields → `set-fields` on the linked conversation; nothing mapped → `skip` |
//!
//! **Ordering and missing conversations.** An action that needs a
//! conversation (`add-message`, `add-note`, `attach-file`, `set-fields`,
//! `assign`, `set-status`) always comes after the conversation exists: linked
//! before the call, or created / appended earlier in the same plan. Events
//! that only update a conversation (`transferred`,
//! `recording-ready`, `transcript-ready`, smart actions, `rated`,
//! `voicemail-updated`, conversation fields of `custom-data`) return a plan
//! with a single `skip` naming the session when no conversation is linked:
//! the event is not an error, there is just nothing to update. A plan that
//! would otherwise be empty is a single `skip` with the reason.
//!
//! A [`RuleError`] is returned only for input that breaks the contract: a
//! CSAT score outside 1–5 (`invalid-rating`).
//!
//! # Status changes (SPEC §6)
//!
//! [`on_status_change`], in order:
//! 1. AS8: a change reported at login is ignored.
//! 2. Echo suppression (AS3): a change equal to what the sync itself last
//!    applied to the reporting system (`last-applied`) is ignored.
//! 3. Kustomer-side change (AS2, one-way and two-way):
//!    - AS5: more than one active Kustomer instance → `reject`, naming the
//!      count; the current status is kept;
//!    - AS1: look the status up in the many-to-one `kustomer-to-ccai`
//!      mapping; unmapped → `reject` (AS7: reported, never guessed);
//!    - AS7: agent offline in CCAI Platform → `ignore`; in a call, chat or
//!      wrap-up → `defer(ccai, mapped)`;
//!    - CCAI already shows the mapped status → `ignore`; else
//!      `apply(ccai, mapped)`.
//! 4. CCAI-side change (AS9 drop-down changes included):
//!    - AS6: when a deferred CRM status is `pending` for CCAI and the agent's
//!      session has ended (activity `idle`): with `crm-overrides` the pending
//!      status is applied to CCAI; with `last-change-wins` the later of
//!      `pending.at` and the change's `at` wins (a tie goes to the CRM). When
//!      the CCAI change wins it continues below;
//!    - AS2: one-way sync → `ignore` (CCAI changes are not applied to
//!      Kustomer);
//!    - AS3 two-way: AS5 applies too (several Kustomer instances → `reject`);
//!      map through `ccai-to-kustomer` (unmapped → `reject`); Kustomer already
//!      shows it → `ignore`; else `apply(kustomer, mapped)`.
use crate::*;

/// Name given to a customer created for an anonymous end user.
pub const UNKNOWN_USER: &str = "Unknown user";

// ------------------------------------------------------------ session flow

/// Default flow for a session event; see the module docs for the plan each
/// event kind produces. `rule` supplies the overridable decisions.
pub fn on_session_event<R: Rule + ?Sized>(
    rule: &R,
    event: &SessionEvent,
    ctx: &Context,
) -> Result<Plan, RuleError> {
    let session = &event.session;
    let mut actions = Vec::new();
    let mut empty_reason = String::new();
    match &event.kind {
        EventKind::Created | EventKind::Queued => {
            if let Some(linked) = &ctx.linked_conversation {
                empty_reason = format!(
                    "session {} is already linked to conversation {} (TC1)",
                    session.id, linked.id
                );
            } else if is_inbound_call(session) {
                // Whether the call is answered, abandoned, ends in the IVR
                // or leaves a voicemail decides which conversation it gets
                // (TC2, TC4, TC5): it is recorded when that is known.
                empty_reason = format!(
                    "session {}: an inbound call is recorded when it is answered, abandoned, ended or leaves a voicemail (TC1, TC5)",
                    session.id
                );
            } else {
                ensure_conversation(rule, event, ctx, &mut actions);
            }
        }
        EventKind::Assigned(agent) => {
            // The call is being served: it gets its conversation now, so the
            // agent's screen pop finds it (TC2, SP1).
            let creates_customer = ctx.customer.is_none();
            if ctx.linked_conversation.is_none() {
                ensure_conversation(rule, event, ctx, &mut actions);
                // The new conversation goes to the agent the call was
                // assigned to; answering it (AA1) then changes nothing.
                for action in &mut actions {
                    if let Action::CreateConversation(new) = action {
                        if new.assign_to.is_none() {
                            new.assign_to.clone_from(&agent.email);
                        }
                    }
                }
            }
            let recent =
                creates_customer || ctx.customer.as_ref().is_some_and(|c| c.created_recently);
            match (&ctx.customer, &agent.email) {
                (Some(customer), _) if !recent => {
                    empty_reason = format!(
                        "customer {} was not created recently: assignment unchanged (CU1)",
                        customer.id
                    );
                }
                (_, Some(email)) => {
                    actions.push(Action::UpdateCustomer(CustomerUpdate {
                        assign_to: Some(email.clone()),
                        fields: vec![],
                    }));
                }
                (_, None) => {
                    empty_reason = format!(
                        "agent {} has no email: assignment unchanged (CU1)",
                        agent.id
                    );
                }
            }
        }
        EventKind::Connected(agent) => {
            if ctx.linked_conversation.is_none() {
                ensure_conversation(rule, event, ctx, &mut actions);
            }
            match &agent.email {
                Some(email) => actions.push(Action::Assign(email.clone())),
                None => {
                    log(
                        LogLevel::Warn,
                        &format!("agent {} has no email: not assigned (AA1)", agent.id),
                    );
                    empty_reason = format!("agent {} has no email: not assigned (AA1)", agent.id);
                }
            }
        }
        EventKind::Transferred(transfer) => {
            if let Some(reason) = needs_linked(ctx, session, "record the transfer") {
                empty_reason = reason;
            } else {
                if let Some(email) = transfer.to_agent.as_ref().and_then(|a| a.email.clone()) {
                    actions.push(Action::Assign(email));
                }
                actions.push(Action::AddNote(transfer_note(transfer)));
            }
        }
        EventKind::Ended => {
            // A call that ends anywhere, the IVR included, is recorded (TC1).
            if ctx.linked_conversation.is_none() {
                ensure_conversation(rule, event, ctx, &mut actions);
            }
            let fields = duration_fields(session, ctx);
            if !fields.is_empty() {
                actions.push(Action::SetFields(fields));
            } else if actions.is_empty() {
                empty_reason = format!(
                    "session {} ended: no duration fields live or no durations known",
                    session.id
                );
            }
        }
        EventKind::Abandoned => {
            if ctx.linked_conversation.is_none() {
                ensure_conversation(rule, event, ctx, &mut actions);
            }
            actions.push(Action::AddNote(format!(
                "The caller abandoned {} before an agent answered.",
                describe_session(session)
            )));
        }
        EventKind::VoicemailLeft(voicemail) => {
            if ctx.customer.is_none() {
                actions.push(Action::CreateCustomer(new_customer_with_data(
                    rule, event, ctx,
                )));
            }
            let mut conversation = rule.new_conversation(event, ctx);
            conversation.voicemail = true;
            let (_, conversation_fields) = rule.map_custom_data(&session.custom_data, ctx);
            merge_fields(&mut conversation.fields, conversation_fields);
            actions.push(Action::CreateConversation(conversation));
            actions.push(Action::AddMessage(rule.call_record(event, ctx)));
            if let Some(note) = rule.phone_note(event, ctx) {
                actions.push(Action::AddNote(note));
            }
            if let Some(recording) = &voicemail.recording {
                actions.push(Action::AttachFile(Attachment {
                    file: recording.clone(),
                    note: Some(match voicemail.duration_seconds {
                        Some(s) => format!("Voicemail recording ({s} s)"),
                        None => "Voicemail recording".to_string(),
                    }),
                }));
            }
        }
        EventKind::VoicemailUpdated(what) => match voicemail_conversation(event, ctx) {
            Some((conversation, linked)) => {
                if !linked {
                    actions.push(Action::AppendTo(conversation.id.clone()));
                }
                let by = session
                    .agent
                    .as_ref()
                    .map(agent_label)
                    .map(|a| format!(" by {a}"))
                    .unwrap_or_default();
                let verb = match what {
                    VoicemailAction::Read => "read",
                    VoicemailAction::Closed => "closed",
                    VoicemailAction::CalledBack => "called back",
                };
                actions.push(Action::AddNote(format!("Voicemail {verb}{by}.")));
                if *what == VoicemailAction::Closed {
                    actions.push(Action::SetStatus(ConversationStatus::Done));
                }
            }
            None => {
                empty_reason = format!(
                    "session {}: no voicemail conversation linked or found (TU11)",
                    session.id
                );
            }
        },
        EventKind::RecordingReady(file) => {
            if !ctx.settings.recording_enabled {
                empty_reason = format!(
                    "session {}: call recording is disabled for tenant {} (TU3)",
                    session.id, ctx.tenant
                );
            } else if let Some(reason) = needs_linked(ctx, session, "attach the recording") {
                empty_reason = reason;
            } else {
                actions.push(Action::AttachFile(Attachment {
                    file: file.clone(),
                    note: None,
                }));
            }
        }
        EventKind::TranscriptReady(file) => {
            if let Some(reason) = needs_linked(ctx, session, "attach the transcript") {
                empty_reason = reason;
            } else {
                actions.push(Action::AttachFile(Attachment {
                    file: file.clone(),
                    note: Some(format!(
                        "Transcript of {} attached: {}",
                        describe_session(session),
                        file.name
                    )),
                }));
            }
        }
        EventKind::SmartActionCompleted(result) => {
            if let Some(reason) = needs_linked(ctx, session, "record the Smart Action") {
                empty_reason = reason;
            } else {
                actions.push(Action::AddNote(smart_action_note(result)));
                for file in &result.files {
                    actions.push(Action::AttachFile(Attachment {
                        file: file.clone(),
                        note: Some(format!(
                            "Shared by the customer in Smart Action {}: {}",
                            result.name, file.name
                        )),
                    }));
                }
            }
        }
        EventKind::SmartActionFailed(failure) => {
            if !failure.caused_by_customer {
                empty_reason = format!(
                    "Smart Action {} failed on the contact-centre side: not recorded (TU8)",
                    failure.name
                );
            } else if let Some(reason) = needs_linked(ctx, session, "record the Smart Action error")
            {
                empty_reason = reason;
            } else {
                actions.push(Action::AddNote(format!(
                    "Smart Action {} failed: {}",
                    failure.name, failure.message
                )));
            }
        }
        EventKind::Rated(rating) => {
            if !(1..=5).contains(&rating.score) {
                return Err(RuleError {
                    code: "invalid-rating".into(),
                    message: format!(
                        "session {}: CSAT score {} is outside 1 to 5",
                        session.id, rating.score
                    ),
                });
            }
            if let Some(reason) = needs_linked(ctx, session, "record the rating") {
                empty_reason = reason;
            } else {
                actions.push(Action::AddNote(rating_note(rating)));
                let mut fields = Vec::new();
                if let Some(name) = field_name(ctx, StandardField::CsatRating) {
                    fields.push(number_field(name, f64::from(rating.score)));
                }
                if let (Some(name), Some(comment)) =
                    (field_name(ctx, StandardField::CsatComment), &rating.comment)
                {
                    fields.push(text_field(name, comment));
                }
                if !fields.is_empty() {
                    actions.push(Action::SetFields(fields));
                }
            }
        }
        EventKind::HangupAndCallback | EventKind::ShortCallCallback => {
            if let Some(linked) = &ctx.linked_conversation {
                empty_reason = format!(
                    "session {} is already linked to conversation {} (TU5, TU6)",
                    session.id, linked.id
                );
            } else {
                ensure_conversation(rule, event, ctx, &mut actions);
            }
        }
        EventKind::CustomData(data) => {
            let (customer_fields, conversation_fields) = rule.map_custom_data(data, ctx);
            if customer_fields.is_empty() && conversation_fields.is_empty() {
                empty_reason = format!(
                    "session {}: no field mapping for custom data keys [{}] (TU9)",
                    session.id,
                    data.iter()
                        .map(|d| d.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                if !customer_fields.is_empty() {
                    if ctx.customer.is_some() {
                        actions.push(Action::UpdateCustomer(CustomerUpdate {
                            assign_to: None,
                            fields: customer_fields,
                        }));
                    } else {
                        let mut customer = rule.new_customer(event, ctx);
                        merge_fields(&mut customer.fields, customer_fields);
                        actions.push(Action::CreateCustomer(customer));
                    }
                }
                if !conversation_fields.is_empty() {
                    if ctx.linked_conversation.is_some() {
                        actions.push(Action::SetFields(conversation_fields));
                    } else {
                        let names: Vec<_> = conversation_fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect();
                        let reason = format!(
                            "session {}: no conversation linked; conversation fields [{}] not written (TU9)",
                            session.id,
                            names.join(", ")
                        );
                        log(LogLevel::Warn, &reason);
                        actions.push(Action::Skip(reason));
                    }
                }
            }
        }
    }
    if actions.is_empty() {
        if empty_reason.is_empty() {
            empty_reason = format!("session {}: nothing to do", session.id);
        }
        actions.push(Action::Skip(empty_reason));
    }
    Ok(Plan { actions })
}

/// Appends the steps that make sure the session has a conversation: customer
/// (CC1/CC2), append (TU1/TU2/TU5/TU6) or create (TC1–TC4), the call record,
/// the phone note (PN1) and mapped custom data (TU9).
fn ensure_conversation<R: Rule + ?Sized>(
    rule: &R,
    event: &SessionEvent,
    ctx: &Context,
    actions: &mut Vec<Action>,
) {
    let (customer_fields, conversation_fields) =
        rule.map_custom_data(&event.session.custom_data, ctx);
    if ctx.customer.is_none() {
        let mut customer = rule.new_customer(event, ctx);
        merge_fields(&mut customer.fields, customer_fields.clone());
        actions.push(Action::CreateCustomer(customer));
    }
    let appended = match rule.append_target(event, ctx) {
        Some(target) => {
            actions.push(Action::AppendTo(target.id));
            true
        }
        None => {
            let mut conversation = rule.new_conversation(event, ctx);
            merge_fields(&mut conversation.fields, conversation_fields.clone());
            actions.push(Action::CreateConversation(conversation));
            false
        }
    };
    actions.push(Action::AddMessage(rule.call_record(event, ctx)));
    if let Some(note) = rule.phone_note(event, ctx) {
        actions.push(Action::AddNote(note));
    }
    if appended && !conversation_fields.is_empty() {
        actions.push(Action::SetFields(conversation_fields));
    }
    if ctx.customer.is_some() && !customer_fields.is_empty() {
        actions.push(Action::UpdateCustomer(CustomerUpdate {
            assign_to: None,
            fields: customer_fields,
        }));
    }
}

/// An inbound call (IVR or mobile): its conversation waits for its outcome.
fn is_inbound_call(session: &Session) -> bool {
    matches!(session.kind, SessionKind::IvrCall | SessionKind::MobileCall)
        && session.direction == Direction::Inbound
}

/// `Some(skip reason)` when no conversation is linked to the session.
fn needs_linked(ctx: &Context, session: &Session, what: &str) -> Option<String> {
    if ctx.linked_conversation.is_some() {
        None
    } else {
        Some(format!(
            "session {}: no conversation linked, cannot {what}",
            session.id
        ))
    }
}

/// The session's voicemail conversation and whether it is the linked one.
fn voicemail_conversation<'a>(
    event: &SessionEvent,
    ctx: &'a Context,
) -> Option<(&'a Conversation, bool)> {
    if let Some(linked) = ctx.linked_conversation.as_ref().filter(|c| c.voicemail) {
        return Some((linked, true));
    }
    ctx.recent_conversations
        .iter()
        .find(|c| c.voicemail && c.session_id.as_deref() == Some(event.session.id.as_str()))
        .map(|c| (c, false))
}

/// Adds `extra` fields whose names are not already present.
fn merge_fields(fields: &mut Vec<CustomField>, extra: Vec<CustomField>) {
    for field in extra {
        if !fields.iter().any(|f| f.name == field.name) {
            fields.push(field);
        }
    }
}

fn new_customer_with_data<R: Rule + ?Sized>(
    rule: &R,
    event: &SessionEvent,
    ctx: &Context,
) -> NewCustomer {
    let mut customer = rule.new_customer(event, ctx);
    let (customer_fields, _) = rule.map_custom_data(&event.session.custom_data, ctx);
    merge_fields(&mut customer.fields, customer_fields);
    customer
}

// -------------------------------------------------------------- decisions

/// Where a session is appended instead of creating a conversation; `None`
/// creates one. See the module docs: TU2/TC3 for outbound calls, TU5/TU6 for
/// call-backs, TU1 otherwise.
pub fn append_target(event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
    let session = &event.session;
    match event.kind {
        EventKind::HangupAndCallback | EventKind::ShortCallCallback => callback_target(event, ctx),
        _ if is_outbound(session) => ctx
            .recent_conversations
            .first()
            .filter(|c| c.status == ConversationStatus::Open)
            .cloned(),
        _ => {
            let wanted = session.menu.as_ref().map(menu_selection);
            ctx.recent_conversations
                .iter()
                .find(|c| {
                    c.status == ConversationStatus::Open
                        && c.channel == Some(session.channel)
                        && c.menu_selection == wanted
                })
                .cloned()
        }
    }
}

/// TU5/TU6: the open conversation a call-back belongs to.
fn callback_target(event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
    let session = &event.session;
    let open = |c: &&Conversation| c.status == ConversationStatus::Open;
    if let Some(parent) = &session.parent_session_id {
        if let Some(c) = ctx
            .recent_conversations
            .iter()
            .filter(open)
            .find(|c| c.session_id.as_deref() == Some(parent.as_str()))
        {
            return Some(c.clone());
        }
    }
    if let Some(linked) = ctx.linked_conversation.as_ref().filter(open) {
        return Some(linked.clone());
    }
    ctx.recent_conversations
        .iter()
        .filter(open)
        .find(|c| c.channel == Some(session.channel))
        .cloned()
}

/// The conversation to create for a session (TC1–TC5, SD1).
pub fn new_conversation(event: &SessionEvent, ctx: &Context) -> NewConversation {
    let session = &event.session;
    let voicemail = matches!(event.kind, EventKind::VoicemailLeft(_));
    let who = caller_label(&session.end_user);
    let name = if voicemail {
        format!("Voicemail from {who}")
    } else {
        let what = describe_session(session);
        let towards = if is_outbound(session) { "to" } else { "from" };
        let mut name = capitalise(&format!("{what} {towards} {who}"));
        if let Some(menu) = &session.menu {
            name.push_str(&format!(" — {}", menu.name));
        }
        name
    };
    NewConversation {
        name,
        channel: session.channel,
        direction: session.direction,
        priority: None,
        voicemail,
        menu_selection: session.menu.as_ref().map(menu_selection),
        status: ConversationStatus::Open,
        tags: vec![],
        fields: standard_fields(session, ctx),
        assign_to: None,
    }
}

/// The customer to create when Kustomer does not know the end user (CC1,
/// CC2, CF2).
pub fn new_customer(event: &SessionEvent, ctx: &Context) -> NewCustomer {
    let user = &event.session.end_user;
    let anonymous = user.phone.is_none()
        && user.sdk_identifier.is_none()
        && user.email.is_none()
        && user.name.is_none();
    let mut fields = Vec::new();
    if let (Some(name), Some(id)) = (
        field_name(ctx, StandardField::CustomUserId),
        &user.sdk_identifier,
    ) {
        fields.push(text_field(name, id));
    }
    NewCustomer {
        name: if anonymous {
            Some(UNKNOWN_USER.to_string())
        } else {
            user.name.clone()
        },
        phone: user.phone.clone(),
        external_id: user.sdk_identifier.clone(),
        email: user.email.clone(),
        fields,
    }
}

/// TU9: SDK custom data → `(customer fields, conversation fields)` through
/// `ctx.settings.field-mapping`. Keys without a mapping are dropped; values
/// are written as text. Entries keep the order of `data`.
pub fn map_custom_data(
    data: &[CustomDatum],
    ctx: &Context,
) -> (Vec<CustomField>, Vec<CustomField>) {
    let mut customer = Vec::new();
    let mut conversation = Vec::new();
    for datum in data {
        for mapping in ctx
            .settings
            .field_mapping
            .iter()
            .filter(|m| m.key == datum.key)
        {
            let field = text_field(&mapping.name, &datum.value);
            let list = match mapping.target {
                FieldTarget::Customer => &mut customer,
                FieldTarget::Conversation => &mut conversation,
            };
            if !list.iter().any(|f: &CustomField| f.name == field.name) {
                list.push(field);
            }
        }
    }
    (customer, conversation)
}

/// The call/chat record added to the conversation (SD1 meta: session id,
/// session type, caller id, language, menu, menu path, queue).
pub fn call_record(event: &SessionEvent, ctx: &Context) -> Message {
    let _ = ctx;
    let session = &event.session;
    let what = describe_session(session);
    let mut preview = match &event.kind {
        EventKind::VoicemailLeft(v) => match v.duration_seconds {
            Some(s) => format!("Voicemail ({s} s) from {}", caller_label(&session.end_user)),
            None => format!("Voicemail from {}", caller_label(&session.end_user)),
        },
        EventKind::HangupAndCallback => format!("Call-back after hang-up ({what})"),
        EventKind::ShortCallCallback => format!("Call-back after a short call ({what})"),
        EventKind::Abandoned => {
            format!("Abandoned {what} from {}", caller_label(&session.end_user))
        }
        _ if is_outbound(session) => format!("{what} to {}", caller_label(&session.end_user)),
        _ => format!("{what} from {}", caller_label(&session.end_user)),
    };
    if let Some(menu) = &session.menu {
        preview.push_str(&format!(" — {}", menu.name));
    }
    let mut meta = vec![
        ("session-id".to_string(), session.id.clone()),
        ("session-type".to_string(), session.session_type.clone()),
    ];
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            meta.push((k.to_string(), v.clone()));
        }
    };
    push("caller-id", &session.end_user.phone);
    push("language", &session.language);
    push("menu", &session.menu.as_ref().map(|m| m.name.clone()));
    push("menu-path", &session.menu.as_ref().map(menu_selection));
    push("queue", &session.queue_name);
    Message {
        channel: session.channel,
        direction: session.direction,
        preview: capitalise(&preview),
        meta,
    }
}

/// PN1: the contact's phone number (E.164, normalised by the host) as a
/// note, when the contact has one.
pub fn phone_note(event: &SessionEvent, ctx: &Context) -> Option<String> {
    let _ = ctx;
    event
        .session
        .end_user
        .phone
        .as_ref()
        .map(|p| format!("Phone: {p}"))
}

/// SD1/CF3: the live standard fields for a new conversation. Only fields in
/// `ctx.settings.fields` are written (CF4), under their attribute names.
pub fn standard_fields(session: &Session, ctx: &Context) -> Vec<CustomField> {
    let mut fields = Vec::new();
    let mut text = |field: StandardField, value: Option<&str>| {
        if let (Some(name), Some(value)) = (field_name(ctx, field), value) {
            fields.push(text_field(name, value));
        }
    };
    text(StandardField::FromPhone, session.end_user.phone.as_deref());
    text(
        StandardField::MenuSelection,
        session.menu.as_ref().map(|m| m.name.as_str()),
    );
    text(
        StandardField::SessionType,
        Some(session.session_type.as_str()),
    );
    text(StandardField::SessionId, Some(session.id.as_str()));
    text(StandardField::QueueName, session.queue_name.as_deref());
    if session.kind == SessionKind::WebChat {
        text(StandardField::EmailInWeb, session.end_user.email.as_deref());
    }
    fields
}

/// Call duration, hold time and wait time fields, when live and known.
pub fn duration_fields(session: &Session, ctx: &Context) -> Vec<CustomField> {
    let d = &session.durations;
    [
        (StandardField::CallDuration, d.call_seconds),
        (StandardField::HoldTime, d.hold_seconds),
        (StandardField::WaitTime, d.wait_seconds),
    ]
    .into_iter()
    .filter_map(|(field, value)| Some(number_field(field_name(ctx, field)?, f64::from(value?))))
    .collect()
}

/// The attribute name of a live standard field, if provisioned (CF4).
pub fn field_name(ctx: &Context, field: StandardField) -> Option<&str> {
    ctx.settings
        .fields
        .iter()
        .find(|f| f.field == field)
        .map(|f| f.name.as_str())
}

/// The value stored as a conversation's menu selection and compared by TU1:
/// the menu's id path (e.g. `"9/12"`), or its id when the path is empty.
pub fn menu_selection(menu: &Menu) -> String {
    if menu.path.is_empty() {
        menu.id.to_string()
    } else {
        menu.path.clone()
    }
}

/// Whether the session is an outbound call or otherwise outbound.
pub fn is_outbound(session: &Session) -> bool {
    session.kind == SessionKind::OutboundCall || session.direction == Direction::Outbound
}

/// A text field.
pub fn text_field(name: &str, value: &str) -> CustomField {
    CustomField {
        name: name.to_string(),
        value: FieldValue::Text(value.to_string()),
    }
}

/// A numeric field. Kustomer types attributes by name suffix (CF5): a name
/// ending in `Str` or `Txt` gets the number as text so the write is accepted.
pub fn number_field(name: &str, value: f64) -> CustomField {
    let value = if name.ends_with("Str") || name.ends_with("Txt") {
        FieldValue::Text(format_number(value))
    } else {
        FieldValue::Number(value)
    };
    CustomField {
        name: name.to_string(),
        value,
    }
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn describe_session(session: &Session) -> String {
    match session.kind {
        SessionKind::IvrCall => "inbound IVR call",
        SessionKind::MobileCall => "inbound mobile call",
        SessionKind::OutboundCall => "outbound call",
        SessionKind::MobileChat => "mobile chat",
        SessionKind::WebChat => "web chat",
        SessionKind::Sms => "SMS session",
    }
    .to_string()
}

fn caller_label(user: &EndUser) -> String {
    user.name
        .clone()
        .or_else(|| user.phone.clone())
        .or_else(|| user.email.clone())
        .or_else(|| user.sdk_identifier.clone())
        .unwrap_or_else(|| UNKNOWN_USER.to_string())
}

fn agent_label(agent: &Agent) -> String {
    agent
        .name
        .clone()
        .or_else(|| agent.email.clone())
        .unwrap_or_else(|| format!("agent {}", agent.id))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn transfer_note(transfer: &Transfer) -> String {
    let mut note = String::from("Transferred");
    if let Some(from) = &transfer.from_agent {
        note.push_str(&format!(" from {}", agent_label(from)));
    }
    match (&transfer.to_agent, &transfer.to_queue) {
        (Some(to), Some(queue)) => {
            note.push_str(&format!(" to {} (queue {queue})", agent_label(to)))
        }
        (Some(to), None) => note.push_str(&format!(" to {}", agent_label(to))),
        (None, Some(queue)) => note.push_str(&format!(" to queue {queue}")),
        (None, None) => {}
    }
    note.push('.');
    note
}

fn smart_action_note(result: &SmartActionResult) -> String {
    let mut note = format!("Smart Action {} completed.", result.name);
    for (key, value) in &result.results {
        note.push_str(&format!("\n- {key}: {value}"));
    }
    if !result.files.is_empty() {
        note.push_str(&format!(
            "\nFiles shared by the customer: {}",
            result.files.len()
        ));
    }
    note
}

fn rating_note(rating: &Rating) -> String {
    match &rating.comment {
        Some(comment) => format!("CSAT rating: {}/5\nComment: {comment}", rating.score),
        None => format!("CSAT rating: {}/5", rating.score),
    }
}

// ----------------------------------------------------------- status sync

/// Default status decision (SPEC §6); see the module docs for the order of
/// the checks.
pub fn on_status_change(change: &StatusChange, ctx: &StatusContext) -> StatusDecision {
    if change.login {
        return StatusDecision::Ignore(format!(
            "status {:?} of {} reported at login: not applied (AS8)",
            change.status, change.agent_email
        ));
    }
    if let Some(last) = &ctx.last_applied {
        if last.target == change.source && last.status == change.status {
            return StatusDecision::Ignore(format!(
                "status {:?} of {} is the sync's own change echoed back (AS3)",
                change.status, change.agent_email
            ));
        }
    }
    match change.source {
        System::Kustomer => kustomer_change(change, ctx),
        System::Ccai => ccai_change(change, ctx),
    }
}

fn kustomer_change(change: &StatusChange, ctx: &StatusContext) -> StatusDecision {
    if let Some(reject) = multiple_instances(change, ctx) {
        return reject;
    }
    let Some(mapped) = map_status(&ctx.kustomer_to_ccai, &change.status) else {
        return StatusDecision::Reject(format!(
            "Kustomer status {:?} of {} has no CCAI Platform mapping; the status was not synced (AS1, AS7)",
            change.status, change.agent_email
        ));
    };
    match ctx.ccai_activity {
        AgentActivity::Offline => {
            return StatusDecision::Ignore(format!(
                "{} is offline in CCAI Platform: Kustomer status {:?} not applied (AS7)",
                change.agent_email, change.status
            ));
        }
        AgentActivity::InCall | AgentActivity::InChat | AgentActivity::WrapUp => {
            return StatusDecision::Defer(StatusTarget {
                target: System::Ccai,
                status: mapped,
            });
        }
        AgentActivity::Idle => {}
    }
    if ctx.ccai_status.as_deref() == Some(mapped.as_str()) {
        return StatusDecision::Ignore(format!(
            "{} already has CCAI Platform status {:?}",
            change.agent_email, mapped
        ));
    }
    StatusDecision::Apply(StatusTarget {
        target: System::Ccai,
        status: mapped,
    })
}

fn ccai_change(change: &StatusChange, ctx: &StatusContext) -> StatusDecision {
    let session_ended = ctx.ccai_activity == AgentActivity::Idle;
    if let Some(pending) = ctx
        .pending
        .as_ref()
        .filter(|p| p.target == System::Ccai && session_ended)
    {
        let crm_wins = match ctx.priority {
            PriorityMode::CrmOverrides => true,
            PriorityMode::LastChangeWins => !is_later(&change.at, &pending.at),
        };
        if crm_wins {
            if pending.status == change.status {
                return StatusDecision::Ignore(format!(
                    "{} already has the pending CRM status {:?} in CCAI Platform (AS6)",
                    change.agent_email, pending.status
                ));
            }
            return StatusDecision::Apply(StatusTarget {
                target: System::Ccai,
                status: pending.status.clone(),
            });
        }
    }
    if !ctx.two_way {
        return StatusDecision::Ignore(format!(
            "one-way sync: CCAI Platform status {:?} of {} is not applied to Kustomer (AS2)",
            change.status, change.agent_email
        ));
    }
    if let Some(reject) = multiple_instances(change, ctx) {
        return reject;
    }
    let Some(mapped) = map_status(&ctx.ccai_to_kustomer, &change.status) else {
        return StatusDecision::Reject(format!(
            "CCAI Platform status {:?} of {} has no Kustomer mapping; the status was not synced (AS3, AS7)",
            change.status, change.agent_email
        ));
    };
    if ctx.kustomer_status.as_deref() == Some(mapped.as_str()) {
        return StatusDecision::Ignore(format!(
            "{} already has Kustomer status {:?}",
            change.agent_email, mapped
        ));
    }
    StatusDecision::Apply(StatusTarget {
        target: System::Kustomer,
        status: mapped,
    })
}

/// AS5: refuse when the agent is signed in to several Kustomer instances.
fn multiple_instances(change: &StatusChange, ctx: &StatusContext) -> Option<StatusDecision> {
    (ctx.active_instances > 1).then(|| {
        StatusDecision::Reject(format!(
            "{} is signed in to Kustomer in {} instances; status sync needs exactly one \
             (close the other tabs or machines). Status {:?} was not synced and the current status is kept (AS5)",
            change.agent_email, ctx.active_instances, change.status
        ))
    })
}

/// AS1: exact lookup in a many-to-one mapping; never guessed.
pub fn map_status(mapping: &[StatusMap], status: &str) -> Option<String> {
    mapping
        .iter()
        .find(|m| m.from == status)
        .map(|m| m.to.clone())
}

/// Whether ISO-8601 time `a` is strictly later than `b`. Times that do not
/// parse are compared as strings.
pub fn is_later(a: &str, b: &str) -> bool {
    match (parse_time(a), parse_time(b)) {
        (Some(a), Some(b)) => a > b,
        _ => a > b,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into (UTC seconds since the
/// epoch, nanoseconds).
fn parse_time(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        let mut padded: String = digits.chars().take(9).collect();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
    }
    let offset = match s.get(i..)? {
        "Z" | "z" | "" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    // Days from civil (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

#[cfg(test)]
mod tests;
