//! Manager API reconciliation: polls `calls` and `chats` updated since a
//! persisted cursor and turns what only the final record carries into
//! events.
//!
//! The cursor is `{updated_at, ids}`: the newest `updated_at` stored and
//! the record ids already handled at exactly that time. The query's
//! `updated_at[from]` is inclusive, so a record updated in the same
//! millisecond as the cursor is fetched again and skipped by id, and a
//! record updated later is never missed. Events and the cursor are written
//! in one transaction per page, so a crash between them cannot lose or
//! repeat a record; the inbox's event-id dedupe is a second guard.

use super::ledger::{self, Update};
use super::log::IntakeLog;
use super::normalize;
use crate::connectors::ccai::{CcaiClient, CcaiError, Page};
use crate::phone::Region;
use crate::pipeline::Doorbell;
use crate::store::{Store, StoreError, Wait};

/// The leadership a replica takes to poll a tenant's Manager API.
pub const LEADER_ROLE: &str = "manager-api-poller";
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Why a poll failed. The cursor is left where the last stored page put it.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("manager api poll of {source_name} failed: {error}")]
    Api {
        source_name: &'static str,
        error: CcaiError,
    },
    #[error("manager api poll could not use the store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "manager api poll put off: the intake log has not merged, within {waited:?}, the \
         bodies it acknowledged before the poll (PF6); the next poll tries again"
    )]
    IntakeLogBehind { waited: Duration },
}

/// A poller's position in one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub updated_at: String,
    #[serde(default)]
    pub ids: Vec<u64>,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records read and handled (not skipped by the cursor).
    pub records: usize,
    /// New events stored.
    pub events: usize,
    /// Pages fetched.
    pub pages: usize,
}

impl std::ops::AddAssign for PollReport {
    fn add_assign(&mut self, other: Self) {
        self.records += other.records;
        self.events += other.events;
        self.pages += other.pages;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Calls,
    Chats,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Calls => "manager-calls",
            Self::Chats => "manager-chats",
        }
    }
}

/// One tenant's Manager API poller.
#[derive(Debug, Clone)]
pub struct Poller {
    tenant: String,
    client: CcaiClient,
    store: Store,
    /// Where to start when no cursor is stored yet.
    start_from: DateTime<Utc>,
    /// Page size (max 100).
    per: u32,
    /// Where callers' numbers without a country code are read.
    phone_region: Region,
    /// Tells the pipeline which customers have new events.
    doorbell: Option<Arc<Doorbell>>,
    /// The intake log (PF6) and how long a poll waits for it: a poll's
    /// records are merged only after the bodies the log acknowledged before
    /// the poll began.
    intake_log: Option<(IntakeLog, Duration)>,
}

/// A record of either list, reduced to what the poller needs.
trait Record {
    fn id(&self) -> u64;
    fn updated_at(&self) -> Option<&str>;
    fn update(&self) -> Update;
}

impl Record for crate::connectors::ccai::Call {
    fn id(&self) -> u64 {
        self.id
    }
    fn updated_at(&self) -> Option<&str> {
        self.updated_at.as_deref()
    }
    fn update(&self) -> Update {
        normalize::update_from_call(self)
    }
}

impl Record for crate::connectors::ccai::Chat {
    fn id(&self) -> u64 {
        self.id
    }
    fn updated_at(&self) -> Option<&str> {
        self.updated_at.as_deref()
    }
    fn update(&self) -> Update {
        normalize::update_from_chat(self)
    }
}

impl Poller {
    pub fn new(
        tenant: impl Into<String>,
        client: CcaiClient,
        store: Store,
        start_from: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            client,
            store,
            start_from,
            per: 100,
            phone_region: Region::default(),
            doorbell: None,
            intake_log: None,
        }
    }

    /// Merges each poll's records only after every body `log` acknowledged
    /// before the poll began, waiting up to `wait` for its mover (then the
    /// poll is put off to the next one): a final record read from the API
    /// never overtakes the webhooks that came before it.
    pub fn with_intake_log(mut self, log: IntakeLog, wait: Duration) -> Self {
        self.intake_log = Some((log, wait));
        self
    }

    /// Rings `doorbell` with the customers of every stored page.
    pub fn with_doorbell(mut self, doorbell: Arc<Doorbell>) -> Self {
        self.doorbell = Some(doorbell);
        self
    }

    /// Reads callers' numbers without a country code in `region`.
    pub fn with_phone_region(mut self, region: Region) -> Self {
        self.phone_region = region;
        self
    }

    /// Page size, clamped to the API's 1..=100.
    pub fn with_page_size(mut self, per: u32) -> Self {
        self.per = per.clamp(1, 100);
        self
    }

    /// The stored cursor of `source` (`manager-calls` / `manager-chats`).
    pub fn cursor(&self, source: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self
            .store
            .cursor(&self.tenant, source)?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Polls calls, then chats, once; with the intake log, only once it has
    /// merged every body it acknowledged before now.
    pub async fn poll_once(&self) -> Result<PollReport, PollError> {
        if let Some((log, wait)) = &self.intake_log {
            if !log.wait_merged(log.end(), *wait).await {
                return Err(PollError::IntakeLogBehind { waited: *wait });
            }
        }
        let mut report = self.poll(Source::Calls).await?;
        report += self.poll(Source::Chats).await?;
        Ok(report)
    }

    /// Polls every `interval` until `shutdown` turns true, when this replica
    /// leads the tenant's polling. Errors are logged
    /// and retried at the next tick (the client already retried transient ones).
    pub async fn run(self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    // With replicas, one polls each tenant: the leader.
                    match self.store.lead(&self.tenant, LEADER_ROLE) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(error) => {
                            tracing::warn!(tenant = %self.tenant, %error, "manager api poll skipped: leadership unknown");
                            continue;
                        }
                    }
                    match self.poll_once().await {
                        Ok(report) => tracing::debug!(tenant = %self.tenant, ?report, "manager api poll"),
                        Err(error) => tracing::warn!(tenant = %self.tenant, %error, "manager api poll failed"),
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    async fn fetch(
        &self,
        source: Source,
        from: DateTime<Utc>,
        page: u32,
        next: Option<&str>,
    ) -> Result<Page<Box<dyn RecordBox>>, CcaiError> {
        Ok(match (source, next) {
            (Source::Calls, Some(link)) => boxed(
                self.client
                    .next_page::<crate::connectors::ccai::Call>("calls", link)
                    .await?,
            ),
            (Source::Calls, None) => boxed(
                self.client
                    .calls_updated_since(Some(from), page, self.per)
                    .await?,
            ),
            (Source::Chats, Some(link)) => boxed(
                self.client
                    .next_page::<crate::connectors::ccai::Chat>("chats", link)
                    .await?,
            ),
            (Source::Chats, None) => boxed(
                self.client
                    .chats_updated_since(Some(from), page, self.per)
                    .await?,
            ),
        })
    }

    async fn poll(&self, source: Source) -> Result<PollReport, PollError> {
        let name = source.name();
        let api = |error| PollError::Api {
            source_name: name,
            error,
        };
        let start = self.cursor(name)?;
        let mut cursor = start.clone().unwrap_or_else(|| Cursor {
            updated_at: normalize::iso(self.start_from),
            ids: Vec::new(),
        });
        let from = normalize::parse_time(&cursor.updated_at).unwrap_or(self.start_from);
        let mut report = PollReport::default();
        let mut page_number = 1;
        let mut next: Option<String> = None;
        let mut seen_total = 0usize;
        loop {
            let page = self
                .fetch(source, from, page_number, next.as_deref())
                .await
                .map_err(api)?;
            report.pages += 1;
            seen_total += page.items.len();
            let mut updates = Vec::new();
            for record in &page.items {
                let Some(updated) = record.updated_at().and_then(normalize::parse_time) else {
                    tracing::warn!(tenant = %self.tenant, id = record.id(), "{name} record without updated_at skipped");
                    continue;
                };
                let cursor_at =
                    normalize::parse_time(&cursor.updated_at).unwrap_or(self.start_from);
                if updated < cursor_at
                    || (updated == cursor_at && cursor.ids.contains(&record.id()))
                {
                    continue;
                }
                updates.push(record.update());
                report.records += 1;
                if updated > cursor_at {
                    cursor = Cursor {
                        updated_at: normalize::iso(updated),
                        ids: vec![record.id()],
                    };
                } else {
                    cursor.ids.push(record.id());
                }
            }
            let value = serde_json::to_string(&cursor).unwrap_or_default();
            let stored = ledger::reconcile(
                &self.store,
                &self.tenant,
                self.phone_region,
                "manager-api",
                updates,
                Some((name, &value)),
            )?;
            self.store.durable(Wait::Prompt).await?;
            report.events += stored.new;
            if let Some(doorbell) = &self.doorbell {
                for row in &stored.events {
                    doorbell.ring(&row.tenant, &row.customer_key);
                }
            }
            if page.items.is_empty() {
                break;
            }
            let more_by_total =
                page.total.is_some_and(|t| (seen_total as u64) < t) && !page.items.is_empty();
            match page.next {
                Some(link) => next = Some(link),
                None if more_by_total => {
                    next = None;
                    page_number += 1;
                }
                None => break,
            }
            if next.is_some() {
                page_number += 1;
            }
        }
        Ok(report)
    }
}

/// Object-safe view of a record so both lists share one loop.
trait RecordBox: Send + Sync {
    fn id(&self) -> u64;
    fn updated_at(&self) -> Option<&str>;
    fn update(&self) -> Update;
}

impl<T: Record + Send + Sync> RecordBox for T {
    fn id(&self) -> u64 {
        Record::id(self)
    }
    fn updated_at(&self) -> Option<&str> {
        Record::updated_at(self)
    }
    fn update(&self) -> Update {
        Record::update(self)
    }
}

fn boxed<T: Record + Send + Sync + 'static>(page: Page<T>) -> Page<Box<dyn RecordBox>> {
    Page {
        items: page
            .items
            .into_iter()
            .map(|r| Box::new(r) as Box<dyn RecordBox>)
            .collect(),
        total: page.total,
        per_page: page.per_page,
        next: page.next,
    }
}
