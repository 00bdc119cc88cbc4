//! The SQLite backend: one file, WAL mode, `synchronous=FULL`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use crate::log::SqliteLog;
use crate::reviews::sqlite as reviews;
use crate::{
    AuditLog, AuditRow, CheckpointRow, Durability, ReviewRow, RevocationRow, Store, StoreError,
};

const BACKEND: &str = "sqlite";

/// Rows per INSERT statement. Seven bound values per row keeps a statement far below
/// SQLite's limit of 32766 variables, and multi-row statements are what makes a batch of
/// thousands of events cheap.
const ROWS_PER_INSERT: usize = 500;

const AUDIT_COLUMNS: &str = "node, seq, ts_ms, kind, body, prev_hash, hash";

// Shared with the audit writer's own connection (`log.rs`).
pub(crate) const AUDIT_TAIL: &str = "SELECT node, seq, ts_ms, kind, body, prev_hash, hash \
     FROM audit_events WHERE node = ?1 ORDER BY seq DESC LIMIT 1";
pub(crate) const CHECKPOINT_INSERT: &str = "INSERT INTO audit_checkpoints (node, seq, ts_ms, hash, public_key, signature) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node, seq, hash) DO NOTHING";
/// In WAL mode with `synchronous=NORMAL`, SQLite fsyncs the WAL before each checkpoint: a
/// passive checkpoint (which never waits for readers) is the sync.
pub(crate) const SYNC: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// Takes our own `synchronous=full|normal` query parameter off the URL (sqlx does not know it).
fn split_synchronous(
    url: &str,
    durability: Durability,
) -> Result<(String, SqliteSynchronous), StoreError> {
    let default = match durability {
        Durability::Fsync => SqliteSynchronous::Full,
        Durability::Crash => SqliteSynchronous::Normal,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), default));
    };
    let mut sync = default;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", "full")) => sync = SqliteSynchronous::Full,
            Some(("synchronous", "normal")) => sync = SqliteSynchronous::Normal,
            Some(("synchronous", other)) => {
                return Err(StoreError::InvalidUrl {
                    backend: BACKEND,
                    message: format!("synchronous={other}: use full or normal"),
                });
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, sync))
}

/// A SQLite-backed [`Store`].
pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The database file and its `synchronous` setting, for the audit writer's own
    /// connection; `None` for an in-memory database, which a second connection would not see.
    pub(crate) file: Option<(PathBuf, &'static str)>,
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let (url, synchronous) = split_synchronous(url, durability)?;
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::InvalidUrl {
                backend: BACKEND,
                message: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL (the default) makes every commit fsync the WAL, so an acknowledged audit
            // event survives even an OS crash. `?synchronous=normal` leaves the WAL in the OS
            // page cache at commit: acknowledged events still survive a crash or kill -9 of the
            // gateway, but not a power loss, in exchange for far lower commit latency.
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        create_parent_dir(&options)?;
        let file = options.get_filename();
        let file = (!file.as_os_str().to_string_lossy().starts_with("file:")).then(|| {
            let synchronous = match synchronous {
                SqliteSynchronous::Full => "FULL",
                _ => "NORMAL",
            };
            (file.to_path_buf(), synchronous)
        });
        // One writer at a time is all SQLite allows; a few connections let readers (verify,
        // export, the API) proceed beside the audit writer thanks to WAL.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect {
                backend: BACKEND,
                message: e.to_string(),
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                backend: BACKEND,
                message: e.to_string(),
            })?;
        Ok(Self { pool, file })
    }

    fn err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |e| StoreError::query(op, &e, &[])
    }
}

fn create_parent_dir(options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let file = options.get_filename();
    // In-memory databases get a synthetic "file:..." name and need no directory.
    if file.as_os_str().to_string_lossy().starts_with("file:") {
        return Ok(());
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Self::err("ping"))
    }

    /// See [`SYNC`].
    async fn sync(&self) -> Result<(), StoreError> {
        sqlx::query(SYNC)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Self::err("sync"))
    }

    async fn own_audit_log(&self) -> Result<Option<Box<dyn AuditLog>>, StoreError> {
        let Some((path, synchronous)) = &self.file else {
            return Ok(None);
        };
        let log = SqliteLog::open(path, synchronous)?;
        Ok(Some(Box::new(log)))
    }

    async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let op = "audit_append";
        // One statement is atomic on its own: a batch that fits in one INSERT is one round
        // trip to the database, not three (BEGIN, INSERT, COMMIT).
        if rows.len() <= ROWS_PER_INSERT {
            return audit_insert(rows)
                .build()
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(Self::err(op));
        }
        let mut tx = self.pool.begin().await.map_err(Self::err(op))?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            audit_insert(chunk)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(Self::err(op))?;
        }
        tx.commit().await.map_err(Self::err(op))
    }

    async fn audit_tail(&self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        sqlx::query_as(AUDIT_TAIL)
            .bind(node)
            .fetch_optional(&self.pool)
            .await
            .map_err(Self::err("audit_tail"))
    }

    async fn audit_page(
        &self,
        node: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE node = ?1 AND seq > ?2 \
             ORDER BY seq LIMIT ?3"
        ))
        .bind(node)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(Self::err("audit_page"))
    }

    async fn audit_nodes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT node FROM audit_events UNION SELECT node FROM audit_checkpoints ORDER BY node",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Self::err("audit_nodes"))
    }

    async fn audit_between(
        &self,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let op = "audit_between";
        // The keyset is (ts_ms, node, seq); the caller only knows (node, seq) of the last
        // row, so its ts_ms is looked up first. Rows are never updated, so it cannot move.
        let after = match after {
            Some((node, seq)) => {
                let ts: Option<i64> = sqlx::query_scalar(
                    "SELECT ts_ms FROM audit_events WHERE node = ?1 AND seq = ?2",
                )
                .bind(&node)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await
                .map_err(Self::err(op))?;
                match ts {
                    Some(ts) => Some((ts, node, seq)),
                    None => return Ok(Vec::new()),
                }
            }
            None => None,
        };
        // Only the conditions that apply are written, so that SQLite can turn them into a
        // range scan of the (ts_ms, node, seq) index instead of filtering every row.
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE 1 = 1"
        ));
        if let Some(since) = since_ms {
            qb.push(" AND ts_ms >= ").push_bind(since);
        }
        if let Some(until) = until_ms {
            qb.push(" AND ts_ms < ").push_bind(until);
        }
        if let Some((ts, node, seq)) = after {
            qb.push(" AND (ts_ms, node, seq) > (").push_bind(ts);
            qb.push(", ")
                .push_bind(node)
                .push(", ")
                .push_bind(seq)
                .push(")");
        }
        qb.push(" ORDER BY ts_ms, node, seq LIMIT ")
            .push_bind(limit);
        qb.build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(Self::err(op))
    }

    async fn checkpoint_put(&self, cp: &CheckpointRow) -> Result<(), StoreError> {
        sqlx::query(CHECKPOINT_INSERT)
            .bind(&cp.node)
            .bind(cp.seq)
            .bind(cp.ts_ms)
            .bind(&cp.hash)
            .bind(&cp.public_key)
            .bind(&cp.signature)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Self::err("checkpoint_put"))
    }

    async fn checkpoints(&self, node: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        sqlx::query_as(
            "SELECT node, seq, ts_ms, hash, public_key, signature FROM audit_checkpoints \
             WHERE node = ?1 ORDER BY seq, ts_ms",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(Self::err("checkpoints"))
    }

    async fn revocation_put(&self, r: &RevocationRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocations (kind, value, created_ms, created_by, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(&r.kind)
        .bind(&r.value)
        .bind(r.created_ms)
        .bind(&r.created_by)
        .bind(&r.reason)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(Self::err("revocation_put"))
    }

    async fn revocations(&self) -> Result<Vec<RevocationRow>, StoreError> {
        sqlx::query_as(
            "SELECT kind, value, created_ms, created_by, reason FROM revocations \
             ORDER BY kind, value",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Self::err("revocations"))
    }

    async fn review_insert(&self, r: &ReviewRow) -> Result<(), StoreError> {
        reviews::insert(&self.pool, r)
            .await
            .map_err(Self::err("review_insert"))
    }

    async fn review_get(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        reviews::get(&self.pool, id)
            .await
            .map_err(Self::err("review_get"))
    }

    async fn review_find(
        &self,
        binding: &str,
        statuses: &[&str],
    ) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::find(&self.pool, binding, statuses)
            .await
            .map_err(Self::err("review_find"))
    }

    async fn review_list(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::list(&self.pool, status, limit)
            .await
            .map_err(Self::err("review_list"))
    }

    async fn review_update(&self, from: &str, row: &ReviewRow) -> Result<bool, StoreError> {
        reviews::update(&self.pool, from, row)
            .await
            .map_err(Self::err("review_update"))
    }

    async fn review_replace(
        &self,
        current: &ReviewRow,
        next: &ReviewRow,
    ) -> Result<bool, StoreError> {
        reviews::replace(&self.pool, current, next)
            .await
            .map_err(Self::err("review_replace"))
    }

    async fn reviews_due(&self, status: &str, now_ms: i64) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::due(&self.pool, status, now_ms)
            .await
            .map_err(Self::err("reviews_due"))
    }
}

/// One INSERT of `rows` (at most [`ROWS_PER_INSERT`]).
fn audit_insert(rows: &[AuditRow]) -> QueryBuilder<'_, Sqlite> {
    let mut qb =
        QueryBuilder::<Sqlite>::new(format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(&r.node)
            .push_bind(r.seq)
            .push_bind(r.ts_ms)
            .push_bind(&r.kind)
            .push_bind(&r.body)
            .push_bind(&r.prev_hash)
            .push_bind(&r.hash);
    });
    qb
}
