//! Session recordings (DESIGN.md §8): one append-only JSONL timeline per session, written
//! by a door (the PostgreSQL proxy today) and replayed by `portcullis sessions replay`.
//!
//! The crate only stores what a door hands it. Doors record values after masking, so a
//! recording never holds a secret the audit could not hold either (DESIGN.md §2,
//! invariant 3); this crate never sees raw results.
//!
//! # File format (version 1)
//!
//! `<dir>/<session_id>.jsonl`, mode 0600 in a 0700 directory. UTF-8, one JSON object per
//! line, every line ending in `\n` (JSON escapes newlines inside strings, so a raw `\n` only
//! ever ends a line). Three kinds of line, in this order:
//!
//! 1. **Header**, exactly one, first ([`Header`]):
//!    `{"v":1,"session_id":"0198…","started_ms":1767225600000,"protocol":"postgres",
//!    "connection":"orders","principal":{"subject":"agent-7",…},"source_ip":"10.0.0.5"}`.
//!    `started_ms` is wall-clock Unix milliseconds.
//! 2. **Entries**, zero or more ([`Entry`]):
//!    `{"t_ms":1234,"kind":"statement","action":"sql.select","decision":"allow",…}`.
//!    `t_ms` is milliseconds since the session opened, from a monotonic clock, so it never
//!    decreases. `kind` names what happened; the other keys are the door's (`t_ms` and
//!    `kind` are reserved). Replay knows `action`, `decision`, `statement`, `row_count`,
//!    `error`, `review_id`, `masked`, `columns` and `rows`. An entry too long for the
//!    reader (over [`MAX_LINE_BYTES`]) is replaced by `{"t_ms":…,"kind":…,"oversized":
//!    true,"bytes":N}`.
//! 3. **End**, at most one, last ([`End`]): `{"t_ms":98765,"ended":"client_terminate",
//!    "entries":42}`. A line is an end line exactly when it has no `kind` key. It is written
//!    by [`SessionRecording::finish`], or with `"ended":"interrupted"` by
//!    [`Recordings::recover`].
//!
//! A file without an end line belongs to a session still running, or to one the gateway
//! did not finish (crash, shutdown with sessions open, a dropped [`SessionRecording`]).
//! A last line without its `\n` is torn: the crash cut a write short. [`read`] ignores it;
//! recovery cuts it off before appending the end line.
//!
//! # Durability
//!
//! Lines are handed to the OS at least every `flush_every` (default one second) and on
//! finish, so a killed process loses at most that interval; the header is fsynced on open
//! and the whole file on finish. The SHA-256 that finish and recovery return is of the
//! exact file bytes, for the `session.close` audit event.

mod error;
mod format;
mod read;
mod recover;
mod replay;
mod session;
mod table;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use error::RecordingError;
pub use format::{End, Entry, FORMAT_VERSION, Header, MAX_SESSION_ID};
pub use read::{
    MAX_FILE_BYTES, MAX_LINE_BYTES, ReadLimits, Recording, read, read_with, sha256_file,
};
pub use recover::{INTERRUPTED, Recovered};
pub use replay::replay;
pub use session::{Finished, SessionRecording};

use writer::Command;

/// Where and how recordings are written.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingSettings {
    /// The recordings folder, e.g. `state_dir/recordings`.
    pub dir: PathBuf,
    /// The longest time a recorded entry waits in memory before it is written.
    pub flush_every: Duration,
    /// Entries queued for the writer before `record` waits (at least 1).
    pub queue: usize,
}

impl RecordingSettings {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecordingSettings {
            dir: dir.into(),
            flush_every: Duration::from_secs(1),
            queue: 1024,
        }
    }
}

/// The door-wide recorder: one background writer task for all sessions. Its queue is
/// bounded: when it is full, `record` waits (back-pressure) rather than dropping an entry
/// or growing memory.
#[derive(Clone)]
pub struct Recordings {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    tx: mpsc::Sender<Command>,
    /// Session ids with an open file, shared with the writer (which releases them).
    open: Arc<Mutex<HashSet<String>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Recordings {
    /// Creates the folder (0700 when it is new) and starts the writer task. Must be called
    /// inside a Tokio runtime.
    pub fn start(settings: RecordingSettings) -> Result<Recordings, RecordingError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RecordingError::NoRuntime)?;
        create_dir(&settings.dir)?;
        // A zero-capacity Tokio channel panics; one slot still gives back-pressure.
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let open = Arc::new(Mutex::new(HashSet::new()));
        let flush_every = settings.flush_every.max(Duration::from_millis(1));
        runtime.spawn(writer::run(rx, flush_every, Arc::clone(&open)));
        Ok(Recordings {
            inner: Arc::new(Inner {
                dir: settings.dir,
                tx,
                open,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// Creates `<dir>/<session_id>.jsonl` exclusively and writes the header (always as
    /// format [`FORMAT_VERSION`]).
    pub async fn open(&self, mut header: Header) -> Result<SessionRecording, RecordingError> {
        header.v = FORMAT_VERSION;
        let path = self.path_of(&header.session_id)?;
        let claim = self
            .claim(&header.session_id)
            .ok_or_else(|| RecordingError::Exists { path: path.clone() })?;
        let opened = session::create(path.clone(), &header).await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let tx = self.inner.tx.clone();
        tx.send(Command::Open(id, Box::new(opened)))
            .await
            .map_err(|_| RecordingError::Stopped)?;
        // From here the writer releases the id when the session closes.
        claim.keep();
        Ok(SessionRecording::new(id, &header, path, tx))
    }

    /// The file of a session; refuses ids outside `[A-Za-z0-9_-]{1,128}`, so no id can
    /// name a path outside the folder.
    pub fn path_of(&self, session_id: &str) -> Result<PathBuf, RecordingError> {
        recording_path(&self.inner.dir, session_id)
    }

    /// The recordings folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Run at start-up, before serving: appends `End { ended: "interrupted" }` to every
    /// recording without an end line (cutting a torn last line first) and returns them
    /// with their final SHA-256 for the audit. Sessions open in this `Recordings` are
    /// skipped; files that cannot be recovered are logged and left untouched.
    pub fn recover(&self) -> Result<Vec<Recovered>, RecordingError> {
        recover::recover_dir(&self.inner.dir, &self.inner.open)
    }

    /// Writes everything queued, fsyncs and closes every file, and stops the writer.
    /// Sessions still open get no end line (the next start's recovery closes them);
    /// doors finish their sessions first. Later records are discarded.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.inner.tx.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Marks a session id as being recorded, so `recover` leaves its file alone and a
    /// second `open` of the same id fails early. `None` if it already is.
    fn claim(&self, session_id: &str) -> Option<Claim<'_>> {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        open.insert(session_id.to_owned()).then(|| Claim {
            open: &self.inner.open,
            session_id: Some(session_id.to_owned()),
        })
    }
}

/// A claimed session id, released on drop unless kept: an `open` that fails, or whose
/// future is dropped half-way, must not leave its id claimed forever.
struct Claim<'a> {
    open: &'a Mutex<HashSet<String>>,
    session_id: Option<String>,
}

impl Claim<'_> {
    fn keep(mut self) {
        self.session_id = None;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.session_id.take() {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            open.remove(&id);
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), RecordingError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(RecordingError::io(dir))
}

/// The file of `session_id` in the recordings folder `dir`, for readers without a running
/// [`Recordings`] (the CLI, the API). A session id that could leave `dir` is refused.
pub fn recording_path(dir: &Path, session_id: &str) -> Result<PathBuf, RecordingError> {
    format::validate_session_id(session_id)?;
    Ok(dir.join(format!("{session_id}.jsonl")))
}
