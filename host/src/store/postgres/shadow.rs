//! PostgreSQL: shadow decisions.

use super::{get, limit, Postgres, Queries};
use crate::store::shadow::*;
use crate::store::StoreError;

impl ShadowStore for Postgres {
    fn record_shadow(
        &self,
        tenant: &str,
        event_id: &str,
        shadow_digest: &str,
        outcome: &ShadowOutcome,
    ) -> Result<(), StoreError> {
        const OP: &str = "record shadow decision";
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
        self.with(OP, |c| {
            c.execute(
                "INSERT INTO shadow_decisions
                   (tenant, event_id, shadow_digest, outcome, live_plan, shadow_plan, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, shadow_digest, event_id) DO NOTHING",
                &[
                    &tenant,
                    &event_id,
                    &shadow_digest,
                    &name,
                    &live,
                    &shadow,
                    &detail,
                ],
            )
            .map(drop)
            .map_err(|e| StoreError::query(OP, e))
        })
    }

    fn shadow_outcome(
        &self,
        tenant: &str,
        shadow_digest: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        const OP: &str = "read shadow decision";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT outcome FROM shadow_decisions
                 WHERE tenant = $1 AND shadow_digest = $2 AND event_id = $3",
                &[&tenant, &shadow_digest, &event_id],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| get(&r, 0, OP))
            .transpose()
        })
    }

    fn shadow_report(
        &self,
        tenant: &str,
        shadow_digest: &str,
        n: usize,
    ) -> Result<ShadowReport, StoreError> {
        const OP: &str = "read shadow decisions";
        let query = |e| StoreError::query(OP, e);
        let parse = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        self.with(OP, |c| {
            let mut report = ShadowReport::default();
            let counts = c
                .query(
                    "SELECT outcome, count(*) FROM shadow_decisions
                     WHERE tenant = $1 AND shadow_digest = $2 GROUP BY outcome",
                    &[&tenant, &shadow_digest],
                )
                .map_err(query)?;
            for row in &counts {
                let outcome: String = get(row, 0, OP)?;
                let n: i64 = get(row, 1, OP)?;
                let n = u64::try_from(n).unwrap_or(0);
                match outcome.as_str() {
                    "same" => report.matched = n,
                    "different" => report.differed = n,
                    "error" => report.errors = n,
                    _ => report.skipped = n,
                }
            }
            report.decided = report.matched + report.differed + report.errors;
            let n = limit(n);
            report.differences = c
                .query(
                    "SELECT event_id, live_plan, shadow_plan, decided_at FROM shadow_decisions
                     WHERE tenant = $1 AND shadow_digest = $2 AND outcome = 'different'
                     ORDER BY decided_at DESC, event_id LIMIT $3",
                    &[&tenant, &shadow_digest, &n],
                )
                .map_err(query)?
                .iter()
                .map(|r| {
                    Ok(ShadowDifference {
                        event_id: get(r, 0, OP)?,
                        live_plan: parse(get(r, 1, OP)?),
                        shadow_plan: parse(get(r, 2, OP)?),
                        decided_at: get(r, 3, OP)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            report.failures = c
                .query(
                    "SELECT event_id, detail FROM shadow_decisions
                     WHERE tenant = $1 AND shadow_digest = $2 AND outcome = 'error'
                     ORDER BY decided_at DESC, event_id LIMIT $3",
                    &[&tenant, &shadow_digest, &n],
                )
                .map_err(query)?
                .iter()
                .map(|r| {
                    Ok(ShadowFailure {
                        event_id: get(r, 0, OP)?,
                        error: get::<Option<String>>(r, 1, OP)?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(report)
        })
    }
}
