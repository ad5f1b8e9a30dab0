//! SQLite: links.

use super::packed::{pack, unpack};
use super::{Cached as _, Sqlite};
use crate::store::links::*;
use crate::store::StoreError;
use rusqlite::OptionalExtension;
use serde_json::value::RawValue;

const OUTCOME_COLUMNS: &str =
    "tenant, event_id, module_digest, module_version, plan, state, detail, decided_at, updated_at, context";

/// Records a decision before anything is applied (every decided event).
pub(super) const RECORD_DECISION: &str =
    "INSERT INTO outcomes (tenant, event_id, module_digest, module_version, plan, state, context,
                           decided_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, 'decided', ?6, ?7, ?7)
     ON CONFLICT (tenant, event_id) DO NOTHING";

/// Sets an event's outcome state, creating the row when the event failed
/// before any decision (every settled event).
pub(super) const SET_OUTCOME: &str =
    "INSERT INTO outcomes (tenant, event_id, state, detail, decided_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?5)
     ON CONFLICT (tenant, event_id) DO UPDATE
     SET state = excluded.state, detail = excluded.detail, updated_at = excluded.updated_at";

impl LinkStore for Sqlite {
    /// Links a session to a conversation (replacing an earlier link).
    fn link_session(&self, tenant: &str, link: &SessionLink) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO session_links (tenant, session_id, conversation_id, customer_id, linked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, session_id) DO UPDATE
                 SET conversation_id = excluded.conversation_id, customer_id = excluded.customer_id",
                (
                    tenant,
                    &link.session_id,
                    &link.conversation_id,
                    &link.customer_id,
                    super::now_text(),
                ),
            )
            .map(drop)
            .map_err(|e| StoreError::query("link session", e))
    }

    /// The conversation a session is linked to.
    fn session_link(
        &self,
        tenant: &str,
        session_id: &str,
    ) -> Result<Option<SessionLink>, StoreError> {
        self.conn()
            .row(
                "SELECT session_id, conversation_id, customer_id FROM session_links
                 WHERE tenant = ?1 AND session_id = ?2",
                (tenant, session_id),
                |r| {
                    Ok(SessionLink {
                        session_id: r.get(0)?,
                        conversation_id: r.get(1)?,
                        customer_id: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| StoreError::query("get session link", e))
    }

    /// Every session linked to `conversation_id` (screen pop, inspection).
    fn sessions_of_conversation(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT session_id FROM session_links WHERE tenant = ?1 AND conversation_id = ?2 ORDER BY session_id",
            )
            .map_err(|e| StoreError::query("list sessions of conversation", e))?;
        let rows = stmt
            .query_map((tenant, conversation_id), |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| StoreError::query("list sessions of conversation", e));
        rows
    }

    /// Records what the host knows about a conversation it created.
    fn put_conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
        meta: &ConversationMeta,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO conversation_meta
                   (tenant, conversation_id, session_id, channel, menu_selection, voicemail, direction)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, conversation_id) DO NOTHING",
                rusqlite::params![
                    tenant,
                    conversation_id,
                    meta.session_id,
                    meta.channel,
                    meta.menu_selection,
                    meta.voicemail,
                    meta.direction
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query("put conversation meta", e))
    }

    /// What the host recorded about a conversation, if it created it.
    fn conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationMeta>, StoreError> {
        self.conn()
            .row(
                "SELECT session_id, channel, menu_selection, voicemail, direction FROM conversation_meta
                 WHERE tenant = ?1 AND conversation_id = ?2",
                (tenant, conversation_id),
                |r| {
                    Ok(ConversationMeta {
                        session_id: r.get(0)?,
                        channel: r.get(1)?,
                        menu_selection: r.get(2)?,
                        voicemail: r.get(3)?,
                        direction: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| StoreError::query("get conversation meta", e))
    }

    /// Records the decision for an event (before anything is applied), so a
    /// retry or a restart applies the same plan and the event is decided by
    /// exactly one module version.
    fn record_decision(
        &self,
        tenant: &str,
        event_id: &str,
        module_digest: Option<&str>,
        module_version: Option<u32>,
        plan: &RawValue,
        context: &RawValue,
    ) -> Result<(), StoreError> {
        let (plan, context) = (pack(plan), pack(context));
        self.write()?
            .run(
                RECORD_DECISION,
                rusqlite::params![
                    tenant,
                    event_id,
                    module_digest,
                    module_version,
                    plan,
                    context,
                    super::now_text()
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query("record decision", e))
    }

    /// Sets an event's outcome state (creating the row when the event failed
    /// before any decision).
    fn set_outcome(
        &self,
        tenant: &str,
        event_id: &str,
        state: OutcomeState,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                SET_OUTCOME,
                (tenant, event_id, state.as_str(), detail, super::now_text()),
            )
            .map(drop)
            .map_err(|e| StoreError::query("set outcome", e))
    }

    /// Forgets a failed event's decision so a retry decides afresh (used when
    /// the decision itself failed, not its application).
    fn clear_outcome(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        self.write()?
            .run(
                "DELETE FROM outcomes WHERE tenant = ?1 AND event_id = ?2",
                (tenant, event_id),
            )
            .map(drop)
            .map_err(|e| StoreError::query("clear outcome", e))
    }

    /// An event's outcome.
    fn outcome(&self, tenant: &str, event_id: &str) -> Result<Option<Outcome>, StoreError> {
        let conn = self.conn();
        let row = conn
            .row(
                &format!(
                    "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE tenant = ?1 AND event_id = ?2"
                ),
                (tenant, event_id),
                row_to_outcome,
            )
            .optional()
            .map_err(|e| StoreError::query("get outcome", e))?;
        Ok(row)
    }

    /// Tenants with recorded decisions, sorted.
    fn tenants(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached("SELECT DISTINCT tenant FROM outcomes ORDER BY tenant")
            .map_err(|e| StoreError::query("list tenants", e))?;
        let rows = statement
            .query_map([], |r| r.get(0))
            .map_err(|e| StoreError::query("list tenants", e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| StoreError::query("list tenants", e))
    }

    /// Every outcome of a tenant, in decision order.
    fn outcomes(&self, tenant: &str) -> Result<Vec<Outcome>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE tenant = ?1 ORDER BY decided_at, event_id"
            ))
            .map_err(|e| StoreError::query("list outcomes", e))?;
        let rows = stmt
            .query_map([tenant], row_to_outcome)
            .and_then(Iterator::collect)
            .map_err(|e| StoreError::query("list outcomes", e));
        rows
    }

    /// Puts failed and dead-lettered events of `tenant` (one event, or all)
    /// back in the queue; a dead letter's retry window starts again.
    /// Returns how many were requeued.
    fn requeue_failed(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError> {
        self.write()?
            .run(
                "UPDATE inbox SET reason = NULL,
                    received_at = CASE status WHEN 'dead'
                        THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') ELSE received_at END,
                    status = 'pending'
                 WHERE tenant = ?1 AND status IN ('failed', 'dead')
                   AND (?2 IS NULL OR event_id = ?2)",
                (tenant, event_id),
            )
            .map_err(|e| StoreError::query("requeue failed events", e))
    }

    /// When the tenant's custom fields were provisioned, and their names.
    fn field_provisioning(
        &self,
        tenant: &str,
    ) -> Result<Option<(String, serde_json::Value)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .row(
                "SELECT provisioned_at, fields FROM field_provisioning WHERE tenant = ?1",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| StoreError::query("get field provisioning", e))?;
        Ok(row.map(|(at, fields)| {
            (
                at,
                serde_json::from_str(&fields).unwrap_or(serde_json::Value::Null),
            )
        }))
    }

    /// Records provisioning; the earliest time recorded is kept (fields
    /// are never backfilled for sessions that started before it, CF4).
    fn record_field_provisioning(
        &self,
        tenant: &str,
        provisioned_at: &str,
        fields: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO field_provisioning (tenant, provisioned_at, fields) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant) DO UPDATE SET fields = excluded.fields,
                   provisioned_at = min(provisioned_at, excluded.provisioned_at)",
                (tenant, provisioned_at, fields.to_string()),
            )
            .map(drop)
            .map_err(|e| StoreError::query("record field provisioning", e))
    }

    /// The attachment registered under `key` (the note it belongs to).
    fn attachment(&self, tenant: &str, key: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        self.conn()
            .row(
                "SELECT attachment_id, upload, uploaded FROM attachments WHERE tenant = ?1 AND key = ?2",
                (tenant, key),
                |r| {
                    Ok(AttachmentRecord {
                        attachment_id: r.get(0)?,
                        upload: r.get(1)?,
                        uploaded: r.get::<_, i64>(2)? != 0,
                    })
                },
            )
            .optional()
            .map_err(|e| StoreError::query("read attachment", e))
    }

    /// Keeps a registered attachment before its file is uploaded.
    fn record_attachment(
        &self,
        tenant: &str,
        key: &str,
        attachment_id: &str,
        upload: &str,
    ) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO attachments (tenant, key, attachment_id, upload) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, key) DO UPDATE
                 SET attachment_id = excluded.attachment_id, upload = excluded.upload, uploaded = 0",
                (tenant, key, attachment_id, upload),
            )
            .map(drop)
            .map_err(|e| StoreError::query("record attachment", e))
    }

    /// Notes that the attachment's file reached storage.
    fn attachment_uploaded(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        self.write()?
            .run(
                "UPDATE attachments SET uploaded = 1 WHERE tenant = ?1 AND key = ?2",
                (tenant, key),
            )
            .map(drop)
            .map_err(|e| StoreError::query("record attachment upload", e))
    }
}

fn row_to_outcome(r: &rusqlite::Row<'_>) -> rusqlite::Result<Outcome> {
    let state: String = r.get(5)?;
    Ok(Outcome {
        tenant: r.get(0)?,
        event_id: r.get(1)?,
        module_digest: r.get(2)?,
        module_version: r.get(3)?,
        plan: unpack(r.get_ref(4)?),
        state: OutcomeState::parse(&state),
        detail: r.get(6)?,
        decided_at: r.get(7)?,
        updated_at: r.get(8)?,
        context: unpack(r.get_ref(9)?),
    })
}
