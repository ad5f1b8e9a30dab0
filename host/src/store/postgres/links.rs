//! PostgreSQL: links, conversation meta, outcomes, field provisioning and
//! attachments.

use super::{count, get, Postgres, Queries};
use crate::store::links::*;
use crate::store::StoreError;
use postgres::Row;
use serde_json::value::RawValue;

const OUTCOME_COLUMNS: &str = "tenant, event_id, module_digest, module_version, plan, state, \
                               detail, decided_at, updated_at, context";

fn state_name(state: OutcomeState) -> &'static str {
    match state {
        OutcomeState::Decided => "decided",
        OutcomeState::Applied => "applied",
        OutcomeState::Failed => "failed",
    }
}

/// JSON text read back leniently, as SQLite's backend does: unreadable
/// JSON reads as absent.
fn lenient_json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn row_to_outcome(r: &Row, op: &'static str) -> Result<Outcome, StoreError> {
    let version: Option<i64> = get(r, 3, op)?;
    let state: String = get(r, 5, op)?;
    Ok(Outcome {
        tenant: get(r, 0, op)?,
        event_id: get(r, 1, op)?,
        module_digest: get(r, 2, op)?,
        module_version: version
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| StoreError::query(op, format!("module version {v} out of range")))
            })
            .transpose()?,
        plan: lenient_json(get(r, 4, op)?),
        state: OutcomeState::parse(&state),
        detail: get(r, 6, op)?,
        decided_at: get(r, 7, op)?,
        updated_at: get(r, 8, op)?,
        context: lenient_json(get(r, 9, op)?),
    })
}

impl LinkStore for Postgres {
    fn link_session(&self, tenant: &str, link: &SessionLink) -> Result<(), StoreError> {
        const OP: &str = "link session";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO session_links (tenant, session_id, conversation_id, customer_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, session_id) DO UPDATE
                 SET conversation_id = excluded.conversation_id,
                     customer_id = excluded.customer_id",
                &[
                    &tenant,
                    &link.session_id,
                    &link.conversation_id,
                    &link.customer_id,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn session_link(
        &self,
        tenant: &str,
        session_id: &str,
    ) -> Result<Option<SessionLink>, StoreError> {
        const OP: &str = "get session link";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT session_id, conversation_id, customer_id FROM session_links
                 WHERE tenant = $1 AND session_id = $2",
                &[&tenant, &session_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| {
                Ok(SessionLink {
                    session_id: get(&r, 0, OP)?,
                    conversation_id: get(&r, 1, OP)?,
                    customer_id: get(&r, 2, OP)?,
                })
            })
            .transpose()
        })
    }

    fn sessions_of_conversation(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        const OP: &str = "list sessions of conversation";
        self.with(OP, |c| {
            c.query(
                "SELECT session_id FROM session_links
                 WHERE tenant = $1 AND conversation_id = $2 ORDER BY session_id",
                &[&tenant, &conversation_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .iter()
            .map(|r| get(r, 0, OP))
            .collect()
        })
    }

    fn put_conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
        meta: &ConversationMeta,
    ) -> Result<(), StoreError> {
        const OP: &str = "put conversation meta";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO conversation_meta
                   (tenant, conversation_id, session_id, channel, menu_selection, voicemail, direction)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, conversation_id) DO NOTHING",
                &[
                    &tenant,
                    &conversation_id,
                    &meta.session_id,
                    &meta.channel,
                    &meta.menu_selection,
                    &meta.voicemail,
                    &meta.direction,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn conversation_meta(
        &self,
        tenant: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationMeta>, StoreError> {
        const OP: &str = "get conversation meta";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT session_id, channel, menu_selection, voicemail, direction
                 FROM conversation_meta WHERE tenant = $1 AND conversation_id = $2",
                &[&tenant, &conversation_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| {
                Ok(ConversationMeta {
                    session_id: get(&r, 0, OP)?,
                    channel: get(&r, 1, OP)?,
                    menu_selection: get(&r, 2, OP)?,
                    voicemail: get(&r, 3, OP)?,
                    direction: get(&r, 4, OP)?,
                })
            })
            .transpose()
        })
    }

    fn record_decision(
        &self,
        tenant: &str,
        event_id: &str,
        module_digest: Option<&str>,
        module_version: Option<u32>,
        plan: &RawValue,
        context: &RawValue,
    ) -> Result<(), StoreError> {
        const OP: &str = "record decision";
        let version = module_version.map(i64::from);
        let (plan, context) = (plan.get(), context.get());
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO outcomes
                   (tenant, event_id, module_digest, module_version, plan, state, context)
                 VALUES ($1, $2, $3, $4, $5, 'decided', $6)
                 ON CONFLICT (tenant, event_id) DO NOTHING",
                &[
                    &tenant,
                    &event_id,
                    &module_digest,
                    &version,
                    &plan,
                    &context,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn set_outcome(
        &self,
        tenant: &str,
        event_id: &str,
        state: OutcomeState,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        const OP: &str = "set outcome";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO outcomes (tenant, event_id, state, detail) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, event_id) DO UPDATE
                 SET state = excluded.state, detail = excluded.detail, updated_at = sb_now()",
                &[&tenant, &event_id, &state_name(state), &detail],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn clear_outcome(&self, tenant: &str, event_id: &str) -> Result<(), StoreError> {
        const OP: &str = "clear outcome";
        self.with(OP, |c| {
            c.execute(
                "DELETE FROM outcomes WHERE tenant = $1 AND event_id = $2",
                &[&tenant, &event_id],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn outcome(&self, tenant: &str, event_id: &str) -> Result<Option<Outcome>, StoreError> {
        const OP: &str = "get outcome";
        self.with(OP, |c| {
            c.query_opt(
                &format!(
                    "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE tenant = $1 AND event_id = $2"
                ),
                &[&tenant, &event_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| row_to_outcome(&r, OP))
            .transpose()
        })
    }

    fn tenants(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "list tenants";
        self.with(OP, |c| {
            c.query("SELECT DISTINCT tenant FROM outcomes ORDER BY tenant", &[])
                .map_err(|e| StoreError::query(OP, e))?
                .iter()
                .map(|r| get(r, 0, OP))
                .collect()
        })
    }

    fn outcomes(&self, tenant: &str) -> Result<Vec<Outcome>, StoreError> {
        const OP: &str = "list outcomes";
        self.with(OP, |c| {
            c.query(
                &format!(
                    "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE tenant = $1
                     ORDER BY decided_at, event_id"
                ),
                &[&tenant],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .iter()
            .map(|r| row_to_outcome(r, OP))
            .collect()
        })
    }

    fn requeue_failed(&self, tenant: &str, event_id: Option<&str>) -> Result<usize, StoreError> {
        const OP: &str = "requeue failed events";
        self.with(OP, |c| {
            c.execute(
                "UPDATE inbox SET reason = NULL,
                    received_at = CASE status WHEN 'dead' THEN sb_now() ELSE received_at END,
                    status = 'pending'
                 WHERE tenant = $1 AND status IN ('failed', 'dead')
                   AND ($2::text IS NULL OR event_id = $2)",
                &[&tenant, &event_id],
            )
            .map(count)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn field_provisioning(
        &self,
        tenant: &str,
    ) -> Result<Option<(String, serde_json::Value)>, StoreError> {
        const OP: &str = "get field provisioning";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT provisioned_at, fields FROM field_provisioning WHERE tenant = $1",
                &[&tenant],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| {
                let fields: String = get(&r, 1, OP)?;
                Ok((
                    get(&r, 0, OP)?,
                    serde_json::from_str(&fields).unwrap_or(serde_json::Value::Null),
                ))
            })
            .transpose()
        })
    }

    fn record_field_provisioning(
        &self,
        tenant: &str,
        provisioned_at: &str,
        fields: &serde_json::Value,
    ) -> Result<(), StoreError> {
        const OP: &str = "record field provisioning";
        let fields = fields.to_string();
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO field_provisioning (tenant, provisioned_at, fields) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant) DO UPDATE SET fields = excluded.fields,
                   provisioned_at = LEAST(field_provisioning.provisioned_at, excluded.provisioned_at)",
                &[&tenant, &provisioned_at, &fields],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn attachment(&self, tenant: &str, key: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        const OP: &str = "read attachment";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT attachment_id, upload, uploaded FROM attachments
                 WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| {
                Ok(AttachmentRecord {
                    attachment_id: get(&r, 0, OP)?,
                    upload: get(&r, 1, OP)?,
                    uploaded: get(&r, 2, OP)?,
                })
            })
            .transpose()
        })
    }

    fn record_attachment(
        &self,
        tenant: &str,
        key: &str,
        attachment_id: &str,
        upload: &str,
    ) -> Result<(), StoreError> {
        const OP: &str = "record attachment";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO attachments (tenant, key, attachment_id, upload)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, key) DO UPDATE
                 SET attachment_id = excluded.attachment_id, upload = excluded.upload,
                     uploaded = FALSE",
                &[&tenant, &key, &attachment_id, &upload],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn attachment_uploaded(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        const OP: &str = "record attachment upload";
        self.with(OP, |c| {
            c.execute(
                "UPDATE attachments SET uploaded = TRUE WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }
}
