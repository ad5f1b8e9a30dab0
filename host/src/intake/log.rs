//! The intake log (PF6): on SQLite, a session-events POST or a verified chat
//! webhook is answered once its body is appended to a file of its own, apart
//! from the store's lock, commits and checkpoints; one mover merges the logged
//! bodies into the store in order, as the intake would have.
//!
//! # Files
//! Segments `<dir>/<number>.log`, numbered upwards; each start of the
//! process writes a new one, and a segment past [`SEGMENT_BYTES`] is closed
//! for the next. A record is framed as `length (u32 LE) | CRC-32 (u32 LE) |
//! payload`, the payload `kind (u8) | tenant length (u16 LE) | tenant |
//! received at (i64 LE, epoch ms) | body`: the request's body exactly as CCAI
//! Platform sent it, so a later build merges it the same way.
//!
//! # Durability
//! A record is written with one `write` before the 2xx: like the store's
//! commits (WAL, `synchronous = NORMAL`), it survives the process being
//! killed, not the machine losing power. The mover saves the position after
//! each body it merges with the body's merge (a cursor, in the same
//! transaction), and deletes a segment only once everything in it is merged
//! and committed. After a crash it starts from the saved position, so a body
//! is merged once more at most, which changes nothing (the session ledger
//! derives each transition once). A record cut short at the end of a closed
//! segment was never answered (the crash came before its 2xx): it is skipped,
//! counted in `switchboard_intake_log_dropped_bytes_total`.
//!
//! # Parsed once
//! The handler parses a session-events body to check it before logging it;
//! it hands the updates it read to the mover with the record, in memory
//! (at most 256 records), so that the mover does not parse the
//! body again. The body in the file stays what a merge after a restart reads.
//!
//! # Bounds
//! When more than the configured limit waits to be merged (the store is
//! failing), the intake answers 503 instead of appending.
//!
//! # Order with the Manager API
//! The poller writes to the store directly, so it waits first
//! ([`IntakeLog::wait_merged`] up to [`IntakeLog::end`]) until every body
//! acknowledged before the poll began is merged: a final record read from
//! the API never overtakes the webhooks that came before it.

use super::item::{ChatWebhook, SessionEventBatch};
use super::normalize::Update;
use super::{ledger, normalize, IntakeState};
use crate::store::{Store, StoreError, Wait};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// A segment past this size is closed; the next record starts another.
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// The cursor the mover saves its position under, per tenant.
pub const CURSOR: &str = "intake-log";

/// Bodies merged per pass before the mover waits for their commit.
const PASS_RECORDS: usize = 512;

/// Bytes a pass reads from a segment at a time (more for a larger record),
/// so that a long backlog is not read again whole at every pass.
const READ_BYTES: u64 = 1 << 20;

/// Records whose parsed updates wait in memory for the mover; past it, a
/// record's body is parsed again when merged.
const HANDED_MAX: usize = 256;

/// How often [`IntakeLog::wait_merged`] looks at the mover's progress.
const MERGED_LOOK: Duration = Duration::from_millis(5);

const HEADER: usize = 8;

/// Why the log could not take or give a record.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("intake log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the intake log holds {unmoved} bytes not yet merged into the store \
         (limit {limit}); retry"
    )]
    Full { unmoved: u64, limit: u64 },
    #[error("a request body of {0} bytes is too large for the intake log")]
    TooLarge(usize),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the mover is: the next byte to merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

impl Position {
    fn text(self) -> String {
        format!("{}:{}", self.segment, self.offset)
    }

    fn parse(text: &str) -> Option<Self> {
        let (segment, offset) = text.split_once(':')?;
        Some(Self {
            segment: segment.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session-events POST's body.
    SessionEvents,
    /// A chat webhook's body, its signature verified and not a replay.
    ChatWebhook,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::SessionEvents => 1,
            Kind::ChatWebhook => 2,
        }
    }

    fn of(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Kind::SessionEvents),
            2 => Some(Kind::ChatWebhook),
            _ => None,
        }
    }
}

/// One logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: Kind,
    pub tenant: &'a str,
    /// When the intake received it (epoch milliseconds): a chat webhook
    /// without a time of its own is dated by it, as on the direct path.
    pub received_at_ms: i64,
    /// The request's body as sent.
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// A session-events body for `tenant`, received now.
    fn session_events(tenant: &'a str, body: &'a [u8]) -> Self {
        Self {
            kind: Kind::SessionEvents,
            tenant,
            received_at_ms: chrono::Utc::now().timestamp_millis(),
            body,
        }
    }
}

/// One record read back.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded<'a> {
    /// A whole record of `size` bytes, frame included.
    Record { record: Record<'a>, size: usize },
    /// The bytes end before the record does.
    Incomplete,
    /// The record's checksum, kind or tenant does not hold.
    Corrupt,
}

/// Bytes of a payload before the tenant: kind (1), tenant length (2).
const PREFIX: usize = 3;

/// The framed record: `length | CRC-32 | kind | tenant length | tenant |
/// received at | body`, integers little-endian.
pub(crate) fn encode(record: &Record<'_>) -> Result<Vec<u8>, LogError> {
    let too_large = || LogError::TooLarge(record.body.len());
    let tenant_len = u16::try_from(record.tenant.len()).map_err(|_| too_large())?;
    let payload_len = PREFIX + record.tenant.len() + 8 + record.body.len();
    let len = u32::try_from(payload_len).map_err(|_| too_large())?;
    let mut frame = Vec::with_capacity(HEADER + payload_len);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.push(record.kind.byte());
    frame.extend_from_slice(&tenant_len.to_le_bytes());
    frame.extend_from_slice(record.tenant.as_bytes());
    frame.extend_from_slice(&record.received_at_ms.to_le_bytes());
    frame.extend_from_slice(record.body);
    let crc = crc32fast::hash(&frame[HEADER..]);
    frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

/// The record at the start of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    let Some(header) = bytes.get(..HEADER) else {
        return Decoded::Incomplete;
    };
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (len, crc) = (word(0) as usize, word(4));
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Decoded::Incomplete;
    };
    if len < PREFIX || crc32fast::hash(payload) != crc {
        return Decoded::Corrupt;
    }
    let Some(kind) = Kind::of(payload[0]) else {
        return Decoded::Corrupt;
    };
    let tenant_end = PREFIX + usize::from(u16::from_le_bytes([payload[1], payload[2]]));
    let Some(Ok(tenant)) = payload.get(PREFIX..tenant_end).map(std::str::from_utf8) else {
        return Decoded::Corrupt;
    };
    let Some(Ok(at)) = payload
        .get(tenant_end..tenant_end + 8)
        .map(<[u8; 8]>::try_from)
    else {
        return Decoded::Corrupt;
    };
    Decoded::Record {
        record: Record {
            kind,
            tenant,
            received_at_ms: i64::from_le_bytes(at),
            body: &payload[tenant_end + 8..],
        },
        size: HEADER + len,
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016}.log"))
}

/// The segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        found.extend(number);
    }
    found.sort_unstable();
    Ok(found)
}

/// The segment records are appended to.
struct Writer {
    file: File,
    segment: u64,
    len: u64,
}

impl Writer {
    /// Where the next record goes.
    fn end(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.len,
        }
    }
}

struct Shared {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// The writer's segment: the mover waits at its end instead of skipping.
    live: AtomicU64,
    /// Set by the mover when the live segment holds a corrupt record: the
    /// next append starts another segment, so the rest can be skipped.
    rotate: AtomicBool,
    /// Bytes appended and not yet merged (set by the mover after each pass).
    unmoved: AtomicU64,
    /// Everything before it is merged and committed (set by the mover).
    merged: Mutex<Position>,
    limit: u64,
    /// The mover's thread, woken by each append.
    mover: OnceLock<std::thread::Thread>,
    /// Session events the handler parsed, by the position of their record.
    handed: Mutex<HashMap<Position, Vec<Update>>>,
}

impl Shared {
    fn handed_map(&self) -> std::sync::MutexGuard<'_, HashMap<Position, Vec<Update>>> {
        self.handed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The intake log. Cheap to clone.
#[derive(Clone)]
pub struct IntakeLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for IntakeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeLog")
            .field("dir", &self.shared.dir)
            .field("unmoved", &self.unmoved())
            .finish_non_exhaustive()
    }
}

fn open_segment(dir: &Path, segment: u64) -> Result<File, LogError> {
    let path = segment_path(dir, segment);
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))
}

impl IntakeLog {
    /// Opens the log in `dir` (created if missing) and starts a new segment
    /// after those left by earlier runs; more than `limit` bytes waiting to
    /// be merged refuses appends.
    pub fn open(dir: &Path, limit: u64) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let existing = segments(dir)?;
        let mut waiting = 0;
        for segment in &existing {
            let path = segment_path(dir, *segment);
            waiting += std::fs::metadata(&path).map_err(io(&path))?.len();
        }
        let segment = existing.last().map_or(1, |last| last + 1);
        let file = open_segment(dir, segment)?;
        Ok(Self {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                writer: Mutex::new(Writer {
                    file,
                    segment,
                    len: 0,
                }),
                live: AtomicU64::new(segment),
                rotate: AtomicBool::new(false),
                unmoved: AtomicU64::new(waiting),
                merged: Mutex::new(Position::default()),
                limit,
                mover: OnceLock::new(),
                handed: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Bytes appended and not merged yet, as of the mover's last pass.
    pub fn unmoved(&self) -> u64 {
        self.shared.unmoved.load(Ordering::Relaxed)
    }

    /// Wakes the mover (it also looks on its own, every 200 ms).
    pub fn wake(&self) {
        if let Some(mover) = self.shared.mover.get() {
            mover.unpark();
        }
    }

    /// Where the next append goes: every body appended so far lies before
    /// it.
    pub fn end(&self) -> Position {
        self.shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .end()
    }

    /// Whether every body before `end` (an earlier [`IntakeLog::end`]) is
    /// merged into the store and committed.
    pub fn merged_through(&self, end: Position) -> bool {
        *self
            .shared
            .merged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            >= end
    }

    /// Set by the mover: everything before `position` is merged and
    /// committed.
    fn set_merged(&self, position: Position) {
        *self
            .shared
            .merged
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = position;
    }

    /// Waits until every body before `end` is merged and committed, looking
    /// every few milliseconds; `false` if that takes longer than `wait`.
    pub async fn wait_merged(&self, end: Position, wait: Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            if self.merged_through(end) {
                return true;
            }
            if started.elapsed() >= wait {
                return false;
            }
            self.wake();
            tokio::time::sleep(MERGED_LOOK).await;
        }
    }

    /// Appends a session-events body for `tenant` (see [`IntakeLog::append_record`]).
    pub fn append(&self, tenant: &str, body: &[u8]) -> Result<(), LogError> {
        self.append_handing(&Record::session_events(tenant, body), None)
    }

    /// Appends a session-events body for `tenant` with the updates read
    /// from it, which the mover then merges without parsing the body again
    /// (see the module's "Parsed once").
    pub fn append_parsed(
        &self,
        tenant: &str,
        body: &[u8],
        updates: Vec<Update>,
    ) -> Result<(), LogError> {
        self.append_handing(&Record::session_events(tenant, body), Some(updates))
    }

    /// Appends `record`; once this returns, it is in the file (see the
    /// module's "Durability").
    pub fn append_record(&self, record: &Record<'_>) -> Result<(), LogError> {
        self.append_handing(record, None)
    }

    /// Records handed to the mover and not merged yet.
    pub fn handed(&self) -> usize {
        self.shared.handed_map().len()
    }

    fn append_handing(
        &self,
        record: &Record<'_>,
        updates: Option<Vec<Update>>,
    ) -> Result<(), LogError> {
        let shared = &self.shared;
        let unmoved = shared.unmoved.load(Ordering::Relaxed);
        if unmoved > shared.limit {
            return Err(LogError::Full {
                unmoved,
                limit: shared.limit,
            });
        }
        let frame = encode(record)?;
        {
            let mut writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if writer.len >= SEGMENT_BYTES || shared.rotate.swap(false, Ordering::AcqRel) {
                let segment = writer.segment + 1;
                let file = open_segment(&shared.dir, segment)?;
                *writer = Writer {
                    file,
                    segment,
                    len: 0,
                };
                shared.live.store(segment, Ordering::Release);
            }
            // Handed over before the record is written, so that the mover
            // finds it whenever it reads the record.
            let at = writer.end();
            if let Some(updates) = updates {
                let mut handed = shared.handed_map();
                if handed.len() < HANDED_MAX {
                    handed.insert(at, updates);
                }
            }
            if let Err(error) = writer.file.write_all(&frame) {
                shared.handed_map().remove(&at);
                // Cut back what part of the record made it, so the next
                // record starts where this one did; failing that, the next
                // append starts another segment and this one's end is
                // skipped as torn.
                let len = writer.len;
                if writer.file.set_len(len).is_err() {
                    shared.rotate.store(true, Ordering::Release);
                }
                return Err(io(&segment_path(&shared.dir, writer.segment))(error));
            }
            writer.len += frame.len() as u64;
        }
        shared
            .unmoved
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.wake();
        Ok(())
    }
}

/// Merges the logged bodies into the store, in order.
pub struct Mover {
    log: IntakeLog,
    intake: IntakeState,
    position: Position,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Bodies merged.
    pub merged: usize,
    /// Bytes skipped as torn or corrupt.
    pub dropped: u64,
}

impl Mover {
    /// A mover for `log` into `intake`'s store, starting from the position
    /// its tenants' cursors saved.
    pub fn new(log: IntakeLog, intake: IntakeState) -> Result<Self, StoreError> {
        let position = saved_position(&intake)?;
        log.set_merged(position);
        Ok(Self {
            position,
            log,
            intake,
        })
    }

    /// The log it merges.
    pub fn log(&self) -> &IntakeLog {
        &self.log
    }

    /// Where the next pass starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Merges what was appended since the last pass (up to a bound) and,
    /// once `committed` says the store committed it, deletes the segments
    /// wholly merged.
    pub fn pass(
        &mut self,
        committed: &dyn Fn(&Store) -> Result<(), StoreError>,
    ) -> Result<Pass, MoveError> {
        let mut done = Pass::default();
        let dir = self.log.shared.dir.clone();
        let segments = segments(&dir)?;
        let first = self.position.segment;
        for &segment in segments.iter().filter(|s| **s >= first) {
            if segment > self.position.segment {
                self.position = Position { segment, offset: 0 };
            }
            // Read whether the segment is closed before its bytes: a closed
            // segment's bytes are final, the live one's may grow meanwhile.
            let live = segment >= self.log.shared.live.load(Ordering::Acquire);
            self.merge_segment(&segment_path(&dir, segment), segment, live, &mut done)?;
            if live || done.merged >= PASS_RECORDS {
                break;
            }
        }
        if done.merged > 0 {
            committed(&self.intake.store)?;
        }
        self.log.set_merged(self.position);
        // Records skipped as torn or corrupt leave nothing handed behind.
        let position = self.position;
        self.log.shared.handed_map().retain(|at, _| *at >= position);
        // Everything before the position is merged and committed.
        for &segment in segments.iter().filter(|s| **s < self.position.segment) {
            let path = segment_path(&dir, segment);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        let unmoved = self.unmoved(&segments)?;
        self.log.shared.unmoved.store(unmoved, Ordering::Relaxed);
        metrics::gauge!("switchboard_intake_log_unmoved_bytes").set(unmoved as f64);
        Ok(done)
    }

    /// Merges the records of `segment` from the position on, a read of
    /// [`READ_BYTES`] at a time, until its end, a record not whole yet, or
    /// the pass's bound.
    fn merge_segment(
        &mut self,
        path: &Path,
        segment: u64,
        live: bool,
        done: &mut Pass,
    ) -> Result<(), MoveError> {
        let mut limit = READ_BYTES;
        loop {
            let start = self.position.offset;
            let (bytes, end) = read_from(path, start, limit)?;
            let whole = start + bytes.len() as u64 >= end;
            let mut at = 0;
            let mut more = false;
            while done.merged < PASS_RECORDS {
                match decode(&bytes[at..]) {
                    Decoded::Record { record, size } => {
                        at += size;
                        let after = Position {
                            segment,
                            offset: start + at as u64,
                        };
                        self.merge(&record, self.position, after)?;
                        self.position = after;
                        done.merged += 1;
                    }
                    // The read stopped short of the segment's end.
                    Decoded::Incomplete if !whole => {
                        more = true;
                        break;
                    }
                    Decoded::Incomplete if at == bytes.len() => break,
                    Decoded::Incomplete | Decoded::Corrupt if !live => {
                        let dropped = end.saturating_sub(self.position.offset);
                        tracing::error!(
                            segment = %path.display(),
                            offset = self.position.offset,
                            dropped,
                            "intake log: a record cut short or corrupt at the end of a \
                             segment (a write the process did not finish, never answered \
                             2xx); skipped"
                        );
                        metrics::counter!("switchboard_intake_log_dropped_bytes_total")
                            .increment(dropped);
                        done.dropped += dropped;
                        self.position.offset += dropped;
                        break;
                    }
                    // The live segment: wait for the rest of the record.
                    Decoded::Incomplete => break,
                    Decoded::Corrupt => {
                        // The live segment holds a record that will never
                        // read: the writer moves on to another segment, and
                        // the rest of this one is skipped once it is closed.
                        self.log.shared.rotate.store(true, Ordering::Release);
                        break;
                    }
                }
            }
            if !more || done.merged >= PASS_RECORDS {
                break;
            }
            // Read on; twice as far if not even one record fitted.
            limit = if at == 0 {
                limit.saturating_mul(2)
            } else {
                READ_BYTES
            };
        }
        Ok(())
    }

    /// Bytes from the position to the end of the log.
    fn unmoved(&self, segments: &[u64]) -> Result<u64, LogError> {
        let mut total = 0;
        for &segment in segments.iter().filter(|s| **s >= self.position.segment) {
            let path = segment_path(&self.log.shared.dir, segment);
            let len = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io(&path)(e)),
            };
            total += if segment == self.position.segment {
                len.saturating_sub(self.position.offset)
            } else {
                len
            };
        }
        Ok(total)
    }

    /// Merges one logged request (at `at`) as the intake would have,
    /// saving `after`.
    fn merge(&self, record: &Record<'_>, at: Position, after: Position) -> Result<(), StoreError> {
        let handed = self.log.shared.handed_map().remove(&at);
        let tenant = record.tenant;
        let Some(intake) = self.intake.tenants.get(tenant) else {
            tracing::warn!(
                tenant,
                "intake log: a body for a tenant no longer configured; skipped"
            );
            return Ok(());
        };
        let position = after.text();
        let cursor = Some((CURSOR, position.as_str()));
        let stored = match record.kind {
            Kind::SessionEvents => {
                let updates = match handed {
                    Some(updates) => updates,
                    None => match parsed::<SessionEventBatch>(tenant, record.body) {
                        Some(batch) => normalize::batch_updates(batch),
                        None => return Ok(()),
                    },
                };
                ledger::reconcile(
                    &self.intake.store,
                    tenant,
                    intake.phone_region,
                    "session-events",
                    updates,
                    cursor,
                )?
            }
            Kind::ChatWebhook => {
                let Some(hook) = parsed::<ChatWebhook>(tenant, record.body) else {
                    return Ok(());
                };
                let received = DateTime::<Utc>::from_timestamp_millis(record.received_at_ms)
                    .unwrap_or_else(Utc::now);
                ledger::reconcile_webhook(
                    &self.intake.store,
                    tenant,
                    intake.phone_region,
                    &hook,
                    received,
                    cursor,
                )?
            }
        };
        self.intake.ring(&stored.events);
        Ok(())
    }

    /// Moves bodies until `stop` is set, then once more; waits for appends
    /// in between. Runs on a thread of its own (blocking: it uses the
    /// store's connection), `runtime` waiting for the store's commits. With
    /// `drain`, for a log nobody appends to any more, it also returns once
    /// everything is merged (a pass merged nothing and nothing waits).
    pub fn run(mut self, stop: &AtomicBool, runtime: &tokio::runtime::Handle, drain: bool) {
        // One mover per log: a second one would not be woken by appends.
        let _ = self.log.shared.mover.set(std::thread::current());
        let committed = |store: &Store| runtime.block_on(store.durable(Wait::Shared));
        let mut failures = 0u32;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            match self.pass(&committed) {
                Ok(pass) => {
                    failures = 0;
                    if pass.merged >= PASS_RECORDS {
                        continue;
                    }
                    if drain && pass.merged == 0 && self.log.unmoved() == 0 {
                        return;
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "intake log: merging into the store failed; retrying");
                    // What was merged since the last commit may be lost:
                    // start again from what the store saved.
                    match saved_position(&self.intake) {
                        Ok(saved) => self.position = saved,
                        Err(error) => {
                            tracing::warn!(%error, "intake log: cannot read the saved position")
                        }
                    }
                    std::thread::park_timeout(Duration::from_millis(
                        100 * u64::from(failures.min(50)),
                    ));
                    if !stopping {
                        continue;
                    }
                }
            }
            if stopping {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(200));
        }
    }
}

/// The furthest position the tenants' cursors saved: bodies are merged in
/// order, so everything before it is merged.
fn saved_position(intake: &IntakeState) -> Result<Position, StoreError> {
    let mut position = Position::default();
    for tenant in intake.tenants.keys() {
        if let Some(saved) = intake.store.cursor(tenant, CURSOR)? {
            position = position.max(Position::parse(&saved).unwrap_or_default());
        }
    }
    Ok(position)
}

/// A logged body, parsed. It was checked before it was logged, so only
/// another build's log could hold one that does not parse: that one is
/// logged and skipped.
fn parsed<T: serde::de::DeserializeOwned>(tenant: &str, body: &[u8]) -> Option<T> {
    crate::connectors::json_from_bytes(body)
        .map_err(|error| {
            tracing::error!(tenant, %error, "intake log: a body that does not parse; skipped");
        })
        .ok()
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Up to `limit` bytes of `path` from `offset`, and the file's length
/// before they were read (no bytes if it is gone).
fn read_from(path: &Path, offset: u64, limit: u64) -> Result<(Vec<u8>, u64), LogError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(io(path)(e)),
    };
    let end = file.metadata().map_err(io(path))?.len();
    file.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    let mut bytes = Vec::with_capacity(end.saturating_sub(offset).min(limit) as usize);
    file.take(limit).read_to_end(&mut bytes).map_err(io(path))?;
    Ok((bytes, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session_events<'a>(tenant: &'a str, body: &'a [u8]) -> Record<'a> {
        Record {
            kind: Kind::SessionEvents,
            tenant,
            received_at_ms: 0,
            body,
        }
    }

    #[test]
    fn pf6_a_record_reads_back_and_every_shorter_prefix_is_incomplete() {
        let record = Record {
            kind: Kind::ChatWebhook,
            tenant: "acme",
            received_at_ms: 1_768_467_600_000,
            body: br#"{"events":[]}"#,
        };
        let frame = encode(&record).expect("encode");
        assert_eq!(
            decode(&frame),
            Decoded::Record {
                record,
                size: frame.len()
            }
        );
        for cut in 0..frame.len() {
            assert_eq!(decode(&frame[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn pf6_a_changed_byte_is_corrupt() {
        let frame = encode(&session_events("acme", b"body")).expect("encode");
        for at in 4..frame.len() {
            let mut changed = frame.clone();
            changed[at] ^= 0x20;
            assert_eq!(decode(&changed), Decoded::Corrupt, "byte {at}");
        }
    }

    #[test]
    fn pf6_positions_read_back_and_order_by_segment_then_offset() {
        let p = Position {
            segment: 3,
            offset: 4096,
        };
        assert_eq!(Position::parse(&p.text()), Some(p));
        assert_eq!(Position::parse("3"), None);
        assert_eq!(Position::parse("x:1"), None);
        assert!(
            Position {
                segment: 2,
                offset: 9_999
            } < p
        );
    }

    proptest! {
        /// Whatever the records and wherever a crash cut the file, reading
        /// it back gives exactly the records written whole, in order, and
        /// then stops.
        #[test]
        fn pf6_a_cut_log_reads_back_as_the_records_written_whole(
            records in prop::collection::vec(("[a-z]{1,8}", prop::collection::vec(any::<u8>(), 0..64)), 0..12),
            cut_from_end in 0usize..80,
        ) {
            let mut file = Vec::new();
            let mut ends = Vec::new();
            for (tenant, body) in &records {
                file.extend(encode(&session_events(tenant, body)).expect("encode"));
                ends.push(file.len());
            }
            let cut = file.len().saturating_sub(cut_from_end);
            let file = &file[..cut];
            let mut at = 0;
            let mut read = Vec::new();
            while let Decoded::Record { record, size } = decode(&file[at..]) {
                read.push((record.tenant.to_string(), record.body.to_vec()));
                at += size;
            }
            let whole = ends.iter().filter(|end| **end <= cut).count();
            prop_assert_eq!(&read[..], &records[..whole]);
            prop_assert_eq!(decode(&file[at..]), Decoded::Incomplete);
        }
    }

    #[test]
    fn pf6_appends_past_the_bound_are_refused_and_each_start_opens_a_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = IntakeLog::open(dir.path(), 10).expect("open");
        log.append("acme", b"first").expect("room for one");
        assert!(log.unmoved() > 10);
        let refused = log.append("acme", b"second").expect_err("past the bound");
        assert!(
            refused.to_string().contains("not yet merged") && refused.to_string().contains("retry"),
            "{refused}"
        );
        drop(log);
        let again = IntakeLog::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(segments(dir.path()).expect("list"), [1, 2]);
        assert!(again.unmoved() > 0, "the first run's record waits");
    }
}
