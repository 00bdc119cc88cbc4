//! The write side of the audit chain, as the audit writer uses it: the chain's tail, appends,
//! checkpoints and the deferred sync. One writer owns one [`AuditLog`].
//!
//! Any [`Store`] gives one through its async methods ([`audit_log`]). The SQLite backend gives
//! its own: a connection of the writer's own, called synchronously, so that a commit is a
//! function call on the writer's thread rather than two hand-offs to sqlx's worker thread and
//! back (on two cores each hand-off is a wake-up that costs about as much as the insert).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::{AuditRow, CheckpointRow, Store, StoreError, sqlite};

/// The audit writer's view of the store.
#[async_trait]
pub trait AuditLog: Send {
    /// True when the methods block the calling thread (they never wait on a future): the
    /// writer must then run on a thread of its own, never on an async runtime's worker.
    fn blocking(&self) -> bool;

    /// See [`Store::audit_tail`].
    async fn tail(&mut self, node: &str) -> Result<Option<AuditRow>, StoreError>;

    /// See [`Store::audit_append`].
    async fn append(&mut self, rows: &[AuditRow]) -> Result<(), StoreError>;

    /// See [`Store::sync`].
    async fn sync(&mut self) -> Result<(), StoreError>;

    /// See [`Store::checkpoint_put`].
    async fn checkpoint_put(&mut self, cp: &CheckpointRow) -> Result<(), StoreError>;
}

/// The audit log of `store`: its own blocking one if it has one, else its async methods.
pub async fn audit_log(store: Arc<dyn Store>) -> Result<Box<dyn AuditLog>, StoreError> {
    match store.own_audit_log().await? {
        Some(log) => Ok(log),
        None => Ok(Box::new(StoreLog(store))),
    }
}

/// An [`AuditLog`] over a store's async methods.
struct StoreLog(Arc<dyn Store>);

#[async_trait]
impl AuditLog for StoreLog {
    fn blocking(&self) -> bool {
        false
    }

    async fn tail(&mut self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        self.0.audit_tail(node).await
    }

    async fn append(&mut self, rows: &[AuditRow]) -> Result<(), StoreError> {
        self.0.audit_append(rows).await
    }

    async fn sync(&mut self) -> Result<(), StoreError> {
        self.0.sync().await
    }

    async fn checkpoint_put(&mut self, cp: &CheckpointRow) -> Result<(), StoreError> {
        self.0.checkpoint_put(cp).await
    }
}

/// The SQLite backend's own [`AuditLog`]: one connection to the same file, the same pragmas
/// as the pool's, and the statements prepared once.
pub(crate) struct SqliteLog {
    conn: Connection,
}

impl SqliteLog {
    /// Opens `path` (an existing, migrated database in WAL mode) with `synchronous` set to
    /// `FULL` or `NORMAL`.
    pub(crate) fn open(path: &Path, synchronous: &'static str) -> Result<Self, StoreError> {
        let connect = |e: rusqlite::Error| StoreError::Connect {
            backend: "sqlite",
            message: e.to_string(),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(connect)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(connect)?;
        // WAL is a property of the file (the pool set it); synchronous is per connection.
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(connect)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(connect)?;
        Ok(Self { conn })
    }

    /// The connection's `synchronous` setting (2 FULL, 1 NORMAL).
    #[cfg(test)]
    pub(crate) fn synchronous(&self) -> i64 {
        self.conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }
}

fn query_error(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        let message = e.to_string();
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict { op, message },
            _ => StoreError::Query { op, message },
        }
    }
}

#[async_trait]
impl AuditLog for SqliteLog {
    fn blocking(&self) -> bool {
        true
    }

    async fn tail(&mut self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        let op = "audit_tail";
        let mut st = self
            .conn
            .prepare_cached(sqlite::AUDIT_TAIL)
            .map_err(query_error(op))?;
        let mut rows = st.query([node]).map_err(query_error(op))?;
        let Some(row) = rows.next().map_err(query_error(op))? else {
            return Ok(None);
        };
        let read = || -> rusqlite::Result<AuditRow> {
            Ok(AuditRow {
                node: row.get(0)?,
                seq: row.get(1)?,
                ts_ms: row.get(2)?,
                kind: row.get(3)?,
                body: row.get(4)?,
                prev_hash: row.get(5)?,
                hash: row.get(6)?,
            })
        };
        read().map(Some).map_err(query_error(op))
    }

    async fn append(&mut self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let op = "audit_append";
        if rows.is_empty() {
            return Ok(());
        }
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a
        // concurrent writer on the pool cannot make this transaction fail half-way.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_error(op))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit_events (node, seq, ts_ms, kind, body, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(query_error(op))?;
            for r in rows {
                insert
                    .execute(params![
                        r.node,
                        r.seq,
                        r.ts_ms,
                        r.kind,
                        r.body,
                        r.prev_hash,
                        r.hash
                    ])
                    .map_err(query_error(op))?;
            }
        }
        // Dropping an uncommitted transaction rolls it back, so an error above leaves nothing.
        tx.commit().map_err(query_error(op))
    }

    /// See [`sqlite::SYNC`].
    async fn sync(&mut self) -> Result<(), StoreError> {
        let op = "sync";
        self.conn
            .query_row(sqlite::SYNC, [], |_| Ok(()))
            .map_err(query_error(op))
    }

    async fn checkpoint_put(&mut self, cp: &CheckpointRow) -> Result<(), StoreError> {
        let op = "checkpoint_put";
        self.conn
            .prepare_cached(sqlite::CHECKPOINT_INSERT)
            .and_then(|mut st| {
                st.execute(params![
                    cp.node,
                    cp.seq,
                    cp.ts_ms,
                    cp.hash,
                    cp.public_key,
                    cp.signature
                ])
            })
            .map(drop)
            .map_err(query_error(op))
    }
}
