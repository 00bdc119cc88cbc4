//! Test support: a throw-away PostgreSQL database per test, so store-backed tests can run the
//! same checks against both backends. Enabled by the `testing` feature; not for production.
//!
//! The server comes from `PORTCULLIS_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`), whose database is only used to create and drop
//! the per-test databases. Set it to `skip` to skip PostgreSQL tests on a machine without a
//! server; otherwise an unreachable server fails the test rather than passing it silently.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::Store;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A database created for one test and dropped by [`TestDatabase::drop_database`].
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh, uniquely named database, or returns `None` when PostgreSQL tests are
    /// switched off with `PORTCULLIS_TEST_POSTGRES=skip`.
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var("PORTCULLIS_TEST_POSTGRES")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        if admin_url == "skip" {
            eprintln!("PORTCULLIS_TEST_POSTGRES=skip: skipping a PostgreSQL test");
            return None;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "portcullis_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL for tests unreachable ({e}); set PORTCULLIS_TEST_POSTGRES=skip")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_database(self) {
        match PgConnection::connect(&self.admin_url).await {
            Ok(mut admin) => {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = sqlx::query(&sql).execute(&mut admin).await {
                    eprintln!("dropping test database {}: {e}", self.name);
                }
                let _ = admin.close().await;
            }
            Err(e) => eprintln!("dropping test database {}: {e}", self.name),
        }
    }
}

/// Runs `test` against a store on a fresh PostgreSQL database and drops the database
/// afterwards, even when the test panics (the panic is then re-raised).
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = crate::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("opening the test database: {e}"));
    let outcome = tokio::spawn(test(store, db.url.clone())).await;
    db.drop_database().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // The database is the path after the authority; without one, append it.
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j));
    let host_part = authority_end.map_or(base, |end| &base[..end]);
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}
