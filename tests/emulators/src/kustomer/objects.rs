//! The emulated Kustomer objects: validation, writes with their side effects
//! (`rev`, timestamps, derived conversation fields, uniqueness, webhooks) and
//! rendering in the shapes of the recorded Kustomer samples.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::render::{rel, rel_link, resource, ApiError};
use super::state::{
    is_id, new_id, ts, Attachment, Conversation, Customer, Db, Inner, Message, Note, RoutingStatus,
    Settings, User, WorkSession,
};

pub const CHANNELS: &[&str] = &[
    "email",
    "sms",
    "chat",
    "facebook",
    "twitter-dm",
    "twitter-tweet",
    "voice",
    "instagram",
    "whatsapp",
];

/// Custom attribute suffixes Kustomer accepts (longest first so `Txt` is not
/// mistaken for a shorter match).
const SUFFIXES: &[&str] = &["Bool", "Tree", "Str", "Txt", "Num", "Url", "At", "Id"];

/// The largest number of assigned users or teams on a conversation.
const MAX_ASSIGNED: usize = 10;

fn user_rel(id: &str) -> Value {
    rel("user", id, &format!("/v1/users/{id}"))
}

fn org_rel(s: &Settings) -> Value {
    rel("org", &s.org_id, &format!("/v1/orgs/{}", s.org_id))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(
            &format!("/{key}"),
            format!("{key} must be a string"),
        )),
    }
}

fn string_list(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<Value>, ApiError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) if items.len() <= max && items.iter().all(Value::is_string) => {
            Ok(Some(Value::Array(items.clone())))
        }
        Some(_) => Err(ApiError::invalid(
            &format!("/{key}"),
            format!("{key} must be a list of at most {max} ids"),
        )),
    }
}

/// Checks a caller-supplied `id`: 24-hex and not used yet.
fn client_id(db: &Db, body: &Map<String, Value>) -> Result<String, ApiError> {
    match str_field(body, "id")? {
        None => Ok(new_id()),
        Some(id) if !is_id(id) => Err(ApiError::invalid("/id", "id must be a 24-character hex id")),
        Some(id) if db.id_taken(id) => Err(ApiError::conflict(
            "/id",
            format!("an object with id {id} already exists"),
        )),
        Some(id) => Ok(id.to_string()),
    }
}

/// The suffix a custom attribute name ends with, if any.
fn suffix(name: &str) -> Option<&'static str> {
    SUFFIXES
        .iter()
        .copied()
        .find(|s| name.len() > s.len() && name.ends_with(s))
}

/// Validates `custom` attributes: each name needs a type suffix and a value of
/// that type; `…Id` names need metadata with a target first.
pub fn validate_custom(db: &Db, resource: &str, custom: &Value) -> Result<(), ApiError> {
    let map = match custom {
        Value::Null => return Ok(()),
        Value::Object(m) => m,
        _ => return Err(ApiError::bad_request("custom must be an object")),
    };
    for (name, value) in map {
        let Some(sfx) = suffix(name) else {
            return Err(ApiError::bad_request(format!(
                "custom attribute {name} has no type suffix (Str, Txt, Num, At, Bool, Url, Id)"
            )));
        };
        if value.is_null() {
            continue;
        }
        let ok = match sfx {
            "Num" => value.is_number(),
            "Bool" => value.is_boolean(),
            "At" => value
                .as_str()
                .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
            "Str" => value.as_str().is_some_and(|s| s.chars().count() <= 1024),
            "Id" => {
                let has_target = db
                    .metadata
                    .get(resource)
                    .and_then(|props| props.get(name))
                    .is_some_and(|p| p.get("target").is_some());
                if !has_target {
                    return Err(ApiError::bad_request(format!(
                        "custom attribute {name} references an object but has no metadata target"
                    )));
                }
                value.is_string()
            }
            _ => value.is_string(),
        };
        if !ok {
            return Err(ApiError::bad_request(format!(
                "custom attribute {name} has a value of the wrong type for suffix {sfx}"
            )));
        }
    }
    Ok(())
}

fn merge_custom(attrs: &mut Map<String, Value>, custom: &Value) {
    let Value::Object(new) = custom else {
        attrs.insert("custom".into(), Value::Null);
        return;
    };
    let mut merged = attrs
        .get("custom")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in new {
        merged.insert(k.clone(), v.clone());
    }
    attrs.insert("custom".into(), Value::Object(merged));
}

/// Builds the `changes` of an update event from two attribute maps.
fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Value {
    let mut changed = Map::new();
    for (k, v) in after {
        let old = before.get(k).cloned().unwrap_or(Value::Null);
        if &old != v {
            changed.insert(
                k.clone(),
                json!({"op": "replace", "before": old, "after": v}),
            );
        }
    }
    json!({ "attributes": changed, "relationships": {} })
}

/// Queues a webhook event (`kustomer.<kind>.<action>`) for delivery.
fn raise(inner: &mut Inner, name: &str, data: Value, changes: Option<Value>, custom_changed: bool) {
    let now = inner.now();
    let s = &inner.settings;
    let data_id = data.get("id").cloned().unwrap_or(Value::Null);
    let mut body = json!({
        "id": new_id(),
        "name": name,
        "org": s.org_id,
        "partition": s.org_id,
        "orgName": s.org_name,
        "data": data,
        "createdAt": ts(now),
        "persist": true,
        "client": "api-gw",
        "dataId": data_id,
        "meta": { "customChanged": custom_changed },
        "snsFilters": [],
    });
    if let Some(changes) = changes {
        body["changes"] = changes;
    }
    inner.outbox.push((name.to_string(), body));
}

fn bump(attrs: &mut Map<String, Value>, now: DateTime<Utc>) {
    let rev = attrs.get("rev").and_then(Value::as_i64).unwrap_or(0);
    attrs.insert("rev".into(), json!(rev + 1));
    attrs.insert("updatedAt".into(), json!(ts(now)));
    attrs.insert("modifiedAt".into(), json!(ts(now)));
}

// ---------------------------------------------------------------- customers

fn check_unique(db: &Db, attrs: &Map<String, Value>, own_id: Option<&str>) -> Result<(), ApiError> {
    match db.identity_clash(attrs, own_id) {
        Some((kind, value, pointer)) => Err(ApiError::conflict(
            &pointer,
            format!("a customer with {kind} {value} already exists"),
        )),
        None => Ok(()),
    }
}

fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Validates and normalises contact lists (adds `verified` defaults).
fn normalise_contacts(attrs: &mut Map<String, Value>) -> Result<(), ApiError> {
    let specs: &[(&str, &str)] = &[
        ("emails", "email"),
        ("sharedEmails", "email"),
        ("phones", "phone"),
        ("sharedPhones", "phone"),
        ("whatsapps", "phone"),
        ("sharedWhatsapps", "phone"),
        ("externalIds", "externalId"),
        ("sharedExternalIds", "externalId"),
    ];
    for (field, key) in specs {
        let Some(v) = attrs.get_mut(*field) else {
            continue;
        };
        let Value::Array(items) = v else {
            return Err(ApiError::invalid(
                &format!("/{field}"),
                format!("{field} must be a list"),
            ));
        };
        for (i, item) in items.iter_mut().enumerate() {
            let Some(m) = item.as_object_mut() else {
                return Err(ApiError::invalid(
                    &format!("/{field}/{i}"),
                    "must be an object",
                ));
            };
            let Some(value) = m.get(*key).and_then(Value::as_str) else {
                return Err(ApiError::invalid(
                    &format!("/{field}/{i}/{key}"),
                    format!("{key} is required"),
                ));
            };
            if field.ends_with("hones") && !is_e164(value) {
                return Err(ApiError::invalid(
                    &format!("/{field}/{i}/{key}"),
                    format!("{value} is not an E.164 phone number"),
                ));
            }
            if field.ends_with("mails") && !value.contains('@') {
                return Err(ApiError::invalid(
                    &format!("/{field}/{i}/{key}"),
                    format!("{value} is not an email address"),
                ));
            }
            m.entry("verified").or_insert(json!(false));
            if *key != "phone" {
                m.entry("externalVerified").or_insert(json!(false));
            }
        }
    }
    Ok(())
}

fn display(attrs: &mut Map<String, Value>) {
    let name = attrs
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let first_contact = ["emails", "phones"].iter().find_map(|f| {
        attrs
            .get(*f)
            .and_then(|v| v.get(0))
            .and_then(|c| c.get(if *f == "emails" { "email" } else { "phone" }))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match (name, first_contact) {
        (Some(n), _) => {
            let mut parts = n.splitn(2, ' ');
            let first = parts.next().unwrap_or_default().to_string();
            let last = parts.next().unwrap_or_default().to_string();
            attrs.insert("displayName".into(), json!(n));
            attrs.insert("firstName".into(), json!(first));
            attrs.insert("lastName".into(), json!(last));
            attrs.insert("displayColor".into(), json!("pink"));
            attrs.insert("displayIcon".into(), json!("stereo"));
        }
        (None, Some(c)) => {
            attrs.insert("displayName".into(), json!(c));
            attrs.insert("displayColor".into(), json!("teal"));
            attrs.insert("displayIcon".into(), json!("phone"));
        }
        (None, None) => {
            attrs.insert("displayName".into(), json!("Silver Scissors"));
            attrs.insert("displayColor".into(), json!("silver"));
            attrs.insert("displayIcon".into(), json!("scissors"));
        }
    }
}

/// Fields a customer write may set (everything else in a body is ignored).
const CUSTOMER_FIELDS: &[&str] = &[
    "name",
    "company",
    "externalId",
    "username",
    "signedUpAt",
    "lastActivityAt",
    "lastCustomerActivityAt",
    "lastSeenAt",
    "avatarUrl",
    "externalIds",
    "sharedExternalIds",
    "emails",
    "sharedEmails",
    "phones",
    "sharedPhones",
    "whatsapps",
    "sharedWhatsapps",
    "facebookIds",
    "instagramIds",
    "socials",
    "sharedSocials",
    "urls",
    "locations",
    "locale",
    "timeZone",
    "tags",
    "sentiment",
    "birthdayAt",
    "gender",
    "importedAt",
    "defaultLang",
    "companyName",
];

pub fn create_customer(inner: &mut Inner, body: Map<String, Value>) -> Result<Value, ApiError> {
    let now = inner.now();
    let id = new_id();
    let mut attrs = obj(json!({
        "externalIds": [], "sharedExternalIds": [], "emails": [], "sharedEmails": [],
        "phones": [], "sharedPhones": [], "whatsapps": [], "sharedWhatsapps": [],
        "facebookIds": [], "instagramIds": [], "socials": [], "sharedSocials": [], "urls": [],
        "locations": [], "activeUsers": [], "watchers": [],
        "recentLocation": { "updatedAt": ts(now) },
        "createdAt": ts(now), "updatedAt": ts(now), "modifiedAt": ts(now),
        "lastActivityAt": ts(now), "deleted": false, "preview": {}, "tags": [],
        "progressiveStatus": null, "verified": false, "rev": 1, "recentItems": [],
        "satisfactionLevel": {
            "firstSatisfaction": { "sentByTeams": [] },
            "lastSatisfaction": { "sentByTeams": [] },
        },
        "roleGroupVersions": [], "accessOverride": [], "custom": null,
    }));
    for key in CUSTOMER_FIELDS {
        if let Some(v) = body.get(*key) {
            attrs.insert((*key).to_string(), v.clone());
        }
    }
    if let Some(created) = str_field(&body, "createdAt")? {
        attrs.insert("createdAt".into(), json!(created));
    }
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "customer", custom)?;
        attrs.insert("custom".into(), custom.clone());
    }
    normalise_contacts(&mut attrs)?;
    check_unique(&inner.db, &attrs, None)?;
    display(&mut attrs);
    inner.db.insert_customer(Customer {
        id: id.clone(),
        attrs,
    });
    let rendered = render_customer_by_id(inner, &id);
    raise(
        inner,
        "kustomer.customer.create",
        rendered.clone(),
        None,
        false,
    );
    Ok(rendered)
}

pub fn update_customer(
    inner: &mut Inner,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let Some(before) = inner.db.customer(id).map(|c| c.attrs.clone()) else {
        return Err(ApiError::not_found("customer"));
    };
    let mut attrs = before.clone();
    for key in CUSTOMER_FIELDS {
        if let Some(v) = body.get(*key) {
            attrs.insert((*key).to_string(), v.clone());
        }
    }
    let custom_changed = body.contains_key("custom");
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "customer", custom)?;
        merge_custom(&mut attrs, custom);
    }
    normalise_contacts(&mut attrs)?;
    check_unique(&inner.db, &attrs, Some(id))?;
    display(&mut attrs);
    bump(&mut attrs, now);
    attrs.insert("lastActivityAt".into(), json!(ts(now)));
    let changes = diff(&before, &attrs);
    inner.db.set_customer_attrs(id, attrs);
    let rendered = render_customer_by_id(inner, id);
    raise(
        inner,
        "kustomer.customer.update",
        rendered.clone(),
        Some(changes),
        custom_changed,
    );
    Ok(rendered)
}

pub fn render_customer_by_id(inner: &Inner, id: &str) -> Value {
    match inner.db.customer(id) {
        Some(c) => render_customer(&inner.db, &inner.settings, c),
        None => Value::Null,
    }
}

pub fn render_customer(db: &Db, s: &Settings, c: &Customer) -> Value {
    let mut attrs = c.attrs.clone();
    let mut counts = json!({"done": 0, "open": 0, "snoozed": 0, "all": 0});
    let mut last: Option<&Conversation> = None;
    for conv in db.conversations_of(&c.id) {
        let status = conv
            .attrs
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("open");
        if let Some(n) = counts.get_mut(status) {
            *n = json!(n.as_i64().unwrap_or(0) + 1);
        }
        counts["all"] = json!(counts["all"].as_i64().unwrap_or(0) + 1);
        last = Some(conv);
    }
    attrs.insert("conversationCounts".into(), counts);
    let last_conv = match last {
        Some(conv) => json!({
            "channels": conv.attrs.get("channels").cloned().unwrap_or(json!([])),
            "tags": conv.attrs.get("tags").cloned().unwrap_or(json!([])),
        }),
        None => json!({"channels": [], "tags": []}),
    };
    attrs.insert("lastConversation".into(), last_conv);
    let mut rels = Map::new();
    rels.insert(
        "messages".into(),
        rel_link(&format!("/v1/customers/{}/messages", c.id)),
    );
    rels.insert("createdBy".into(), user_rel(&s.machine_user_id));
    rels.insert("modifiedBy".into(), user_rel(&s.machine_user_id));
    rels.insert("org".into(), org_rel(s));
    if let Some(company) = attrs
        .remove("company")
        .and_then(|v| v.as_str().map(str::to_string))
    {
        rels.insert(
            "company".into(),
            rel("company", &company, &format!("/v1/companies/{company}")),
        );
    }
    resource(
        "customer",
        &c.id,
        Value::Object(attrs),
        rels,
        &format!("/v1/customers/{}", c.id),
    )
}

/// `email=…`, `phone=…`, `externalId=…` or a plain id.
pub fn find_customer<'a>(db: &'a Db, key: &str) -> Option<&'a Customer> {
    if let Some(v) = key.strip_prefix("email=") {
        db.customer_by_identity("email", &v.to_lowercase())
    } else if let Some(v) = key.strip_prefix("phone=") {
        db.customer_by_identity("phone", v)
    } else if let Some(v) = key.strip_prefix("externalId=") {
        db.customer_by_identity("externalId", v)
    } else {
        db.customer(key)
    }
}

// ------------------------------------------------------------ conversations

fn status_change(attrs: &mut Map<String, Value>, status: &str, now: DateTime<Utc>) {
    attrs.insert("status".into(), json!(status));
    attrs.insert(status.to_string(), json!({ "statusAt": ts(now) }));
    history(attrs, "statusAt", now);
}

fn history(attrs: &mut Map<String, Value>, field: &str, now: DateTime<Utc>) {
    if let Some(Value::Object(h)) = attrs.get_mut("modificationHistory") {
        h.insert(field.to_string(), json!(ts(now)));
    }
}

/// Applies a `queue` input: `{id}`, `{id:null}` or `{external}`.
fn apply_queue(
    queue: &Value,
    attrs: &mut Map<String, Value>,
    queue_id: &mut Option<String>,
) -> Result<(), ApiError> {
    let Value::Object(q) = queue else {
        return Err(ApiError::invalid("/queue", "queue must be an object"));
    };
    if let Some(ext) = q.get("external") {
        if ext != "amazon-connect" {
            return Err(ApiError::invalid(
                "/queue/external",
                "queue.external must be amazon-connect",
            ));
        }
        attrs.insert("externalQueue".into(), ext.clone());
    }
    match q.get("id") {
        Some(Value::Null) => *queue_id = None,
        Some(Value::String(id)) if is_id(id) => *queue_id = Some(id.clone()),
        Some(_) => {
            return Err(ApiError::invalid(
                "/queue/id",
                "queue.id must be an id or null",
            ))
        }
        None => {}
    }
    Ok(())
}

fn check_direction(v: Option<&str>, required: bool) -> Result<Option<String>, ApiError> {
    match v {
        None if required => Err(ApiError::invalid("/direction", "direction is required")),
        None => Ok(None),
        Some(d @ ("in" | "out")) => Ok(Some(d.to_string())),
        Some(d) => Err(ApiError::invalid(
            "/direction",
            format!("direction {d} is not in|out"),
        )),
    }
}

fn new_conversation_attrs(now: DateTime<Utc>) -> Map<String, Value> {
    let empty_response = json!({"createdByTeams": [], "assignedTeams": [], "assignedUsers": []});
    // Split in parts: one json! this size exceeds the macro recursion limit.
    let mut attrs = obj(json!({
        "name": null, "channels": [], "status": "open", "open": { "statusAt": ts(now) },
        "messageCount": 0, "noteCount": 0, "satisfaction": 0,
        "satisfactionLevel": { "sentByTeams": [], "answers": [] },
        "createdAt": ts(now), "updatedAt": ts(now), "modifiedAt": ts(now),
        "lastActivityAt": ts(now), "spam": false, "ended": false, "importedAt": null,
        "tags": [], "suggestedTags": [], "predictions": [], "sentiment": {},
        "suggestedShortcuts": [],
    }));
    attrs.extend(obj(json!({
        "firstMessageIn": {}, "firstMessageOut": { "createdByTeams": [] },
        "lastMessageIn": {}, "lastMessageOut": {}, "lastMessageUnrespondedTo": {},
        "lastMessageUnrespondedToSinceLastDone": {}, "assignedUsers": [], "assignedTeams": [],
        "firstResponse": empty_response, "firstResponseSinceLastDone": empty_response,
        "lastResponse": empty_response, "firstDone": empty_response, "lastDone": empty_response,
        "direction": "in", "outboundMessageCount": 0, "inboundMessageCount": 0, "rev": 1,
        "priority": 3, "defaultLang": null, "locale": null, "externalQueue": null,
    })));
    attrs.extend(obj(json!({
        "custom": null, "totalSnooze": {}, "totalDone": {}, "totalOpen": {},
        "roleGroupVersions": [], "accessOverride": [],
        "modificationHistory": {
            "nameAt": ts(now), "priorityAt": ts(now), "channelAt": ts(now),
            "assignedTeamsAt": ts(now), "assignedUsersAt": ts(now), "brandAt": null,
            "defaultLangAt": null, "statusAt": ts(now), "tagsAt": ts(now), "customAt": null,
        },
        "billingStatus": "no_messages",
        "assistant": { "fac": { "reasons": [], "exclusions": [], "source": {} }, "assistantId": [] },
        "aiAgent": { "automationId": [] },
        "phase": "initial",
        "matchedTimeBasedRules": [],
    })));
    attrs
}

/// Creates a conversation. `charge` is false when a message create already
/// counted against the per-customer limit.
pub fn create_conversation(
    inner: &mut Inner,
    body: Map<String, Value>,
    customer_from_path: Option<&str>,
    charge: bool,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let customer_id = match customer_from_path {
        Some(c) => c.to_string(),
        None => str_field(&body, "customer")?
            .ok_or_else(|| ApiError::invalid("/customer", "customer is required"))?
            .to_string(),
    };
    if inner.db.customer(&customer_id).is_none() {
        return Err(ApiError::not_found("customer"));
    }
    if body.contains_key("channel") {
        return Err(ApiError::invalid(
            "/channel",
            "conversations have no channel; it derives from their messages",
        ));
    }
    let id = client_id(&inner.db, &body)?;
    let mut attrs = new_conversation_attrs(now);
    let status = str_field(&body, "status")?.unwrap_or("open");
    if !matches!(status, "open" | "done") {
        return Err(ApiError::invalid(
            "/status",
            format!("status {status} is not open|done on create"),
        ));
    }
    if status == "done" {
        attrs.remove("open");
        status_change(&mut attrs, "done", now);
    }
    if let Some(d) = check_direction(str_field(&body, "direction")?, false)? {
        attrs.insert("direction".into(), json!(d));
    }
    match body.get("priority") {
        None => {}
        Some(p) if p.as_i64().is_some_and(|p| (1..=5).contains(&p)) => {
            attrs.insert("priority".into(), p.clone());
        }
        Some(_) => return Err(ApiError::invalid("/priority", "priority must be 1 to 5")),
    }
    for key in ["assignedUsers", "assignedTeams"] {
        if let Some(v) = string_list(&body, key, MAX_ASSIGNED)? {
            attrs.insert(key.into(), v);
        }
    }
    if let Some(v) = string_list(&body, "tags", usize::MAX)? {
        attrs.insert("tags".into(), v);
    }
    for key in [
        "externalId",
        "name",
        "replyChannel",
        "defaultLang",
        "locale",
        "importedAt",
    ] {
        if let Some(v) = str_field(&body, key)? {
            attrs.insert(key.into(), json!(v));
        }
    }
    if let Some(created) = str_field(&body, "createdAt")? {
        attrs.insert("createdAt".into(), json!(created));
    }
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "conversation", custom)?;
        attrs.insert("custom".into(), custom.clone());
    }
    let mut queue_id = None;
    if let Some(q) = body.get("queue") {
        apply_queue(q, &mut attrs, &mut queue_id)?;
    }
    if charge && body.get("importedAt").is_none_or(Value::is_null) {
        charge_customer(inner, &customer_id)?;
    }
    inner.db.insert_conversation(Conversation {
        id: id.clone(),
        customer_id,
        queue_id,
        attrs,
    });
    let rendered = render_conversation_by_id(inner, &id);
    raise(
        inner,
        "kustomer.conversation.create",
        rendered.clone(),
        None,
        false,
    );
    Ok(rendered)
}

fn charge_customer(inner: &mut Inner, customer_id: &str) -> Result<(), ApiError> {
    inner.charge_customer_create(customer_id).map_err(|retry| {
        let mut e = ApiError::rate_limited(
            "create limit of this customer reached (conversations, messages, KObjects per minute)",
        );
        e.retry_after = Some(retry);
        e
    })
}

const CONVERSATION_UPDATE_FIELDS: &[&str] = &[
    "externalId",
    "name",
    "direction",
    "priority",
    "satisfaction",
    "suggestedShortcuts",
    "replyChannel",
    "subStatus",
    "snooze",
    "tags",
    "suggestedTags",
    "sentiment",
    "deleted",
    "ended",
    "endedAt",
    "endedReason",
    "endedBy",
    "endedByType",
    "locked",
    "defaultLang",
];

pub fn update_conversation(
    inner: &mut Inner,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let Some(conv) = inner.db.conversation(id).cloned() else {
        return Err(ApiError::not_found("conversation"));
    };
    let before = conv.attrs.clone();
    let mut attrs = conv.attrs;
    let mut queue_id = conv.queue_id;
    let mut customer_id = conv.customer_id;
    if let Some(status) = str_field(&body, "status")? {
        if !matches!(status, "open" | "snoozed" | "done") {
            return Err(ApiError::invalid(
                "/status",
                format!("status {status} is not open|snoozed|done"),
            ));
        }
        if before.get("status").and_then(Value::as_str) != Some(status) {
            status_change(&mut attrs, status, now);
        }
    }
    check_direction(str_field(&body, "direction")?, false)?;
    if let Some(p) = body.get("priority") {
        if !p.as_i64().is_some_and(|p| (1..=5).contains(&p)) {
            return Err(ApiError::invalid("/priority", "priority must be 1 to 5"));
        }
        history(&mut attrs, "priorityAt", now);
    }
    for key in ["assignedUsers", "assignedTeams"] {
        if let Some(v) = string_list(&body, key, MAX_ASSIGNED)? {
            if attrs.get(key) != Some(&v) {
                history(&mut attrs, &format!("{key}At"), now);
            }
            attrs.insert(key.into(), v);
        }
    }
    for key in CONVERSATION_UPDATE_FIELDS {
        if let Some(v) = body.get(*key) {
            if *key == "name" && attrs.get("name") != Some(v) {
                history(&mut attrs, "nameAt", now);
            }
            attrs.insert((*key).to_string(), v.clone());
        }
    }
    let custom_changed = body.contains_key("custom");
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "conversation", custom)?;
        merge_custom(&mut attrs, custom);
        history(&mut attrs, "customAt", now);
    }
    if let Some(q) = body.get("queue") {
        apply_queue(q, &mut attrs, &mut queue_id)?;
    }
    if let Some(c) = str_field(&body, "customer")? {
        if inner.db.customer(c).is_none() {
            return Err(ApiError::invalid("/customer", "customer does not exist"));
        }
        customer_id = c.to_string();
    }
    bump(&mut attrs, now);
    let changes = diff(&before, &attrs);
    inner.db.set_conversation(id, attrs, queue_id, customer_id);
    let rendered = render_conversation_by_id(inner, id);
    raise(
        inner,
        "kustomer.conversation.update",
        rendered.clone(),
        Some(changes),
        custom_changed,
    );
    Ok(rendered)
}

pub fn render_conversation_by_id(inner: &Inner, id: &str) -> Value {
    match inner.db.conversation(id) {
        Some(c) => render_conversation(&inner.settings, c),
        None => Value::Null,
    }
}

pub fn render_conversation(s: &Settings, c: &Conversation) -> Value {
    let mut rels = Map::new();
    rels.insert(
        "messages".into(),
        rel_link(&format!("/v1/conversations/{}/messages", c.id)),
    );
    rels.insert("createdBy".into(), user_rel(&s.machine_user_id));
    rels.insert("modifiedBy".into(), user_rel(&s.machine_user_id));
    rels.insert("org".into(), org_rel(s));
    rels.insert(
        "customer".into(),
        rel(
            "customer",
            &c.customer_id,
            &format!("/v1/customers/{}", c.customer_id),
        ),
    );
    if let Some(q) = &c.queue_id {
        rels.insert(
            "queue".into(),
            rel("queue", q, &format!("/v1/routing/queues/{q}")),
        );
    }
    resource(
        "conversation",
        &c.id,
        Value::Object(c.attrs.clone()),
        rels,
        &format!("/v1/conversations/{}", c.id),
    )
}

pub fn find_conversation<'a>(db: &'a Db, key: &str) -> Option<&'a Conversation> {
    match key.strip_prefix("externalId=") {
        Some(x) => db.conversation_by_external(x),
        None => db.conversation(key),
    }
}

// ----------------------------------------------------------------- messages

/// Creates a message; without a conversation one is created (named after the
/// `subject`), as the real API does.
pub fn create_message(
    inner: &mut Inner,
    body: Map<String, Value>,
    conversation_from_path: Option<&str>,
    customer_from_path: Option<&str>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let channel = str_field(&body, "channel")?
        .ok_or_else(|| ApiError::invalid("/channel", "channel is required"))?
        .to_string();
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(ApiError::invalid(
            "/channel",
            format!("channel {channel} is not supported"),
        ));
    }
    let app = str_field(&body, "app")?
        .ok_or_else(|| ApiError::invalid("/app", "app is required"))?
        .to_string();
    let direction = check_direction(str_field(&body, "direction")?, customer_from_path.is_none())?
        .unwrap_or_else(|| "in".to_string());
    let conversation_id = match conversation_from_path {
        Some(c) => Some(c.to_string()),
        None => str_field(&body, "conversation")?.map(str::to_string),
    };
    let customer_id = match (&conversation_id, customer_from_path) {
        (Some(conv), _) => inner
            .db
            .conversation(conv)
            .map(|c| c.customer_id.clone())
            .ok_or_else(|| ApiError::not_found("conversation"))?,
        (None, Some(c)) => c.to_string(),
        (None, None) => str_field(&body, "customer")?
            .ok_or_else(|| ApiError::invalid("/customer", "customer or conversation is required"))?
            .to_string(),
    };
    if inner.db.customer(&customer_id).is_none() {
        return Err(ApiError::not_found("customer"));
    }
    let id = client_id(&inner.db, &body)?;
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "message", custom)?;
    }
    check_attachments(&inner.db, &body)?;
    if let Some(status) = str_field(&body, "status")? {
        if !matches!(status, "sent" | "received" | "error") {
            return Err(ApiError::invalid(
                "/status",
                format!("status {status} is not sent|received|error"),
            ));
        }
    }
    let imported = body.get("importedAt").is_some_and(|v| !v.is_null());
    if !imported {
        charge_customer(inner, &customer_id)?;
    }
    let conversation_id = match conversation_id {
        Some(c) => c,
        None => {
            let mut conv = Map::new();
            conv.insert("direction".into(), json!(direction));
            if let Some(subject) = body.get("subject") {
                conv.insert("name".into(), subject.clone());
            }
            if let Some(q) = body.get("queue") {
                conv.insert("queue".into(), q.clone());
            }
            let created = create_conversation(inner, conv, Some(&customer_id), false)?;
            created["id"].as_str().unwrap_or_default().to_string()
        }
    };
    let previous = inner
        .db
        .messages_of_conversation(&conversation_id)
        .next_back()
        .map(|m| {
            m.attrs
                .get("direction")
                .and_then(Value::as_str)
                .unwrap_or("in")
                .to_string()
        });
    let direction_type = match previous {
        None => format!("initial-{direction}"),
        Some(prev) if prev == direction => format!("follow-up-{direction}"),
        Some(_) => format!("response-{direction}"),
    };
    let sent_at = str_field(&body, "sentAt")?
        .map(str::to_string)
        .unwrap_or(ts(now));
    let created_at = str_field(&body, "createdAt")?
        .map(str::to_string)
        .unwrap_or(ts(now));
    let status = str_field(&body, "status")?
        .map(str::to_string)
        .unwrap_or_else(|| {
            if direction == "in" {
                "received"
            } else {
                "sent"
            }
            .to_string()
        });
    let mut attrs = obj(json!({
        "channel": channel, "app": app, "size": body.get("size").cloned().unwrap_or(json!(0)),
        "direction": direction, "directionType": direction_type,
        "preview": body.get("preview").cloned().unwrap_or(json!("")),
        "meta": body.get("meta").cloned().unwrap_or(json!({})),
        "status": status, "assignedTeams": [], "assignedUsers": [], "auto": false,
        "sentAt": sent_at, "createdAt": created_at, "updatedAt": ts(now), "modifiedAt": ts(now),
        "redacted": false, "createdByTeams": [], "rev": 1, "reactions": [],
        "intentDetections": [],
    }));
    for key in [
        "subject",
        "externalId",
        "custom",
        "attachments",
        "error",
        "errorAt",
        "auto",
        "source",
        "importedAt",
        "lang",
        "sentiment",
        "location",
        "reference",
        "related",
    ] {
        if let Some(v) = body.get(key) {
            attrs.insert(key.into(), v.clone());
        }
    }
    let msg = Message {
        id: id.clone(),
        customer_id: customer_id.clone(),
        conversation_id: conversation_id.clone(),
        attrs,
    };
    apply_message_to_conversation(inner, &msg, now);
    inner.db.insert_message(msg);
    let rendered = render_message_by_id(inner, &id);
    raise(
        inner,
        "kustomer.message.create",
        rendered.clone(),
        None,
        false,
    );
    Ok(rendered)
}

fn check_attachments(db: &Db, body: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(list) = body.get("attachments") else {
        return Ok(());
    };
    let Value::Array(items) = list else {
        return Err(ApiError::invalid(
            "/attachments",
            "attachments must be a list",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let id = item
            .as_str()
            .or_else(|| item.get("_id").and_then(Value::as_str));
        if !id.is_some_and(|id| db.attachments.contains(id)) {
            return Err(ApiError::invalid(
                &format!("/attachments/{i}"),
                "unknown attachment",
            ));
        }
    }
    Ok(())
}

/// Updates the conversation's derived fields for a new message: channels,
/// counts, preview, first/last message, and reopening on inbound.
fn apply_message_to_conversation(inner: &mut Inner, m: &Message, now: DateTime<Utc>) {
    let Some(conv) = inner.db.conversation_mut(&m.conversation_id) else {
        return;
    };
    let before = conv.attrs.clone();
    let a = &mut conv.attrs;
    let get = |k: &str| m.attrs.get(k).cloned().unwrap_or(Value::Null);
    let channel = get("channel");
    let inbound = get("direction") == "in";
    let meta = match get("meta") {
        Value::Object(o) if o.is_empty() => Value::Null,
        other => other,
    };
    if let Some(Value::Array(chs)) = a.get_mut("channels") {
        if !chs.contains(&channel) {
            chs.push(channel.clone());
            history(a, "channelAt", now);
        }
    }
    let count = |a: &Map<String, Value>, k: &str| a.get(k).and_then(Value::as_i64).unwrap_or(0);
    a.insert("messageCount".into(), json!(count(a, "messageCount") + 1));
    let counter = if inbound {
        "inboundMessageCount"
    } else {
        "outboundMessageCount"
    };
    a.insert(counter.into(), json!(count(a, counter) + 1));
    if let Some(p) = m
        .attrs
        .get("preview")
        .filter(|p| p.as_str().is_some_and(|s| !s.is_empty()))
    {
        a.insert("preview".into(), p.clone());
    }
    a.insert("lastMessageAt".into(), get("sentAt"));
    a.insert("lastMessageDirection".into(), get("direction"));
    a.insert("lastActivityAt".into(), json!(ts(now)));
    a.insert("billingStatus".into(), json!("billable"));
    let short = json!({"id": m.id, "sentAt": get("sentAt"), "createdAt": get("createdAt")});
    if inbound {
        if a.get("firstMessageIn").and_then(|f| f.get("id")).is_none() {
            a.insert(
                "firstMessageIn".into(),
                json!({"id": m.id, "sentAt": get("sentAt"), "createdAt": get("createdAt"),
                       "directionType": get("directionType"), "channel": channel, "meta": meta}),
            );
        }
        a.insert(
            "lastMessageIn".into(),
            json!({"id": m.id, "sentAt": get("sentAt"), "createdAt": get("createdAt"), "meta": meta}),
        );
        if a.get("lastMessageUnrespondedTo")
            .and_then(|f| f.get("id"))
            .is_none()
        {
            a.insert("lastMessageUnrespondedTo".into(), short.clone());
            a.insert("lastMessageUnrespondedToSinceLastDone".into(), short);
        }
        let status = a.get("status").and_then(Value::as_str).unwrap_or("open");
        if status == "done" || status == "snoozed" {
            status_change(a, "open", now);
        }
    } else {
        if a.get("firstMessageOut").and_then(|f| f.get("id")).is_none() {
            a.insert(
                "firstMessageOut".into(),
                json!({"createdByTeams": [], "id": m.id, "sentAt": get("sentAt"),
                       "createdAt": get("createdAt"), "channel": channel,
                       "directionType": get("directionType"), "createdBy": inner.settings.machine_user_id}),
            );
        }
        a.insert("lastMessageOut".into(), short);
        a.insert("lastMessageUnrespondedTo".into(), json!({}));
        a.insert("lastMessageUnrespondedToSinceLastDone".into(), json!({}));
    }
    bump(a, now);
    let changes = diff(&before, a);
    let id = m.conversation_id.clone();
    let rendered = render_conversation_by_id(inner, &id);
    raise(
        inner,
        "kustomer.conversation.update",
        rendered,
        Some(changes),
        false,
    );
}

/// Fields a message update may change.
const MESSAGE_UPDATE_FIELDS: &[&str] = &[
    "preview",
    "subject",
    "meta",
    "status",
    "error",
    "errorAt",
    "externalId",
    "sentiment",
    "lang",
];

pub fn update_message(
    inner: &mut Inner,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let Some(before) = inner.db.messages.get(id).map(|m| m.attrs.clone()) else {
        return Err(ApiError::not_found("message"));
    };
    if let Some(status) = str_field(&body, "status")? {
        if !matches!(status, "sent" | "received" | "error") {
            return Err(ApiError::invalid(
                "/status",
                format!("status {status} is not sent|received|error"),
            ));
        }
    }
    let mut attrs = before.clone();
    for key in MESSAGE_UPDATE_FIELDS {
        if let Some(v) = body.get(*key) {
            attrs.insert((*key).to_string(), v.clone());
        }
    }
    let custom_changed = body.contains_key("custom");
    if let Some(custom) = body.get("custom") {
        validate_custom(&inner.db, "message", custom)?;
        merge_custom(&mut attrs, custom);
    }
    bump(&mut attrs, now);
    let changes = diff(&before, &attrs);
    inner.db.set_message_attrs(id, attrs);
    let rendered = render_message_by_id(inner, id);
    raise(
        inner,
        "kustomer.message.update",
        rendered.clone(),
        Some(changes),
        custom_changed,
    );
    Ok(rendered)
}

pub fn render_message_by_id(inner: &Inner, id: &str) -> Value {
    match inner.db.messages.get(id) {
        Some(m) => render_message(&inner.settings, m),
        None => Value::Null,
    }
}

pub fn render_message(s: &Settings, m: &Message) -> Value {
    let mut rels = Map::new();
    rels.insert("org".into(), org_rel(s));
    rels.insert("createdBy".into(), user_rel(&s.machine_user_id));
    rels.insert("modifiedBy".into(), user_rel(&s.machine_user_id));
    // Kustomer's quirk: messages point at their customer with type "customers".
    rels.insert(
        "customer".into(),
        rel(
            "customers",
            &m.customer_id,
            &format!("/v1/customers/{}", m.customer_id),
        ),
    );
    rels.insert(
        "conversation".into(),
        rel(
            "conversation",
            &m.conversation_id,
            &format!("/v1/conversations/{}", m.conversation_id),
        ),
    );
    resource(
        "message",
        &m.id,
        Value::Object(m.attrs.clone()),
        rels,
        &format!("/v1/messages/{}", m.id),
    )
}

pub fn find_message<'a>(db: &'a Db, key: &str) -> Option<&'a Message> {
    let ext = key
        .strip_prefix("externalId=")
        .or_else(|| key.strip_prefix("externalid="));
    match ext {
        Some(x) => db.message_by_external(x),
        None => db.messages.get(key),
    }
}

// -------------------------------------------------------------------- notes

/// Creates a note; the 201 body is sparse (`body, createdAt, updatedAt`), as
/// the real service answers.
pub fn create_note(
    inner: &mut Inner,
    conversation_id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let Some(customer_id) = inner
        .db
        .conversation(conversation_id)
        .map(|c| c.customer_id.clone())
    else {
        return Err(ApiError::not_found("conversation"));
    };
    let text = str_field(&body, "body")?
        .ok_or_else(|| ApiError::invalid("/body", "body is required"))?
        .to_string();
    let id = client_id(&inner.db, &body)?;
    check_attachments(&inner.db, &body)?;
    let mut attrs = obj(json!({
        "body": text,
        "createdAt": str_field(&body, "createdAt")?.map(str::to_string).unwrap_or(ts(now)),
        "updatedAt": ts(now), "modifiedAt": ts(now), "rev": 1,
        "userMentions": [], "attachments": [],
    }));
    for key in [
        "externalId",
        "userMentions",
        "attachments",
        "importedAt",
        "lang",
    ] {
        if let Some(v) = body.get(key) {
            attrs.insert(key.into(), v.clone());
        }
    }
    let note = Note {
        id: id.clone(),
        customer_id,
        conversation_id: conversation_id.to_string(),
        attrs,
    };
    let sparse = {
        let mut full = render_note(&inner.settings, &note);
        let a = &note.attrs;
        full["attributes"] = json!({
            "body": a.get("body"), "createdAt": a.get("createdAt"), "updatedAt": a.get("updatedAt"),
        });
        full
    };
    inner.db.insert_note(note);
    if let Some(conv) = inner.db.conversation_mut(conversation_id) {
        let before = conv.attrs.clone();
        let n = conv
            .attrs
            .get("noteCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        conv.attrs.insert("noteCount".into(), json!(n + 1));
        bump(&mut conv.attrs, now);
        let changes = diff(&before, &conv.attrs);
        let rendered = render_conversation_by_id(inner, conversation_id);
        raise(
            inner,
            "kustomer.conversation.update",
            rendered,
            Some(changes),
            false,
        );
    }
    Ok(sparse)
}

pub fn render_note(s: &Settings, n: &Note) -> Value {
    let mut rels = Map::new();
    rels.insert("org".into(), org_rel(s));
    rels.insert(
        "customer".into(),
        rel(
            "customer",
            &n.customer_id,
            &format!("/v1/customers/{}", n.customer_id),
        ),
    );
    rels.insert(
        "conversation".into(),
        rel(
            "conversation",
            &n.conversation_id,
            &format!("/v1/conversations/{}", n.conversation_id),
        ),
    );
    resource(
        "note",
        &n.id,
        Value::Object(n.attrs.clone()),
        rels,
        &format!("/v1/notes/{}", n.id),
    )
}

pub fn find_note<'a>(db: &'a Db, key: &str) -> Option<&'a Note> {
    match key.strip_prefix("externalId=") {
        Some(x) => db.note_by_external(x),
        None => db.notes.get(key),
    }
}

// -------------------------------------------------------------- attachments

pub fn create_attachment(
    inner: &mut Inner,
    base_url: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let name = str_field(&body, "name")?
        .ok_or_else(|| ApiError::invalid("/name", "name is required"))?
        .to_string();
    let content_type = str_field(&body, "contentType")?
        .ok_or_else(|| ApiError::invalid("/contentType", "contentType is required"))?
        .to_string();
    let length = body
        .get("contentLength")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::invalid("/contentLength", "contentLength must be a number"))?;
    let id = new_id();
    let date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let policy = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        json!({"expiration": ts(now + chrono::Duration::hours(1)),
               "conditions": [["content-length-range", 0, length]]})
        .to_string(),
    );
    let fields = obj(json!({
        "key": format!("attachments/{}/{id}/{name}", inner.settings.org_id),
        "acl": "private",
        "Content-Type": content_type,
        "X-Amz-Meta-Attachment-Id": id,
        "bucket": "kustomer-emulator-attachments",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": format!("EMULATOR/{}/us-east-1/s3/aws4_request", &date[..8]),
        "X-Amz-Date": date,
        "Policy": policy,
        "X-Amz-Signature": hex::encode(rand::random::<[u8; 32]>()),
    }));
    let attrs = obj(json!({
        "name": name, "contentType": content_type, "contentLength": length,
        "uploaded": false, "redacted": false, "createdAt": ts(now), "updatedAt": ts(now),
    }));
    let att = Attachment {
        id: id.clone(),
        attrs,
        fields,
        content: None,
    };
    let mut rendered = render_attachment(&inner.settings, &att);
    rendered["meta"] = json!({
        "upload": { "url": format!("{base_url}/__upload/attachments"), "fields": att.fields },
    });
    inner.db.attachments.push(att);
    Ok(rendered)
}

pub fn render_attachment(s: &Settings, a: &Attachment) -> Value {
    let mut rels = Map::new();
    rels.insert("org".into(), org_rel(s));
    resource(
        "attachment",
        &a.id,
        Value::Object(a.attrs.clone()),
        rels,
        &format!("/v1/attachments/{}", a.id),
    )
}

/// Stores an uploaded file after checking the form carried every issued field
/// unchanged and the file came last.
pub fn complete_upload(inner: &mut Inner, parts: Vec<(String, Vec<u8>)>) -> Result<(), String> {
    let now = inner.now();
    let Some(((last_name, file), fields)) = parts.split_last() else {
        return Err("empty form".into());
    };
    if last_name != "file" {
        return Err("the file must be the last form field".into());
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
    };
    let id = field("X-Amz-Meta-Attachment-Id").ok_or("missing X-Amz-Meta-Attachment-Id")?;
    let att = inner
        .db
        .attachments
        .get_mut(&id)
        .ok_or("unknown attachment")?;
    for (name, expected) in &att.fields {
        if field(name).as_deref() != expected.as_str() {
            return Err(format!("field {name} missing or altered"));
        }
    }
    let declared = att
        .attrs
        .get("contentLength")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if file.len() as u64 > declared {
        return Err("EntityTooLarge: file exceeds the declared contentLength".into());
    }
    att.content = Some(file.clone());
    att.attrs.insert("uploaded".into(), json!(true));
    att.attrs.insert("updatedAt".into(), json!(ts(now)));
    Ok(())
}

// ---------------------------------------------------------------- metadata

pub const METADATA_RESOURCES: &[&str] = &["customer", "conversation", "message", "company", "user"];

pub fn render_metadata(inner: &Inner, resource_name: &str) -> Value {
    let props = inner
        .db
        .metadata
        .get(resource_name)
        .cloned()
        .unwrap_or_default();
    resource(
        "metadata",
        resource_name,
        json!({ "properties": props, "standardProperties": {}, "relationships": {}, "validations": [] }),
        Map::new(),
        &format!("/v1/metadata/{resource_name}"),
    )
}

fn title_case(name: &str, sfx: &str) -> String {
    let stem = &name[..name.len() - sfx.len()];
    let mut out = String::new();
    for (i, ch) in stem.chars().enumerate() {
        if i == 0 {
            out.extend(ch.to_uppercase());
        } else if ch.is_uppercase() {
            out.push(' ');
            out.push(ch);
        } else {
            out.push(ch);
        }
    }
    out
}

/// Merges properties into a resource's metadata; properties not named in the
/// body are kept.
pub fn put_metadata(
    inner: &mut Inner,
    resource_name: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let props = match body.get("properties") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(ApiError::bad_request("properties must be an object")),
    };
    let machine = inner.settings.machine_user_id.clone();
    let mut merged = inner
        .db
        .metadata
        .get(resource_name)
        .cloned()
        .unwrap_or_default();
    for (name, def) in props {
        let Some(sfx) = suffix(&name) else {
            return Err(ApiError::bad_request(format!(
                "custom attribute {name} has no type suffix (Str, Txt, Num, At, Bool, Url, Id)"
            )));
        };
        let Value::Object(def) = def else {
            return Err(ApiError::bad_request(format!(
                "property {name} must be an object"
            )));
        };
        if sfx == "Id" && def.get("target").is_none() {
            return Err(ApiError::bad_request(format!(
                "property {name} needs a target"
            )));
        }
        let kind = match sfx {
            "Num" => "number",
            "Bool" => "boolean",
            "At" => "date",
            "Url" => "url",
            "Txt" => "text",
            "Id" => "id",
            "Tree" => "tree",
            _ => "string",
        };
        let mut entry = merged
            .get(&name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        entry.insert("type".into(), json!(kind));
        entry
            .entry("displayName")
            .or_insert(json!(title_case(&name, sfx)));
        for (k, v) in def {
            entry.insert(k, v);
        }
        entry.insert("modifiedBy".into(), json!(machine));
        entry.insert("modifiedAt".into(), json!(ts(now)));
        entry.insert("updatedAt".into(), json!(ts(now)));
        merged.insert(name, Value::Object(entry));
    }
    inner.db.metadata.insert(resource_name.to_string(), merged);
    Ok(render_metadata(inner, resource_name))
}

// ----------------------------------------------------------------- routing

pub fn render_user(s: &Settings, u: &User) -> Value {
    let mut rels = Map::new();
    rels.insert("org".into(), org_rel(s));
    resource(
        "user",
        &u.id,
        Value::Object(u.attrs.clone()),
        rels,
        &format!("/v1/users/{}", u.id),
    )
}

pub fn new_user(now: DateTime<Utc>, email: &str, name: &str, user_type: &str) -> User {
    User {
        id: new_id(),
        attrs: obj(json!({
            "displayName": name, "name": name, "userType": user_type, "email": email,
            "mobile": null, "roles": ["org.user", "org.admin"], "roleGroups": [],
            "avatarUrl": null, "emailSignature": null,
            "password": { "allowNew": true, "forceNew": false, "updatedAt": ts(now) },
            "emailVerifiedAt": ts(now), "createdAt": ts(now), "updatedAt": ts(now),
        })),
    }
}

pub fn new_status(
    now: DateTime<Utc>,
    name: &str,
    status_type: &str,
    system: bool,
) -> RoutingStatus {
    RoutingStatus {
        id: new_id(),
        attrs: obj(json!({
            "name": name, "statusType": status_type, "selectable": !system || status_type != "busy",
            "system": system, "enabled": true, "routable": status_type == "available",
            "description": format!("{name} ({status_type})"),
            "createdAt": ts(now), "updatedAt": ts(now),
        })),
    }
}

pub fn render_status(s: &Settings, st: &RoutingStatus) -> Value {
    let mut rels = Map::new();
    rels.insert("org".into(), org_rel(s));
    resource(
        "routing_status",
        &st.id,
        Value::Object(st.attrs.clone()),
        rels,
        &format!("/v1/routing/statuses/{}", st.id),
    )
}

pub fn new_work_session(now: DateTime<Utc>, user_id: &str, status: &RoutingStatus) -> WorkSession {
    let status_type = status
        .attrs
        .get("statusType")
        .cloned()
        .unwrap_or(json!("available"));
    WorkSession {
        id: new_id(),
        user_id: user_id.to_string(),
        status_id: status.id.clone(),
        attrs: obj(json!({
            "routable": status.attrs.get("routable").cloned().unwrap_or(json!(false)),
            "statusType": status_type, "active": true, "workItemCount": 0,
            "pausedWorkItemCount": 0, "signedInAt": ts(now), "signedOutAt": null,
            "capacity": [{ "remaining": 1, "limit": 1, "priority": 1 }],
            "capacityRemaining": 1, "totalCapacity": 1, "handledItemCount": 0,
            "handledConversationCount": 0, "totalAvailable": 0, "totalUnavailable": 0,
            "totalTimeByStatus": { status.id.clone(): { "statusAt": ts(now), "time": 0, "businessTime": 0 } },
            "capacityStatus": "under", "createdAt": ts(now), "updatedAt": ts(now), "rev": 1,
        })),
    }
}

pub fn render_work_session(s: &Settings, w: &WorkSession) -> Value {
    let mut rels = Map::new();
    rels.insert("user".into(), user_rel(&w.user_id));
    rels.insert(
        "status".into(),
        rel(
            "routing_status",
            &w.status_id,
            &format!("/v1/routing/statuses/{}", w.status_id),
        ),
    );
    rels.insert("modifiedBy".into(), user_rel(&s.machine_user_id));
    rels.insert("org".into(), org_rel(s));
    // Quirk: work-session self links are singular though the route is plural.
    resource(
        "work_session",
        &w.id,
        Value::Object(w.attrs.clone()),
        rels,
        &format!("/v1/routing/work-session/{}", w.id),
    )
}

/// Changes an agent's status through their work session; `offline` ends it.
pub fn update_work_session(
    inner: &mut Inner,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    let status_id = match body.get("status") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid("/status/id", "status id is required"))?,
        _ => str_field(&body, "statusId")?
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid("/status", "status is required"))?,
    };
    let Some(status) = inner.db.statuses.get(&status_id).cloned() else {
        return Err(ApiError::invalid("/status", "unknown routing status"));
    };
    let Some(ws) = inner.db.work_sessions.get_mut(id) else {
        return Err(ApiError::not_found("work session"));
    };
    if ws.attrs.get("active") == Some(&json!(false)) {
        return Err(ApiError::conflict(
            "/status",
            "the work session has ended (offline)",
        ));
    }
    let status_type = status
        .attrs
        .get("statusType")
        .cloned()
        .unwrap_or(Value::Null);
    ws.status_id = status.id.clone();
    ws.attrs.insert("statusType".into(), status_type.clone());
    ws.attrs.insert(
        "routable".into(),
        status
            .attrs
            .get("routable")
            .cloned()
            .unwrap_or(json!(false)),
    );
    if let Some(Value::Object(t)) = ws.attrs.get_mut("totalTimeByStatus") {
        t.entry(status.id.clone())
            .or_insert(json!({ "statusAt": ts(now), "time": 0, "businessTime": 0 }))["statusAt"] =
            json!(ts(now));
    }
    if status_type == "offline" {
        ws.attrs.insert("active".into(), json!(false));
        ws.attrs.insert("signedOutAt".into(), json!(ts(now)));
    }
    let rev = ws.attrs.get("rev").and_then(Value::as_i64).unwrap_or(0);
    ws.attrs.insert("rev".into(), json!(rev + 1));
    ws.attrs.insert("updatedAt".into(), json!(ts(now)));
    let ws = ws.clone();
    Ok(render_work_session(&inner.settings, &ws))
}

/// The built-in statuses, users and sessions every fresh emulator has.
pub fn seed(inner: &mut Inner) {
    let now = inner.now();
    let mut machine = new_user(
        now,
        "switchboard-api@machine.kustomer.invalid",
        "Switchboard API",
        "machine",
    );
    machine.id = inner.settings.machine_user_id.clone();
    inner.db.users.push(machine);
    let statuses = [
        new_status(now, "Available", "available", true),
        new_status(now, "Busy", "busy", true),
        new_status(now, "Lunch", "unavailable", false),
        new_status(now, "Training", "unavailable", false),
        new_status(now, "Offline", "offline", true),
    ];
    for (email, name) in [
        ("ada@example.com", "Ada Agent"),
        ("grace@example.com", "Grace Agent"),
    ] {
        let user = new_user(now, email, name, "user");
        inner
            .db
            .work_sessions
            .push(new_work_session(now, &user.id, &statuses[0]));
        inner.db.users.push(user);
    }
    for status in statuses {
        inner.db.statuses.push(status);
    }
}
