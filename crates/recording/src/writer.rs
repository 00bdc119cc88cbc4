//! The writer task: one per [`crate::Recordings`], owning every open session file.
//!
//! Sessions put their records in an [`Inbox`] of their own, which wakes nobody (a statement
//! costs no wake-up of this task); the writer takes them on every `flush_every` tick, when a
//! session's inbox passes [`INBOX_BYTES`] (the session then asks through the bounded queue),
//! and before it finishes or closes the session. Each session's [`Sink`] turns records into
//! lines of its format (the writer itself knows no format). Lines are hashed and buffered in
//! memory, then written (one `write(2)` per session) on every tick, as soon as a session's
//! buffer passes [`FLUSH_BYTES`], and on finish. File I/O runs on Tokio's
//! blocking pool so a slow disk never stalls the runtime; while it runs the queue fills and
//! `record` waits, which is the back-pressure.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::error::RecordingError;
use crate::session::Finished;
use crate::sink::{Ending, Record, Sink};

/// A session buffer this large is written at once instead of waiting for the tick, which
/// bounds memory per session whatever the entry rate.
const FLUSH_BYTES: usize = 64 * 1024;

/// An inbox holding about this many bytes of records asks the writer to take them.
pub(crate) const INBOX_BYTES: usize = 64 * 1024;

/// A session's records not yet taken by the writer, in the order they were recorded, and
/// their approximate size.
#[derive(Clone, Default)]
pub(crate) struct Inbox(Arc<Mutex<(Vec<Record>, usize)>>);

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    /// Adds `record`; true when the inbox has grown past [`INBOX_BYTES`].
    pub(crate) fn push(&self, record: Record) -> bool {
        let size = record.size();
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.0.push(record);
        held.1 += size;
        held.1 >= INBOX_BYTES
    }

    fn take(&self) -> Vec<Record> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.1 = 0;
        std::mem::take(&mut held.0)
    }
}

/// A freshly created session file whose header is already on disk.
pub(crate) struct Opened {
    pub session_id: String,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Already fed with the header line.
    pub hasher: Sha256,
    pub bytes: u64,
    pub sink: Sink,
    /// What the session recorded and the writer has not taken yet.
    pub inbox: Inbox,
}

/// A request to the writer task.
pub(crate) enum Command {
    Open(u64, Box<Opened>),
    /// The session's inbox is full: take it now.
    Take(u64),
    Finish(
        u64,
        Ending,
        oneshot::Sender<Result<Finished, RecordingError>>,
    ),
    /// The session was dropped without finishing: flush and close, leave it for recovery.
    Abandon(u64),
    Shutdown(oneshot::Sender<()>),
}

/// A session's file and the bytes buffered for it, on their way to the blocking pool.
type Pending = (Arc<File>, Vec<u8>);

/// An open session file.
struct Live {
    opened: Opened,
    pending: Vec<u8>,
    /// The first write error; later lines are dropped since the file's tail is unknown.
    failed: Option<io::ErrorKind>,
}

pub(crate) struct Writer {
    sessions: HashMap<u64, Live>,
    /// Session ids being recorded, shared with `recover` so it never closes a live file.
    open_ids: Arc<Mutex<HashSet<String>>>,
    /// Finished sessions whose last write and fsync are under way, side by side: a slow
    /// fsync delays its own session's close, not every other session's.
    closing: tokio::task::JoinSet<()>,
}

pub(crate) async fn run(
    mut rx: mpsc::Receiver<Command>,
    flush_every: Duration,
    open_ids: Arc<Mutex<HashSet<String>>>,
) {
    let mut writer = Writer {
        sessions: HashMap::new(),
        open_ids,
        closing: tokio::task::JoinSet::new(),
    };
    let mut tick = tokio::time::interval(flush_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopping = Vec::new();
    loop {
        tokio::select! {
            command = rx.recv() => match command {
                // Closing the queue refuses new lines but keeps those already queued, so
                // nothing accepted before shutdown is lost.
                Some(Command::Shutdown(reply)) => {
                    rx.close();
                    stopping.push(reply);
                }
                Some(command) => writer.handle(command).await,
                None => break,
            },
            _ = tick.tick() => writer.flush_all().await,
            Some(_) = writer.closing.join_next(), if !writer.closing.is_empty() => {}
        }
    }
    writer.close_all().await;
    for reply in stopping {
        let _ = reply.send(());
    }
}

impl Writer {
    async fn handle(&mut self, command: Command) {
        match command {
            Command::Open(id, opened) => {
                let live = Live {
                    opened: *opened,
                    pending: Vec::new(),
                    failed: None,
                };
                self.sessions.insert(id, live);
            }
            Command::Take(id) => self.take(id).await,
            Command::Finish(id, end, reply) => self.finish(id, end, reply),
            Command::Abandon(id) => {
                if let Some(mut live) = self.sessions.remove(&id) {
                    live.take_inbox();
                    tracing::info!(session = %live.opened.session_id,
                        "session dropped without finishing; its recording is left for recovery");
                    let session = live.opened.session_id.clone();
                    if let Err(e) = close(live).await {
                        tracing::error!(%session, error = %e, "cannot flush abandoned recording");
                    }
                    release(&self.open_ids, &session);
                }
            }
            Command::Shutdown(_) => {}
        }
    }

    async fn take(&mut self, id: u64) {
        let Some(live) = self.sessions.get_mut(&id) else {
            return;
        };
        live.take_inbox();
        if live.pending.len() >= FLUSH_BYTES {
            let batch = vec![(id, live.take())];
            self.write_batch(batch).await;
        }
    }

    /// Appends the format's end, then writes, fsyncs and answers `reply` in a task of its
    /// own.
    fn finish(
        &mut self,
        id: u64,
        ending: Ending,
        reply: oneshot::Sender<Result<Finished, RecordingError>>,
    ) {
        let Some(mut live) = self.sessions.remove(&id) else {
            let _ = reply.send(Err(RecordingError::Stopped));
            return;
        };
        live.take_inbox();
        let encoded = live.opened.sink.end(&ending).map(|lines| live.push(&lines));
        let finished = Finished {
            path: live.opened.path.clone(),
            sha256: hex::encode(live.opened.hasher.clone().finalize()),
            bytes: live.opened.bytes,
            entries: live.opened.sink.entries(),
        };
        let open_ids = self.open_ids.clone();
        self.closing.spawn(async move {
            let session = live.opened.session_id.clone();
            let closed = close(live).await;
            release(&open_ids, &session);
            let _ = reply.send(encoded.and(closed).map(|()| finished));
        });
    }

    async fn flush_all(&mut self) {
        self.sessions.values_mut().for_each(Live::take_inbox);
        let batch: Vec<_> = self
            .sessions
            .iter_mut()
            .filter(|(_, live)| !live.pending.is_empty() && live.failed.is_none())
            .map(|(id, live)| (*id, live.take()))
            .collect();
        if !batch.is_empty() {
            self.write_batch(batch).await;
        }
    }

    /// Writes several sessions' buffers in one trip to the blocking pool.
    async fn write_batch(&mut self, batch: Vec<(u64, Pending)>) {
        let results = blocking(move || {
            batch
                .into_iter()
                .map(|(id, (file, buf))| (id, (&*file).write_all(&buf).err()))
                .collect::<Vec<_>>()
        })
        .await;
        match results {
            Ok(results) => {
                for (id, error) in results {
                    if let (Some(e), Some(live)) = (error, self.sessions.get_mut(&id)) {
                        live.fail(e.kind());
                    }
                }
            }
            Err(e) => self.sessions.values_mut().for_each(|l| l.fail(e.kind())),
        }
    }

    /// At shutdown every open file is written and fsynced but gets no end: the door did
    /// not finish it, so the next start's recovery marks it interrupted and audits its hash.
    /// Closes already under way are waited for.
    async fn close_all(&mut self) {
        for (_, mut live) in std::mem::take(&mut self.sessions) {
            live.take_inbox();
            let session = live.opened.session_id.clone();
            if let Err(e) = close(live).await {
                tracing::error!(%session, error = %e, "cannot flush recording at shutdown");
            }
            release(&self.open_ids, &session);
        }
        while self.closing.join_next().await.is_some() {}
    }
}

/// Writes what is buffered and fsyncs. The caller releases the id only afterwards, so
/// `recover` cannot touch the file while bytes are still on their way to it.
async fn close(mut live: Live) -> Result<(), RecordingError> {
    let path = live.opened.path.clone();
    match live.failed {
        Some(kind) => Err(RecordingError::WriteFailed { path, kind }),
        None => {
            let (file, buf) = live.take();
            blocking(move || {
                (&*file).write_all(&buf)?;
                file.sync_all()
            })
            .await
            .and_then(|r| r)
            .map_err(|e| RecordingError::WriteFailed {
                path,
                kind: e.kind(),
            })
        }
    }
}

fn release(open_ids: &Mutex<HashSet<String>>, session_id: &str) {
    let mut open = open_ids.lock().unwrap_or_else(|p| p.into_inner());
    open.remove(session_id);
}

impl Live {
    /// Encodes and buffers what the session recorded since the last take.
    fn take_inbox(&mut self) {
        for record in self.opened.inbox.take() {
            let lines = self.opened.sink.encode(record);
            self.push(&lines);
        }
    }

    /// Hashes and buffers lines; the hash always covers exactly the bytes meant for disk.
    fn push(&mut self, lines: &[u8]) {
        self.opened.hasher.update(lines);
        self.opened.bytes += lines.len() as u64;
        if self.failed.is_none() {
            self.pending.extend_from_slice(lines);
        }
    }

    fn take(&mut self) -> Pending {
        (
            Arc::clone(&self.opened.file),
            std::mem::take(&mut self.pending),
        )
    }

    fn fail(&mut self, kind: io::ErrorKind) {
        if self.failed.is_none() {
            tracing::error!(session = %self.opened.session_id, error = %kind,
                "recording write failed; the rest of this session is not recorded");
            self.failed = Some(kind);
            self.pending = Vec::new();
        }
    }
}

/// Runs blocking file I/O on Tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| io::Error::other("recording I/O task failed"))
}
