//! Loading what a rule needs to decide: all I/O happens here, none in rules.
use super::{PipelineError, Tenant};
use crate::connectors::kustomer::model::{Conversation as KConversation, Customer as KCustomer};
use crate::mirror::{Key, Mirror};
use crate::runtime::types as t;
use crate::store::Store;
use std::sync::Arc;

/// How many of the customer's conversations a rule sees (newest first).
const RECENT: usize = 10;

/// The context plus what the executor needs to act on it.
pub(crate) struct Loaded {
    pub context: t::Context,
    /// The Kustomer customer, when known.
    pub customer_id: Option<String>,
    /// The session's linked conversation, when linked.
    pub linked: Option<String>,
}

pub(crate) async fn load(
    store: &Store,
    tenant: &Tenant,
    event: &t::SessionEvent,
) -> Result<Loaded, PipelineError> {
    let id = &tenant.config.id;
    let mirror = Mirror::new(store, tenant);
    let link = store.session_link(id, &event.session.id)?;

    let customer = match &link {
        Some(link) => mirror.customer(&link.customer_id).await?,
        None => find_customer(&mirror, &event.session.end_user).await?,
    };

    let mut recent = Vec::new();
    if let Some(c) = &customer {
        for conversation in mirror.newest_conversations(&c.id, RECENT).await? {
            recent.push(summarise(store, id, &conversation)?);
        }
    }
    let linked = match &link {
        Some(link) => match recent.iter().find(|c| c.id == link.conversation_id) {
            Some(found) => Some(found.clone()),
            None => match mirror.conversation(&link.conversation_id).await? {
                Some(conversation) => Some(summarise(store, id, &conversation)?),
                None => None,
            },
        },
        None => None,
    };

    let event_at = chrono::DateTime::parse_from_rfc3339(&event.at)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc));
    let customer = customer.map(|c| {
        let created_recently = match (c.attributes.created_at, event_at) {
            (Some(created), Some(at)) => {
                let window =
                    chrono::Duration::from_std(tenant.config.recent_customer).unwrap_or_default();
                at - created <= window
            }
            _ => false,
        };
        t::Customer {
            id: c.id.clone(),
            name: c.attributes.name.clone(),
            phones: c
                .attributes
                .phones
                .iter()
                .map(|p| p.phone.clone())
                .collect(),
            emails: c
                .attributes
                .emails
                .iter()
                .map(|e| e.email.clone())
                .collect(),
            external_id: c.attributes.external_id.clone(),
            tags: c.attributes.tags.clone(),
            created_recently,
        }
    });

    let context = t::Context {
        tenant: id.clone(),
        now: event.at.clone(),
        customer,
        recent_conversations: recent,
        linked_conversation: linked,
        settings: settings(store, tenant, event)?,
    };
    Ok(Loaded {
        customer_id: context.customer.as_ref().map(|c| c.id.clone()),
        linked: link.map(|l| l.conversation_id),
        context,
    })
}

/// By SDK identifier, then phone, then email.
async fn find_customer(
    mirror: &Mirror<'_>,
    user: &t::EndUser,
) -> Result<Option<Arc<KCustomer>>, PipelineError> {
    let keys = [
        (Key::ExternalId, &user.sdk_identifier),
        (Key::Phone, &user.phone),
        (Key::Email, &user.email),
    ];
    for (key, value) in keys {
        if let Some(value) = value {
            if let Some(c) = mirror.find_customer(key, value).await? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

fn channel(name: &str) -> Option<t::Channel> {
    match name {
        "voice" => Some(t::Channel::Voice),
        "chat" => Some(t::Channel::Chat),
        "sms" => Some(t::Channel::Sms),
        _ => None,
    }
}

fn direction(name: &str) -> Option<t::Direction> {
    match name {
        "in" => Some(t::Direction::Inbound),
        "out" => Some(t::Direction::Outbound),
        _ => None,
    }
}

/// A Kustomer conversation as a rule sees it; what Kustomer cannot hold
/// (menu selection, voicemail flag, session) comes from the host's records.
pub(super) fn summarise(
    store: &Store,
    tenant: &str,
    c: &KConversation,
) -> Result<t::Conversation, PipelineError> {
    let meta = store.conversation_meta(tenant, &c.id)?.unwrap_or_default();
    let a = &c.attributes;
    Ok(t::Conversation {
        id: c.id.clone(),
        status: match a.status.as_deref() {
            Some("open") => t::ConversationStatus::Open,
            Some("snoozed") => t::ConversationStatus::Snoozed,
            _ => t::ConversationStatus::Done,
        },
        channel: meta
            .channel
            .as_deref()
            .and_then(channel)
            .or_else(|| a.channels.first().and_then(|c| channel(c))),
        menu_selection: meta.menu_selection,
        created_at: a
            .created_at
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default(),
        voicemail: meta.voicemail || a.tags.iter().any(|t| t == "voicemail"),
        direction: meta
            .direction
            .as_deref()
            .and_then(direction)
            .or_else(|| a.direction.as_deref().and_then(direction)),
        session_id: meta.session_id,
    })
}

/// Tenant settings for this event. Standard fields are live only for
/// sessions that started after they were provisioned (CF4).
fn settings(
    store: &Store,
    tenant: &Tenant,
    event: &t::SessionEvent,
) -> Result<t::Settings, PipelineError> {
    let started = event.session.started_at.as_deref().unwrap_or(&event.at);
    let provisioned = tenant.fields_provisioned_ms(|| {
        Ok::<_, PipelineError>(
            store
                .field_provisioning(tenant.id())?
                .map(|(at, _)| super::clock_ms(&at)),
        )
    })?;
    let fields = match provisioned {
        Some(provisioned_ms) if super::clock_ms(started) >= provisioned_ms => tenant
            .config
            .fields
            .all()
            .iter()
            .map(|(field, name)| t::FieldName {
                field: *field,
                name: name.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(t::Settings {
        recording_enabled: tenant.config.recording,
        fields,
        field_mapping: tenant.config.field_mapping.clone(),
        options: tenant.config.options.clone(),
    })
}
