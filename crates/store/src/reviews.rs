//! The `reviews` table's queries, written once and instantiated for both backends.
//!
//! `QueryBuilder::push_bind` writes each backend's own placeholder (`?N` for SQLite, `$N`
//! for PostgreSQL), so the same builder code serves both; `review_queries!` stamps it out
//! per database type. The functions return raw `sqlx::Error`s: each backend maps them with
//! its own operation names and password scrubbing.
//!
//! Both compare-and-set updates are a single `UPDATE ... WHERE <expected state>`, which is
//! atomic on both backends: SQLite serializes writers, and PostgreSQL re-evaluates the
//! `WHERE` clause against the newest row version after waiting for a concurrent writer's
//! row lock, so a lost race affects no row.

macro_rules! review_queries {
    ($db:ty) => {
        use sqlx::{Pool, QueryBuilder};

        use crate::ReviewRow;

        type Db = $db;

        const SELECT: &str =
            "SELECT id, binding, status, created_ms, expires_ms, updated_ms, body FROM reviews";

        /// Newest first; the id breaks ties so that pages are stable.
        const NEWEST_FIRST: &str = " ORDER BY created_ms DESC, id DESC";

        pub(crate) async fn insert(pool: &Pool<Db>, r: &ReviewRow) -> Result<(), sqlx::Error> {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO reviews \
                 (id, binding, status, created_ms, expires_ms, updated_ms, body) VALUES (",
            );
            qb.separated(", ")
                .push_bind(&r.id)
                .push_bind(&r.binding)
                .push_bind(&r.status)
                .push_bind(r.created_ms)
                .push_bind(r.expires_ms)
                .push_bind(r.updated_ms)
                .push_bind(&r.body);
            qb.push(")");
            qb.build().execute(pool).await.map(drop)
        }

        pub(crate) async fn get(
            pool: &Pool<Db>,
            id: &str,
        ) -> Result<Option<ReviewRow>, sqlx::Error> {
            let mut qb = QueryBuilder::<Db>::new(SELECT);
            qb.push(" WHERE id = ").push_bind(id);
            qb.build_query_as().fetch_optional(pool).await
        }

        pub(crate) async fn find(
            pool: &Pool<Db>,
            binding: &str,
            statuses: &[&str],
        ) -> Result<Vec<ReviewRow>, sqlx::Error> {
            // `IN ()` is a syntax error in PostgreSQL; no status asked for matches nothing.
            if statuses.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb = QueryBuilder::<Db>::new(SELECT);
            qb.push(" WHERE binding = ").push_bind(binding);
            qb.push(" AND status IN (");
            let mut list = qb.separated(", ");
            for s in statuses {
                list.push_bind(*s);
            }
            qb.push(")").push(NEWEST_FIRST);
            qb.build_query_as().fetch_all(pool).await
        }

        pub(crate) async fn list(
            pool: &Pool<Db>,
            status: Option<&str>,
            limit: i64,
        ) -> Result<Vec<ReviewRow>, sqlx::Error> {
            let mut qb = QueryBuilder::<Db>::new(SELECT);
            if let Some(status) = status {
                qb.push(" WHERE status = ").push_bind(status);
            }
            // A negative LIMIT means "all" to SQLite but is an error to PostgreSQL.
            qb.push(NEWEST_FIRST)
                .push(" LIMIT ")
                .push_bind(limit.max(0));
            qb.build_query_as().fetch_all(pool).await
        }

        /// `SET` of the mutable columns, shared by both compare-and-set updates.
        fn set_clause<'a>(next: &'a ReviewRow) -> QueryBuilder<'a, Db> {
            let mut qb = QueryBuilder::<Db>::new("UPDATE reviews SET status = ");
            qb.push_bind(&next.status);
            qb.push(", updated_ms = ").push_bind(next.updated_ms);
            qb.push(", body = ").push_bind(&next.body);
            qb.push(" WHERE id = ").push_bind(&next.id);
            qb
        }

        pub(crate) async fn update(
            pool: &Pool<Db>,
            from: &str,
            row: &ReviewRow,
        ) -> Result<bool, sqlx::Error> {
            let mut qb = set_clause(row);
            qb.push(" AND status = ").push_bind(from);
            let done = qb.build().execute(pool).await?;
            Ok(done.rows_affected() == 1)
        }

        pub(crate) async fn replace(
            pool: &Pool<Db>,
            current: &ReviewRow,
            next: &ReviewRow,
        ) -> Result<bool, sqlx::Error> {
            // A row read by id is replaced by the row of the same id; anything else is a
            // caller's mistake that must not touch another review.
            if current.id != next.id {
                return Ok(false);
            }
            let mut qb = set_clause(next);
            qb.push(" AND status = ").push_bind(&current.status);
            qb.push(" AND updated_ms = ").push_bind(current.updated_ms);
            qb.push(" AND body = ").push_bind(&current.body);
            let done = qb.build().execute(pool).await?;
            Ok(done.rows_affected() == 1)
        }

        pub(crate) async fn due(
            pool: &Pool<Db>,
            status: &str,
            now_ms: i64,
        ) -> Result<Vec<ReviewRow>, sqlx::Error> {
            let mut qb = QueryBuilder::<Db>::new(SELECT);
            qb.push(" WHERE status = ").push_bind(status);
            qb.push(" AND expires_ms <= ").push_bind(now_ms);
            qb.push(" ORDER BY created_ms, id");
            qb.build_query_as().fetch_all(pool).await
        }
    };
}

pub(crate) mod sqlite {
    review_queries!(sqlx::Sqlite);
}

pub(crate) mod postgres {
    review_queries!(sqlx::Postgres);
}
