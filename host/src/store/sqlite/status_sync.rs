//! SQLite: status_sync.

use super::{Cached as _, Sqlite};
use crate::store::status_sync::*;
use crate::store::StoreError;
use rusqlite::OptionalExtension;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusAgentRow> {
    Ok(StatusAgentRow {
        tenant: r.get(0)?,
        agent_email: r.get(1)?,
        pending: r.get(2)?,
        last_applied: r.get(3)?,
        last_decision: r.get(4)?,
        last_error: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const COLUMNS: &str =
    "tenant, agent_email, pending, last_applied, last_decision, last_error, updated_at";

impl StatusStore for Sqlite {
    /// The stored state of one agent.
    fn status_agent(
        &self,
        tenant: &str,
        agent_email: &str,
    ) -> Result<Option<StatusAgentRow>, StoreError> {
        self.conn()
            .row(
                &format!(
                    "SELECT {COLUMNS} FROM status_sync_agents WHERE tenant = ?1 AND agent_email = ?2"
                ),
                (tenant, agent_email),
                row,
            )
            .optional()
            .map_err(|e| StoreError::query("read status agent", e))
    }

    /// Every agent of a tenant, by email.
    fn status_agents(&self, tenant: &str) -> Result<Vec<StatusAgentRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM status_sync_agents WHERE tenant = ?1 ORDER BY agent_email"
            ))
            .map_err(|e| StoreError::query("list status agents", e))?;
        let rows = statement
            .query_map([tenant], row)
            .map_err(|e| StoreError::query("list status agents", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::query("list status agents", e))
    }

    /// Writes one agent's state (`updated_at` is set to now).
    fn put_status_agent(&self, r: &StatusAgentRow) -> Result<(), StoreError> {
        self.write()?
            .run(
                "INSERT INTO status_sync_agents
                   (tenant, agent_email, pending, last_applied, last_decision, last_error, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ','now'))
                 ON CONFLICT (tenant, agent_email) DO UPDATE SET
                   pending = excluded.pending, last_applied = excluded.last_applied,
                   last_decision = excluded.last_decision, last_error = excluded.last_error,
                   updated_at = excluded.updated_at",
                (
                    &r.tenant,
                    &r.agent_email,
                    &r.pending,
                    &r.last_applied,
                    &r.last_decision,
                    &r.last_error,
                ),
            )
            .map(drop)
            .map_err(|e| StoreError::query("write status agent", e))
    }
}
