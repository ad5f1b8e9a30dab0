//! PostgreSQL: agent status sync.

use super::{get, Postgres, Queries};
use crate::store::status_sync::*;
use crate::store::StoreError;
use postgres::Row;

const COLUMNS: &str =
    "tenant, agent_email, pending, last_applied, last_decision, last_error, updated_at";

fn row(r: &Row, op: &'static str) -> Result<StatusAgentRow, StoreError> {
    Ok(StatusAgentRow {
        tenant: get(r, 0, op)?,
        agent_email: get(r, 1, op)?,
        pending: get(r, 2, op)?,
        last_applied: get(r, 3, op)?,
        last_decision: get(r, 4, op)?,
        last_error: get(r, 5, op)?,
        updated_at: get(r, 6, op)?,
    })
}

impl StatusStore for Postgres {
    fn status_agent(
        &self,
        tenant: &str,
        agent_email: &str,
    ) -> Result<Option<StatusAgentRow>, StoreError> {
        const OP: &str = "read status agent";
        self.with(OP, |c| {
            c.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM status_sync_agents
                     WHERE tenant = $1 AND agent_email = $2"
                ),
                &[&tenant, &agent_email],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| row(&r, OP))
            .transpose()
        })
    }

    fn status_agents(&self, tenant: &str) -> Result<Vec<StatusAgentRow>, StoreError> {
        const OP: &str = "list status agents";
        self.with(OP, |c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM status_sync_agents WHERE tenant = $1
                     ORDER BY agent_email"
                ),
                &[&tenant],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .iter()
            .map(|r| row(r, OP))
            .collect()
        })
    }

    fn put_status_agent(&self, r: &StatusAgentRow) -> Result<(), StoreError> {
        const OP: &str = "write status agent";
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO status_sync_agents
                   (tenant, agent_email, pending, last_applied, last_decision, last_error,
                    updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, sb_now())
                 ON CONFLICT (tenant, agent_email) DO UPDATE SET
                   pending = excluded.pending, last_applied = excluded.last_applied,
                   last_decision = excluded.last_decision, last_error = excluded.last_error,
                   updated_at = excluded.updated_at",
                &[
                    &r.tenant,
                    &r.agent_email,
                    &r.pending,
                    &r.last_applied,
                    &r.last_decision,
                    &r.last_error,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }
}
