//! The context a decision is recorded with, as JSON. A tenant's settings
//! (its field names, mapping and options) are the same from one event to
//! the next and were about a third of serialising each context: the text of
//! the settings last recorded for each tenant is kept and reused while they
//! are equal.
use crate::runtime::types as t;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// `t::Context` with its settings given as JSON text: serialises to the
/// same text as the context itself (same fields, same order).
#[derive(Serialize)]
struct Recorded<'a> {
    tenant: &'a str,
    now: &'a str,
    customer: &'a Option<t::Customer>,
    recent_conversations: &'a [t::Conversation],
    linked_conversation: &'a Option<t::Conversation>,
    settings: &'a RawValue,
}

/// Each tenant's last recorded settings, beside their JSON text.
#[derive(Default)]
pub(super) struct Contexts {
    settings: Mutex<HashMap<String, (t::Settings, Arc<RawValue>)>>,
}

impl Contexts {
    /// `ctx` as JSON text.
    pub(super) fn to_json(&self, ctx: &t::Context) -> serde_json::Result<Box<RawValue>> {
        // Every field named: a field the context gains does not compile
        // here until the record carries it too.
        let t::Context {
            tenant,
            now,
            customer,
            recent_conversations,
            linked_conversation,
            settings,
        } = ctx;
        let settings = self.settings_json(tenant, settings)?;
        serde_json::value::to_raw_value(&Recorded {
            tenant,
            now,
            customer,
            recent_conversations,
            linked_conversation,
            settings: &settings,
        })
    }

    fn settings_json(
        &self,
        tenant: &str,
        settings: &t::Settings,
    ) -> serde_json::Result<Arc<RawValue>> {
        // Held for one map operation and a comparison; a panic cannot
        // leave an entry half-written.
        let mut kept = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((last, json)) = kept.get(tenant) {
            if last == settings {
                return Ok(json.clone());
            }
        }
        let json: Arc<RawValue> = serde_json::value::to_raw_value(settings)?.into();
        kept.insert(tenant.to_string(), (settings.clone(), json.clone()));
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(tenant: &str, recording: bool, field: &str) -> t::Context {
        t::Context {
            tenant: tenant.into(),
            now: "2026-01-15T09:00:00.000Z".into(),
            customer: Some(t::Customer {
                id: "c1".into(),
                name: Some("Ada \"the\" caller".into()),
                phones: vec!["+14155550100".into()],
                emails: vec![],
                external_id: None,
                tags: vec!["vip".into()],
                created_recently: true,
            }),
            recent_conversations: vec![t::Conversation {
                id: "v1".into(),
                status: t::ConversationStatus::Open,
                channel: Some(t::Channel::Voice),
                menu_selection: Some("billing".into()),
                created_at: "2026-01-15T08:00:00.000Z".into(),
                voicemail: false,
                direction: Some(t::Direction::Inbound),
                session_id: Some("s1".into()),
            }],
            linked_conversation: None,
            settings: t::Settings {
                recording_enabled: recording,
                fields: vec![t::FieldName {
                    field: t::StandardField::SessionId,
                    name: field.into(),
                }],
                field_mapping: vec![t::FieldMapping {
                    key: "plan".into(),
                    target: t::FieldTarget::Customer,
                    name: "planStr".into(),
                }],
                options: vec![("priority".into(), "3".into())],
            },
        }
    }

    #[test]
    fn rm5_a_recorded_context_reads_as_the_context_itself_and_follows_changed_settings() {
        let contexts = Contexts::default();
        for ctx in [
            context("acme", true, "ujetSessionIdStr"),
            context("acme", true, "ujetSessionIdStr"),
            context("acme", false, "ujetSessionIdStr"),
            context("acme", false, "sessionIdStr"),
            context("globex", true, "ujetSessionIdStr"),
            context("acme", false, "sessionIdStr"),
        ] {
            let ours = contexts.to_json(&ctx).expect("recorded");
            let plain = serde_json::value::to_raw_value(&ctx).expect("plain");
            assert_eq!(ours.get(), plain.get());
            let back: t::Context = serde_json::from_str(ours.get()).expect("reads back");
            assert_eq!(back, ctx);
        }
    }
}
