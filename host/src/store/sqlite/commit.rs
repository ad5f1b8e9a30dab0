//! Group commit: the writes of many callers share one SQLite transaction.
//!
//! A write opens the connection's group transaction if none is open
//! (`BEGIN IMMEDIATE`) and runs its statements inside it, each caller's
//! several statements inside a savepoint of their own. The committer thread
//! commits the group shortly after it opens, at most once every gap (below):
//! under load the writes of every event, intake batch and settle that
//! arrive in that gap share one commit, and so share the WAL pages they
//! dirty (the inbox's and the outcomes' newest pages, the database header).
//! Idle, a write is committed about one gap after it ran.
//!
//! A caller that must not go on until its writes are durable waits on
//! [`Group::durable`], saying how soon ([`Wait`]): the intake, whose client
//! waits for the 2xx, has the group committed [`COMMIT_GAP`] after the
//! previous commit; the pipeline, which only holds its own next step (the
//! first write to Kustomer), lets it wait up to [`SHARED_COMMIT_GAP`], so
//! that the events applied meanwhile share the commit and the pages it
//! writes. Everybody else returns at once, and a crash in the gap only loses
//! writes that are re-derived when the event runs again (OP2).

use super::{Cached as _, StoreError};
use crate::store::Wait;
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The shortest time between two commits of the group transaction, when
/// the intake waits for one.
pub const COMMIT_GAP: Duration = Duration::from_millis(1);

/// The time between two commits when only the sidecar's own work waits
/// (or nobody does).
pub const SHARED_COMMIT_GAP: Duration = Duration::from_millis(5);

/// Told once the group transaction a caller waited on committed, or why not.
type Waiter = oneshot::Sender<Result<(), String>>;

/// The connection and the group transaction open on it.
pub struct Conn {
    db: Connection,
    /// `Some` while a group transaction is open: who waits for its commit.
    open: Option<Vec<Waiter>>,
    /// Group transactions committed so far.
    commits: u64,
    /// Set by the background checkpoints once the write-ahead log is long:
    /// the next commit finishes the checkpoint (see [`Conn::after_commit`]).
    restart: Arc<AtomicBool>,
    /// Times the whole log was copied between two group transactions, so
    /// that the next one starts it again from its beginning.
    restarts: u64,
}

impl std::ops::Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.db
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.db
    }
}

impl Conn {
    /// Commits the group transaction, if one is open. Returns the result
    /// and who waited for it.
    fn commit(&mut self) -> (Result<(), String>, Vec<Waiter>) {
        let Some(waiters) = self.open.take() else {
            return (Ok(()), Vec::new());
        };
        if self.db.is_autocommit() {
            // SQLite rolled the whole transaction back by itself (an I/O
            // error, a full disk): what it held is gone.
            return (Err(LOST.into()), waiters);
        }
        let result = self.db.run("COMMIT", []).map(drop).map_err(|e| {
            if !self.db.is_autocommit() {
                let _ = self.db.execute_batch("ROLLBACK");
            }
            format!("commit: {e}")
        });
        if result.is_ok() {
            self.commits += 1;
        }
        (result, waiters)
    }

    /// Once the write-ahead log is long (the background checkpoints say
    /// so), copies into the database what they have not copied yet, between
    /// two group transactions. Only then does the next transaction start
    /// the log from its beginning: under a steady load the background
    /// checkpoints always lag a few commits behind, and the log would grow
    /// up to SQLite's own backstop, which then checkpoints inline after
    /// every commit. What is left to copy is a few milliseconds of writes.
    fn after_commit(&mut self) {
        if self.open.is_some() || !self.restart.swap(false, Ordering::AcqRel) {
            return;
        }
        match self
            .db
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            }) {
            Ok((log, copied)) if log == copied => self.restarts += 1,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the store's checkpoint failed"),
        }
    }
}

const LOST: &str = "the store's transaction was rolled back by SQLite";

/// The connection, shared with the committer thread.
pub struct Group {
    conn: Arc<Mutex<Conn>>,
    committer: Committer,
    /// Set while somebody waits with [`Wait::Prompt`]; cleared by the
    /// commit that answers them.
    prompt: Arc<AtomicBool>,
}

impl Group {
    /// Starts the committer thread for `db`; a commit nobody waits for
    /// promptly comes `shared_gap` after the previous one.
    pub fn start(db: Connection, shared_gap: Duration) -> Result<Self, StoreError> {
        let conn = Arc::new(Mutex::new(Conn {
            db,
            open: None,
            commits: 0,
            restart: Arc::new(AtomicBool::new(false)),
            restarts: 0,
        }));
        let prompt = Arc::new(AtomicBool::new(false));
        let committer = Committer::spawn(conn.clone(), prompt.clone(), shared_gap)?;
        Ok(Self {
            conn,
            committer,
            prompt,
        })
    }

    /// The connection, for reads: inside the group transaction when one is
    /// open (so a read sees every write before it), on its own otherwise.
    /// A poisoned lock only means another thread panicked mid-statement;
    /// SQLite rolled that statement back, so the connection is still
    /// consistent and we keep using it.
    pub fn conn(&self) -> MutexGuard<'_, Conn> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection, for writes: inside the group transaction, opened if
    /// none is.
    pub fn write(&self) -> Result<MutexGuard<'_, Conn>, StoreError> {
        let mut conn = self.conn();
        if conn.open.is_some() && conn.db.is_autocommit() {
            // Rolled back by SQLite since it opened: its waiters learn it now.
            for waiter in conn.open.take().unwrap_or_default() {
                let _ = waiter.send(Err(LOST.into()));
            }
        }
        if conn.open.is_none() {
            conn.db
                .run("BEGIN IMMEDIATE", [])
                .map_err(|e| StoreError::query("begin", e))?;
            conn.open = Some(Vec::new());
            self.committer.thread.unpark();
        }
        Ok(conn)
    }

    /// Resolves once every write made before the call is committed, as
    /// soon as `wait` asks.
    pub fn durable(&self, wait: Wait) -> oneshot::Receiver<Result<(), String>> {
        let (tell, told) = oneshot::channel();
        let mut conn = self.conn();
        match conn.open.as_mut() {
            Some(waiters) => {
                waiters.push(tell);
                if wait == Wait::Prompt {
                    self.prompt.store(true, Ordering::Release);
                }
                self.committer.thread.unpark();
            }
            None => {
                let _ = tell.send(Ok(()));
            }
        }
        told
    }

    /// Group transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.conn().commits
    }

    /// Times the whole write-ahead log was copied between two group
    /// transactions, so that the next one started it again (unless a reader
    /// still held an older snapshot).
    pub fn wal_restarts(&self) -> u64 {
        self.conn().restarts
    }

    /// What the background checkpoints set once the write-ahead log is long.
    pub fn restart_flag(&self) -> Arc<AtomicBool> {
        self.conn().restart.clone()
    }

    /// Commits now, on the calling thread.
    pub fn commit_now(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let (result, waiters) = conn.commit();
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
        conn.after_commit();
        result.map_err(StoreError::Commit)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.committer.stop.store(true, Ordering::Release);
        self.committer.thread.unpark();
        if let Some(handle) = self.committer.handle.take() {
            let _ = handle.join();
        }
        // The committer commits before it stops; this covers a committer
        // that died.
        if let Err(error) = self.commit_now() {
            tracing::warn!(%error, "the store's last writes could not be committed");
        }
    }
}

/// The committer thread.
struct Committer {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    fn spawn(
        conn: Arc<Mutex<Conn>>,
        prompt: Arc<AtomicBool>,
        shared_gap: Duration,
    ) -> Result<Self, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    // Woken when a group transaction opens or somebody
                    // waits on one.
                    std::thread::park();
                    // Let the writes of the next moment join this commit;
                    // a prompt waiter arriving meanwhile (it unparks this
                    // thread) shortens the gap.
                    while !stopping.load(Ordering::Acquire) {
                        let gap = if prompt.load(Ordering::Acquire) {
                            COMMIT_GAP
                        } else {
                            shared_gap
                        };
                        match gap.checked_sub(last.elapsed()) {
                            Some(rest) if !rest.is_zero() => std::thread::park_timeout(rest),
                            _ => break,
                        }
                    }
                    let stop = stopping.load(Ordering::Acquire);
                    let mut locked = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    // Whoever asks for a prompt commit from here on waits
                    // for the next one.
                    prompt.store(false, Ordering::Release);
                    let (result, waiters) = locked.commit();
                    last = Instant::now();
                    if let Err(error) = &result {
                        tracing::error!(%error, "the store could not commit");
                    }
                    // Answered before the checkpoint, if one is due: they
                    // wait for their commit only.
                    for waiter in waiters {
                        let _ = waiter.send(result.clone());
                    }
                    locked.after_commit();
                    drop(locked);
                    if stop {
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Self {
            stop,
            thread: handle.thread().clone(),
            handle: Some(handle),
        })
    }
}
