//! Serde types of the Kustomer API. Responses: every field optional or
//! defaulted, unknown fields ignored, `null` accepted where Kustomer sends it.
//! Requests: only the fields set are sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `null` or missing → `T::default()` (Kustomer sends `null` for empty lists
/// in some payloads and `[]` in others).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{"data": …}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Document<T> {
    pub data: T,
}

/// A list page: `{"meta", "links", "data": […]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListDocument<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub meta: Option<PageMeta>,
    #[serde(default)]
    pub links: Option<PageLinks>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageMeta {
    pub page_size: Option<u32>,
    pub page: Option<u32>,
    pub total: Option<u64>,
    pub total_pages: Option<u32>,
}

/// Relative links (`/v1/...`); `next` is `null` on the last page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PageLinks {
    #[serde(rename = "self")]
    pub self_: Option<String>,
    pub first: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: Option<String>,
}

/// `{"type", "id"}`. Note Kustomer's quirk: a message's customer has type
/// `customers` (plural).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResourceId {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// To-one or to-many relationship data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RelationshipData {
    One(ResourceId),
    Many(Vec<ResourceId>),
}

/// Told apart by the JSON's shape (an object or an array) as it is read: a
/// derived untagged enum would first copy every relationship into a buffer
/// and try each variant on it, on every resource Kustomer answers.
impl<'de> Deserialize<'de> for RelationshipData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        use serde::de::{MapAccess, SeqAccess, Visitor};

        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = RelationshipData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a resource identifier or a list of them")
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                ResourceId::deserialize(MapAccessDeserializer::new(map)).map(RelationshipData::One)
            }

            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(RelationshipData::Many)
            }
        }
        d.deserialize_any(Shape)
    }
}

/// `{"data": …?, "links": {"self"}?}`; link-only relationships (`messages`)
/// have no data.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct Relationship {
    pub data: Option<RelationshipData>,
    pub links: Option<Links>,
}

/// One JSON:API resource object.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Resource<A> {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub attributes: A,
    /// Null relations (`deletedBy: null`) are kept as `None`.
    #[serde(default, deserialize_with = "nullable")]
    pub relationships: BTreeMap<String, Option<Relationship>>,
    #[serde(default)]
    pub links: Option<Links>,
    /// Extra top-level data (the attachment upload target lives here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl<A> Resource<A> {
    /// Id of a to-one relationship (`customer`, `conversation`, `status`…).
    pub fn related_id(&self, name: &str) -> Option<&str> {
        match self.relationships.get(name)?.as_ref()?.data.as_ref()? {
            RelationshipData::One(r) => Some(&r.id),
            RelationshipData::Many(_) => None,
        }
    }
}

pub type Customer = Resource<CustomerAttributes>;
pub type Conversation = Resource<ConversationAttributes>;
pub type Message = Resource<MessageAttributes>;
pub type Note = Resource<NoteAttributes>;
pub type Attachment = Resource<AttachmentAttributes>;
pub type User = Resource<UserAttributes>;
pub type RoutingStatus = Resource<RoutingStatusAttributes>;
pub type WorkSession = Resource<WorkSessionAttributes>;
pub type WorkItem = Resource<WorkItemAttributes>;
pub type BulkJob = Resource<BulkJobAttributes>;
pub type Metadata = Resource<MetadataAttributes>;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailEntry {
    pub email: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct PhoneEntry {
    /// E.164 (`+15551234567`); WhatsApp entries read `whatsapp:+1…`.
    pub phone: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalIdEntry {
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConversationCounts {
    pub done: u64,
    pub open: u64,
    pub snoozed: u64,
    pub all: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomerAttributes {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub external_ids: Vec<ExternalIdEntry>,
    #[serde(deserialize_with = "nullable")]
    pub emails: Vec<EmailEntry>,
    #[serde(deserialize_with = "nullable")]
    pub phones: Vec<PhoneEntry>,
    #[serde(deserialize_with = "nullable")]
    pub whatsapps: Vec<PhoneEntry>,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
    pub locale: Option<String>,
    pub default_lang: Option<String>,
    pub custom: Option<Map<String, Value>>,
    pub conversation_counts: Option<ConversationCounts>,
    pub verified: Option<bool>,
    pub deleted: Option<bool>,
    pub rev: Option<u64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConversationAttributes {
    pub name: Option<String>,
    pub external_id: Option<String>,
    /// `open` | `snoozed` | `done` (orgs may add sub-statuses elsewhere).
    pub status: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub channels: Vec<String>,
    pub preview: Option<String>,
    pub direction: Option<String>,
    pub priority: Option<u8>,
    pub message_count: Option<u64>,
    pub note_count: Option<u64>,
    pub inbound_message_count: Option<u64>,
    pub outbound_message_count: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub assigned_users: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub assigned_teams: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
    pub custom: Option<Map<String, Value>>,
    pub external_queue: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_direction: Option<String>,
    pub default_lang: Option<String>,
    pub ended: Option<bool>,
    pub rev: Option<u64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
}

impl ConversationAttributes {
    pub fn is_open(&self) -> bool {
        self.status.as_deref() == Some("open")
    }
}

/// A send failure Kustomer records on a message (not an HTTP error).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MessageError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub title: Option<String>,
    pub meta: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageAttributes {
    pub channel: Option<String>,
    pub app: Option<String>,
    pub direction: Option<String>,
    pub direction_type: Option<String>,
    pub preview: Option<String>,
    pub subject: Option<String>,
    pub size: Option<u64>,
    pub meta: Option<Value>,
    pub status: Option<String>,
    pub external_id: Option<String>,
    pub custom: Option<Map<String, Value>>,
    pub attachments: Option<Value>,
    pub error: Option<MessageError>,
    pub error_at: Option<DateTime<Utc>>,
    pub auto: Option<bool>,
    pub redacted: Option<bool>,
    pub rev: Option<u64>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NoteAttributes {
    pub body: Option<String>,
    pub external_id: Option<String>,
    pub attachments: Option<Value>,
    pub rev: Option<u64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachmentAttributes {
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub uploaded: Option<bool>,
    pub redacted: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Where step 2 of an attachment upload posts (an S3 presigned POST). Kept
/// with the attachment's id so a retry uploads to the same attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadTarget {
    pub url: String,
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserAttributes {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub user_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub roles: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoutingStatusAttributes {
    pub name: Option<String>,
    /// `available` | `busy` | `unavailable` | `offline`.
    pub status_type: Option<String>,
    pub selectable: Option<bool>,
    pub system: Option<bool>,
    pub enabled: Option<bool>,
    pub routable: Option<bool>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkSessionAttributes {
    pub status_type: Option<String>,
    pub routable: Option<bool>,
    pub active: Option<bool>,
    pub work_item_count: Option<u64>,
    pub capacity_remaining: Option<i64>,
    pub signed_in_at: Option<DateTime<Utc>>,
    pub signed_out_at: Option<DateTime<Utc>>,
    pub rev: Option<u64>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkItemAttributes {
    pub resource_type: Option<String>,
    /// `ivr` → `queued` → `routed` → `assigned` → `completed`.
    pub status: Option<String>,
    pub paused: Option<bool>,
    pub channel: Option<String>,
    pub priority: Option<i64>,
    pub queued_count: Option<u64>,
    pub first_enter_queue_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_revision: Option<Value>,
    pub rev: Option<u64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkJobAttributes {
    #[serde(deserialize_with = "nullable")]
    pub ids: Vec<String>,
    pub context: Option<String>,
    /// `running` until the job finishes.
    pub status: Option<String>,
    pub completed: Option<bool>,
    pub batch_errors: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
}

/// One custom attribute definition in `/v1/metadata/{resource}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PropertyDefinition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Derived by Kustomer from the name's suffix; never sent.
    #[serde(rename = "type", skip_serializing)]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enumeration: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi: Option<bool>,
    /// Everything else Kustomer stores (`modifiedBy`, `sensitive`, …); read
    /// only, never sent back.
    #[serde(flatten, skip_serializing)]
    pub other: Map<String, Value>,
}

impl PropertyDefinition {
    pub fn named(display_name: impl Into<String>) -> Self {
        PropertyDefinition {
            display_name: Some(display_name.into()),
            ..Default::default()
        }
    }

    /// True when `self` (current) already has everything `wanted` asks for.
    pub fn satisfies(&self, wanted: &PropertyDefinition) -> bool {
        (wanted.display_name.is_none() || wanted.display_name == self.display_name)
            && (wanted.enumeration.is_none() || wanted.enumeration == self.enumeration)
            && (wanted.target.is_none() || wanted.target == self.target)
            && (wanted.multi.is_none() || wanted.multi == self.multi)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetadataAttributes {
    #[serde(deserialize_with = "nullable")]
    pub properties: BTreeMap<String, PropertyDefinition>,
}

/// Objects that carry custom attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataResource {
    Customer,
    Conversation,
    Message,
}

impl MetadataResource {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataResource::Customer => "customer",
            MetadataResource::Conversation => "conversation",
            MetadataResource::Message => "message",
        }
    }
}

// ------------------------------------------------------------------ requests

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCustomer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The mobile SDK identifier or another system's id (unique per org).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<EmailEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<PhoneEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Merged key by key; a `null` value clears that attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
}

/// A conversation's queue: `{id}`, `{id: null}` (un-queue) or
/// `{external: "amazon-connect"}` (routed by the contact centre).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRef {
    Id(String),
    Clear,
    External(String),
}

impl Serialize for QueueRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = match self {
            QueueRef::Id(id) => serde_json::json!({ "id": id }),
            QueueRef::Clear => serde_json::json!({ "id": null }),
            QueueRef::External(e) => serde_json::json!({ "external": e }),
        };
        v.serialize(s)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewConversation {
    /// Caller-chosen 24-hex id (see [`super::derive_id`]): makes the create
    /// idempotent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `open` | `done` on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assigned_users: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lang: Option<String>,
    /// When the conversation began; Kustomer keeps a supplied `createdAt`,
    /// and recency is judged by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPatch {
    /// `open` | `snoozed` | `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_users: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_teams: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `voice`, `chat`, `sms`, `email`, …
    pub channel: String,
    /// The app that recorded the message (e.g. `switchboard`).
    pub app: String,
    /// `in` | `out`.
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Free-form per channel (call ids, durations, recording URLs, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewNote {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub body: String,
    /// Ids of uploaded attachments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// Step 1 of an attachment upload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub content_length: u64,
}

// ------------------------------------------------------------------ webhooks

/// `{op, before, after}` of one changed attribute.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Change {
    pub op: Option<String>,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Changes {
    #[serde(deserialize_with = "nullable")]
    pub attributes: BTreeMap<String, Change>,
    pub relationships: Option<Value>,
}

/// An outbound webhook (or internal event) body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub id: String,
    /// `kustomer.<object>.<create|update>`.
    pub name: String,
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub org_name: Option<String>,
    /// The object as `GET` would return it.
    pub data: Resource<Value>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Absent on create events.
    #[serde(default)]
    pub changes: Option<Changes>,
    #[serde(default)]
    pub persist: Option<bool>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub data_id: Option<String>,
    #[serde(default)]
    pub meta: Option<Value>,
}

impl WebhookEvent {
    /// Reads the event's object as a typed resource (e.g. [`Conversation`]).
    pub fn object<A: serde::de::DeserializeOwned>(&self) -> Result<Resource<A>, serde_json::Error> {
        let v = serde_json::to_value(&self.data)?;
        serde_json::from_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relationships_read_to_one_to_many_null_and_link_only() {
        let conversation: Conversation = serde_json::from_value(json!({
            "type": "conversation",
            "id": "c1",
            "attributes": {},
            "relationships": {
                "customer": { "data": { "type": "customer", "id": "k1" } },
                "assignedUsers": { "data": [{ "type": "user", "id": "u1" }, { "type": "user", "id": "u2" }] },
                "messages": { "links": { "self": "/v1/conversations/c1/messages" } },
                "deletedBy": null
            }
        }))
        .expect("conversation");
        assert_eq!(conversation.related_id("customer"), Some("k1"));
        assert_eq!(
            conversation.relationships["assignedUsers"]
                .as_ref()
                .and_then(|r| r.data.clone()),
            Some(RelationshipData::Many(vec![
                ResourceId {
                    kind: "user".into(),
                    id: "u1".into()
                },
                ResourceId {
                    kind: "user".into(),
                    id: "u2".into()
                },
            ]))
        );
        assert_eq!(conversation.related_id("messages"), None);
        assert_eq!(conversation.relationships["deletedBy"], None);
        // What is written reads back the same.
        let again: Conversation =
            serde_json::from_value(serde_json::to_value(&conversation).expect("write"))
                .expect("read back");
        assert_eq!(again.relationships, conversation.relationships);
        // Neither an object nor a list is refused with what was expected.
        let error = serde_json::from_value::<Relationship>(json!({ "data": "k1" }))
            .expect_err("a string is no relationship");
        assert!(error.to_string().contains("resource identifier"), "{error}");
    }
}
