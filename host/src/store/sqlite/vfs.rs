//! The store's files go through SQLite's own `unix` VFS, except that the
//! write-ahead log reaches the kernel one commit at a time (PF7).
//!
//! SQLite appends a commit to the log as frames, each a 24-byte header and
//! a page, and writes each part with a `pwrite` of its own: an event's
//! dozen pages cost two dozen syscalls. The log file opened through this
//! VFS gathers writes that follow one another in a buffer and passes them
//! on in one `pwrite` as soon as the frame carrying the commit mark is
//! whole. SQLite writes that frame last and only then publishes the commit
//! to other connections (the wal-index header) and returns from `COMMIT`,
//! so what a reader, a checkpoint, or a recovery after `kill -9` finds in
//! the file is what it found before.
//!
//! Anything else done to the log (a read, a sync, asking its size, a
//! truncate, a write somewhere else, a file control, closing it) passes
//! the buffer on first, and a write that rewrites a frame header just read
//! (SQLite fixing checksums before a commit) goes straight through. Only a
//! transaction that spilled pages to the log before its commit and was then
//! rolled back can leave its last spilled frame buffered: those frames are
//! never published, the next operation on the log writes them where they
//! belonged, and the serving connection turns spilling off
//! (`cache_spill`), so it never happens there. The database file, journals
//! and temporary files are `unix`'s own objects, untouched.

#![allow(
    unsafe_code,
    reason = "a SQLite VFS is a table of C callbacks over the files SQLite allocates"
)]

use rusqlite::ffi;
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// The name connections open the store with.
pub(super) const NAME: &CStr = c"switchboard";

/// A log frame's header; the page follows it.
const FRAME_HEADER: usize = 24;
/// The log's own header, written at its start.
const LOG_HEADER: usize = 32;
/// Gathered bytes past which the buffer is written out early.
const MAX_PENDING: usize = 1 << 20;
/// The most `unix` writes in one call: it keeps only the low 17 bits of a
/// write's length (`seekAndWriteFd`), about 31 frames of 4 KiB pages.
const MAX_WRITE: usize = (1 << 17) - 1;

thread_local! {
    /// `pwrite`s made to log files on this thread (tests).
    static LOG_WRITES: Cell<u64> = const { Cell::new(0) };
}

/// `pwrite`s made so far to write-ahead logs from the calling thread.
#[cfg(test)]
pub(super) fn log_writes() -> u64 {
    LOG_WRITES.with(Cell::get)
}

/// SQLite's `unix` VFS, which this one passes everything to.
struct Unix(*mut ffi::sqlite3_vfs);

// SAFETY: a registered VFS is a process-wide, immutable table that SQLite
// itself shares between threads.
unsafe impl Send for Unix {}
unsafe impl Sync for Unix {}

static UNIX: OnceLock<Unix> = OnceLock::new();

/// Registers the VFS with SQLite once per process and returns its name,
/// or SQLite's error code if SQLite has no `unix` VFS to build on.
pub(super) fn register() -> Result<&'static CStr, c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    // SAFETY: runs once; the registered table is leaked, so it outlives
    // every connection.
    let done = REGISTERED.get_or_init(|| unsafe { install() });
    done.map(|()| NAME)
}

unsafe fn install() -> Result<(), c_int> {
    let rc = ffi::sqlite3_initialize();
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
    if unix.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    let _ = UNIX.set(Unix(unix));
    // Everything but opening a file is `unix`'s own code, reading the
    // same settings (`pAppData`, `mxPathname`) from this copy.
    let mut vfs = *unix;
    vfs.zName = NAME.as_ptr();
    vfs.pNext = std::ptr::null_mut();
    vfs.szOsFile =
        c_int::try_from(inner_offset()).map_err(|_| ffi::SQLITE_ERROR)? + (*unix).szOsFile;
    vfs.xOpen = Some(open);
    let rc = ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0);
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Where `unix`'s own file object sits inside a log file's allocation.
const fn inner_offset() -> usize {
    let size = std::mem::size_of::<LogFile>();
    (size + 15) & !15
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get().map_or(std::ptr::null_mut(), |u| u.0)
}

/// A write-ahead log: `unix`'s file and the writes not yet passed on.
#[repr(C)]
struct LogFile {
    /// What SQLite sees; must come first.
    base: ffi::sqlite3_file,
    /// `unix`'s file object, in the same allocation after this struct.
    inner: *mut ffi::sqlite3_file,
    /// Bytes written by SQLite and not yet by the kernel, contiguous.
    pending: Vec<u8>,
    /// Where `pending` starts in the file.
    pending_at: i64,
    /// The page of the frame whose header was the last write: where it
    /// goes and whether the frame carries the commit mark.
    frame: Option<(i64, bool)>,
    /// Where the last read started, if the last operation was a read.
    last_read: Option<i64>,
}

static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(unix_open) = unix.as_ref().and_then(|u| u.xOpen) else {
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // The allocation is at least `unix`'s size: its file object fits.
        return unix_open(unix, name, file, flags, out_flags);
    }
    let inner = file
        .cast::<u8>()
        .add(inner_offset())
        .cast::<ffi::sqlite3_file>();
    (*file).pMethods = std::ptr::null();
    let rc = unix_open(unix, name, inner, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    file.cast::<LogFile>().write(LogFile {
        base: ffi::sqlite3_file {
            pMethods: &LOG_METHODS,
        },
        inner,
        pending: Vec::new(),
        pending_at: 0,
        frame: None,
        last_read: None,
    });
    ffi::SQLITE_OK
}

impl LogFile {
    /// `unix`'s methods for the file underneath.
    unsafe fn methods(&self) -> &ffi::sqlite3_io_methods {
        &*(*self.inner).pMethods
    }

    /// Passes the gathered writes on to the file, in pieces `unix`
    /// accepts.
    unsafe fn flush(&mut self) -> c_int {
        self.frame = None;
        let Some(write) = self.methods().xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut rc = ffi::SQLITE_OK;
        let mut at = self.pending_at;
        for piece in self.pending.chunks(MAX_WRITE) {
            LOG_WRITES.with(|n| n.set(n.get() + 1));
            // A piece is at most MAX_WRITE bytes: it fits a `c_int`.
            rc = write(self.inner, piece.as_ptr().cast(), piece.len() as c_int, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
            at += piece.len() as i64;
        }
        self.pending.clear();
        if self.pending.capacity() > 4 * MAX_PENDING {
            self.pending.shrink_to(MAX_PENDING);
        }
        rc
    }

    /// Flushes before any operation other than a write; forgets the read.
    unsafe fn settle(&mut self) -> c_int {
        self.last_read = None;
        self.flush()
    }

    unsafe fn write(&mut self, bytes: &[u8], offset: i64) -> c_int {
        // A frame header rewritten after reading its frame: SQLite may
        // publish the commit right after, with no other write.
        let rewrite = self.last_read.take() == Some(offset);
        let frame = self.frame.take();
        let end = self.pending_at + self.pending.len() as i64;
        if !self.pending.is_empty() && offset != end {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if self.pending.is_empty() {
            self.pending_at = offset;
        }
        self.pending.extend_from_slice(bytes);
        let more_follows = !rewrite
            && match bytes.len() {
                // The log's header: frames (or a sync) follow.
                LOG_HEADER if offset == 0 => true,
                // A frame's header: its page follows.
                FRAME_HEADER => {
                    let commit = bytes[4..8] != [0; 4];
                    self.frame = Some((offset + FRAME_HEADER as i64, commit));
                    true
                }
                // A frame's page: more frames follow unless it commits.
                _ => matches!(frame, Some((at, false)) if at == offset),
            };
        if more_follows && self.pending.len() < MAX_PENDING {
            ffi::SQLITE_OK
        } else {
            self.flush()
        }
    }
}

unsafe fn log<'a>(file: *mut ffi::sqlite3_file) -> &'a mut LogFile {
    &mut *file.cast::<LogFile>()
}

/// Flushes, then runs `unix`'s method `pick` on the file underneath.
macro_rules! settled {
    ($file:expr, $pick:ident, $($arg:expr),*) => {{
        let log = log($file);
        let rc = log.settle();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        match log.methods().$pick {
            Some(method) => method(log.inner, $($arg),*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let log = file.cast::<LogFile>();
    let flushed = (*log).settle();
    let inner = (*log).inner;
    let closed = match (*(*inner).pMethods).xClose {
        Some(close) => close(inner),
        None => ffi::SQLITE_OK,
    };
    std::ptr::drop_in_place(log);
    (*file).pMethods = std::ptr::null();
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let rc = settled!(file, xRead, buf, amount, offset);
    log(file).last_read = Some(offset);
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    log(file).write(bytes, offset)
}

/// The methods that pass the buffer on, then call `unix`'s.
macro_rules! settled_methods {
    ($($name:ident => $pick:ident($($arg:ident: $ty:ty),*);)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            settled!(file, $pick, $($arg),*)
        }
    )*};
}

settled_methods! {
    truncate => xTruncate(size: i64);
    sync => xSync(flags: c_int);
    file_size => xFileSize(size: *mut i64);
    lock => xLock(level: c_int);
    unlock => xUnlock(level: c_int);
    check_reserved_lock => xCheckReservedLock(out: *mut c_int);
    file_control => xFileControl(op: c_int, arg: *mut c_void);
}

/// A method of `unix`'s that only reads the file's properties.
type Property = Option<unsafe extern "C" fn(*mut ffi::sqlite3_file) -> c_int>;

/// `unix`'s answer to the property `pick` chooses, or `default`.
unsafe fn property(
    file: *mut ffi::sqlite3_file,
    pick: fn(&ffi::sqlite3_io_methods) -> Property,
    default: c_int,
) -> c_int {
    let log = log(file);
    match pick(log.methods()) {
        Some(method) => method(log.inner),
        None => default,
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    property(file, |m| m.xSectorSize, 4096)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    property(file, |m| m.xDeviceCharacteristics, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusqlite::{Connection, OpenFlags};
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A connection as the store opens it, through this VFS.
    fn open(path: &Path, spill: bool) -> Connection {
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::default(),
            register().expect("register"),
        )
        .expect("open");
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("WAL");
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA cache_spill = {};
             CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);",
            if spill { "ON" } else { "OFF" }
        ))
        .expect("prepare");
        conn
    }

    fn rows(conn: &Connection) -> BTreeMap<i64, Vec<u8>> {
        let mut stmt = conn.prepare("SELECT k, v FROM t").expect("select");
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query");
        rows.map(|row| row.expect("row")).collect()
    }

    fn frames(wal: &Path) -> u64 {
        let len = std::fs::metadata(wal).map_or(0, |m| m.len());
        len.saturating_sub(LOG_HEADER as u64) / (4096 + FRAME_HEADER as u64)
    }

    #[test]
    fn pf7_a_commit_of_many_pages_reaches_the_log_in_one_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let mut conn = open(&path, false);
        let wal = dir.path().join("db.sqlite-wal");
        let frames_before = frames(&wal);
        let writes_before = log_writes();
        let tx = conn.transaction().expect("begin");
        for k in 0..40 {
            tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, vec![7u8; 3000]))
                .expect("insert");
        }
        tx.commit().expect("commit");
        let written = frames(&wal) - frames_before;
        assert!(written >= 40, "the commit wrote {written} frames");
        // Two per frame through `unix`; here as few as it accepts.
        let bytes = written as usize * (4096 + FRAME_HEADER);
        assert_eq!(
            log_writes() - writes_before,
            bytes.div_ceil(MAX_WRITE) as u64,
            "{written} frames"
        );

        // A reader through SQLite's own VFS sees the commit at once.
        let reader = Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), "unix")
            .expect("reader");
        assert_eq!(rows(&reader).len(), 40);
    }

    /// One step of a writer's life.
    #[derive(Debug, Clone)]
    enum Step {
        /// A transaction: rows to set (key, length, byte) or delete (length
        /// 0), then committed or rolled back.
        Transaction(Vec<(i64, usize, u8)>, bool),
        Checkpoint,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (
                prop::collection::vec((0i64..60, 0usize..9000, any::<u8>()), 1..30),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(writes, commit)| Step::Transaction(writes, commit)),
            1 => Just(Step::Checkpoint),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever the writer does (large and small rows, transactions
        /// spilling through a tiny cache and rewriting their own frames,
        /// rollbacks, checkpoints), after every commit a reader through
        /// SQLite's own VFS sees it, and a copy of the files as they are
        /// (what `kill -9` would leave) recovers to exactly the committed
        /// rows.
        #[test]
        fn pf7_every_commit_is_visible_and_survives_a_crash_copy(
            steps in prop::collection::vec(step(), 1..16),
            spill in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("db.sqlite");
            let mut conn = open(&path, spill);
            conn.execute_batch("PRAGMA cache_size = 8;").expect("small cache");
            let reader = Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), "unix")
                .expect("reader");
            let mut model = BTreeMap::new();
            for (n, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Checkpoint => {
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                            .expect("checkpoint");
                    }
                    Step::Transaction(writes, commit) => {
                        let tx = conn.transaction().expect("begin");
                        let mut next = model.clone();
                        for (k, len, byte) in writes {
                            if len == 0 {
                                tx.execute("DELETE FROM t WHERE k = ?1", [k]).expect("delete");
                                next.remove(&k);
                            } else {
                                let v = vec![byte; len];
                                tx.execute("INSERT OR REPLACE INTO t (k, v) VALUES (?1, ?2)", (k, &v))
                                    .expect("upsert");
                                next.insert(k, v);
                            }
                        }
                        if commit {
                            tx.commit().expect("commit");
                            model = next;
                        } else {
                            tx.rollback().expect("rollback");
                        }
                    }
                }
                prop_assert_eq!(&rows(&reader), &model);
                let copy = dir.path().join(format!("copy-{n}"));
                std::fs::create_dir(&copy).expect("copy dir");
                for name in ["db.sqlite", "db.sqlite-wal"] {
                    if dir.path().join(name).exists() {
                        std::fs::copy(dir.path().join(name), copy.join(name)).expect("copy");
                    }
                }
                let recovered = Connection::open_with_flags_and_vfs(
                    copy.join("db.sqlite"),
                    OpenFlags::default(),
                    "unix",
                )
                .expect("open the copy");
                let check: String = recovered
                    .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                    .expect("integrity_check");
                prop_assert_eq!(check, "ok");
                prop_assert_eq!(&rows(&recovered), &model);
            }
        }
    }
}
