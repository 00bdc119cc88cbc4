//! The [`Auditor`]: the handle callers record events through, and its settings.
//!
//! Recording is a request to a single writer (see `writer`), which owns the chain
//! state. One writer per node is what keeps `seq` contiguous and `prev` linked without
//! locking the database; batching what accumulates while a commit is in flight is what makes
//! it fast (group commit).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis_store::Store;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::AuditError;
use crate::event::Event;
use crate::journal::{self, Journal};
use crate::keys::SigningKey;
use crate::record::EncodedEvent;
use crate::writer::{Command, Writer};

/// How the Auditor batches and checkpoints.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// This gateway's chain name; each node keeps its own chain.
    pub node: String,
    /// Sign a checkpoint once this many events have been added since the last one.
    pub checkpoint_every_events: u64,
    /// Sign a checkpoint when this much time has passed since the last one and there are
    /// new events.
    pub checkpoint_every: Duration,
    /// The most events committed in one transaction.
    pub max_batch: usize,
    /// With a store that acknowledges writes once the OS has them (`durability = "crash"`),
    /// how long an acknowledged event may wait for its fsync: the writer syncs the store at
    /// least this often while there are unsynced events. `None`: every commit is fsynced.
    pub sync_every: Option<Duration>,
    /// How long an event recorded without waiting ([`Auditor::submit`]) may sit before it is
    /// committed when no waited event comes to carry it along.
    pub later_every: Duration,
    /// The journal's directory. With `sync_every` (`durability = "crash"`) a recorder writes
    /// its event there itself and is done, and the writer moves events into the store (see
    /// `journal`); without, events go through the writer's queue, and what an earlier run at
    /// `crash` left in the journal is moved into the store first.
    pub journal: Option<PathBuf>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            node: "local".to_owned(),
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            max_batch: 4096,
            sync_every: None,
            later_every: Duration::from_millis(50),
            journal: None,
        }
    }
}

/// Proof that an event is durably in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: i64,
    /// Hex SHA-256 of the stored record.
    pub hash: String,
}

/// Records audit events. Cheap to clone; all clones feed the same writer.
#[derive(Clone)]
pub struct Auditor {
    route: Route,
    /// The chain's node, which every record's body names.
    node: Arc<str>,
    task: Arc<Mutex<Option<Running>>>,
}

/// How an event reaches the chain.
#[derive(Clone)]
enum Route {
    /// Through the writer's queue, which chains and commits batches.
    Queue {
        tx: mpsc::Sender<Command>,
        /// Events nothing waits on, taken by the writer with its next batch.
        later: Later,
    },
    /// Chained and written by the recorder itself; the writer moves it to the store.
    Journal(Arc<Journal>),
}

/// Where the writer runs; joining it gives its final result (the last checkpoint's).
enum Running {
    Task(JoinHandle<Result<(), AuditError>>),
    Thread(std::thread::JoinHandle<Result<(), AuditError>>),
}

impl Running {
    /// Runs `work` on a thread of its own in a one-thread runtime (`blocking`: it calls a
    /// blocking store), else as a task on the current runtime.
    fn start(
        work: impl std::future::Future<Output = Result<(), AuditError>> + Send + 'static,
        blocking: bool,
    ) -> Result<Running, AuditError> {
        if !blocking {
            return Ok(Running::Task(tokio::spawn(work)));
        }
        // Timers only: the queue's wake-ups come from the recorders' runtime.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(AuditError::Thread)?;
        let thread = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || runtime.block_on(work))
            .map_err(AuditError::Thread)?;
        Ok(Running::Thread(thread))
    }

    async fn join(self) -> Result<(), AuditError> {
        match self {
            Running::Task(task) => task.await.map_err(|_| AuditError::Stopped)?,
            Running::Thread(thread) => tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|_| AuditError::Stopped)?
                .map_err(|_| AuditError::Stopped)?,
        }
    }
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

impl Auditor {
    /// Continues `settings.node`'s chain from its stored tail and starts the writer: on a
    /// thread of its own when the store gives it a blocking log of its own (SQLite), else as
    /// a task on the current runtime.
    pub async fn start(
        store: Arc<dyn Store>,
        key: SigningKey,
        settings: AuditSettings,
    ) -> Result<Auditor, AuditError> {
        validate_node(&settings.node)?;
        let settings = AuditSettings {
            max_batch: settings.max_batch.max(1),
            checkpoint_every_events: settings.checkpoint_every_events.max(1),
            ..settings
        };
        let node: Arc<str> = settings.node.as_str().into();
        let log = portcullis_store::audit_log(store.clone()).await?;
        let blocking = log.blocking();
        let (route, running) = match (settings.journal.clone(), settings.sync_every) {
            (Some(dir), Some(_)) => {
                let (journal, mover) = journal::open(&*store, log, key, settings, &dir).await?;
                (
                    Route::Journal(journal),
                    Running::start(mover.run(), blocking)?,
                )
            }
            (journal, _) => {
                let mut log = log;
                if let Some(dir) = journal {
                    // A journal an earlier run at `crash` level left behind.
                    journal::catch_up(&dir, &settings.node, &mut *log, settings.max_batch).await?;
                }
                // The queue holds at most a few batches: beyond that, recorders wait, which
                // is the back-pressure that keeps memory bounded when the store is slow.
                let (tx, rx) = mpsc::channel(settings.max_batch.saturating_mul(2));
                let later = Later::default();
                let writer = Writer::load(&*store, log, key, settings, rx, later.clone()).await?;
                (
                    Route::Queue { tx, later },
                    Running::start(writer.run(), blocking)?,
                )
            }
        };
        Ok(Auditor {
            route,
            node,
            task: Arc::new(Mutex::new(Some(running))),
        })
    }

    /// Records `event` and resolves once it is durably committed. An error means the event
    /// is not in the trail, and the caller must not run the command it describes.
    ///
    /// Cancel safety: if this future is dropped after the event was queued, the event is
    /// still written; only the receipt is lost.
    pub async fn record(&self, event: Event) -> Result<Receipt, AuditError> {
        // Encoding here rather than in the writer spreads the work over the recording
        // tasks; the writer's loop is the throughput bottleneck.
        let encoded = EncodedEvent::new(&event, &self.node)?;
        let tx = match &self.route {
            Route::Journal(journal) => return journal.record(encoded).await,
            Route::Queue { tx, .. } => tx,
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Record(encoded, Some(reply)))
            .await
            .map_err(|_| AuditError::Stopped)?;
        answer.await.map_err(|_| AuditError::Stopped)?
    }

    /// Queues `event` without waiting for it to be durable: for events about what already
    /// happened (a statement's result), which nothing waits on. It does not wake the writer:
    /// it is committed with the writer's next batch, at the latest `later_every` after it
    /// was queued, always after every event recorded before this call (so a result follows
    /// its decision) and before every event recorded after it returns. Waiting here is only
    /// back-pressure, when the writer falls behind. A later store failure is logged by the
    /// writer, and the event is lost with its batch.
    pub async fn submit(&self, event: Event) -> Result<(), AuditError> {
        let encoded = EncodedEvent::new(&event, &self.node)?;
        let (tx, later) = match &self.route {
            Route::Journal(journal) => return journal.submit(encoded).await,
            Route::Queue { tx, later } => (tx, later),
        };
        // Once the writer has taken its last batch the list gives the event back, and the
        // closed queue refuses it: `Stopped`, never a silent loss.
        match later.push(encoded) {
            None => Ok(()),
            // Full: through the queue, which waits for room.
            Some(encoded) => tx
                .send(Command::Record(encoded, None))
                .await
                .map_err(|_| AuditError::Stopped),
        }
    }

    /// Stops taking events, commits everything already queued, signs a final checkpoint
    /// and waits for the writer to finish. Calling it again is a no-op.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let mut task = self.task.lock().await;
        let Some(running) = task.take() else {
            return Ok(());
        };
        match &self.route {
            Route::Journal(journal) => journal.close(),
            // A closed queue means the writer is already finishing.
            Route::Queue { tx, .. } => drop(tx.send(Command::Shutdown).await),
        }
        running.join().await
    }
}

/// Events recorded without waiting, between two batches of the writer. Pushing takes a lock
/// for a moment and wakes nobody, which is the point: a result no longer costs the writer a
/// wake-up and a commit of its own.
#[derive(Clone, Default)]
pub(crate) struct Later(Arc<std::sync::Mutex<Held>>);

#[derive(Default)]
struct Held {
    events: Vec<EncodedEvent>,
    /// The writer took its last batch: nothing pushed now would be written.
    closed: bool,
}

impl Later {
    /// The most events held here; beyond it, submitters go through the queue and wait.
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `event` for the next batch; gives it back when full or closed.
    fn push(&self, event: EncodedEvent) -> Option<EncodedEvent> {
        let mut held = self.lock();
        if held.closed || held.events.len() >= Self::MAX {
            return Some(event);
        }
        held.events.push(event);
        None
    }

    /// Everything held, in the order it was pushed; `last`: and refuse what comes after.
    pub(crate) fn take(&self, last: bool) -> Vec<EncodedEvent> {
        let mut held = self.lock();
        held.closed |= last;
        std::mem::take(&mut held.events)
    }
}

/// Node names go into the signed checkpoint message line by line, so they must be short and
/// free of control characters.
fn validate_node(node: &str) -> Result<(), AuditError> {
    let ok = !node.is_empty() && node.chars().count() <= 128 && !node.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(AuditError::InvalidNode(node.to_owned()))
    }
}
