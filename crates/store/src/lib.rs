//! Durable state for Portcullis: the audit chain, its signed checkpoints, token
//! revocations and approval reviews (DESIGN.md §7, §8, §9).
//!
//! Two backends share one logical schema, with one migration folder each
//! (`migrations/sqlite`, `migrations/postgres`):
//!
//! - **SQLite** (`sqlite://path/to/state.db`), the embedded default. Relative paths are
//!   relative to the working directory and missing parent directories are created. The
//!   database runs in WAL mode with `synchronous=FULL`, so a write acknowledged by this crate
//!   survives `kill -9` of the gateway (a power loss that drops the OS page cache is out of
//!   scope), with a 5 s busy timeout and foreign keys on.
//! - **PostgreSQL** (`postgres://...` or `postgresql://...`) for several gateways sharing state.
//!
//! The store knows nothing about what an audit record means: it keeps rows. Hashing,
//! signing and verification belong to `portcullis-audit`. The API offers no way to update
//! or delete an audit event; the table is append-only by construction. Likewise a review is
//! a row with an opaque JSON body (`portcullis-reviews` owns its meaning); the store only
//! offers compare-and-set updates on it, so that gateways sharing a database never lose a
//! concurrent decision.
//!
//! Queries are built at run time (`sqlx::query`), not checked against a live database at
//! compile time, so building the crate needs no `DATABASE_URL`.

mod error;
mod log;
mod postgres;
mod redact;
mod reviews;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::StoreError;
pub use log::{AuditLog, audit_log};

/// One stored audit event: a link of a node's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditRow {
    /// The gateway node whose chain this event belongs to.
    pub node: String,
    /// Position in the node's chain, contiguous from 1.
    pub seq: i64,
    /// Unix milliseconds when the event was recorded.
    pub ts_ms: i64,
    /// The event kind, copied out of the body so it can be filtered without parsing.
    pub kind: String,
    /// The canonical JSON of the record; the hash covers exactly these bytes.
    pub body: String,
    /// Hex SHA-256 of the previous event's body.
    pub prev_hash: String,
    /// Hex SHA-256 of `body`.
    pub hash: String,
}

/// A signed statement that a node's chain had `hash` at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CheckpointRow {
    pub node: String,
    pub seq: i64,
    pub ts_ms: i64,
    pub hash: String,
    pub public_key: String,
    pub signature: String,
}

/// A revoked token or identity; `kind` says what `value` names (e.g. a token id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RevocationRow {
    pub kind: String,
    pub value: String,
    pub created_ms: i64,
    pub created_by: String,
    pub reason: String,
}

/// One stored approval review. `status`, `binding` and the times are copied out of `body`
/// (the review's JSON, owned by `portcullis-reviews`) so that they can be indexed and
/// compared without parsing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReviewRow {
    pub id: String,
    /// Hash of the exact command the review is bound to.
    pub binding: String,
    /// `pending`, `approved`, ... At most one `pending` row exists per binding.
    pub status: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub updated_ms: i64,
    pub body: String,
}

/// The state store. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Round trip to the database, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Forces what this store acknowledged to stable storage, for a store opened with
    /// [`Durability::Crash`] (the audit writer calls it at least every `sync_every`). A
    /// store whose every commit is already synced, or whose server syncs on its own
    /// schedule, does nothing.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// A connection of the audit writer's own, where the backend gains from one (SQLite:
    /// see [`AuditLog`]). `None`: the writer uses this store's async methods. Most callers
    /// want [`audit_log`].
    async fn own_audit_log(&self) -> Result<Option<Box<dyn AuditLog>>, StoreError> {
        Ok(None)
    }

    /// Appends a batch of audit events in one transaction: either all of them are durably
    /// committed or none is. An event whose `(node, seq)` already exists fails the batch
    /// with [`StoreError::Conflict`].
    async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError>;

    /// The event with the highest `seq` of `node`, if any.
    async fn audit_tail(&self, node: &str) -> Result<Option<AuditRow>, StoreError>;

    /// Up to `limit` events of `node` with `seq > after_seq`, ordered by `seq`.
    async fn audit_page(
        &self,
        node: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError>;

    /// Every node that has events or checkpoints, sorted. Checkpoints count so that a node
    /// whose events were all deleted still shows up for verification.
    async fn audit_nodes(&self) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` events with `since_ms <= ts_ms < until_ms`, ordered by
    /// `(ts_ms, node, seq)`. `after` is the `(node, seq)` of the last event of the previous
    /// page; the next page starts strictly after it in that order.
    async fn audit_between(
        &self,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError>;

    /// Stores a checkpoint. Storing the same checkpoint twice is not an error.
    async fn checkpoint_put(&self, cp: &CheckpointRow) -> Result<(), StoreError>;

    /// The checkpoints of `node`, ordered by `seq`.
    async fn checkpoints(&self, node: &str) -> Result<Vec<CheckpointRow>, StoreError>;

    /// Records a revocation; a second one for the same `(kind, value)` is ignored.
    async fn revocation_put(&self, r: &RevocationRow) -> Result<(), StoreError>;

    /// Every revocation, ordered by `(kind, value)`.
    async fn revocations(&self) -> Result<Vec<RevocationRow>, StoreError>;

    /// Stores a new review. A row with the same `id`, or a second `pending` row for the same
    /// `binding`, fails with [`StoreError::Conflict`].
    async fn review_insert(&self, r: &ReviewRow) -> Result<(), StoreError>;

    /// The review with this id, if any.
    async fn review_get(&self, id: &str) -> Result<Option<ReviewRow>, StoreError>;

    /// The reviews bound to `binding` whose status is one of `statuses`, newest first.
    async fn review_find(
        &self,
        binding: &str,
        statuses: &[&str],
    ) -> Result<Vec<ReviewRow>, StoreError>;

    /// Up to `limit` reviews, of one status or all, newest first.
    async fn review_list(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewRow>, StoreError>;

    /// Compare-and-set on the status: replaces status, updated_ms and body of `row.id` only
    /// if the stored status is `from`; `Ok(true)` if it did. Of several concurrent updates
    /// from the same status, exactly one wins.
    async fn review_update(&self, from: &str, row: &ReviewRow) -> Result<bool, StoreError>;

    /// Compare-and-set on the whole row: replaces status, updated_ms and body of `next.id`
    /// only if the stored status, updated_ms and body still equal `current`'s; `Ok(true)` if
    /// it did. Unlike [`Store::review_update`] this also catches a concurrent change that kept
    /// the status (a second approval of a review that needs several), so none is lost.
    async fn review_replace(
        &self,
        current: &ReviewRow,
        next: &ReviewRow,
    ) -> Result<bool, StoreError>;

    /// The reviews with this status whose `expires_ms <= now_ms`, oldest first.
    async fn reviews_due(&self, status: &str, now_ms: i64) -> Result<Vec<ReviewRow>, StoreError>;
}

/// How durable a write is once the store acknowledges it (`[audit] durability`, DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On disk, fsynced, at every commit (SQLite `synchronous=FULL`; PostgreSQL's
    /// `synchronous_commit` as the server sets it).
    #[default]
    Fsync,
    /// Handed to the operating system at commit, so it survives a crash or kill -9 of the
    /// gateway, and fsynced later: SQLite `synchronous=NORMAL` in WAL mode plus
    /// [`Store::sync`] by the caller's schedule; PostgreSQL `synchronous_commit = off`,
    /// which the server's WAL writer flushes within three `wal_writer_delay` (600 ms by
    /// default). A gateway crash loses nothing the server acknowledged.
    Crash,
}

/// Opens the store named by `url`, creating it if needed, and runs pending migrations.
///
/// Errors never contain the URL's password.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, Durability::Fsync).await
}

/// [`open`] with the durability of acknowledged writes. A SQLite URL's own
/// `?synchronous=` parameter, when given, wins.
pub async fn open_with(url: &str, durability: Durability) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::open(url, durability).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::PgStore::open(url, durability).await?)),
        _ => Err(StoreError::UnsupportedUrl {
            scheme: redact::short_scheme(scheme),
        }),
    }
}

#[cfg(test)]
mod tests;
