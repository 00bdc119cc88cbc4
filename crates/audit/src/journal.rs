//! The journal: how `durability = "crash"` makes an event durable without crossing a thread.
//!
//! A recorder chains its event under one lock and appends the record's body, one line, to an
//! append-only file with one `write(2)`. Once that returns, the event survives a crash or
//! `kill -9` of the gateway (the operating system has it), and the command may run. A mover,
//! on the writer's thread, copies the chained rows into the store in batches, fsyncs the
//! store at least every `sync_every`, signs checkpoints, and deletes journal segments whose
//! every event is synced in the store. At start-up, events that the journal holds and the
//! store lacks (the gateway died between the two) are replayed into the store before
//! anything new is recorded.
//!
//! The journal's lines are the stored bodies themselves: a line's hash is the record's hash,
//! and its `prev` links it to the line before, so replay checks the chain as it goes and stops
//! at the first line that does not continue it (a torn last write after a power loss).
//!
//! Without a journal (`durability = "fsync"`), the queue and the group-committing writer in
//! `writer` do this job; the two never run together.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use portcullis_store::{AuditLog, AuditRow, Store, StoreError};
use tokio::sync::Notify;

use crate::auditor::{AuditSettings, Receipt};
use crate::error::AuditError;
use crate::keys::SigningKey;
use crate::record::{self, EncodedEvent, Position};
use crate::writer::{self, Tail, now_ms};

/// A segment is closed for writing past this size, and deleted once the store has synced
/// its last event.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Chained rows waiting for the mover, in batches, beyond which recorders wait (or fail,
/// while the store is failing): what bounds memory when the store is slower than the
/// recorders.
const BACKLOG_BATCHES: usize = 8;
const MAX_BACKLOG: usize = 32 << 10;
/// Lines of events recorded without waiting are written with the next waited event, or when
/// this many bytes have gathered, or at the mover's next pass.
const PENDING_BYTES: usize = 64 << 10;
/// How often the mover passes when nothing wakes it.
const TICK: Duration = Duration::from_millis(5);
/// How long the mover waits before retrying a store that refused a batch.
const RETRY: Duration = Duration::from_millis(200);
/// Rows per store transaction when replaying outside a gateway (the writer's default batch).
const DEFAULT_BATCH: usize = 4096;

/// The chain's write side at `crash` level. Shared by every recorder and the mover.
pub(crate) struct Journal {
    dir: PathBuf,
    /// Held for the journal's life: one writer per journal, and a command-line tool knows not
    /// to replay what a running gateway is moving itself.
    _lock: File,
    node: Arc<str>,
    state: Mutex<State>,
    /// Wakes the mover before its tick: a batch is waiting, or the journal closed.
    work: Notify,
    /// Wakes recorders that wait for room in the backlog.
    room: Notify,
    /// The mover wakes early once this many rows wait.
    batch: usize,
    /// The most rows that may wait for the mover.
    backlog: usize,
}

struct State {
    /// The chain's tail as recorded (ahead of the store's until the mover catches up).
    seq: i64,
    prev: String,
    ts_ms: i64,
    segment: Segment,
    /// Lines chained but not written yet: events recorded without waiting.
    pending: Vec<u8>,
    /// Chained rows the mover has not taken, in chain order.
    rows: Vec<AuditRow>,
    /// Segments no longer written, with their last seq, for the mover to delete once synced.
    retired: Vec<(PathBuf, i64)>,
    /// A failed write could not be cut back to whole lines: nothing more may be appended.
    broken: Option<Arc<std::io::Error>>,
    /// The store refused the mover's last batch; with a full backlog, records fail.
    store_error: Option<Arc<StoreError>>,
    closed: bool,
}

struct Segment {
    file: File,
    path: PathBuf,
    /// Bytes known to be whole lines in the file.
    len: u64,
}

/// Why an append did not happen.
enum Refused {
    /// The backlog is full and the store is healthy: wait for room and try again.
    Full(EncodedEvent),
    Failed(AuditError),
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Chains `event` and writes it to the journal before returning: at `crash` level, that
    /// is durable. Waits only while the mover is a full backlog behind.
    pub(crate) async fn record(&self, event: EncodedEvent) -> Result<Receipt, AuditError> {
        self.append_or_wait(event, true).await
    }

    /// Chains `event`, to be written with the next waited event or the mover's next pass.
    pub(crate) async fn submit(&self, event: EncodedEvent) -> Result<(), AuditError> {
        self.append_or_wait(event, false).await.map(drop)
    }

    async fn append_or_wait(
        &self,
        mut event: EncodedEvent,
        write: bool,
    ) -> Result<Receipt, AuditError> {
        // Registered only once the backlog is found full (never on the common path), and
        // before looking again, so that room made in between is not missed.
        let mut room = None;
        loop {
            match self.append(event, write) {
                Ok(receipt) => return Ok(receipt),
                Err(Refused::Failed(e)) => return Err(e),
                Err(Refused::Full(back)) => event = back,
            }
            match room.take() {
                Some(registered) => registered.await,
                None => {
                    let mut registered = Box::pin(self.room.notified());
                    registered.as_mut().enable();
                    room = Some(registered);
                }
            }
        }
    }

    fn append(&self, event: EncodedEvent, write: bool) -> Result<Receipt, Refused> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Failed(AuditError::Stopped));
        }
        if let Some(e) = &s.broken {
            return Err(Refused::Failed(AuditError::Journal(e.clone())));
        }
        if s.rows.len() >= self.backlog {
            return Err(match &s.store_error {
                Some(e) => Refused::Failed(AuditError::WriteFailed(e.clone())),
                None => Refused::Full(event),
            });
        }
        let seq = s.seq + 1;
        let ts_ms = now_ms().max(s.ts_ms);
        let (kind, body, hash) = event.seal(Position {
            seq,
            ts_ms,
            prev: &s.prev,
        });
        let mark = s.pending.len();
        s.pending.extend_from_slice(body.as_bytes());
        s.pending.push(b'\n');
        if (write || s.pending.len() >= PENDING_BYTES)
            && let Err(e) = s.flush()
        {
            if write {
                // Not chained after all; what was submitted before it stays pending.
                s.pending.truncate(mark);
                return Err(Refused::Failed(AuditError::Journal(e)));
            }
            tracing::error!(error = %e, "writing the audit journal failed; retrying");
        }
        let prev_hash = std::mem::replace(&mut s.prev, hash.clone());
        s.seq = seq;
        s.ts_ms = ts_ms;
        s.rows.push(AuditRow {
            node: self.node.to_string(),
            seq,
            ts_ms,
            kind,
            body,
            prev_hash,
            hash: hash.clone(),
        });
        if s.rows.len() == self.batch {
            self.work.notify_one();
        }
        if s.segment.len >= SEGMENT_BYTES && s.pending.is_empty() {
            s.rotate(&self.dir);
        }
        Ok(Receipt { seq, hash })
    }

    /// Refuses new events and wakes the mover to finish.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_one();
        self.room.notify_waiters();
    }

    /// What the mover has to do: writes pending lines and takes the rows and the retired
    /// segments.
    fn take(&self) -> Taken {
        let mut s = self.lock();
        if let Err(e) = s.flush() {
            tracing::error!(error = %e, "writing the audit journal failed; retrying");
        }
        Taken {
            rows: std::mem::take(&mut s.rows),
            retired: std::mem::take(&mut s.retired),
            closed: s.closed,
        }
    }

    /// Puts back rows the store refused, ahead of what came since.
    fn give_back(&self, mut rows: Vec<AuditRow>, error: StoreError) {
        let mut s = self.lock();
        rows.append(&mut s.rows);
        s.rows = rows;
        s.store_error = Some(Arc::new(error));
        drop(s);
        // A recorder waiting for room must now fail rather than wait.
        self.room.notify_waiters();
    }

    fn stored(&self) {
        let mut s = self.lock();
        s.store_error = None;
        drop(s);
        self.room.notify_waiters();
    }

    /// The current segment, once the journal is closed and everything is in the store.
    fn current(&self) -> PathBuf {
        self.lock().segment.path.clone()
    }
}

impl State {
    /// Writes the pending lines. A partial write is cut back, so the file holds whole lines
    /// only; if even that fails, the journal is broken and refuses everything after.
    fn flush(&mut self) -> Result<(), Arc<std::io::Error>> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        match self.segment.file.write_all(&self.pending) {
            Ok(()) => {
                self.segment.len += self.pending.len() as u64;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                if let Err(cut) = self.segment.file.set_len(self.segment.len) {
                    tracing::error!(error = %cut, "the audit journal cannot be repaired");
                    self.broken = Some(Arc::new(cut));
                }
                Err(Arc::new(e))
            }
        }
    }

    /// Starts a new segment after `seq`; on failure keeps writing the current one.
    fn rotate(&mut self, dir: &Path) {
        match Segment::create(dir, self.seq + 1) {
            Ok(next) => {
                let old = std::mem::replace(&mut self.segment, next);
                self.retired.push((old.path, self.seq));
            }
            Err(e) => tracing::warn!(error = %e, "cannot start a new audit journal segment"),
        }
    }
}

impl Segment {
    fn name(first_seq: i64) -> String {
        format!("{first_seq:020}.log")
    }

    fn create(dir: &Path, first_seq: i64) -> std::io::Result<Segment> {
        let path = dir.join(Self::name(first_seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(Segment { file, path, len })
    }
}

struct Taken {
    rows: Vec<AuditRow>,
    retired: Vec<(PathBuf, i64)>,
    closed: bool,
}

/// Copies the journal's rows into the store, syncs it, signs checkpoints and deletes
/// segments the store has synced.
pub(crate) struct Mover {
    journal: Arc<Journal>,
    log: Box<dyn AuditLog>,
    key: SigningKey,
    public_key: String,
    settings: AuditSettings,
    /// The store's tail: the last row appended.
    stored: Tail,
    signed_seq: i64,
    signed_at: Instant,
    /// The store's tail at its last sync, and when that was.
    synced_seq: i64,
    synced_at: Instant,
    retired: Vec<(PathBuf, i64)>,
    /// The store refused the last batch: the next attempt waits this long.
    backoff: bool,
}

/// The journal directory of `node` under `dir`: one per node, named by the node's hash (a
/// node name may hold any printable character).
fn node_dir(dir: &Path, node: &str) -> PathBuf {
    dir.join(&record::hash(node)[..16])
}

/// Replays into the store what `dir`'s journal holds beyond the store's tail, then opens the
/// journal for new events and returns it with the mover that empties it.
pub(crate) async fn open(
    store: &dyn Store,
    mut log: Box<dyn AuditLog>,
    key: SigningKey,
    settings: AuditSettings,
    dir: &Path,
) -> Result<(Arc<Journal>, Mover), AuditError> {
    let node = settings.node.clone();
    let dir = node_dir(dir, &node);
    std::fs::create_dir_all(&dir)?;
    let (lock, tail, _) = lock_and_replay(&dir, &node, &mut *log, settings.max_batch)
        .await?
        .ok_or_else(|| AuditError::JournalBusy {
            dir: dir.display().to_string(),
        })?;
    let signed_seq = writer::last_checkpoint(store, &node, &tail).await?;
    let segment = Segment::create(&dir, tail.seq + 1)?;
    let journal = Arc::new(Journal {
        dir,
        _lock: lock,
        node: node.as_str().into(),
        state: Mutex::new(State {
            seq: tail.seq,
            prev: tail.hash.clone(),
            ts_ms: tail.ts_ms,
            segment,
            pending: Vec::new(),
            rows: Vec::new(),
            retired: Vec::new(),
            broken: None,
            store_error: None,
            closed: false,
        }),
        work: Notify::new(),
        room: Notify::new(),
        batch: settings.max_batch.clamp(1, MAX_BACKLOG),
        backlog: settings
            .max_batch
            .saturating_mul(BACKLOG_BATCHES)
            .clamp(1, MAX_BACKLOG),
    });
    let now = Instant::now();
    let mover = Mover {
        journal: journal.clone(),
        log,
        public_key: key.public_key().to_string(),
        key,
        settings,
        synced_seq: tail.seq,
        stored: tail,
        signed_seq,
        signed_at: now,
        synced_at: now,
        retired: Vec::new(),
        backoff: false,
    };
    Ok((journal, mover))
}

/// Moves into `store` what `node`'s journal under `dir` holds beyond the store's tail (what a
/// gateway killed at `durability = "crash"` left there), unless a running gateway holds the
/// journal (it moves them itself within milliseconds): `None` then, else how many events.
pub async fn recover(
    store: Arc<dyn Store>,
    dir: &Path,
    node: &str,
) -> Result<Option<usize>, AuditError> {
    let mut log = portcullis_store::audit_log(store).await?;
    catch_up(dir, node, &mut *log, DEFAULT_BATCH).await
}

/// [`recover`] through the writer's own log.
pub(crate) async fn catch_up(
    dir: &Path,
    node: &str,
    log: &mut dyn AuditLog,
    max_batch: usize,
) -> Result<Option<usize>, AuditError> {
    let dir = node_dir(dir, node);
    if !dir.is_dir() {
        return Ok(Some(0));
    }
    Ok(lock_and_replay(&dir, node, log, max_batch)
        .await?
        .map(|(_, _, replayed)| replayed))
}

/// Takes the lock of the journal in `dir` and moves into the store what the journal holds
/// beyond the store's tail: the lock, the tail after that and how many events it moved, or
/// `None` when another process holds the journal.
async fn lock_and_replay(
    dir: &Path,
    node: &str,
    log: &mut dyn AuditLog,
    max_batch: usize,
) -> Result<Option<(File, Tail, usize)>, AuditError> {
    let Some(lock) = lock(dir)? else {
        return Ok(None);
    };
    let mut tail = writer::load_tail(log, node).await?;
    let replayed = replay(dir, node, &mut tail, log, max_batch).await?;
    if replayed > 0 {
        tracing::warn!(
            node,
            events = replayed,
            seq = tail.seq,
            "moved audit events that only the journal held into the store (the gateway that \
             wrote them did not stop cleanly)"
        );
    }
    Ok(Some((lock, tail, replayed)))
}

/// The journal's lock, exclusive and released by the OS when its holder dies; `None` when
/// another process holds it.
fn lock(dir: &Path) -> Result<Option<File>, AuditError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Appends to the store the journal's events after `tail`, in chain order, advancing `tail`;
/// deletes the segments it emptied. Stops at the first line that does not continue the
/// chain, and renames that segment and those after it `*.unreplayed` for inspection.
async fn replay(
    dir: &Path,
    node: &str,
    tail: &mut Tail,
    log: &mut dyn AuditLog,
    max_batch: usize,
) -> Result<usize, AuditError> {
    let mut segments: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let first = name.to_str()?.strip_suffix(".log")?.parse().ok()?;
            Some((first, e.path()))
        })
        .collect();
    segments.sort();
    // One segment's rows at a time: memory stays bounded by the segment size.
    let mut replayed = 0;
    let mut done = Vec::new();
    let mut broken_at = None;
    for (i, (_, path)) in segments.iter().enumerate() {
        let mut rows = Vec::new();
        let read = read_segment(path, node, tail, &mut rows);
        // Even from a segment that breaks: the rows before the break continue the chain.
        for chunk in rows.chunks(max_batch.max(1)) {
            log.append(chunk).await?;
        }
        replayed += rows.len();
        match read {
            Ok(()) => done.push(path.clone()),
            Err(problem) => {
                tracing::error!(segment = %path.display(), problem,
                    "the audit journal breaks here; the rest is not replayed");
                broken_at = Some(i);
                break;
            }
        }
    }
    if replayed > 0 {
        log.sync().await?;
    }
    for path in done {
        std::fs::remove_file(path)?;
    }
    if let Some(i) = broken_at {
        for (_, path) in &segments[i..] {
            let mut kept = path.clone().into_os_string();
            kept.push(".unreplayed");
            std::fs::rename(path, kept)?;
        }
    }
    Ok(replayed)
}

/// Collects the rows of one segment that come after `tail`. A last line without its newline
/// is a write that did not finish and is ignored; any other line that does not continue the
/// chain is a break.
fn read_segment(
    path: &Path,
    node: &str,
    tail: &mut Tail,
    rows: &mut Vec<AuditRow>,
) -> Result<(), &'static str> {
    let file = File::open(path).map_err(|_| "cannot be opened")?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|_| "cannot be read")?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        line.pop();
        let body = std::str::from_utf8(&line).map_err(|_| "a line is not UTF-8")?;
        let header = record::parse_header(body).map_err(|_| "a line is not a record")?;
        if header.node != node || header.v != record::RECORD_VERSION {
            return Err("a line belongs to another chain or version");
        }
        if header.seq <= tail.seq {
            // Already in the store.
            continue;
        }
        if header.seq != tail.seq + 1 || header.prev != tail.hash {
            return Err("a line does not continue the chain");
        }
        let hash = record::hash(body);
        rows.push(AuditRow {
            node: node.to_owned(),
            seq: header.seq,
            ts_ms: header.ts_ms,
            kind: header.event.kind,
            body: body.to_owned(),
            prev_hash: header.prev,
            hash: hash.clone(),
        });
        *tail = Tail {
            seq: header.seq,
            hash,
            ts_ms: header.ts_ms,
        };
    }
}

impl Mover {
    /// Moves rows until the journal closes, then moves the last of them, syncs, signs a
    /// final checkpoint and deletes the journal's segments.
    pub(crate) async fn run(mut self) -> Result<(), AuditError> {
        loop {
            let wait = if self.backoff { RETRY } else { TICK };
            let _ = tokio::time::timeout(wait, self.journal.work.notified()).await;
            let Taken {
                rows,
                retired,
                closed,
            } = self.journal.take();
            self.retired.extend(retired);
            let moved = rows.is_empty() || self.store(rows).await;
            // Closing: done once everything is moved, or at the first failure: what the store
            // refused stays in the journal for the next start, rather than holding shutdown.
            if closed && (!moved || self.journal.lock().rows.is_empty()) {
                break;
            }
            if self.stored.seq - self.signed_seq
                >= i64::try_from(self.settings.checkpoint_every_events).unwrap_or(i64::MAX)
                || (self.stored.seq > self.signed_seq
                    && self.signed_at.elapsed() >= self.settings.checkpoint_every)
            {
                let _ = self.checkpoint().await;
            }
            let every = self.settings.sync_every.unwrap_or(Duration::ZERO);
            if self.stored.seq > self.synced_seq && self.synced_at.elapsed() >= every {
                self.sync().await;
            }
        }
        self.sync().await;
        let result = self.checkpoint().await;
        let unstored = self.journal.lock().rows.len();
        if unstored > 0 {
            tracing::error!(node = %self.settings.node, events = unstored,
                "audit events are only in the journal; they go into the store at the next start");
            return Err(AuditError::Stopped);
        }
        if self.synced_seq == self.stored.seq {
            // Everything is in the store and synced: the journal has nothing left to give.
            let current = self.journal.current();
            for path in self.retired.drain(..).map(|(p, _)| p).chain([current]) {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(segment = %path.display(), error = %e,
                        "cannot delete an audit journal segment");
                }
            }
        }
        result
    }

    /// Appends `rows` to the store; on failure gives the rest back to the journal, to retry.
    async fn store(&mut self, rows: Vec<AuditRow>) -> bool {
        let batch = self.settings.max_batch.max(1);
        let mut done = 0;
        while done < rows.len() {
            let chunk = &rows[done..rows.len().min(done + batch)];
            if let Err(e) = self.log.append(chunk).await {
                tracing::error!(node = %self.settings.node, events = rows.len() - done, error = %e,
                    "moving audit events from the journal to the store failed; retrying");
                self.backoff = true;
                let rest = rows.into_iter().skip(done).collect();
                self.journal.give_back(rest, e);
                return false;
            }
            done += chunk.len();
            if let Some(last) = chunk.last() {
                self.stored = Tail {
                    seq: last.seq,
                    hash: last.hash.clone(),
                    ts_ms: last.ts_ms,
                };
            }
        }
        if std::mem::take(&mut self.backoff) {
            tracing::info!(node = %self.settings.node, "the audit store takes events again");
        }
        self.journal.stored();
        true
    }

    /// Fsyncs the store, then deletes the segments it now covers.
    async fn sync(&mut self) {
        if self.stored.seq == self.synced_seq {
            return;
        }
        match self.log.sync().await {
            Ok(()) => {
                self.synced_seq = self.stored.seq;
                self.synced_at = Instant::now();
            }
            Err(e) => {
                tracing::error!(error = %e, "syncing the audit store failed; retrying");
                return;
            }
        }
        let synced = self.synced_seq;
        self.retired.retain(|(path, last)| {
            if *last > synced {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(segment = %path.display(), error = %e,
                    "cannot delete an audit journal segment");
            }
            false
        });
    }

    async fn checkpoint(&mut self) -> Result<(), AuditError> {
        self.signed_at = Instant::now();
        if self.stored.seq <= self.signed_seq {
            return Ok(());
        }
        let node = &self.settings.node;
        writer::put_checkpoint(
            &mut *self.log,
            &self.key,
            &self.public_key,
            node,
            &self.stored,
        )
        .await?;
        self.signed_seq = self.stored.seq;
        Ok(())
    }
}
