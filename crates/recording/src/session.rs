//! One session's handle: creating its file, recording entries or terminal events,
//! finishing it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::error::RecordingError;
use crate::format::Format;
use crate::sink::{Ending, Record, Sink, TermEvent};
use crate::timeline::{self, Entry, RESERVED_KEYS};
use crate::writer::{Command, Inbox, Opened, blocking};

/// What a finished recording is, for the `session.close` audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the whole file, equal to [`crate::sha256_file`] of it.
    pub sha256: String,
    pub bytes: u64,
    /// Entry lines of a timeline, event lines of a terminal recording (the header and the
    /// end not counted).
    pub entries: u64,
}

/// The recording of one session, in one [`Format`]. Dropping it without
/// [`SessionRecording::finish`] flushes and closes the file without an end, so the next
/// start's recovery marks it interrupted.
#[derive(Debug)]
pub struct SessionRecording {
    id: u64,
    session_id: String,
    format: Format,
    path: PathBuf,
    /// Offsets come from a monotonic clock, so a wall-clock step never reorders the
    /// timeline or makes an offset negative.
    started: Instant,
    started_ms: i64,
    tx: mpsc::Sender<Command>,
    /// Where records go; the writer takes them (see `writer`).
    inbox: Inbox,
    finished: bool,
}

impl SessionRecording {
    pub(crate) fn new(
        id: u64,
        session_id: String,
        format: Format,
        path: PathBuf,
        started_ms: i64,
        tx: mpsc::Sender<Command>,
        inbox: Inbox,
    ) -> Self {
        SessionRecording {
            id,
            session_id,
            format,
            path,
            started: Instant::now(),
            started_ms,
            tx,
            inbox,
            finished: false,
        }
    }

    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Appends one entry. The keys `t_ms` and `kind` in `data` are dropped (the entry's own
    /// fields own them). Waits while the writer's queue is full; after the writer stopped the
    /// entry is discarded, since a recording cannot fail the command it describes.
    ///
    /// In a terminal recording the entry becomes a marker labelled with `kind`, followed by
    /// `data` as compact JSON when it is not empty (a door's note among the terminal
    /// events, such as a refused command).
    pub async fn record(&self, kind: &str, mut data: Map<String, Value>) {
        for key in RESERVED_KEYS {
            data.remove(key);
        }
        match self.format {
            Format::Timeline => {
                let entry = Entry {
                    t_ms: self.elapsed_ms(),
                    kind: kind.to_owned(),
                    data,
                };
                if let Some(line) = timeline::encode_entry(entry) {
                    self.send(Record::Line(line)).await;
                }
            }
            Format::Asciicast => {
                let label = if data.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind} {}", Value::Object(data))
                };
                self.terminal(TermEvent::Marker(label)).await;
            }
        }
    }

    /// Terminal output (an `o` event). `bytes` need not end on a UTF-8 boundary: an
    /// incomplete character is completed by the next call; invalid bytes are recorded as
    /// U+FFFD. Ignored in a timeline recording.
    pub async fn output(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.terminal(TermEvent::Output(bytes.to_vec())).await;
        }
    }

    /// Terminal input, what the user typed (an `i` event); as [`Self::output`].
    pub async fn input(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.terminal(TermEvent::Input(bytes.to_vec())).await;
        }
    }

    /// The terminal was resized (an `r` event, `COLSxROWS`). Ignored in a timeline.
    pub async fn resize(&self, cols: u16, rows: u16) {
        self.terminal(TermEvent::Resize { cols, rows }).await;
    }

    /// A marker (an `m` event) labelled `label`; labels are cut to 4 KiB and a label that
    /// starts with `portcullis:` (reserved for the session's end) gets a leading `_`.
    /// Ignored in a timeline.
    pub async fn marker(&self, label: &str) {
        self.terminal(TermEvent::Marker(label.to_owned())).await;
    }

    /// Writes the format's end (the timeline's end line, or the cast's
    /// `portcullis:ended:<ended>` marker), flushes and fsyncs, and returns the file's
    /// SHA-256 and size.
    pub async fn finish(mut self, ended: &str) -> Result<Finished, RecordingError> {
        let ending = Ending {
            at: self.started.elapsed(),
            ended: ended.to_owned(),
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Finish(self.id, ending, reply);
        self.tx
            .send(command)
            .await
            .map_err(|_| RecordingError::Stopped)?;
        // Only now: if this future is dropped while waiting for queue space, `Drop` must
        // still tell the writer to close the file.
        self.finished = true;
        answer.await.map_err(|_| RecordingError::Stopped)?
    }

    async fn terminal(&self, event: TermEvent) {
        match self.format {
            Format::Asciicast => {
                let at = self.started.elapsed();
                self.send(Record::Terminal(at, event)).await;
            }
            Format::Timeline => {
                tracing::debug!(session = %self.session_id,
                    "terminal event on a timeline recording; ignored");
            }
        }
    }

    /// Hands `record` to the writer through the inbox, which wakes nobody; a full inbox
    /// asks the writer to take it, through the queue (waiting while the queue is full,
    /// which is the back-pressure).
    async fn send(&self, record: Record) {
        if self.tx.is_closed() {
            tracing::debug!(session = %self.session_id, "recording writer stopped; entry dropped");
            return;
        }
        if self.inbox.push(record) && self.tx.send(Command::Take(self.id)).await.is_err() {
            tracing::debug!(session = %self.session_id, "recording writer stopped; entry dropped");
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Drop for SessionRecording {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let command = Command::Abandon(self.id);
        if let Err(mpsc::error::TrySendError::Full(command)) = self.tx.try_send(command) {
            // The queue is full: hand the message to a task rather than block in `drop`.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let tx = self.tx.clone();
                runtime.spawn(async move {
                    let _ = tx.send(command).await;
                });
            }
        }
    }
}

/// Creates the file exclusively (never following or reusing an existing path, nor beside
/// a recording of the same session in the other format), writes the header line straight
/// to disk, and fsyncs the file and its directory so the recording survives even a power
/// loss right after the session opened.
pub(crate) async fn create(
    dir: &Path,
    session_id: &str,
    format: Format,
    header: Vec<u8>,
) -> Result<Opened, RecordingError> {
    let path = format.path(dir, session_id)?;
    let others: Vec<PathBuf> = Format::ALL
        .into_iter()
        .filter(|f| *f != format)
        .map(|f| f.path(dir, session_id))
        .collect::<Result<_, _>>()?;
    let mut hasher = Sha256::new();
    hasher.update(&header);
    let bytes = header.len() as u64;
    let at = path.clone();
    let file = blocking(move || create_file(&at, &others, &header))
        .await
        .and_then(|r| r)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => RecordingError::Exists { path: path.clone() },
            _ => RecordingError::io(path.clone())(e),
        })?;
    Ok(Opened {
        session_id: session_id.to_owned(),
        path,
        file: Arc::new(file),
        hasher,
        bytes,
        sink: Sink::new(format),
        inbox: Inbox::default(),
    })
}

fn create_file(path: &Path, others: &[PathBuf], header: &[u8]) -> std::io::Result<File> {
    // One file per session id, whatever its format: readers look for either.
    for other in others {
        if other.symlink_metadata().is_ok() {
            return Err(std::io::ErrorKind::AlreadyExists.into());
        }
    }
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(header)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}
