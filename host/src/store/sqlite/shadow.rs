//! SQLite: shadow.

use super::{Cached as _, Sqlite};
use crate::store::shadow::*;
use crate::store::StoreError;

impl ShadowStore for Sqlite {
    /// Records one shadow decision (a repeat for the same event keeps the
    /// first).
    fn record_shadow(
        &self,
        tenant: &str,
        event_id: &str,
        shadow_digest: &str,
        outcome: &ShadowOutcome,
    ) -> Result<(), StoreError> {
        let (name, live, shadow, detail) = match outcome {
            ShadowOutcome::Same => ("same", None, None, None),
            ShadowOutcome::Different { live, shadow } => (
                "different",
                Some(live.to_string()),
                Some(shadow.to_string()),
                None,
            ),
            ShadowOutcome::Error(reason) => ("error", None, None, Some(reason.as_str())),
            ShadowOutcome::Skipped => ("skipped", None, None, None),
        };
        self.write()?
            .run(
                "INSERT INTO shadow_decisions
                   (tenant, event_id, shadow_digest, outcome, live_plan, shadow_plan, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, shadow_digest, event_id) DO NOTHING",
                (tenant, event_id, shadow_digest, name, live, shadow, detail),
            )
            .map(drop)
            .map_err(|e| StoreError::query("record shadow decision", e))
    }

    /// How one event's shadow decision came out (`same`, `different`,
    /// `error`, `skipped`), if it was recorded.
    fn shadow_outcome(
        &self,
        tenant: &str,
        shadow_digest: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .prepare_cached(
                "SELECT outcome FROM shadow_decisions
                 WHERE tenant = ?1 AND shadow_digest = ?2 AND event_id = ?3",
            )
            .and_then(|mut s| {
                s.query_row((tenant, shadow_digest, event_id), |r| r.get(0))
                    .optional()
            })
            .map_err(|e| StoreError::query("read shadow decision", e))
    }

    /// The report of one shadow module, with at most `limit` differences and
    /// failures.
    fn shadow_report(
        &self,
        tenant: &str,
        shadow_digest: &str,
        limit: usize,
    ) -> Result<ShadowReport, StoreError> {
        let conn = self.conn();
        let query = |e| StoreError::query("read shadow decisions", e);
        let mut report = ShadowReport::default();
        {
            let mut counts = conn
                .prepare_cached(
                    "SELECT outcome, count(*) FROM shadow_decisions
                     WHERE tenant = ?1 AND shadow_digest = ?2 GROUP BY outcome",
                )
                .map_err(query)?;
            let rows = counts
                .query_map((tenant, shadow_digest), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
                })
                .map_err(query)?;
            for row in rows {
                let (outcome, n) = row.map_err(query)?;
                match outcome.as_str() {
                    "same" => report.matched = n,
                    "different" => report.differed = n,
                    "error" => report.errors = n,
                    _ => report.skipped = n,
                }
            }
        }
        report.decided = report.matched + report.differed + report.errors;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let parse = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        report.differences = conn
            .prepare_cached(
                "SELECT event_id, live_plan, shadow_plan, decided_at FROM shadow_decisions
                 WHERE tenant = ?1 AND shadow_digest = ?2 AND outcome = 'different'
                 ORDER BY decided_at DESC, event_id LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map((tenant, shadow_digest, limit), |r| {
                    Ok(ShadowDifference {
                        event_id: r.get(0)?,
                        live_plan: parse(r.get(1)?),
                        shadow_plan: parse(r.get(2)?),
                        decided_at: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(query)?;
        report.failures = conn
            .prepare_cached(
                "SELECT event_id, detail FROM shadow_decisions
                 WHERE tenant = ?1 AND shadow_digest = ?2 AND outcome = 'error'
                 ORDER BY decided_at DESC, event_id LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map((tenant, shadow_digest, limit), |r| {
                    Ok(ShadowFailure {
                        event_id: r.get(0)?,
                        error: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(query)?;
        Ok(report)
    }
}
