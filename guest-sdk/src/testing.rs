//! Helpers to unit-test a rule natively, without a runtime.
//!
//! Builders produce the same types the host passes to a module, with
//! realistic defaults, so a test states only what matters to it:
//!
//! ```
//! use switchboard_guest_sdk::prelude::*;
//! use switchboard_guest_sdk::testing::{self, PlanExt};
//!
//! #[derive(Default)]
//! struct MyRules;
//! impl Rule for MyRules {}
//!
//! let event = testing::ivr_call("call-1")
//!     .phone("+14155550100")
//!     .menu(9, "Billing")
//!     // An inbound call gets its conversation once answered (TC2).
//!     .event(EventKind::Connected(testing::agent(21, "ada@example.com")));
//! let ctx = testing::context()
//!     .customer(testing::customer("cus-1").phone("+14155550100"))
//!     .open_conversation("conv-7", Channel::Voice, Some("9"))
//!     .build();
//!
//! let plan = MyRules.on_session_event(&event, &ctx).unwrap();
//! assert_eq!(plan.appended_to(), Some("conv-7"));
//! assert_eq!(plan.notes(), vec!["Phone: +14155550100"]);
//! ```
//!
//! Times default to [`NOW`]; ids and values are deterministic so plans can be
//! compared exactly.
use crate::*;

/// The time builders use when none is given.
pub const NOW: &str = "2024-05-01T10:00:00Z";

// -------------------------------------------------------------- sessions

/// Builds a [`Session`] and events on it.
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    session: Session,
    event_id: Option<String>,
    at: String,
}

fn session(id: &str, kind: SessionKind) -> SessionBuilder {
    let (channel, direction, session_type) = match kind {
        SessionKind::IvrCall => (Channel::Voice, Direction::Inbound, "Voice Inbound (IVR)"),
        SessionKind::MobileCall => (Channel::Voice, Direction::Inbound, "Voice Inbound (Mobile)"),
        SessionKind::OutboundCall => (Channel::Voice, Direction::Outbound, "Voice Outbound"),
        SessionKind::MobileChat => (Channel::Chat, Direction::Inbound, "Chat (Mobile)"),
        SessionKind::WebChat => (Channel::Chat, Direction::Inbound, "Chat (Web)"),
        SessionKind::Sms => (Channel::Sms, Direction::Inbound, "SMS"),
    };
    SessionBuilder {
        session: Session {
            id: id.to_string(),
            kind,
            channel,
            direction,
            session_type: session_type.to_string(),
            end_user: EndUser {
                phone: None,
                sdk_identifier: None,
                email: None,
                name: None,
            },
            menu: None,
            queue_name: None,
            language: None,
            agent: None,
            started_at: Some(NOW.to_string()),
            ended_at: None,
            durations: Durations {
                call_seconds: None,
                hold_seconds: None,
                wait_seconds: None,
            },
            parent_session_id: None,
            custom_data: vec![],
        },
        event_id: None,
        at: NOW.to_string(),
    }
}

/// An inbound IVR call.
pub fn ivr_call(id: &str) -> SessionBuilder {
    session(id, SessionKind::IvrCall)
}

/// An inbound call from the mobile SDK.
pub fn mobile_call(id: &str) -> SessionBuilder {
    session(id, SessionKind::MobileCall)
}

/// An outbound call placed by an agent.
pub fn outbound_call(id: &str) -> SessionBuilder {
    session(id, SessionKind::OutboundCall)
}

/// A chat from the mobile SDK.
pub fn mobile_chat(id: &str) -> SessionBuilder {
    session(id, SessionKind::MobileChat)
}

/// A chat from the web SDK.
pub fn web_chat(id: &str) -> SessionBuilder {
    session(id, SessionKind::WebChat)
}

/// An SMS session.
pub fn sms(id: &str) -> SessionBuilder {
    session(id, SessionKind::Sms)
}

impl SessionBuilder {
    /// The end user's E.164 phone.
    pub fn phone(mut self, phone: &str) -> Self {
        self.session.end_user.phone = Some(phone.to_string());
        self
    }

    /// The end user's SDK identifier.
    pub fn sdk_identifier(mut self, id: &str) -> Self {
        self.session.end_user.sdk_identifier = Some(id.to_string());
        self
    }

    /// The end user's email.
    pub fn email(mut self, email: &str) -> Self {
        self.session.end_user.email = Some(email.to_string());
        self
    }

    /// The end user's name.
    pub fn name(mut self, name: &str) -> Self {
        self.session.end_user.name = Some(name.to_string());
        self
    }

    /// The selected menu (path = the id).
    pub fn menu(self, id: u64, name: &str) -> Self {
        self.menu_path(id, name, &id.to_string())
    }

    /// The selected menu with an explicit id path, e.g. `"9/12"`.
    pub fn menu_path(mut self, id: u64, name: &str, path: &str) -> Self {
        self.session.menu = Some(Menu {
            id,
            name: name.to_string(),
            path: path.to_string(),
        });
        self
    }

    /// The queue name.
    pub fn queue(mut self, name: &str) -> Self {
        self.session.queue_name = Some(name.to_string());
        self
    }

    /// The session language.
    pub fn language(mut self, language: &str) -> Self {
        self.session.language = Some(language.to_string());
        self
    }

    /// The agent handling the session.
    pub fn agent(mut self, id: u64, email: &str) -> Self {
        self.session.agent = Some(agent(id, email));
        self
    }

    /// Call, hold and wait seconds.
    pub fn durations(mut self, call: u32, hold: u32, wait: u32) -> Self {
        self.session.durations = Durations {
            call_seconds: Some(call),
            hold_seconds: Some(hold),
            wait_seconds: Some(wait),
        };
        self
    }

    /// The session this one calls back.
    pub fn parent(mut self, session_id: &str) -> Self {
        self.session.parent_session_id = Some(session_id.to_string());
        self
    }

    /// One SDK custom-data entry on the session.
    pub fn custom(mut self, key: &str, value: &str) -> Self {
        self.session.custom_data.push(datum(key, value));
        self
    }

    /// The direction (defaults follow the session kind).
    pub fn direction(mut self, direction: Direction) -> Self {
        self.session.direction = direction;
        self
    }

    /// The source event id (default `"<session id>:<event kind>"`).
    pub fn event_id(mut self, id: &str) -> Self {
        self.event_id = Some(id.to_string());
        self
    }

    /// The event time (default [`NOW`]).
    pub fn at(mut self, at: &str) -> Self {
        self.at = at.to_string();
        self
    }

    /// The session itself.
    pub fn session(&self) -> Session {
        self.session.clone()
    }

    /// An event of `kind` on this session.
    pub fn event(&self, kind: EventKind) -> SessionEvent {
        let id = self
            .event_id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.session.id, kind_name(&kind)));
        SessionEvent {
            id,
            at: self.at.clone(),
            session: self.session.clone(),
            kind,
        }
    }
}

/// The kebab-case WIT name of an event kind, e.g. `"voicemail-left"`.
pub fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Created => "created",
        EventKind::Queued => "queued",
        EventKind::Assigned(_) => "assigned",
        EventKind::Connected(_) => "connected",
        EventKind::Transferred(_) => "transferred",
        EventKind::Ended => "ended",
        EventKind::Abandoned => "abandoned",
        EventKind::VoicemailLeft(_) => "voicemail-left",
        EventKind::VoicemailUpdated(_) => "voicemail-updated",
        EventKind::RecordingReady(_) => "recording-ready",
        EventKind::TranscriptReady(_) => "transcript-ready",
        EventKind::SmartActionCompleted(_) => "smart-action-completed",
        EventKind::SmartActionFailed(_) => "smart-action-failed",
        EventKind::Rated(_) => "rated",
        EventKind::HangupAndCallback => "hangup-and-callback",
        EventKind::ShortCallCallback => "short-call-callback",
        EventKind::CustomData(_) => "custom-data",
    }
}

/// An agent with an email and no name.
pub fn agent(id: u64, email: &str) -> Agent {
    Agent {
        id,
        email: Some(email.to_string()),
        name: None,
    }
}

/// A file the host fetches from `url`.
pub fn file(name: &str, content_type: &str, url: &str) -> File {
    File {
        name: name.to_string(),
        content_type: content_type.to_string(),
        source: FileSource::Url(url.to_string()),
    }
}

/// One SDK custom-data entry.
pub fn datum(key: &str, value: &str) -> CustomDatum {
    CustomDatum {
        key: key.to_string(),
        label: None,
        value: value.to_string(),
    }
}

// ------------------------------------------------------------- customers

/// Builds a known Kustomer [`Customer`].
#[derive(Debug, Clone)]
pub struct CustomerBuilder(Customer);

/// A known customer with id `id`.
pub fn customer(id: &str) -> CustomerBuilder {
    CustomerBuilder(Customer {
        id: id.to_string(),
        name: None,
        phones: vec![],
        emails: vec![],
        external_id: None,
        tags: vec![],
        created_recently: false,
    })
}

impl CustomerBuilder {
    /// The customer's name.
    pub fn name(mut self, name: &str) -> Self {
        self.0.name = Some(name.to_string());
        self
    }

    /// Adds a phone.
    pub fn phone(mut self, phone: &str) -> Self {
        self.0.phones.push(phone.to_string());
        self
    }

    /// Adds an email.
    pub fn email(mut self, email: &str) -> Self {
        self.0.emails.push(email.to_string());
        self
    }

    /// The external id (SDK identifier).
    pub fn external_id(mut self, id: &str) -> Self {
        self.0.external_id = Some(id.to_string());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.0.tags.push(tag.to_string());
        self
    }

    /// Marks the customer as created within the tenant's recent window (CU1).
    pub fn created_recently(mut self) -> Self {
        self.0.created_recently = true;
        self
    }

    /// The customer.
    pub fn build(self) -> Customer {
        self.0
    }
}

impl From<CustomerBuilder> for Customer {
    fn from(b: CustomerBuilder) -> Self {
        b.0
    }
}

// --------------------------------------------------------- conversations

/// Builds a Kustomer [`Conversation`] as the host reports it.
#[derive(Debug, Clone)]
pub struct ConversationBuilder(Conversation);

/// An open voice conversation with id `id`, inbound, no menu.
pub fn conversation(id: &str) -> ConversationBuilder {
    ConversationBuilder(Conversation {
        id: id.to_string(),
        status: ConversationStatus::Open,
        channel: Some(Channel::Voice),
        menu_selection: None,
        created_at: NOW.to_string(),
        voicemail: false,
        direction: Some(Direction::Inbound),
        session_id: None,
    })
}

impl ConversationBuilder {
    /// The status.
    pub fn status(mut self, status: ConversationStatus) -> Self {
        self.0.status = status;
        self
    }

    /// The channel.
    pub fn channel(mut self, channel: Channel) -> Self {
        self.0.channel = Some(channel);
        self
    }

    /// The menu selection as stored (see [`defaults::menu_selection`]).
    pub fn menu(mut self, selection: &str) -> Self {
        self.0.menu_selection = Some(selection.to_string());
        self
    }

    /// The creation time.
    pub fn created_at(mut self, at: &str) -> Self {
        self.0.created_at = at.to_string();
        self
    }

    /// Marks it as a voicemail conversation.
    pub fn voicemail(mut self) -> Self {
        self.0.voicemail = true;
        self
    }

    /// The direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.0.direction = Some(direction);
        self
    }

    /// The CCAI session that created it.
    pub fn session(mut self, session_id: &str) -> Self {
        self.0.session_id = Some(session_id.to_string());
        self
    }

    /// The conversation.
    pub fn build(self) -> Conversation {
        self.0
    }
}

impl From<ConversationBuilder> for Conversation {
    fn from(b: ConversationBuilder) -> Self {
        b.0
    }
}

// --------------------------------------------------------------- context

/// Builds a [`Context`]: tenant `"tenant-a"`, time [`NOW`], unknown
/// customer, no conversations, recording off, no live fields.
#[derive(Debug, Clone)]
pub struct ContextBuilder(Context);

/// A context builder with the defaults above.
pub fn context() -> ContextBuilder {
    ContextBuilder(Context {
        tenant: "tenant-a".to_string(),
        now: NOW.to_string(),
        customer: None,
        recent_conversations: vec![],
        linked_conversation: None,
        settings: Settings {
            recording_enabled: false,
            fields: vec![],
            field_mapping: vec![],
            options: vec![],
        },
    })
}

/// The attribute names [`ContextBuilder::standard_fields`] provisions, in the
/// `ccai` prefix and type-suffix convention of CF5.
pub fn standard_field_names() -> Vec<FieldName> {
    use StandardField as F;
    [
        (F::CustomUserId, "ccaiCustomUserIdStr"),
        (F::QueueName, "ccaiQueueNameStr"),
        (F::SessionType, "ccaiSessionTypeStr"),
        (F::SessionId, "ccaiSessionIdStr"),
        (F::FromPhone, "ccaiFromPhoneStr"),
        (F::CallDuration, "ccaiCallDurationNum"),
        (F::HoldTime, "ccaiHoldTimeNum"),
        (F::WaitTime, "ccaiWaitTimeNum"),
        (F::CsatRating, "ccaiCsatRatingNum"),
        (F::CsatComment, "ccaiCsatCommentTxt"),
        (F::MenuSelection, "ccaiMenuSelectionStr"),
        (F::EmailInWeb, "ccaiEmailInWebStr"),
    ]
    .into_iter()
    .map(|(field, name)| FieldName {
        field,
        name: name.to_string(),
    })
    .collect()
}

impl ContextBuilder {
    /// The tenant id.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.0.tenant = tenant.to_string();
        self
    }

    /// The host's time for this call.
    pub fn now(mut self, now: &str) -> Self {
        self.0.now = now.to_string();
        self
    }

    /// The known customer.
    pub fn customer(mut self, customer: impl Into<Customer>) -> Self {
        self.0.customer = Some(customer.into());
        self
    }

    /// Adds a recent conversation; add them newest first.
    pub fn recent(mut self, conversation: impl Into<Conversation>) -> Self {
        self.0.recent_conversations.push(conversation.into());
        self
    }

    /// Adds an open recent conversation on `channel` with `menu` selection.
    pub fn open_conversation(self, id: &str, channel: Channel, menu: Option<&str>) -> Self {
        let mut c = conversation(id).channel(channel);
        if let Some(menu) = menu {
            c = c.menu(menu);
        }
        self.recent(c)
    }

    /// The conversation already linked to the session. It is also added to
    /// the recent conversations (first) when not already there.
    pub fn linked(mut self, conversation: impl Into<Conversation>) -> Self {
        let conversation = conversation.into();
        if !self
            .0
            .recent_conversations
            .iter()
            .any(|c| c.id == conversation.id)
        {
            self.0.recent_conversations.insert(0, conversation.clone());
        }
        self.0.linked_conversation = Some(conversation);
        self
    }

    /// Turns call recording on or off (TU3).
    pub fn recording_enabled(mut self, on: bool) -> Self {
        self.0.settings.recording_enabled = on;
        self
    }

    /// Makes one standard field live under `name`.
    pub fn field(mut self, field: StandardField, name: &str) -> Self {
        self.0.settings.fields.retain(|f| f.field != field);
        self.0.settings.fields.push(FieldName {
            field,
            name: name.to_string(),
        });
        self
    }

    /// Makes every standard field live under [`standard_field_names`].
    pub fn standard_fields(mut self) -> Self {
        self.0.settings.fields = standard_field_names();
        self
    }

    /// Maps SDK custom-data `key` to attribute `name` on `target` (TU9).
    pub fn mapping(mut self, key: &str, target: FieldTarget, name: &str) -> Self {
        self.0.settings.field_mapping.push(FieldMapping {
            key: key.to_string(),
            target,
            name: name.to_string(),
        });
        self
    }

    /// A free-form tenant option.
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.0
            .settings
            .options
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        self.0
    }
}

impl From<ContextBuilder> for Context {
    fn from(b: ContextBuilder) -> Self {
        b.0
    }
}

// ----------------------------------------------------------- status sync

/// Builds a [`StatusChange`].
#[derive(Debug, Clone)]
pub struct StatusChangeBuilder(StatusChange);

/// A status change of `agent_email` to `status`, reported by `source` at
/// [`NOW`], not at login.
pub fn status_change(source: System, agent_email: &str, status: &str) -> StatusChangeBuilder {
    StatusChangeBuilder(StatusChange {
        source,
        agent_email: agent_email.to_string(),
        status: status.to_string(),
        instance_id: None,
        at: NOW.to_string(),
        login: false,
    })
}

impl StatusChangeBuilder {
    /// When it changed.
    pub fn at(mut self, at: &str) -> Self {
        self.0.at = at.to_string();
        self
    }

    /// The Kustomer instance that reported it.
    pub fn instance(mut self, id: &str) -> Self {
        self.0.instance_id = Some(id.to_string());
        self
    }

    /// Reported while signing in (AS8).
    pub fn login(mut self) -> Self {
        self.0.login = true;
        self
    }

    /// The change.
    pub fn build(self) -> StatusChange {
        self.0
    }
}

impl From<StatusChangeBuilder> for StatusChange {
    fn from(b: StatusChangeBuilder) -> Self {
        b.0
    }
}

/// Builds a [`StatusContext`]: one-way, last change wins, agent idle and
/// signed in to one Kustomer instance, empty mappings.
#[derive(Debug, Clone)]
pub struct StatusContextBuilder(StatusContext);

/// A status context builder with the defaults above.
pub fn status_context() -> StatusContextBuilder {
    StatusContextBuilder(StatusContext {
        kustomer_to_ccai: vec![],
        ccai_to_kustomer: vec![],
        two_way: false,
        priority: PriorityMode::LastChangeWins,
        ccai_status: None,
        ccai_activity: AgentActivity::Idle,
        kustomer_status: None,
        active_instances: 1,
        pending: None,
        last_applied: None,
        now: NOW.to_string(),
    })
}

impl StatusContextBuilder {
    /// Adds a Kustomer → CCAI mapping entry (AS1).
    pub fn kustomer_to_ccai(mut self, from: &str, to: &str) -> Self {
        self.0.kustomer_to_ccai.push(StatusMap {
            from: from.to_string(),
            to: to.to_string(),
        });
        self
    }

    /// Adds a CCAI → Kustomer mapping entry (AS3).
    pub fn ccai_to_kustomer(mut self, from: &str, to: &str) -> Self {
        self.0.ccai_to_kustomer.push(StatusMap {
            from: from.to_string(),
            to: to.to_string(),
        });
        self
    }

    /// Turns two-way sync on (AS3).
    pub fn two_way(mut self) -> Self {
        self.0.two_way = true;
        self
    }

    /// The priority mode (AS6).
    pub fn priority(mut self, priority: PriorityMode) -> Self {
        self.0.priority = priority;
        self
    }

    /// The agent's current CCAI status.
    pub fn ccai_status(mut self, status: &str) -> Self {
        self.0.ccai_status = Some(status.to_string());
        self
    }

    /// The agent's CCAI activity (AS7).
    pub fn activity(mut self, activity: AgentActivity) -> Self {
        self.0.ccai_activity = activity;
        self
    }

    /// The agent's current Kustomer status.
    pub fn kustomer_status(mut self, status: &str) -> Self {
        self.0.kustomer_status = Some(status.to_string());
        self
    }

    /// Kustomer instances the agent is signed in to (AS5).
    pub fn instances(mut self, n: u32) -> Self {
        self.0.active_instances = n;
        self
    }

    /// A deferred status waiting for the agent's session to end.
    pub fn pending(mut self, target: System, status: &str, at: &str) -> Self {
        self.0.pending = Some(StatusRecord {
            target,
            status: status.to_string(),
            at: at.to_string(),
        });
        self
    }

    /// The last status the sync itself applied.
    pub fn last_applied(mut self, target: System, status: &str, at: &str) -> Self {
        self.0.last_applied = Some(StatusRecord {
            target,
            status: status.to_string(),
            at: at.to_string(),
        });
        self
    }

    /// The host's time.
    pub fn now(mut self, now: &str) -> Self {
        self.0.now = now.to_string();
        self
    }

    /// The context.
    pub fn build(self) -> StatusContext {
        self.0
    }
}

impl From<StatusContextBuilder> for StatusContext {
    fn from(b: StatusContextBuilder) -> Self {
        b.0
    }
}

// ------------------------------------------------------------ assertions

/// The kebab-case WIT name of an action, e.g. `"create-conversation"`.
pub fn action_name(action: &Action) -> &'static str {
    match action {
        Action::CreateCustomer(_) => "create-customer",
        Action::UpdateCustomer(_) => "update-customer",
        Action::CreateConversation(_) => "create-conversation",
        Action::AppendTo(_) => "append-to",
        Action::AddMessage(_) => "add-message",
        Action::AddNote(_) => "add-note",
        Action::AttachFile(_) => "attach-file",
        Action::SetFields(_) => "set-fields",
        Action::Assign(_) => "assign",
        Action::SetStatus(_) => "set-status",
        Action::Skip(_) => "skip",
    }
}

/// Queries on a [`Plan`] for assertions.
pub trait PlanExt {
    /// Action names in order, e.g. `["create-conversation", "add-message"]`.
    fn kinds(&self) -> Vec<&'static str>;
    /// The customer the plan creates.
    fn customer_created(&self) -> Option<&NewCustomer>;
    /// Customer updates, in order.
    fn customer_updates(&self) -> Vec<&CustomerUpdate>;
    /// The conversation the plan creates.
    fn conversation_created(&self) -> Option<&NewConversation>;
    /// The conversation the plan appends to.
    fn appended_to(&self) -> Option<&str>;
    /// Messages added, in order.
    fn messages(&self) -> Vec<&Message>;
    /// Notes added, in order.
    fn notes(&self) -> Vec<&str>;
    /// Files attached, in order.
    fn attachments(&self) -> Vec<&Attachment>;
    /// Fields written by `set-fields` actions, in order.
    fn fields_set(&self) -> Vec<&CustomField>;
    /// The value a field gets, from `set-fields` or the created conversation.
    fn field(&self, name: &str) -> Option<&FieldValue>;
    /// Agents the conversation is assigned to, in order.
    fn assigned(&self) -> Vec<&str>;
    /// Statuses set, in order.
    fn statuses(&self) -> Vec<ConversationStatus>;
    /// Skip reasons.
    fn skipped(&self) -> Vec<&str>;
    /// True when the plan is a single `skip`.
    fn is_skip(&self) -> bool;
}

impl PlanExt for Plan {
    fn kinds(&self) -> Vec<&'static str> {
        self.actions.iter().map(action_name).collect()
    }

    fn customer_created(&self) -> Option<&NewCustomer> {
        self.actions.iter().find_map(|a| match a {
            Action::CreateCustomer(c) => Some(c),
            _ => None,
        })
    }

    fn customer_updates(&self) -> Vec<&CustomerUpdate> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::UpdateCustomer(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    fn conversation_created(&self) -> Option<&NewConversation> {
        self.actions.iter().find_map(|a| match a {
            Action::CreateConversation(c) => Some(c),
            _ => None,
        })
    }

    fn appended_to(&self) -> Option<&str> {
        self.actions.iter().find_map(|a| match a {
            Action::AppendTo(id) => Some(id.as_str()),
            _ => None,
        })
    }

    fn messages(&self) -> Vec<&Message> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::AddMessage(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn notes(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::AddNote(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    fn attachments(&self) -> Vec<&Attachment> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::AttachFile(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn fields_set(&self) -> Vec<&CustomField> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::SetFields(f) => Some(f.iter()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn field(&self, name: &str) -> Option<&FieldValue> {
        let created = self
            .conversation_created()
            .into_iter()
            .flat_map(|c| c.fields.iter());
        created
            .chain(self.fields_set())
            .rfind(|f| f.name == name)
            .map(|f| &f.value)
    }

    fn assigned(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Assign(email) => Some(email.as_str()),
                _ => None,
            })
            .collect()
    }

    fn statuses(&self) -> Vec<ConversationStatus> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::SetStatus(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn skipped(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Skip(reason) => Some(reason.as_str()),
                _ => None,
            })
            .collect()
    }

    fn is_skip(&self) -> bool {
        matches!(self.actions.as_slice(), [Action::Skip(_)])
    }
}

/// Checks the ordering contract of a plan: every action that acts on a
/// conversation comes after one exists (linked in `ctx`, or created or
/// appended earlier in the plan), and the plan is not empty. Returns what is
/// wrong.
pub fn check_plan(plan: &Plan, ctx: &Context) -> Result<(), String> {
    if plan.actions.is_empty() {
        return Err("the plan is empty; a plan with nothing to do is a single skip".into());
    }
    let mut has_conversation = ctx.linked_conversation.is_some();
    for (i, action) in plan.actions.iter().enumerate() {
        match action {
            Action::CreateConversation(_) | Action::AppendTo(_) => has_conversation = true,
            Action::AddMessage(_)
            | Action::AddNote(_)
            | Action::AttachFile(_)
            | Action::SetFields(_)
            | Action::Assign(_)
            | Action::SetStatus(_)
                if !has_conversation =>
            {
                return Err(format!(
                    "action {i} ({}) needs a conversation but none is linked, created or appended before it: {:?}",
                    action_name(action),
                    plan.kinds()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
