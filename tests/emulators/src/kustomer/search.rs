//! `POST /v1/customers/search` (and `/v1/customers/archive/search`): the
//! documented query shape (reference §8) evaluated over the stored objects.
//!
//! A query names a `queryContext` (the kind of object returned) and `and`,
//! `or` and `not` lists of criteria `{"<object>_<attr>": {"<op>": value}}`.
//! A criterion on another kind of object matches when any related object
//! does: `conversation_status` in a customer search finds customers with at
//! least one such conversation. Criteria may nest `and`/`or`/`not`.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::objects as o;
use super::org;
use super::render::{page_params, page_with, ApiError, PageQuery};
use super::state::{Conversation, Customer, Inner, KObject, Message, Note};

/// The real search index only holds objects updated in the past two years.
const HORIZON_DAYS: i64 = 730;
/// Kustomer refuses pages past the 100th and more than 10,000 records.
const MAX_PAGE: usize = 100;
const MAX_RECORDS: usize = 10_000;
/// Search pages may be larger than other lists.
const MAX_PAGE_SIZE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Customer,
    Conversation,
    Message,
    Note,
    KObject,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "customer" => Kind::Customer,
            "conversation" => Kind::Conversation,
            "message" => Kind::Message,
            "note" => Kind::Note,
            "kobject" => Kind::KObject,
            _ => return None,
        })
    }

    /// Splits `customer_updated_at` into the kind and the rest.
    fn of_field(field: &str) -> Option<(Kind, &str)> {
        let (prefix, rest) = field.split_once('_')?;
        Some((Kind::parse(prefix)?, rest))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    Gte,
    Lte,
    Gt,
    Lt,
}

#[derive(Debug)]
enum Attr {
    Id,
    Plain(String),
    Custom(String),
    /// `kobject_custom_<klass>_<attr>`: a custom attribute of one klass.
    KlassCustom {
        klass: String,
        name: String,
    },
}

#[derive(Debug)]
enum Crit {
    All(Vec<Crit>),
    Any(Vec<Crit>),
    None(Vec<Crit>),
    Cond {
        kind: Kind,
        attr: Attr,
        op: Op,
        value: Value,
    },
}

/// `updated_at` → `updatedAt`; names already in camel case stay as they are.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn parse_attr(kind: Kind, rest: &str) -> Attr {
    match rest.strip_prefix("custom_") {
        // KObject custom fields name the klass first.
        Some(name) if kind == Kind::KObject => match name.split_once('_') {
            Some((klass, attr)) => Attr::KlassCustom {
                klass: klass.to_string(),
                name: attr.to_string(),
            },
            None => Attr::Custom(name.to_string()),
        },
        Some(name) => Attr::Custom(name.to_string()),
        None if rest == "id" => Attr::Id,
        None => Attr::Plain(camel(rest)),
    }
}

fn parse_list(v: &Value, pointer: &str) -> Result<Vec<Crit>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| parse_crit(c, &format!("{pointer}/{i}")))
            .collect(),
        // A single criterion object is accepted where a list is expected.
        Value::Object(_) => Ok(vec![parse_crit(v, pointer)?]),
        _ => Err(ApiError::invalid(pointer, "criteria must be a list")),
    }
}

fn parse_crit(v: &Value, pointer: &str) -> Result<Crit, ApiError> {
    let Value::Object(map) = v else {
        return Err(ApiError::invalid(pointer, "a criterion must be an object"));
    };
    let mut parts = Vec::new();
    for (key, spec) in map {
        let here = format!("{pointer}/{key}");
        match key.as_str() {
            "and" => parts.push(Crit::All(parse_list(spec, &here)?)),
            "or" => parts.push(Crit::Any(parse_list(spec, &here)?)),
            "not" => parts.push(Crit::None(parse_list(spec, &here)?)),
            field => {
                let (kind, rest) = Kind::of_field(field).ok_or_else(|| {
                    ApiError::invalid(&here, format!("unknown search field {field}"))
                })?;
                let Value::Object(ops) = spec else {
                    return Err(ApiError::invalid(
                        &here,
                        "a field criterion is {\"<operator>\": value}",
                    ));
                };
                for (op, value) in ops {
                    let op = match op.as_str() {
                        "equals" | "eq" => Op::Equals,
                        "gte" => Op::Gte,
                        "lte" => Op::Lte,
                        "gt" => Op::Gt,
                        "lt" => Op::Lt,
                        other => {
                            return Err(ApiError::invalid(
                                &format!("{here}/{other}"),
                                format!("unknown operator {other}"),
                            ))
                        }
                    };
                    parts.push(Crit::Cond {
                        kind,
                        attr: parse_attr(kind, rest),
                        op,
                        value: value.clone(),
                    });
                }
            }
        }
    }
    Ok(Crit::All(parts))
}

/// The time zone of date-only values: `GMT`/`UTC` names or a fixed
/// `±hh:mm` offset. Other zone names are read as GMT (the emulator carries
/// no zone database).
fn time_zone(v: Option<&Value>) -> FixedOffset {
    let utc = FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero offset"));
    let Some(s) = v.and_then(Value::as_str) else {
        return utc;
    };
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return utc,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    match (h.parse::<i32>(), m.parse::<i32>()) {
        (Ok(h), Ok(m)) => FixedOffset::east_opt(sign * (h * 3600 + m * 60)).unwrap_or(utc),
        _ => utc,
    }
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A date-only value as the instants its day starts and ends in `tz`.
fn day(s: &str, tz: FixedOffset) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let start = tz
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()?
        .with_timezone(&Utc);
    Some((start, start + Duration::days(1)))
}

/// Compares one stored scalar with the query value.
fn compare(stored: &Value, op: Op, query: &Value, tz: FixedOffset) -> bool {
    use std::cmp::Ordering::*;
    if let (Some(s), Some(q)) = (stored.as_str(), query.as_str()) {
        if let Some(at) = instant(s) {
            if let Some((start, end)) = day(q, tz) {
                return match op {
                    Op::Equals => at >= start && at < end,
                    Op::Gte => at >= start,
                    Op::Gt => at >= end,
                    Op::Lte => at < end,
                    Op::Lt => at < start,
                };
            }
            if let Some(q) = instant(q) {
                return matches!(
                    (op, at.cmp(&q)),
                    (Op::Equals, Equal)
                        | (Op::Gte, Greater | Equal)
                        | (Op::Lte, Less | Equal)
                        | (Op::Gt, Greater)
                        | (Op::Lt, Less)
                );
            }
        }
        let ord = s.to_lowercase().cmp(&q.to_lowercase());
        return matches!(
            (op, ord),
            (Op::Equals, Equal)
                | (Op::Gte, Greater | Equal)
                | (Op::Lte, Less | Equal)
                | (Op::Gt, Greater)
                | (Op::Lt, Less)
        );
    }
    if let (Some(s), Some(q)) = (stored.as_f64(), query.as_f64()) {
        return match op {
            Op::Equals => s == q,
            Op::Gte => s >= q,
            Op::Lte => s <= q,
            Op::Gt => s > q,
            Op::Lt => s < q,
        };
    }
    op == Op::Equals && stored == query
}

/// One stored object as search sees it.
#[derive(Clone, Copy)]
struct Obj<'a> {
    id: &'a str,
    attrs: &'a Map<String, Value>,
    /// The klass of a KObject.
    klass: Option<&'a str>,
}

/// The scalars an attribute holds: the attribute itself (each element if it
/// is a list), plus the entries of its plural list of objects
/// (`email` → `emails[].email`, `externalId` → `externalIds[].externalId`).
fn values<'a>(obj: Obj<'a>, attr: &'a Attr) -> Vec<&'a Value> {
    fn push<'a>(out: &mut Vec<&'a Value>, v: &'a Value) {
        match v {
            Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_object())),
            Value::Null => {}
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    match attr {
        Attr::Id => {}
        Attr::Custom(name) => {
            if let Some(v) = obj.attrs.get("custom").and_then(|c| c.get(name)) {
                push(&mut out, v);
            }
        }
        Attr::KlassCustom { klass, name } => {
            if obj.klass == Some(klass.as_str()) {
                if let Some(v) = obj.attrs.get("custom").and_then(|c| c.get(name)) {
                    push(&mut out, v);
                }
            }
        }
        Attr::Plain(name) => {
            if let Some(v) = obj.attrs.get(name) {
                push(&mut out, v);
            }
            if let Some(Value::Array(items)) = obj.attrs.get(&format!("{name}s")) {
                out.extend(items.iter().filter_map(|i| i.get(name)));
            }
        }
    }
    out
}

/// A search candidate: one object of the context kind.
#[derive(Clone, Copy)]
enum Cand<'a> {
    Customer(&'a Customer),
    Conversation(&'a Conversation),
    Message(&'a Message),
    Note(&'a Note),
    KObject(&'a KObject),
}

impl<'a> Cand<'a> {
    fn obj(self) -> Obj<'a> {
        match self {
            Cand::Customer(c) => obj_of(&c.id, &c.attrs),
            Cand::Conversation(c) => obj_of(&c.id, &c.attrs),
            Cand::Message(m) => obj_of(&m.id, &m.attrs),
            Cand::Note(n) => obj_of(&n.id, &n.attrs),
            Cand::KObject(k) => Obj {
                id: &k.id,
                attrs: &k.attrs,
                klass: Some(&k.klass),
            },
        }
    }
}

fn obj_of<'a>(id: &'a str, attrs: &'a Map<String, Value>) -> Obj<'a> {
    Obj {
        id,
        attrs,
        klass: None,
    }
}

/// The objects of `kind` related to a candidate (itself for its own kind).
fn related<'a>(inner: &'a Inner, cand: Cand<'a>, kind: Kind) -> Vec<Obj<'a>> {
    let db = &inner.db;
    let customer = |id: &str| -> Vec<Obj<'a>> {
        db.customer(id)
            .map(|c| obj_of(&c.id, &c.attrs))
            .into_iter()
            .collect()
    };
    let conversation = |id: &str| -> Vec<Obj<'a>> {
        db.conversation(id)
            .map(|c| obj_of(&c.id, &c.attrs))
            .into_iter()
            .collect()
    };
    let messages_in = |id: &str| -> Vec<Obj<'a>> {
        db.messages_of_conversation(id)
            .map(|m| obj_of(&m.id, &m.attrs))
            .collect()
    };
    let notes_in = |id: &str| -> Vec<Obj<'a>> {
        db.notes_of_conversation(id)
            .map(|n| obj_of(&n.id, &n.attrs))
            .collect()
    };
    let kobjects_of = |customer: &str| -> Vec<Obj<'a>> {
        db.kobjects_of_customer(customer)
            .map(|k| Cand::KObject(k).obj())
            .collect()
    };
    match (cand, kind) {
        (Cand::KObject(_), Kind::KObject) => vec![cand.obj()],
        (Cand::KObject(k), other) => match &k.customer_id {
            None => Vec::new(),
            Some(c) => match other {
                Kind::Customer => customer(c),
                Kind::Conversation => db
                    .conversations_of(c)
                    .map(|v| obj_of(&v.id, &v.attrs))
                    .collect(),
                Kind::Message => db
                    .messages_of_customer(c)
                    .map(|m| obj_of(&m.id, &m.attrs))
                    .collect(),
                Kind::Note => db
                    .notes_of_customer(c)
                    .map(|n| obj_of(&n.id, &n.attrs))
                    .collect(),
                Kind::KObject => Vec::new(),
            },
        },
        (Cand::Customer(c), Kind::KObject) => kobjects_of(&c.id),
        (Cand::Conversation(c), Kind::KObject) => kobjects_of(&c.customer_id),
        (Cand::Message(m), Kind::KObject) => kobjects_of(&m.customer_id),
        (Cand::Note(n), Kind::KObject) => kobjects_of(&n.customer_id),
        (Cand::Customer(_), Kind::Customer)
        | (Cand::Conversation(_), Kind::Conversation)
        | (Cand::Message(_), Kind::Message)
        | (Cand::Note(_), Kind::Note) => vec![cand.obj()],
        (Cand::Customer(c), Kind::Conversation) => db
            .conversations_of(&c.id)
            .map(|v| obj_of(&v.id, &v.attrs))
            .collect(),
        (Cand::Customer(c), Kind::Message) => db
            .messages_of_customer(&c.id)
            .map(|m| obj_of(&m.id, &m.attrs))
            .collect(),
        (Cand::Customer(c), Kind::Note) => db
            .notes_of_customer(&c.id)
            .map(|n| obj_of(&n.id, &n.attrs))
            .collect(),
        (Cand::Conversation(c), Kind::Customer) => customer(&c.customer_id),
        (Cand::Conversation(c), Kind::Message) => messages_in(&c.id),
        (Cand::Conversation(c), Kind::Note) => notes_in(&c.id),
        (Cand::Message(m), Kind::Customer) => customer(&m.customer_id),
        (Cand::Message(m), Kind::Conversation) => conversation(&m.conversation_id),
        (Cand::Message(m), Kind::Note) => notes_in(&m.conversation_id),
        (Cand::Note(n), Kind::Customer) => customer(&n.customer_id),
        (Cand::Note(n), Kind::Conversation) => conversation(&n.conversation_id),
        (Cand::Note(n), Kind::Message) => messages_in(&n.conversation_id),
    }
}

fn holds(inner: &Inner, cand: Cand<'_>, crit: &Crit, tz: FixedOffset) -> bool {
    match crit {
        Crit::All(list) => list.iter().all(|c| holds(inner, cand, c, tz)),
        Crit::Any(list) => list.is_empty() || list.iter().any(|c| holds(inner, cand, c, tz)),
        Crit::None(list) => !list.iter().any(|c| holds(inner, cand, c, tz)),
        Crit::Cond {
            kind,
            attr,
            op,
            value,
        } => related(inner, cand, *kind)
            .into_iter()
            .any(|obj| match attr {
                Attr::Id => compare(&json!(obj.id), *op, value, tz),
                _ => values(obj, attr)
                    .into_iter()
                    .any(|v| compare(v, *op, value, tz)),
            }),
    }
}

/// The key one sort field gives a candidate: instants and numbers order
/// as such, strings case-insensitively, missing values last.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Instant(DateTime<Utc>),
    Number(f64),
    Text(String),
    Missing,
}

fn sort_key(obj: Obj<'_>, attr: &Attr) -> SortKey {
    if let Attr::Id = attr {
        return SortKey::Text(obj.id.to_string());
    }
    match values(obj, attr).first() {
        Some(Value::String(s)) => match instant(s) {
            Some(at) => SortKey::Instant(at),
            None => SortKey::Text(s.to_lowercase()),
        },
        Some(Value::Number(n)) => SortKey::Number(n.as_f64().unwrap_or(0.0)),
        Some(Value::Bool(b)) => SortKey::Number(f64::from(u8::from(*b))),
        _ => SortKey::Missing,
    }
}

/// `[{"customer_updated_at":"asc"}]` (or one object). Kustomer sorts by the
/// first field only when given several, so the rest are ignored.
fn parse_sort(v: Option<&Value>, ctx: Kind) -> Result<Option<(Attr, bool)>, ApiError> {
    let first = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => match items.first() {
            None => return Ok(None),
            Some(first) => first,
        },
        Some(other) => other,
    };
    let Some((field, dir)) = first.as_object().and_then(|m| m.iter().next()) else {
        return Err(ApiError::invalid(
            "/sort",
            "sort is [{\"<field>\": \"asc\"|\"desc\"}]",
        ));
    };
    let desc = match dir.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => return Err(ApiError::invalid("/sort", "sort direction is asc|desc")),
    };
    match Kind::of_field(field) {
        Some((kind, rest)) if kind == ctx => Ok(Some((parse_attr(kind, rest), desc))),
        _ => Err(ApiError::invalid(
            "/sort",
            format!("cannot sort a search of this queryContext by {field}"),
        )),
    }
}

/// Runs a search and renders one page of results in the list envelope.
pub fn run(
    inner: &Inner,
    body: &Map<String, Value>,
    q: &PageQuery,
    archive: bool,
) -> Result<Value, ApiError> {
    let ctx = match body.get("queryContext") {
        None | Some(Value::Null) => Kind::Customer,
        Some(Value::String(s)) => Kind::parse(s).ok_or_else(|| {
            ApiError::invalid("/queryContext", format!("unknown queryContext {s}"))
        })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "/queryContext",
                "queryContext must be a string",
            ))
        }
    };
    let (page, size) = page_params(q, MAX_PAGE_SIZE)?;
    if page > MAX_PAGE || (page - 1).saturating_mul(size) >= MAX_RECORDS {
        return Err(ApiError::invalid(
            "page",
            "search results are limited to 100 pages and 10,000 records; narrow the query",
        ));
    }
    let mut crits = Vec::new();
    if let Some(v) = body.get("and") {
        crits.push(Crit::All(parse_list(v, "/and")?));
    }
    if let Some(v) = body.get("or") {
        crits.push(Crit::Any(parse_list(v, "/or")?));
    }
    if let Some(v) = body.get("not") {
        crits.push(Crit::None(parse_list(v, "/not")?));
    }
    let query = Crit::All(crits);
    let tz = time_zone(body.get("timeZone"));
    let sort = parse_sort(body.get("sort"), ctx)?;
    let include_deleted = body
        .get("includeDeleted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let horizon = inner.now() - Duration::days(HORIZON_DAYS);

    let db = &inner.db;
    let candidates: Vec<Cand<'_>> = match ctx {
        Kind::Customer => db.customers.iter().map(Cand::Customer).collect(),
        Kind::Conversation => db.conversations.iter().map(Cand::Conversation).collect(),
        Kind::Message => db.messages.iter().map(Cand::Message).collect(),
        Kind::Note => db.notes.iter().map(Cand::Note).collect(),
        Kind::KObject => db.kobjects.iter().map(Cand::KObject).collect(),
    };
    let mut hits: Vec<Cand<'_>> = candidates
        .into_iter()
        .filter(|c| {
            let attrs = c.obj().attrs;
            let deleted = attrs.get("deleted").and_then(Value::as_bool) == Some(true);
            let updated = attrs
                .get("updatedAt")
                .and_then(Value::as_str)
                .and_then(instant);
            let recent = updated.is_none_or(|u| u >= horizon);
            (include_deleted || !deleted) && recent != archive
        })
        .filter(|c| holds(inner, *c, &query, tz))
        .collect();
    if let Some((attr, desc)) = &sort {
        // Ties keep id order so paging through equal timestamps is stable.
        let mut keyed: Vec<(SortKey, Cand<'_>)> = hits
            .into_iter()
            .map(|c| (sort_key(c.obj(), attr), c))
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            let by_key = match (ka, kb) {
                (SortKey::Missing, SortKey::Missing) => std::cmp::Ordering::Equal,
                (SortKey::Missing, _) => std::cmp::Ordering::Greater,
                (_, SortKey::Missing) => std::cmp::Ordering::Less,
                _ => {
                    let ord = ka.partial_cmp(kb).unwrap_or(std::cmp::Ordering::Equal);
                    if *desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                }
            };
            by_key.then_with(|| a.obj().id.cmp(b.obj().id))
        });
        hits = keyed.into_iter().map(|(_, c)| c).collect();
    }
    let path = if archive {
        "/v1/customers/archive/search?"
    } else {
        "/v1/customers/search?"
    };
    let total = hits.len();
    let mut out = page_with(hits, q, path, MAX_PAGE_SIZE, |c| match c {
        Cand::Customer(c) => o::render_customer(db, &inner.settings, c),
        Cand::Conversation(c) => o::render_conversation(&inner.settings, c),
        Cand::Message(m) => o::render_message(&inner.settings, m),
        Cand::Note(n) => o::render_note(&inner.settings, n),
        Cand::KObject(k) => org::render_kobject(&inner.settings, k),
    })?;
    let last = total.div_ceil(size).clamp(1, MAX_PAGE);
    out["links"]["last"] = json!(format!("{path}page={last}&pageSize={size}"));
    // The real search stops at 100 pages; so does `next`.
    if page >= MAX_PAGE {
        out["links"]["next"] = Value::Null;
    }
    out["meta"]["aggregations"] = json!({});
    Ok(out)
}
