//! The writer: owns a node's chain state, assigns `seq`/`ts_ms`/`prev`/`hash`, commits
//! batches in one transaction each (group commit) and signs checkpoints.
//!
//! Whatever is queued while a commit is in flight becomes the next batch, so the number of
//! commits (and fsyncs) per second stays roughly constant while the events per commit grow
//! with load.
//!
//! With a blocking [`AuditLog`] (SQLite's own connection) the writer runs on a thread of its
//! own, in a single-threaded runtime that only serves its queue and timers; otherwise it is a
//! task on the caller's runtime.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use portcullis_store::{AuditLog, AuditRow, CheckpointRow, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::auditor::{AuditSettings, Later, Receipt};
use crate::error::AuditError;
use crate::keys::SigningKey;
use crate::record::{self, EncodedEvent, GENESIS_PREV, Position};

/// Who waits for an event to be durable; `None` for an event submitted without waiting.
type RecordReply = Option<oneshot::Sender<Result<Receipt, AuditError>>>;

/// A request to the writer task.
pub(crate) enum Command {
    Record(EncodedEvent, RecordReply),
    /// Stop taking events; the writer finishes what is queued and returns.
    Shutdown,
}

/// The last committed event of the chain.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    pub(crate) seq: i64,
    pub(crate) hash: String,
    pub(crate) ts_ms: i64,
}

pub(crate) struct Writer {
    log: Box<dyn AuditLog>,
    key: SigningKey,
    public_key: String,
    settings: AuditSettings,
    rx: mpsc::Receiver<Command>,
    /// `None` after a failed append: the store's tail is reloaded before the next batch,
    /// since the writer cannot know whether the failed transaction left anything behind.
    tail: Option<Tail>,
    /// The highest seq covered by a known checkpoint.
    signed_seq: i64,
    signed_at: Instant,
    /// Events committed since the last sync (`sync_every` only), and when it was.
    unsynced: bool,
    synced_at: Instant,
    /// Events recorded without waiting, taken with every batch.
    later: Later,
}

/// What woke the writer up.
enum Wake {
    Command(Option<Command>),
    CheckpointTimer,
    SyncTimer,
    /// Time to commit what was recorded without waiting.
    LaterTimer,
}

impl Writer {
    /// Reads the chain's tail through `log` (a blocking log blocks the caller briefly, once)
    /// and its last checkpoint through `store`.
    pub(crate) async fn load(
        store: &dyn Store,
        mut log: Box<dyn AuditLog>,
        key: SigningKey,
        settings: AuditSettings,
        rx: mpsc::Receiver<Command>,
        later: Later,
    ) -> Result<Self, AuditError> {
        let tail = load_tail(&mut *log, &settings.node).await?;
        let signed_seq = last_checkpoint(store, &settings.node, &tail).await?;
        Ok(Self {
            public_key: key.public_key().to_string(),
            log,
            key,
            signed_seq,
            tail: Some(tail),
            settings,
            rx,
            signed_at: Instant::now(),
            unsynced: false,
            synced_at: Instant::now(),
            later,
        })
    }

    /// Commits until the queue is closed and drained; the final checkpoint's result.
    pub(crate) async fn run(mut self) -> Result<(), AuditError> {
        loop {
            match self.wait().await {
                Wake::CheckpointTimer => {
                    let _ = self.checkpoint().await;
                }
                Wake::SyncTimer => self.sync().await,
                Wake::Command(None) => break,
                Wake::Command(Some(first)) => self.step(Some(first)).await,
                Wake::LaterTimer => self.step(None).await,
            }
        }
        // Submitted events that came after the last batch; later ones go to the closed queue
        // and fail (`AuditError::Stopped`).
        let rest: Vec<_> = self
            .later
            .take(true)
            .into_iter()
            .map(|e| (e, None))
            .collect();
        if !rest.is_empty() {
            self.commit(rest).await;
        }
        self.sync().await;
        // The queue is closed and drained: sign whatever the last checkpoint did not cover.
        self.checkpoint().await
    }

    /// Commits `first`, what is queued behind it and what was submitted without waiting
    /// (`None`: only the latter), then signs and syncs when due.
    async fn step(&mut self, first: Option<Command>) {
        let batch = self.take_batch(first).await;
        if !batch.is_empty() {
            self.commit(batch).await;
        }
        if self.unsigned() >= self.settings.checkpoint_every_events {
            let _ = self.checkpoint().await;
        }
        // Under a steady load the timer may never win the select: the bound
        // holds anyway.
        if self.sync_due().is_some_and(|due| due <= Instant::now()) {
            self.sync().await;
        }
    }

    /// Waits for a command, or for the time-based checkpoint when events are unsigned.
    async fn wait(&mut self) -> Wake {
        let due = self.signed_at + self.settings.checkpoint_every;
        let timer_armed = self.unsigned() > 0;
        let sync = self.sync_due();
        let sync_at = sync.unwrap_or(due);
        let later = Instant::now() + self.settings.later_every;
        tokio::select! {
            cmd = self.rx.recv() => Wake::Command(cmd),
            () = tokio::time::sleep_until(later.into()) => Wake::LaterTimer,
            () = tokio::time::sleep_until(due.into()), if timer_armed => Wake::CheckpointTimer,
            () = tokio::time::sleep_until(sync_at.into()), if sync.is_some() => Wake::SyncTimer,
        }
    }

    /// When the unsynced events must be fsynced by (`None`: nothing is waiting for a sync).
    fn sync_due(&self) -> Option<Instant> {
        let every = self.settings.sync_every?;
        self.unsynced.then(|| self.synced_at + every)
    }

    /// Fsyncs what the store has handed to the OS. A failure is logged and retried at the
    /// next interval: the events are already safe from a gateway crash.
    async fn sync(&mut self) {
        if !self.unsynced {
            return;
        }
        match self.log.sync().await {
            Ok(()) => {
                self.unsynced = false;
                self.synced_at = Instant::now();
            }
            Err(e) => tracing::error!(error = %e, "syncing the audit store failed; retrying"),
        }
    }

    /// What was submitted without waiting, then `first` and everything already queued, up
    /// to `max_batch` queued events. The submitted ones are taken last and go first: each was
    /// submitted after the event it follows was durable (so in an earlier batch), and before
    /// anything its submitter queued next, which is therefore in this batch or a later one.
    async fn take_batch(&mut self, first: Option<Command>) -> Vec<(EncodedEvent, RecordReply)> {
        let mut batch = Vec::new();
        if let Some(first) = first {
            self.drain_into(&mut batch, Some(first));
            // The recorders answered by the previous commit are typically just about to send
            // their next event. Yielding once lets them, so the batch is full rather than a
            // fragment; without it, batches under load were ~35% smaller and throughput lower.
            if batch.len() < self.settings.max_batch && !self.rx.is_closed() {
                if self.log.blocking() {
                    // On the writer's own thread, the recorders run on the other threads.
                    std::thread::yield_now();
                } else {
                    tokio::task::yield_now().await;
                }
                let next = self.rx.try_recv().ok();
                self.drain_into(&mut batch, next);
            }
        }
        let submitted = self.later.take(false);
        if submitted.is_empty() {
            return batch;
        }
        let mut all = Vec::with_capacity(submitted.len() + batch.len());
        all.extend(submitted.into_iter().map(|e| (e, None)));
        all.append(&mut batch);
        all
    }

    fn drain_into(&mut self, batch: &mut Vec<(EncodedEvent, RecordReply)>, first: Option<Command>) {
        let mut next = first;
        while let Some(cmd) = next {
            match cmd {
                Command::Record(event, reply) => batch.push((event, reply)),
                // Closing lets queued events drain while refusing new ones.
                Command::Shutdown => self.rx.close(),
            }
            if batch.len() >= self.settings.max_batch {
                break;
            }
            next = self.rx.try_recv().ok();
        }
    }

    /// Chains and appends `batch` in one transaction, then answers every waiter.
    async fn commit(&mut self, batch: Vec<(EncodedEvent, RecordReply)>) {
        let tail = match self.current_tail().await {
            Ok(tail) => tail,
            Err(e) => return fail_all(batch.into_iter().map(|(_, r)| r), e),
        };
        let (rows, waiters) = self.chain(&tail, batch);
        match self.log.append(&rows).await {
            Ok(()) => {
                if !self.unsynced {
                    self.unsynced = true;
                    self.synced_at = Instant::now();
                }
                if let Some(last) = rows.last() {
                    self.tail = Some(Tail {
                        seq: last.seq,
                        hash: last.hash.clone(),
                        ts_ms: last.ts_ms,
                    });
                }
                for (row, reply) in rows.into_iter().zip(waiters) {
                    if let Some(reply) = reply {
                        let receipt = Receipt {
                            seq: row.seq,
                            hash: row.hash,
                        };
                        let _ = reply.send(Ok(receipt));
                    }
                }
            }
            Err(e) => {
                tracing::error!(node = %self.settings.node, events = rows.len(), error = %e,
                    "audit append failed; the events of this batch are rejected");
                self.tail = None;
                fail_all(waiters, e);
            }
        }
    }

    /// Assigns chain positions to `batch`.
    fn chain(
        &self,
        tail: &Tail,
        batch: Vec<(EncodedEvent, RecordReply)>,
    ) -> (Vec<AuditRow>, Vec<RecordReply>) {
        // Timestamps never go backwards within a chain, even if the wall clock does, so
        // that time-ordered export agrees with chain order.
        let ts_ms = now_ms().max(tail.ts_ms);
        let node = self.settings.node.as_str();
        let mut rows: Vec<AuditRow> = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let (mut seq, mut prev) = (tail.seq, tail.hash.clone());
        for (event, reply) in batch {
            seq += 1;
            let pos = Position {
                seq,
                ts_ms,
                prev: &prev,
            };
            let (kind, body, hash) = event.seal(pos);
            rows.push(AuditRow {
                node: node.to_owned(),
                seq,
                ts_ms,
                kind,
                body,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
            waiters.push(reply);
        }
        (rows, waiters)
    }

    async fn current_tail(&mut self) -> Result<Tail, StoreError> {
        if let Some(tail) = &self.tail {
            return Ok(tail.clone());
        }
        let tail = load_tail(&mut *self.log, &self.settings.node).await?;
        self.signed_seq = self.signed_seq.min(tail.seq);
        self.tail = Some(tail.clone());
        Ok(tail)
    }

    /// Events committed since the last checkpoint.
    fn unsigned(&self) -> u64 {
        let seq = self.tail.as_ref().map_or(self.signed_seq, |t| t.seq);
        u64::try_from(seq - self.signed_seq).unwrap_or(0)
    }

    /// Signs and stores a checkpoint over the tail, if there is anything new to sign.
    async fn checkpoint(&mut self) -> Result<(), AuditError> {
        // Restart the timer whatever happens, so a failing store is retried at the
        // checkpoint interval rather than in a tight loop.
        self.signed_at = Instant::now();
        let tail = match self.current_tail().await {
            Ok(tail) => tail,
            Err(e) => return Err(AuditError::Store(e)),
        };
        if tail.seq <= self.signed_seq {
            return Ok(());
        }
        let node = &self.settings.node;
        put_checkpoint(&mut *self.log, &self.key, &self.public_key, node, &tail).await?;
        self.signed_seq = tail.seq;
        Ok(())
    }
}

fn fail_all(waiters: impl IntoIterator<Item = RecordReply>, error: StoreError) {
    let error = Arc::new(error);
    for reply in waiters.into_iter().flatten() {
        let _ = reply.send(Err(AuditError::WriteFailed(error.clone())));
    }
}

/// The highest seq of `node` that a stored checkpoint covers, at most `tail`'s.
pub(crate) async fn last_checkpoint(
    store: &dyn Store,
    node: &str,
    tail: &Tail,
) -> Result<i64, StoreError> {
    let last = store
        .checkpoints(node)
        .await?
        .iter()
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    if last > tail.seq {
        // Events that a checkpoint vouched for are gone. Recording continues (refusing
        // would stop the gateway, not undo the loss), and `audit verify` will report it.
        tracing::error!(
            node = %node,
            checkpoint_seq = last,
            tail_seq = tail.seq,
            "audit chain is shorter than its last checkpoint: events were deleted"
        );
    }
    Ok(last.min(tail.seq))
}

/// Signs a checkpoint over `tail`, now, and stores it.
pub(crate) async fn put_checkpoint(
    log: &mut dyn AuditLog,
    key: &SigningKey,
    public_key: &str,
    node: &str,
    tail: &Tail,
) -> Result<(), AuditError> {
    let ts_ms = now_ms();
    let message = record::checkpoint_message(node, tail.seq, &tail.hash, ts_ms);
    let row = CheckpointRow {
        node: node.to_owned(),
        seq: tail.seq,
        ts_ms,
        hash: tail.hash.clone(),
        public_key: public_key.to_owned(),
        signature: key.sign(message.as_bytes()),
    };
    match log.checkpoint_put(&row).await {
        Ok(()) => {
            tracing::debug!(node = %node, seq = row.seq, "audit checkpoint signed");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(node = %node, seq = row.seq, error = %e, "audit checkpoint failed");
            Err(AuditError::Store(e))
        }
    }
}

pub(crate) async fn load_tail(log: &mut dyn AuditLog, node: &str) -> Result<Tail, StoreError> {
    Ok(match log.tail(node).await? {
        Some(row) => Tail {
            seq: row.seq,
            hash: row.hash,
            ts_ms: row.ts_ms,
        },
        None => Tail {
            seq: 0,
            hash: GENESIS_PREV.to_owned(),
            ts_ms: 0,
        },
    })
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
