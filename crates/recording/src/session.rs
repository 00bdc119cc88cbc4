//! One session's handle: creating its file, recording entries, finishing it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::error::RecordingError;
use crate::format::{self, End, Entry, Header, RESERVED_KEYS};
use crate::read::MAX_LINE_BYTES;
use crate::writer::{Command, Opened, blocking};

/// What a finished recording is, for the `session.close` audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the whole file, equal to [`crate::sha256_file`] of it.
    pub sha256: String,
    pub bytes: u64,
    pub entries: u64,
}

/// The recording of one session. Dropping it without [`SessionRecording::finish`] flushes
/// and closes the file without an end line, so the next start's recovery marks it
/// interrupted.
#[derive(Debug)]
pub struct SessionRecording {
    id: u64,
    session_id: String,
    path: PathBuf,
    /// Entry offsets come from a monotonic clock, so a wall-clock step never reorders the
    /// timeline or makes an offset negative.
    started: Instant,
    started_ms: i64,
    tx: mpsc::Sender<Command>,
    finished: bool,
}

impl SessionRecording {
    pub(crate) fn new(id: u64, header: &Header, path: PathBuf, tx: mpsc::Sender<Command>) -> Self {
        SessionRecording {
            id,
            session_id: header.session_id.clone(),
            path,
            started: Instant::now(),
            started_ms: header.started_ms,
            tx,
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

    /// Appends one entry. The keys `t_ms` and `kind` in `data` are dropped (the entry's own
    /// fields own them). Waits while the writer's queue is full; after the writer stopped the
    /// entry is discarded, since a recording cannot fail the command it describes.
    pub async fn record(&self, kind: &str, mut data: Map<String, Value>) {
        for key in RESERVED_KEYS {
            data.remove(key);
        }
        let entry = Entry {
            t_ms: self.elapsed_ms(),
            kind: kind.to_owned(),
            data,
        };
        let Some(line) = encode_entry(entry) else {
            return;
        };
        if self.tx.send(Command::Append(self.id, line)).await.is_err() {
            tracing::debug!(session = %self.session_id, "recording writer stopped; entry dropped");
        }
    }

    /// Writes the end line, flushes and fsyncs, and returns the file's SHA-256 and size.
    pub async fn finish(mut self, ended: &str) -> Result<Finished, RecordingError> {
        let end = End {
            t_ms: self.elapsed_ms(),
            ended: ended.to_owned(),
            entries: 0, // counted by the writer, which saw every entry
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Finish(self.id, end, reply);
        self.tx
            .send(command)
            .await
            .map_err(|_| RecordingError::Stopped)?;
        // Only now: if this future is dropped while waiting for queue space, `Drop` must
        // still tell the writer to close the file.
        self.finished = true;
        answer.await.map_err(|_| RecordingError::Stopped)?
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

/// Encodes an entry, replacing one that would be too long for `read` by a stub that says
/// so: an unreadable recording would lose far more than one oversized entry.
fn encode_entry(entry: Entry) -> Option<Vec<u8>> {
    let line = match format::encode_line(&entry) {
        Ok(line) if line.len() <= MAX_LINE_BYTES => line,
        Ok(line) => {
            tracing::warn!(kind = %entry.kind, bytes = line.len(), "recording entry too long; stubbed");
            let mut data = Map::new();
            data.insert("oversized".to_owned(), Value::Bool(true));
            data.insert("bytes".to_owned(), Value::from(line.len()));
            let stub = Entry { data, ..entry };
            format::encode_line(&stub).ok()?
        }
        Err(_) => {
            tracing::warn!(kind = %entry.kind, "recording entry cannot be encoded; dropped");
            return None;
        }
    };
    Some(line)
}

/// Creates the file exclusively (never following or reusing an existing path), writes the
/// header straight to disk, and fsyncs the file and its directory so the recording survives
/// even a power loss right after the session opened.
pub(crate) async fn create(path: PathBuf, header: &Header) -> Result<Opened, RecordingError> {
    let line = format::encode_line(header)?;
    let mut hasher = Sha256::new();
    hasher.update(&line);
    let bytes = line.len() as u64;
    let at = path.clone();
    let file = blocking(move || create_file(&at, &line))
        .await
        .and_then(|r| r)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => RecordingError::Exists { path: path.clone() },
            _ => RecordingError::io(path.clone())(e),
        })?;
    Ok(Opened {
        session_id: header.session_id.clone(),
        path,
        file: Arc::new(file),
        hasher,
        bytes,
    })
}

fn create_file(path: &Path, header: &[u8]) -> std::io::Result<File> {
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
