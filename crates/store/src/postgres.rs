//! The PostgreSQL backend, for several gateways sharing one state database.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};

use crate::redact::{scrub, secrets_of};
use crate::reviews::postgres as reviews;
use crate::{AuditRow, CheckpointRow, Durability, ReviewRow, RevocationRow, Store, StoreError};

const BACKEND: &str = "postgres";

/// Rows per INSERT statement: seven bound values per row stays far below PostgreSQL's limit
/// of 65535 parameters per statement.
const ROWS_PER_INSERT: usize = 500;

const AUDIT_COLUMNS: &str = "node, seq, ts_ms, kind, body, prev_hash, hash";

/// A PostgreSQL-backed [`Store`].
pub(crate) struct PgStore {
    pool: PgPool,
    /// The connection password in its textual forms, scrubbed from every error message.
    secrets: Vec<String>,
}

impl PgStore {
    pub(crate) async fn open(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let secrets = secrets_of(url);
        let mut options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            backend: BACKEND,
            message: scrub(&e.to_string(), &secrets),
        })?;
        if durability == Durability::Crash {
            // The commit returns once the server has it; its WAL writer flushes it soon after.
            options = options.options([("synchronous_commit", "off")]);
        }
        // One direct connection first, because it fails fast when the server is unreachable
        // or refuses us, where a pool would retry until its acquire timeout.
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            backend: BACKEND,
            message: scrub(&e.to_string(), &secrets),
        };
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(connect_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_lazy_with(options);
        // Closing politely is best effort: the probe has done its job.
        let _ = probe.close().await;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate {
                backend: BACKEND,
                message: scrub(&e.to_string(), &secrets),
            })?;
        Ok(Self { pool, secrets })
    }

    fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::query(op, &e, &self.secrets)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(self.err("ping"))
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
                .map_err(self.err(op));
        }
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            audit_insert(chunk)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))
    }

    async fn audit_tail(&self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE node = $1 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(node)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("audit_tail"))
    }

    async fn audit_page(
        &self,
        node: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE node = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(node)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("audit_page"))
    }

    async fn audit_nodes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT node FROM audit_events UNION SELECT node FROM audit_checkpoints ORDER BY node",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("audit_nodes"))
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
                    "SELECT ts_ms FROM audit_events WHERE node = $1 AND seq = $2",
                )
                .bind(&node)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err(op))?;
                match ts {
                    Some(ts) => Some((ts, node, seq)),
                    None => return Ok(Vec::new()),
                }
            }
            None => None,
        };
        // Only the conditions that apply are written, so that SQLite can turn them into a
        // range scan of the (ts_ms, node, seq) index instead of filtering every row.
        let mut qb = QueryBuilder::<Postgres>::new(format!(
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
            .map_err(self.err(op))
    }

    async fn checkpoint_put(&self, cp: &CheckpointRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (node, seq, ts_ms, hash, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node, seq, hash) DO NOTHING",
        )
        .bind(&cp.node)
        .bind(cp.seq)
        .bind(cp.ts_ms)
        .bind(&cp.hash)
        .bind(&cp.public_key)
        .bind(&cp.signature)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(self.err("checkpoint_put"))
    }

    async fn checkpoints(&self, node: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        sqlx::query_as(
            "SELECT node, seq, ts_ms, hash, public_key, signature FROM audit_checkpoints \
             WHERE node = $1 ORDER BY seq, ts_ms",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("checkpoints"))
    }

    async fn revocation_put(&self, r: &RevocationRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocations (kind, value, created_ms, created_by, reason) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(&r.kind)
        .bind(&r.value)
        .bind(r.created_ms)
        .bind(&r.created_by)
        .bind(&r.reason)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(self.err("revocation_put"))
    }

    async fn revocations(&self) -> Result<Vec<RevocationRow>, StoreError> {
        sqlx::query_as(
            "SELECT kind, value, created_ms, created_by, reason FROM revocations \
             ORDER BY kind, value",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("revocations"))
    }

    async fn review_insert(&self, r: &ReviewRow) -> Result<(), StoreError> {
        reviews::insert(&self.pool, r)
            .await
            .map_err(self.err("review_insert"))
    }

    async fn review_get(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        reviews::get(&self.pool, id)
            .await
            .map_err(self.err("review_get"))
    }

    async fn review_find(
        &self,
        binding: &str,
        statuses: &[&str],
    ) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::find(&self.pool, binding, statuses)
            .await
            .map_err(self.err("review_find"))
    }

    async fn review_list(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::list(&self.pool, status, limit)
            .await
            .map_err(self.err("review_list"))
    }

    async fn review_update(&self, from: &str, row: &ReviewRow) -> Result<bool, StoreError> {
        reviews::update(&self.pool, from, row)
            .await
            .map_err(self.err("review_update"))
    }

    async fn review_replace(
        &self,
        current: &ReviewRow,
        next: &ReviewRow,
    ) -> Result<bool, StoreError> {
        reviews::replace(&self.pool, current, next)
            .await
            .map_err(self.err("review_replace"))
    }

    async fn reviews_due(&self, status: &str, now_ms: i64) -> Result<Vec<ReviewRow>, StoreError> {
        reviews::due(&self.pool, status, now_ms)
            .await
            .map_err(self.err("reviews_due"))
    }
}

/// One INSERT of `rows` (at most [`ROWS_PER_INSERT`]).
fn audit_insert(rows: &[AuditRow]) -> QueryBuilder<'_, Postgres> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) "));
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
