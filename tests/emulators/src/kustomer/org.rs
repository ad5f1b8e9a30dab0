//! Read-only org configuration: teams, tags and shortcuts, seeded with a
//! fresh emulator, plus the calling key's user and token.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::render::{rel, resource, ApiError};
use super::state::{new_id, ts, Inner, KObject, Record, Settings};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn user_rel(id: &str) -> Value {
    rel("user", id, &format!("/v1/users/{id}"))
}

fn rels(s: &Settings) -> Map<String, Value> {
    let mut rels = Map::new();
    rels.insert("createdBy".into(), user_rel(&s.machine_user_id));
    rels.insert("modifiedBy".into(), user_rel(&s.machine_user_id));
    rels.insert(
        "org".into(),
        rel("org", &s.org_id, &format!("/v1/orgs/{}", s.org_id)),
    );
    rels
}

fn stamps(now: DateTime<Utc>) -> Map<String, Value> {
    obj(json!({ "createdAt": ts(now), "updatedAt": ts(now), "modifiedAt": ts(now) }))
}

fn team(now: DateTime<Utc>, name: &str, icon: &str, members: Vec<String>) -> Record {
    let mut attrs = obj(json!({
        "name": name.to_lowercase().replace(' ', "-"), "displayName": name, "icon": icon,
        "members": members, "externalId": null,
    }));
    attrs.extend(stamps(now));
    Record {
        id: new_id(),
        attrs,
    }
}

fn tag(now: DateTime<Utc>, name: &str, color: &str) -> Record {
    let mut attrs = obj(json!({ "name": name, "color": color, "deleted": false }));
    attrs.extend(stamps(now));
    Record {
        id: new_id(),
        attrs,
    }
}

fn shortcut(now: DateTime<Utc>, name: &str, text: &str, tags: &[&str]) -> Record {
    let mut attrs = obj(json!({
        "name": name,
        "draft": { "text": text },
        "payload": { "text": { "blocks": [{
            "key": "b0", "text": text, "type": "unstyled", "depth": 0,
            "inlineStyleRanges": [], "entityRanges": [], "data": {},
        }], "entityMap": {} } },
        "conversation": { "tags": { "operator": "add", "value": tags } },
        "isPrivate": false, "deleted": false,
    }));
    attrs.extend(stamps(now));
    Record {
        id: new_id(),
        attrs,
    }
}

/// Teams (the seeded agents as members), tags and shortcuts of a fresh org.
pub fn seed(inner: &mut Inner) {
    let now = inner.now();
    let agents: Vec<String> = inner
        .db
        .users
        .iter()
        .filter(|u| u.attrs.get("userType").and_then(Value::as_str) == Some("user"))
        .map(|u| u.id.clone())
        .collect();
    let first: Vec<String> = agents.iter().take(1).cloned().collect();
    inner
        .db
        .teams
        .push(team(now, "Support Tier 1", "headset", agents));
    inner.db.teams.push(team(now, "Voice", "phone", first));
    for (name, color) in [("vip", "gold"), ("billing", "teal"), ("callback", "red")] {
        inner.db.tags.push(tag(now, name, color));
    }
    let greeting = shortcut(
        now,
        "Greeting",
        "Hi {{customer.firstName}}, thanks for calling.",
        &[],
    );
    let billing = shortcut(
        now,
        "Billing follow-up",
        "We have passed your question to billing.",
        &["billing"],
    );
    inner.db.shortcuts.push(greeting);
    inner.db.shortcuts.push(billing);
}

pub fn render_team(s: &Settings, r: &Record) -> Value {
    resource(
        "team",
        &r.id,
        Value::Object(r.attrs.clone()),
        rels(s),
        &format!("/v1/teams/{}", r.id),
    )
}

pub fn render_tag(s: &Settings, r: &Record) -> Value {
    resource(
        "tag",
        &r.id,
        Value::Object(r.attrs.clone()),
        rels(s),
        &format!("/v1/tags/{}", r.id),
    )
}

pub fn render_shortcut(s: &Settings, r: &Record) -> Value {
    resource(
        "shortcut",
        &r.id,
        Value::Object(r.attrs.clone()),
        rels(s),
        &format!("/v1/shortcuts/{}", r.id),
    )
}

/// `GET /v1/auth/tokens/current`: the calling API key.
pub fn render_token(inner: &Inner) -> Value {
    let s = &inner.settings;
    let now = inner.now();
    let key = &s.api_key;
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut r = Map::new();
    r.insert("user".into(), user_rel(&s.machine_user_id));
    r.insert(
        "org".into(),
        rel("org", &s.org_id, &format!("/v1/orgs/{}", s.org_id)),
    );
    resource(
        "token",
        &s.machine_user_id,
        json!({
            "lastTokenChars": tail, "name": "switchboard", "ipAddress": "127.0.0.1",
            "userAgent": null, "roles": ["org.admin", "org.user"],
            "createdAt": ts(now), "updatedAt": ts(now), "lastAccessedAt": ts(now),
        }),
        r,
        "/v1/auth/tokens/current",
    )
}

// ----------------------------------------------------------------- KObjects

/// Creates a KObject of `klass` (201). A `customer` ties it to one, and then
/// counts against that customer's create limit like conversations and
/// messages do.
pub fn create_kobject(
    inner: &mut Inner,
    klass: &str,
    customer_from_path: Option<&str>,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = inner.now();
    if !valid_klass(klass) {
        return Err(ApiError::not_found("klass"));
    }
    let customer_id = match customer_from_path {
        Some(c) => Some(c.to_string()),
        None => match body.get("customer") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => return Err(ApiError::invalid("/customer", "customer must be an id")),
        },
    };
    if let Some(c) = &customer_id {
        if inner.db.customer(c).is_none() {
            return Err(ApiError::not_found("customer"));
        }
    }
    let id = match body.get("id").and_then(Value::as_str) {
        None => new_id(),
        Some(id) if !super::state::is_id(id) => {
            return Err(ApiError::invalid("/id", "id must be a 24-character hex id"))
        }
        Some(id) if inner.db.id_taken(id) => {
            return Err(ApiError::conflict(
                "/id",
                format!("an object with id {id} already exists"),
            ))
        }
        Some(id) => id.to_string(),
    };
    if let Some(custom) = body.get("custom") {
        super::objects::validate_custom(&inner.db, &format!("kobject.{klass}"), custom)?;
    }
    let imported = body.get("importedAt").is_some_and(|v| !v.is_null());
    if let (Some(c), false) = (&customer_id, imported) {
        inner.charge_customer_create(c).map_err(|retry| {
            let mut e = ApiError::rate_limited(
                "create limit of this customer reached (conversations, messages, KObjects per minute)",
            );
            e.retry_after = Some(retry);
            e
        })?;
    }
    let mut attrs = obj(json!({
        "title": null, "description": null, "icon": null, "externalId": null,
        "data": {}, "custom": null, "images": [], "rev": 1,
    }));
    attrs.extend(stamps(now));
    for key in [
        "title",
        "description",
        "icon",
        "externalId",
        "data",
        "custom",
        "images",
        "importedAt",
        "createdAt",
    ] {
        if let Some(v) = body.get(key) {
            attrs.insert(key.into(), v.clone());
        }
    }
    let k = KObject {
        id,
        klass: klass.to_string(),
        customer_id,
        attrs,
    };
    let rendered = render_kobject(&inner.settings, &k);
    inner.db.insert_kobject(k);
    Ok(rendered)
}

/// Klass names are identifiers: letters, digits, `-` and `_`.
fn valid_klass(klass: &str) -> bool {
    !klass.is_empty()
        && klass
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn render_kobject(s: &Settings, k: &KObject) -> Value {
    let mut r = rels(s);
    r.insert(
        "klass".into(),
        rel("klass", &k.klass, &format!("/v1/klasses/{}", k.klass)),
    );
    if let Some(c) = &k.customer_id {
        r.insert(
            "customer".into(),
            rel("customer", c, &format!("/v1/customers/{c}")),
        );
    }
    resource(
        "kobject",
        &k.id,
        Value::Object(k.attrs.clone()),
        r,
        &format!("/v1/klasses/{}/{}", k.klass, k.id),
    )
}
