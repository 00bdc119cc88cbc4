//! The [`Auditor`]: the handle callers record events through, and its settings.
//!
//! Recording is a request to a single writer task (see `writer`), which owns the chain
//! state. One writer per node is what keeps `seq` contiguous and `prev` linked without
//! locking the database; batching what accumulates while a commit is in flight is what makes
//! it fast (group commit).

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::Store;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::AuditError;
use crate::event::Event;
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
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            node: "local".to_owned(),
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            max_batch: 4096,
            sync_every: None,
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
    tx: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

impl Auditor {
    /// Continues `settings.node`'s chain from its stored tail and starts the writer task.
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
        // The queue holds at most a few batches: beyond that, recorders wait, which is the
        // back-pressure that keeps memory bounded when the store is slow.
        let (tx, rx) = mpsc::channel(settings.max_batch.saturating_mul(2));
        let writer = Writer::load(store, key, settings, rx).await?;
        let task = tokio::spawn(writer.run());
        Ok(Auditor {
            tx,
            task: Arc::new(Mutex::new(Some(task))),
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
        let encoded = EncodedEvent::new(&event)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Record(encoded, Some(reply)))
            .await
            .map_err(|_| AuditError::Stopped)?;
        answer.await.map_err(|_| AuditError::Stopped)?
    }

    /// Queues `event` without waiting for it to be durable: for events about what already
    /// happened (a statement's result), which nothing waits on. It is chained in queue
    /// order like any other event; waiting here is only the queue's back-pressure. A later
    /// store failure is logged by the writer, and the event is lost with its batch.
    pub async fn submit(&self, event: Event) -> Result<(), AuditError> {
        let encoded = EncodedEvent::new(&event)?;
        self.tx
            .send(Command::Record(encoded, None))
            .await
            .map_err(|_| AuditError::Stopped)
    }

    /// Stops taking events, commits everything already queued, signs a final checkpoint
    /// and waits for the writer to finish. Calling it again is a no-op.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let mut task = self.task.lock().await;
        let Some(handle) = task.take() else {
            return Ok(());
        };
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Command::Shutdown(reply)).await.is_ok();
        let result = if sent {
            answer.await.unwrap_or(Err(AuditError::Stopped))
        } else {
            Err(AuditError::Stopped)
        };
        handle.await.map_err(|_| AuditError::Stopped)?;
        result
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
