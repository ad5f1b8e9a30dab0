//! SQLite: sessions.

use super::{inbox, Savepoint, Sqlite};
use crate::store::sessions::{Merged, Reconciled, SessionStore};
use crate::store::StoreError;
use rusqlite::OptionalExtension;

impl SessionStore for Sqlite {
    fn reconcile_each(
        &self,
        tenant: &str,
        sessions: &[String],
        cursor: Option<(&str, &str)>,
        merge: &mut dyn FnMut(usize, Option<&str>) -> Merged,
    ) -> Result<Reconciled, StoreError> {
        let conn = self.write()?;
        let tx = Savepoint::open(&conn).map_err(|e| StoreError::query("begin", e))?;
        let mut out = Reconciled::default();
        let now = super::now_text();
        for (i, session) in sessions.iter().enumerate() {
            let stored = read_state(&tx, tenant, session)?;
            let merged = merge(i, stored.as_deref());
            if stored.as_deref() != Some(merged.state.as_str()) {
                tx.prepare_cached(
                    "INSERT INTO sessions (tenant, session_id, state, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, session_id) DO UPDATE
                     SET state = excluded.state, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute((tenant, session, &merged.state, &now)))
                .map_err(|e| StoreError::query("write session", e))?;
            }
            if merged.events.is_empty() {
                out.unchanged += 1;
            }
            for event in &merged.events {
                if inbox::insert(&tx, event)? {
                    out.new += 1;
                }
            }
            out.events.extend(merged.events);
        }
        if let Some((source, value)) = cursor {
            super::write_cursor(&tx, tenant, source, value)?;
        }
        tx.commit().map_err(|e| StoreError::query("commit", e))?;
        Ok(out)
    }

    fn session_state(&self, tenant: &str, session: &str) -> Result<Option<String>, StoreError> {
        read_state(&self.conn(), tenant, session)
    }
}

fn read_state(
    conn: &rusqlite::Connection,
    tenant: &str,
    session: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT state FROM sessions WHERE tenant = ?1 AND session_id = ?2")
        .and_then(|mut s| s.query_row((tenant, session), |r| r.get(0)).optional())
        .map_err(|e| StoreError::query("read session", e))
}
