//! Carrying a plan out against Kustomer, idempotently: every write carries an
//! id derived from (tenant, event, action index), so executing the same plan
//! again finds the earlier writes instead of duplicating them (OP2).
use super::context::Loaded;
use super::{PipelineError, Tenant};
use crate::connectors::kustomer::derive_id;
use crate::connectors::kustomer::model::{
    CustomerPatch, EmailEntry, NewConversation, NewCustomer, NewMessage, NewNote, PhoneEntry,
    UploadTarget,
};
use crate::mirror::Mirror;
use crate::runtime::types as t;
use crate::store::{ConversationMeta, SessionLink, Store, Wait};
use serde_json::{Map, Value};

/// Largest file the executor downloads for an attachment.
const MAX_FILE_BYTES: usize = 25 << 20;

pub(crate) struct Env<'a> {
    pub store: &'a Store,
    pub tenant: &'a Tenant,
    pub http: &'a reqwest::Client,
}

fn action_name(action: &t::Action) -> &'static str {
    match action {
        t::Action::CreateCustomer(_) => "create_customer",
        t::Action::UpdateCustomer(_) => "update_customer",
        t::Action::CreateConversation(_) => "create_conversation",
        t::Action::AppendTo(_) => "append_to",
        t::Action::AddMessage(_) => "add_message",
        t::Action::AddNote(_) => "add_note",
        t::Action::AttachFile(_) => "attach_file",
        t::Action::SetFields(_) => "set_fields",
        t::Action::Assign(_) => "assign",
        t::Action::SetStatus(_) => "set_status",
        t::Action::Skip(_) => "skip",
    }
}

pub(crate) async fn run(
    env: &Env<'_>,
    event: &t::SessionEvent,
    loaded: &Loaded,
    plan: &t::Plan,
) -> Result<(), PipelineError> {
    let tenant = &env.tenant.config.id;
    let client = &env.tenant.kustomer;
    // What Kustomer answers to each write is what the mirror knows next.
    let mirror = Mirror::new(env.store, env.tenant);
    let mut customer = loaded.customer_id.clone();
    let mut conversation = loaded.linked.clone();
    // Ids lead with the event's time, as Kustomer's lead with theirs.
    let event_at = chrono::DateTime::parse_from_rfc3339(&event.at)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc));
    let at_secs = event_at.map_or(0, |d| d.timestamp());
    // Whether this plan created its customer (its updates went with it).
    let mut created_here = false;
    // Assignments that went with the conversation's create.
    let mut folded_assigns = std::collections::HashSet::new();

    for (index, action) in plan.actions.iter().enumerate() {
        let id_for =
            |what: &str| derive_id(at_secs, &format!("{tenant}/{}/{index}/{what}", event.id));
        let need_customer = |c: &Option<String>| {
            c.clone().ok_or_else(|| {
                PipelineError::BadPlan(format!(
                    "action {index} ({}) needs a customer; none is known or created",
                    action_name(action)
                ))
            })
        };
        let need_conversation = |c: &Option<String>| {
            c.clone().ok_or_else(|| {
                PipelineError::BadPlan(format!(
                    "action {index} ({}) needs a conversation; the session has none and the plan creates none",
                    action_name(action)
                ))
            })
        };
        match action {
            t::Action::CreateCustomer(new) => {
                // The plan's later customer updates (CU1, mapped fields) go
                // into the create: one request instead of two.
                let folded: Map<String, Value> = plan.actions[index + 1..]
                    .iter()
                    .filter_map(|a| match a {
                        t::Action::UpdateCustomer(update) => Some(customer_fields(env, update)),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                let mut fields = custom(&new.fields).unwrap_or_default();
                fields.extend(folded.clone());
                let created = client
                    .create_customer(&NewCustomer {
                        name: new.name.clone(),
                        external_id: new.external_id.clone(),
                        emails: new
                            .email
                            .iter()
                            .map(|e| EmailEntry {
                                email: e.clone(),
                                kind: Some("other".into()),
                                verified: None,
                            })
                            .collect(),
                        phones: new
                            .phone
                            .iter()
                            .map(|p| PhoneEntry {
                                phone: p.clone(),
                                kind: Some("mobile".into()),
                                verified: None,
                            })
                            .collect(),
                        locale: None,
                        custom: (!fields.is_empty()).then_some(fields),
                    })
                    .await?;
                // Kustomer may answer with a customer that already existed
                // (same phone or external id): what it lacks is updated.
                let kept = created.attributes.custom.clone().unwrap_or_default();
                let missing: Map<String, Value> = folded
                    .into_iter()
                    .filter(|(k, v)| kept.get(k) != Some(v))
                    .collect();
                let created = mirror.wrote_customer(created)?;
                if !missing.is_empty() {
                    let updated = client
                        .update_customer(
                            &created.id,
                            &CustomerPatch {
                                custom: Some(missing),
                                ..Default::default()
                            },
                        )
                        .await?;
                    mirror.wrote_customer(updated)?;
                }
                customer = Some(created.id.clone());
                created_here = true;
            }
            t::Action::UpdateCustomer(_) if created_here => {
                // Written with the create above.
            }
            t::Action::UpdateCustomer(update) => {
                let id = need_customer(&customer)?;
                let fields = customer_fields(env, update);
                let unchanged = mirror.fresh_customer(&id)?.is_some_and(|c| {
                    c.attributes
                        .custom
                        .as_ref()
                        .is_some_and(|have| holds(have, &fields))
                });
                if !fields.is_empty() && !unchanged {
                    let updated = client
                        .update_customer(
                            &id,
                            &CustomerPatch {
                                custom: Some(fields),
                                ..Default::default()
                            },
                        )
                        .await?;
                    mirror.wrote_customer(updated)?;
                }
            }
            t::Action::CreateConversation(new) => {
                let customer_id = need_customer(&customer)?;
                let id = id_for("conversation");
                // The plan's assignment of this conversation goes with its
                // create: one request instead of two.
                let mut assign_to = new.assign_to.clone();
                for (later, next) in plan.actions.iter().enumerate().skip(index + 1) {
                    match next {
                        t::Action::CreateConversation(_) | t::Action::AppendTo(_) => break,
                        t::Action::Assign(agent)
                            if assign_to.as_ref().is_none_or(|a| a == agent) =>
                        {
                            assign_to = Some(agent.clone());
                            folded_assigns.insert(later);
                        }
                        _ => {}
                    }
                }
                let mut assigned = Vec::new();
                if let Some(agent) = &assign_to {
                    match env.tenant.user_id(agent).await? {
                        Some(user) => assigned.push(user),
                        None => {
                            tracing::warn!(tenant, agent = %agent, "no Kustomer user with this email; conversation left unassigned")
                        }
                    }
                }
                let mut tags = new.tags.clone();
                if new.voicemail && !tags.iter().any(|t| t == "voicemail") {
                    tags.push("voicemail".into());
                }
                let created = client
                    .create_conversation(&NewConversation {
                        id: Some(id.clone()),
                        external_id: None,
                        customer: customer_id.clone(),
                        name: Some(new.name.clone()),
                        status: Some(status(new.status).into()),
                        direction: Some(direction(new.direction).into()),
                        priority: new.priority,
                        assigned_users: assigned,
                        tags,
                        custom: custom(&new.fields),
                        queue: None,
                        default_lang: event.session.language.clone(),
                        created_at: event_at,
                    })
                    .await?;
                mirror.wrote_conversation(created)?;
                env.store.put_conversation_meta(
                    tenant,
                    &id,
                    &ConversationMeta {
                        session_id: Some(event.session.id.clone()),
                        channel: Some(channel(new.channel).into()),
                        menu_selection: new.menu_selection.clone(),
                        voicemail: new.voicemail,
                        direction: Some(direction(new.direction).into()),
                    },
                )?;
                env.store.link_session(
                    tenant,
                    &SessionLink {
                        session_id: event.session.id.clone(),
                        conversation_id: id.clone(),
                        customer_id,
                    },
                )?;
                conversation = Some(id);
            }
            t::Action::AppendTo(id) => {
                let customer_id = need_customer(&customer)?;
                env.store.link_session(
                    tenant,
                    &SessionLink {
                        session_id: event.session.id.clone(),
                        conversation_id: id.clone(),
                        customer_id,
                    },
                )?;
                conversation = Some(id.clone());
            }
            t::Action::AddMessage(message) => {
                let conv = need_conversation(&conversation)?;
                let meta: Map<String, Value> = message
                    .meta
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                client
                    .add_message(
                        customer.as_deref().unwrap_or_default(),
                        &conv,
                        &NewMessage {
                            id: Some(id_for("message")),
                            channel: channel(message.channel).into(),
                            app: "ccai-platform".into(),
                            direction: direction(message.direction).into(),
                            preview: Some(message.preview.clone()),
                            meta: Some(Value::Object(meta)),
                            sent_at: event_at,
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            t::Action::AddNote(body) => {
                let conv = need_conversation(&conversation)?;
                client
                    .add_note(
                        &conv,
                        &NewNote {
                            id: Some(id_for("note")),
                            body: body.clone(),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            t::Action::AttachFile(attachment) => {
                let conv = need_conversation(&conversation)?;
                let note_id = id_for("note");
                let body = attachment
                    .note
                    .clone()
                    .unwrap_or_else(|| format!("Attached {}", attachment.file.name));
                let attachment_id = attach(env, &note_id, &attachment.file).await?;
                client
                    .add_note(
                        &conv,
                        &NewNote {
                            id: Some(note_id),
                            body,
                            attachments: vec![attachment_id],
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            t::Action::SetFields(fields) => {
                let conv = need_conversation(&conversation)?;
                if let Some(map) = custom(fields) {
                    let unchanged = mirror.fresh_conversation(&conv)?.is_some_and(|c| {
                        c.attributes
                            .custom
                            .as_ref()
                            .is_some_and(|have| holds(have, &map))
                    });
                    if !unchanged {
                        mirror.wrote_conversation(
                            client.set_conversation_custom(&conv, map).await?,
                        )?;
                    }
                }
            }
            t::Action::Assign(_) if folded_assigns.contains(&index) => {
                // Assigned by the create above.
            }
            t::Action::Assign(agent) => {
                let conv = need_conversation(&conversation)?;
                match env.tenant.user_id(agent).await? {
                    Some(user) => {
                        let unchanged = mirror
                            .fresh_conversation(&conv)?
                            .is_some_and(|c| c.attributes.assigned_users == [user.as_str()]);
                        if !unchanged {
                            mirror.wrote_conversation(
                                client.assign_conversation(&conv, vec![user]).await?,
                            )?;
                        }
                    }
                    None => {
                        tracing::warn!(tenant, agent = %agent, "no Kustomer user with this email; assignment skipped")
                    }
                }
            }
            t::Action::SetStatus(s) => {
                let conv = need_conversation(&conversation)?;
                let unchanged = mirror
                    .fresh_conversation(&conv)?
                    .is_some_and(|c| c.attributes.status.as_deref() == Some(status(*s)));
                if !unchanged {
                    mirror.wrote_conversation(
                        client.set_conversation_status(&conv, status(*s)).await?,
                    )?;
                }
            }
            t::Action::Skip(reason) => {
                tracing::debug!(tenant, event_id = %event.id, reason = %reason, "rule skipped");
            }
        }
        metrics::counter!("switchboard_crm_actions_total", "tenant" => tenant.clone(), "action" => action_name(action)).increment(1);
    }
    Ok(())
}

/// Whether `have` already holds every value of `want` (the write would
/// change nothing).
fn holds(have: &Map<String, Value>, want: &Map<String, Value>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Registers the file as a Kustomer attachment and uploads it, once: the
/// attachment and its storage target are kept under `key` before the
/// upload, so a retry after a lost response reuses them (no orphan, no
/// second download once the file is stored). Returns the attachment id.
async fn attach(env: &Env<'_>, key: &str, file: &t::File) -> Result<String, PipelineError> {
    let tenant = &env.tenant.config.id;
    let client = &env.tenant.kustomer;
    let kept = env.store.attachment(tenant, key)?;
    if let Some(kept) = kept.as_ref().filter(|k| k.uploaded) {
        return Ok(kept.attachment_id.clone());
    }
    let data = fetch(env.http, &file.source).await?;
    let mut kept_target = kept.as_ref().and_then(|k| {
        serde_json::from_str::<UploadTarget>(&k.upload)
            .ok()
            .map(|target| (k.attachment_id.clone(), target))
    });
    loop {
        let reused = kept_target.is_some();
        let (id, target) = match kept_target.take() {
            Some(found) => found,
            None => {
                let (created, target) = client
                    .register_attachment(&file.name, &file.content_type, data.len() as u64)
                    .await?;
                let upload = serde_json::to_string(&target)
                    .map_err(|e| PipelineError::Undecodable(e.to_string()))?;
                env.store
                    .record_attachment(tenant, key, &created.id, &upload)?;
                // Kept for good before the upload, or a retry orphans it.
                env.store.durable(Wait::Shared).await?;
                (created.id, target)
            }
        };
        match client
            .upload_attachment_file(&target, &file.name, &file.content_type, data.clone())
            .await
        {
            Ok(()) => {
                env.store.attachment_uploaded(tenant, key)?;
                return Ok(id);
            }
            // A kept target the storage refuses (its policy expired): the
            // attachment never got its file; register a fresh one.
            Err(e) if reused && !e.is_transient() => {
                tracing::warn!(tenant, attachment_id = %id, error = %e, "kept upload target refused; registering the attachment again");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The custom attributes an `update-customer` writes. Kustomer customers
/// have no assignee attribute: CU1's assignment is kept in a custom one.
fn customer_fields(env: &Env<'_>, update: &t::CustomerUpdate) -> Map<String, Value> {
    let mut fields = custom(&update.fields).unwrap_or_default();
    if let Some(agent) = &update.assign_to {
        fields.insert(
            env.tenant.config.fields.assigned_agent(),
            Value::String(agent.clone()),
        );
    }
    fields
}

fn custom(fields: &[t::CustomField]) -> Option<Map<String, Value>> {
    if fields.is_empty() {
        return None;
    }
    Some(
        fields
            .iter()
            .map(|f| {
                let value = match &f.value {
                    t::FieldValue::Text(s) | t::FieldValue::Time(s) => Value::String(s.clone()),
                    t::FieldValue::Number(n) => {
                        serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                    }
                    t::FieldValue::Flag(b) => Value::Bool(*b),
                    t::FieldValue::Clear => Value::Null,
                };
                (f.name.clone(), value)
            })
            .collect(),
    )
}

fn status(s: t::ConversationStatus) -> &'static str {
    match s {
        t::ConversationStatus::Open => "open",
        t::ConversationStatus::Snoozed => "snoozed",
        t::ConversationStatus::Done => "done",
    }
}

fn direction(d: t::Direction) -> &'static str {
    match d {
        t::Direction::Inbound => "in",
        t::Direction::Outbound => "out",
    }
}

fn channel(c: t::Channel) -> &'static str {
    match c {
        t::Channel::Voice => "voice",
        t::Channel::Chat => "chat",
        t::Channel::Sms => "sms",
    }
}

async fn fetch(
    http: &reqwest::Client,
    source: &t::FileSource,
) -> Result<bytes::Bytes, PipelineError> {
    let url = match source {
        t::FileSource::Inline(text) => return Ok(bytes::Bytes::from(text.clone().into_bytes())),
        t::FileSource::Url(url) => url,
    };
    let fail = |reason: String, transient: bool| PipelineError::Fetch {
        url: url.clone(),
        reason,
        transient,
    };
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string(), true))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(
            format!("HTTP {status}"),
            status.is_server_error() || status.as_u16() == 429,
        ));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_FILE_BYTES as u64)
    {
        return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes"), false));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| fail(e.to_string(), true))?;
    if body.len() > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes"), false));
    }
    Ok(body)
}
