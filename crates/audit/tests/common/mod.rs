//! Shared set-up for the audit tests: a store on either backend, raw SQL access to it for
//! tampering, and an Auditor with small checkpoint intervals.

// Test support: panicking on a broken set-up is the point, and not every test binary
// uses every helper.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use portcullis_audit::{AuditSettings, Auditor, Event, Receipt, SigningKey};
use portcullis_store::{
    AuditRow, CheckpointRow, ReviewRow, RevocationRow, Store, StoreError, open,
    testing::with_postgres,
};
use tempfile::TempDir;

/// A store plus what tests need around it.
pub struct Env {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
    /// The state directory holding the signing key.
    pub dir: TempDir,
}

/// Direct SQL access to the store's database, bypassing the append-only API.
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    pub async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Runs `test` on a fresh SQLite file, tampering through a second connection pool.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = open(&url).await.unwrap();
    let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    test(Env { store, raw, dir }).await;
}

/// Runs `test` on a fresh PostgreSQL database, dropped afterwards.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres(|store, url| async move {
        let raw = Raw::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        test(Env { store, raw, dir }).await;
    })
    .await;
}

/// Generates a SQLite and a PostgreSQL test from `async fn $name(env: Env)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::common::on_sqlite(super::$name).await;
            }
            #[tokio::test]
            async fn postgres() {
                $crate::common::on_postgres(super::$name).await;
            }
        }
    };
}

/// Settings with a checkpoint every 10 events and no time-based ones during a test.
pub fn settings() -> AuditSettings {
    AuditSettings {
        node: "test-node".to_owned(),
        checkpoint_every_events: 10,
        checkpoint_every: Duration::from_secs(3600),
        max_batch: 4096,
        sync_every: None,
        later_every: Duration::from_millis(50),
        journal: None,
    }
}

impl Env {
    pub fn key(&self) -> SigningKey {
        SigningKey::load_or_create(self.dir.path()).unwrap()
    }

    pub async fn auditor(&self) -> Auditor {
        Auditor::start(self.store.clone(), self.key(), settings())
            .await
            .unwrap()
    }

    /// Records `n` events one at a time (so checkpoints land exactly every 10 events),
    /// numbering them from `first`, and shuts the Auditor down (a final checkpoint).
    pub async fn record_run(&self, first: u64, n: u64) -> Vec<Receipt> {
        let auditor = self.auditor().await;
        let mut receipts = Vec::new();
        for i in first..first + n {
            receipts.push(auditor.record(event(i)).await.unwrap());
        }
        auditor.shutdown().await.unwrap();
        receipts
    }

    pub async fn row(&self, seq: i64) -> AuditRow {
        let page = self
            .store
            .audit_page("test-node", seq - 1, 1)
            .await
            .unwrap();
        page.into_iter().next().filter(|r| r.seq == seq).unwrap()
    }
}

pub fn event(i: u64) -> Event {
    Event {
        kind: "decision".to_owned(),
        outcome: Some("allow".to_owned()),
        connection: Some("orders-db".to_owned()),
        protocol: Some("postgres".to_owned()),
        action: Some("sql.select".to_owned()),
        command: Some(format!("SELECT {i}")),
        policies: vec!["readers".to_owned()],
        data: Some(serde_json::json!({ "n": i, "rows": 3 })),
        ..Event::default()
    }
}

/// `s` as a SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Lowercase hex SHA-256, computed independently of the crate under test.
pub fn sha256_hex(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    hex::encode(d.as_ref())
}

/// A store whose appends fail while `broken` is set; everything else is delegated.
pub struct Flaky {
    pub inner: Arc<dyn Store>,
    pub broken: AtomicBool,
    /// Calls of `sync`.
    pub syncs: AtomicU64,
}

impl Flaky {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner,
            broken: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Store for Flaky {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn sync(&self) -> Result<(), StoreError> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync().await
    }
    async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Query {
                op: "audit_append",
                message: "disk full".to_owned(),
            });
        }
        self.inner.audit_append(rows).await
    }
    async fn audit_tail(&self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        self.inner.audit_tail(node).await
    }
    async fn audit_page(&self, n: &str, a: i64, l: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.inner.audit_page(n, a, l).await
    }
    async fn audit_nodes(&self) -> Result<Vec<String>, StoreError> {
        self.inner.audit_nodes().await
    }
    async fn audit_between(
        &self,
        s: Option<i64>,
        u: Option<i64>,
        a: Option<(String, i64)>,
        l: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.inner.audit_between(s, u, a, l).await
    }
    async fn checkpoint_put(&self, cp: &CheckpointRow) -> Result<(), StoreError> {
        self.inner.checkpoint_put(cp).await
    }
    async fn checkpoints(&self, node: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        self.inner.checkpoints(node).await
    }
    async fn revocation_put(&self, r: &RevocationRow) -> Result<(), StoreError> {
        self.inner.revocation_put(r).await
    }
    async fn revocations(&self) -> Result<Vec<RevocationRow>, StoreError> {
        self.inner.revocations().await
    }
    async fn review_insert(&self, r: &ReviewRow) -> Result<(), StoreError> {
        self.inner.review_insert(r).await
    }
    async fn review_get(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        self.inner.review_get(id).await
    }
    async fn review_find(&self, b: &str, s: &[&str]) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.review_find(b, s).await
    }
    async fn review_list(&self, s: Option<&str>, l: i64) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.review_list(s, l).await
    }
    async fn review_update(&self, from: &str, r: &ReviewRow) -> Result<bool, StoreError> {
        self.inner.review_update(from, r).await
    }
    async fn review_replace(&self, c: &ReviewRow, n: &ReviewRow) -> Result<bool, StoreError> {
        self.inner.review_replace(c, n).await
    }
    async fn reviews_due(&self, s: &str, now: i64) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.reviews_due(s, now).await
    }
}
