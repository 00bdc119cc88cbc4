//! Durable state for Portcullis: the audit chain, its signed checkpoints and token
//! revocations (DESIGN.md §8, §9).
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
//! or delete an audit event; the table is append-only by construction.
//!
//! Queries are built at run time (`sqlx::query`), not checked against a live database at
//! compile time, so building the crate needs no `DATABASE_URL`.

mod error;
mod postgres;
mod redact;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::StoreError;

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

/// The state store. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Round trip to the database, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

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
}

/// Opens the store named by `url`, creating it if needed, and runs pending migrations.
///
/// Errors never contain the URL's password.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::open(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::PgStore::open(url).await?)),
        _ => Err(StoreError::UnsupportedUrl {
            scheme: redact::short_scheme(scheme),
        }),
    }
}

#[cfg(test)]
mod tests;
