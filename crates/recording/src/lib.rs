//! Session recordings (DESIGN.md §8), one append-only file per session, written by a door
//! and replayed by `portcullis sessions replay`. Two formats share one writer (queue,
//! hashing, flushing, fsync, recovery); they differ only in their lines ([`Format`]):
//!
//! - a **timeline** (`<session_id>.jsonl`) of commands and (masked) results, for SQL,
//!   HTTP and Kubernetes doors: [`Recordings::open`], [`SessionRecording::record`];
//! - a **terminal recording** (`<session_id>.cast`) in asciicast v2, for SSH-like doors,
//!   playable unchanged by asciinema: [`Recordings::open_terminal`],
//!   [`SessionRecording::output`], [`SessionRecording::input`],
//!   [`SessionRecording::resize`], [`SessionRecording::marker`].
//!
//! A session id has one file, in one format. Both are mode 0600 in a 0700 directory.
//!
//! The crate only stores what a door hands it. Doors record values after masking, so a
//! recording never holds a secret the audit could not hold either (DESIGN.md §2,
//! invariant 3); this crate never sees raw results.
//!
//! # Timeline format (version 1)
//!
//! UTF-8, one JSON object per line, every line ending in `\n` (JSON escapes newlines
//! inside strings, so a raw `\n` only ever ends a line). Three kinds of line, in this
//! order:
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
//! # Terminal format (asciicast v2)
//!
//! As specified at <https://docs.asciinema.org/manual/asciicast/v2/>: newline-delimited
//! JSON, a header object, then one `[time, code, data]` array per event.
//!
//! 1. **Header** ([`CastHeader`]): the asciicast keys `"version":2`, integer `width` and
//!    `height`, `timestamp` (Unix seconds), `title`, `command` when there is one and `env`
//!    (`{"TERM":…}` when the client sent one; strings only, as the spec requires), then one
//!    key of Portcullis' own, `portcullis`, holding exactly a timeline [`Header`] (`v`,
//!    `session_id`, `started_ms`, `protocol`, `connection`, `principal`, `source_ip`).
//!    asciinema ignores header keys it does not know, so the file plays unchanged:
//!    `{"version":2,"width":80,"height":24,"timestamp":1767225600,"title":"…",
//!    "env":{"TERM":"xterm-256color"},"portcullis":{"v":1,"session_id":"0198…",…}}`.
//! 2. **Events**, zero or more ([`CastEvent`]): `[1.234567,"o","text"]`. The time is
//!    seconds since the session opened, written with six decimals from a monotonic clock
//!    and never decreasing. Codes: `o` output, `i` input, `r` resize (`"COLSxROWS"`), `m`
//!    marker (a label). Output and input arrive as bytes; a UTF-8 sequence split between
//!    two chunks is carried to the next event, invalid bytes become U+FFFD, and text over
//!    1 MiB is split into several events with the same time. A door's `record(kind, data)`
//!    on a terminal recording becomes a marker `kind {data as JSON}`. Marker labels are
//!    cut to 4 KiB, and those starting with [`RESERVED_MARKER_PREFIX`] (`portcullis:`)
//!    are written with a leading `_`.
//! 3. **End**, at most one, last: asciicast has no end line, so the end is a marker
//!    `[t,"m","portcullis:ended:client_terminate"]` ([`END_MARKER_PREFIX`] and the
//!    reason), written by [`SessionRecording::finish`] (after any carried incomplete UTF-8,
//!    written as U+FFFD) or as `portcullis:ended:interrupted` by [`Recordings::recover`]
//!    at the time of the last complete event. Players show it as an ordinary marker.
//!
//! # Crashes
//!
//! A file without its end belongs to a session still running, or to one the gateway did
//! not finish (crash, shutdown with sessions open, a dropped [`SessionRecording`]). A last
//! line without its `\n` is torn: the crash cut a write short. Readers ([`read`],
//! [`read_cast`]) ignore it; recovery cuts it off before appending the end.
//!
//! # Durability
//!
//! Lines of either format are handed to the OS at least every `flush_every` (default one
//! second) and on finish, so a killed process loses at most that interval; the header is
//! fsynced on open and the whole file on finish. The SHA-256 that finish and recovery
//! return is of the exact file bytes, for the `session.close` audit event.

mod any;
mod cast;
mod cast_read;
mod cast_replay;
mod error;
mod format;
mod read;
mod recover;
mod replay;
mod session;
mod sink;
mod table;
mod timeline;
mod utf8;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use any::{AnyRecording, find_recording, read_any, replay_any};
pub use cast::{
    CAST_VERSION, CastCode, CastEvent, CastHeader, END_MARKER_PREFIX, RESERVED_MARKER_PREFIX,
    TerminalHeader,
};
pub use cast_read::{CastEnd, CastRecording, read_cast, read_cast_with};
pub use cast_replay::replay_cast;
pub use error::RecordingError;
pub use format::{Format, MAX_SESSION_ID};
pub use read::{
    MAX_FILE_BYTES, MAX_LINE_BYTES, ReadLimits, Recording, read, read_with, sha256_file,
};
pub use recover::{INTERRUPTED, Recovered};
pub use replay::replay;
pub use session::{Finished, SessionRecording};
pub use timeline::{End, Entry, FORMAT_VERSION, Header};

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
        let line = format::encode_line(&header)?;
        let (session_id, started_ms) = (header.session_id, header.started_ms);
        self.open_as(&session_id, started_ms, Format::Timeline, line)
            .await
    }

    /// Creates `<dir>/<session_id>.cast` exclusively and writes its asciicast v2 header;
    /// record with [`SessionRecording::output`], [`SessionRecording::input`],
    /// [`SessionRecording::resize`] and [`SessionRecording::marker`].
    pub async fn open_terminal(
        &self,
        header: TerminalHeader,
    ) -> Result<SessionRecording, RecordingError> {
        let line = cast::encode_header(&header.to_cast_header())?;
        self.open_as(
            &header.session_id,
            header.started_ms,
            Format::Asciicast,
            line,
        )
        .await
    }

    /// Claims the id, creates the file with its header line and hands it to the writer.
    /// A session id has one file whatever its format, so opening either format of an id
    /// that has a file in the other fails with [`RecordingError::Exists`].
    async fn open_as(
        &self,
        session_id: &str,
        started_ms: i64,
        format: Format,
        header: Vec<u8>,
    ) -> Result<SessionRecording, RecordingError> {
        let path = format.path(&self.inner.dir, session_id)?;
        let claim = self
            .claim(session_id)
            .ok_or_else(|| RecordingError::Exists { path: path.clone() })?;
        let opened = session::create(&self.inner.dir, session_id, format, header).await?;
        let inbox = opened.inbox.clone();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let tx = self.inner.tx.clone();
        tx.send(Command::Open(id, Box::new(opened)))
            .await
            .map_err(|_| RecordingError::Stopped)?;
        // From here the writer releases the id when the session closes.
        claim.keep();
        let session_id = session_id.to_owned();
        Ok(SessionRecording::new(
            id, session_id, format, path, started_ms, tx, inbox,
        ))
    }

    /// The timeline file of a session (`.jsonl`); refuses ids outside
    /// `[A-Za-z0-9_-]{1,128}`, so no id can name a path outside the folder.
    pub fn path_of(&self, session_id: &str) -> Result<PathBuf, RecordingError> {
        recording_path(&self.inner.dir, session_id)
    }

    /// The file of a session in `format`, checked as [`Recordings::path_of`].
    pub fn path_for(&self, session_id: &str, format: Format) -> Result<PathBuf, RecordingError> {
        format.path(&self.inner.dir, session_id)
    }

    /// The recordings folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Run at start-up, before serving: gives every recording without an end (`.jsonl`
    /// and `.cast`) an `interrupted` end in its format (cutting a torn last line first)
    /// and returns them with their final SHA-256 for the audit. Sessions open in this
    /// `Recordings` are skipped; files that cannot be recovered are logged and left
    /// untouched.
    pub fn recover(&self) -> Result<Vec<Recovered>, RecordingError> {
        recover::recover_dir(&self.inner.dir, &self.inner.open)
    }

    /// Writes everything queued, fsyncs and closes every file, and stops the writer.
    /// Sessions still open get no end (the next start's recovery closes them);
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

/// The timeline file (`.jsonl`) of `session_id` in the recordings folder `dir`, for
/// readers without a running [`Recordings`] (the CLI, the API); [`find_recording`] finds
/// either format. A session id that could leave `dir` is refused.
pub fn recording_path(dir: &Path, session_id: &str) -> Result<PathBuf, RecordingError> {
    Format::Timeline.path(dir, session_id)
}
