//! The same checks run against both backends: each `check_*` function takes a store, and
//! `both!` turns it into a SQLite test and a PostgreSQL test.

use std::sync::Arc;

use crate::testing::with_postgres;
use crate::{AuditRow, CheckpointRow, RevocationRow, Store, StoreError, open};

/// Runs `f` on a fresh SQLite file in a temporary directory.
async fn with_sqlite<F, Fut>(f: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = open(&url).await.unwrap();
    f(store, url).await;
}

macro_rules! both {
    ($check:ident) => {
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                super::with_sqlite(|s, _| super::$check(s)).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::with_postgres(|s, _| super::$check(s)).await;
            }
        }
    };
}

// After `both!`, so that the review checks can use it.
mod reviews;

fn row(node: &str, seq: i64, ts_ms: i64) -> AuditRow {
    AuditRow {
        node: node.to_owned(),
        seq,
        ts_ms,
        kind: "decision".to_owned(),
        body: format!(r#"{{"node":"{node}","seq":{seq}}}"#),
        prev_hash: format!("{:064x}", seq - 1),
        hash: format!("{seq:064x}"),
    }
}

fn keys(rows: &[AuditRow]) -> Vec<(String, i64)> {
    rows.iter().map(|r| (r.node.clone(), r.seq)).collect()
}

both!(append_tail_page);
async fn append_tail_page(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert_eq!(store.audit_tail("a").await.unwrap(), None);
    store.audit_append(&[]).await.unwrap();
    let rows: Vec<_> = (1..=5).map(|s| row("a", s, 100 + s)).collect();
    store.audit_append(&rows[..3]).await.unwrap();
    store.audit_append(&rows[3..]).await.unwrap();
    store.audit_append(&[row("b", 1, 50)]).await.unwrap();

    assert_eq!(store.audit_tail("a").await.unwrap().as_ref(), rows.last());
    assert_eq!(store.audit_page("a", 0, 2).await.unwrap(), rows[..2]);
    assert_eq!(store.audit_page("a", 2, 10).await.unwrap(), rows[2..]);
    assert!(store.audit_page("a", 5, 10).await.unwrap().is_empty());
    assert_eq!(store.audit_nodes().await.unwrap(), ["a", "b"]);
}

both!(large_batch_spans_statements);
async fn large_batch_spans_statements(store: Arc<dyn Store>) {
    let rows: Vec<_> = (1..=1234).map(|s| row("n", s, s)).collect();
    store.audit_append(&rows).await.unwrap();
    assert_eq!(store.audit_tail("n").await.unwrap().unwrap().seq, 1234);
    assert_eq!(store.audit_page("n", 0, 5000).await.unwrap(), rows);
}

both!(conflicting_batch_is_rolled_back);
async fn conflicting_batch_is_rolled_back(store: Arc<dyn Store>) {
    store.audit_append(&[row("a", 1, 1)]).await.unwrap();
    // The batch's first rows are new; the last collides. Nothing of it may remain.
    let batch: Vec<_> = [2, 3, 1].iter().map(|&s| row("a", s, s)).collect();
    let err = store.audit_append(&batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.audit_tail("a").await.unwrap().unwrap().seq, 1);
}

both!(between_orders_and_paginates);
async fn between_orders_and_paginates(store: Arc<dyn Store>) {
    // Interleaved timestamps across nodes, including ties broken by node then seq.
    let rows = [
        row("b", 1, 10),
        row("a", 1, 10),
        row("a", 2, 20),
        row("b", 2, 15),
        row("a", 3, 30),
        row("b", 3, 30),
    ];
    store.audit_append(&rows).await.unwrap();
    let all = store.audit_between(None, None, None, 100).await.unwrap();
    let expect = [("a", 1), ("b", 1), ("b", 2), ("a", 2), ("a", 3), ("b", 3)];
    let expect: Vec<_> = expect.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    assert_eq!(keys(&all), expect);

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.audit_between(None, None, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.node.clone(), last.seq));
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let window = store
        .audit_between(Some(15), Some(30), None, 100)
        .await
        .unwrap();
    assert_eq!(keys(&window), expect[2..4]);
    let after_b2 = Some(("b".to_owned(), 2));
    let rest = store
        .audit_between(Some(15), None, after_b2, 100)
        .await
        .unwrap();
    assert_eq!(keys(&rest), expect[3..]);
}

both!(checkpoints_roundtrip);
async fn checkpoints_roundtrip(store: Arc<dyn Store>) {
    let cp = |seq: i64, hash: &str| CheckpointRow {
        node: "a".to_owned(),
        seq,
        ts_ms: seq * 10,
        hash: hash.to_owned(),
        public_key: "ed25519:AAAA".to_owned(),
        signature: "sig".to_owned(),
    };
    store.checkpoint_put(&cp(20, "h20")).await.unwrap();
    store.checkpoint_put(&cp(10, "h10")).await.unwrap();
    store.checkpoint_put(&cp(10, "h10")).await.unwrap();
    // A second checkpoint at the same seq over another hash is kept as evidence.
    store.checkpoint_put(&cp(10, "other")).await.unwrap();
    let got = store.checkpoints("a").await.unwrap();
    let got: Vec<_> = got.iter().map(|c| (c.seq, c.hash.as_str())).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], (20, "h20"));
    assert!(store.checkpoints("b").await.unwrap().is_empty());
    // A node known only from its checkpoints is still listed.
    assert_eq!(store.audit_nodes().await.unwrap(), ["a"]);
}

both!(revocations_are_idempotent);
async fn revocations_are_idempotent(store: Arc<dyn Store>) {
    let r = |kind: &str, value: &str, reason: &str| RevocationRow {
        kind: kind.to_owned(),
        value: value.to_owned(),
        created_ms: 1,
        created_by: "admin".to_owned(),
        reason: reason.to_owned(),
    };
    store
        .revocation_put(&r("token", "t2", "leaked"))
        .await
        .unwrap();
    store
        .revocation_put(&r("token", "t1", "first"))
        .await
        .unwrap();
    store
        .revocation_put(&r("token", "t1", "second"))
        .await
        .unwrap();
    store
        .revocation_put(&r("subject", "t1", "other kind"))
        .await
        .unwrap();
    let got = store.revocations().await.unwrap();
    let expect = [
        r("subject", "t1", "other kind"),
        r("token", "t1", "first"),
        r("token", "t2", "leaked"),
    ];
    assert_eq!(got, expect);
}

#[tokio::test]
async fn backends_are_named() {
    with_sqlite(|s, _| async move { assert_eq!(s.backend(), "sqlite") }).await;
    with_postgres(|s, _| async move { assert_eq!(s.backend(), "postgres") }).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    with_sqlite(|s, url| async move {
        s.audit_append(&[row("a", 1, 1)]).await.unwrap();
        drop(s);
        let again = open(&url).await.unwrap();
        assert_eq!(again.audit_tail("a").await.unwrap().unwrap().seq, 1);
    })
    .await;
    with_postgres(|s, url| async move {
        s.audit_append(&[row("a", 1, 1)]).await.unwrap();
        let again = open(&url).await.unwrap();
        assert_eq!(again.audit_tail("a").await.unwrap().unwrap().seq, 1);
    })
    .await;
}

#[tokio::test]
async fn sqlite_creates_parent_dirs_and_sets_durability_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deep/er/state.db");
    let store = crate::sqlite::SqliteStore::open(
        &format!("sqlite://{}", file.display()),
        crate::Durability::Fsync,
    )
    .await
    .unwrap();
    assert!(file.exists());
    let mut conn = store.pool.acquire().await.unwrap();
    let mut pragma = async |name: &str| -> String {
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        use sqlx::Row;
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
            .unwrap()
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("synchronous").await, "2", "FULL");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "5000");
}

#[tokio::test]
async fn sqlite_synchronous_normal_is_opt_in_and_validated() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=normal",
        dir.path().join("n.db").display()
    );
    let store = crate::sqlite::SqliteStore::open(&url, crate::Durability::Fsync)
        .await
        .unwrap();
    let row = sqlx::query("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>(0), 1, "NORMAL");
    let bad = format!(
        "sqlite://{}?synchronous=off",
        dir.path().join("o.db").display()
    );
    let err = crate::sqlite::SqliteStore::open(&bad, crate::Durability::Fsync)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("synchronous=off"), "{err}");
}

#[tokio::test]
async fn crash_durability_commits_to_the_os_and_syncs_on_demand() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = crate::sqlite::SqliteStore::open(&url, crate::Durability::Crash)
        .await
        .unwrap();
    let mode = sqlx::query("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(
        mode.get::<i64, _>(0),
        1,
        "NORMAL: the WAL is written, not fsynced, at commit"
    );
    store.audit_append(&[row("a", 1, 1)]).await.unwrap();
    // The sync is a passive checkpoint: the WAL is fsynced and copied into the database.
    store.sync().await.unwrap();
    let busy = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(busy.get::<i64, _>(0), 0, "not blocked");
    assert_eq!(
        busy.get::<i64, _>(1),
        busy.get::<i64, _>(2),
        "every frame checkpointed"
    );
    // An explicit URL setting still wins.
    let full = format!("{url}2?synchronous=full");
    let store = crate::sqlite::SqliteStore::open(&full, crate::Durability::Crash)
        .await
        .unwrap();
    let mode = sqlx::query("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(mode.get::<i64, _>(0), 2);
}

#[tokio::test]
async fn sqlite_relative_path_is_relative_to_cwd() {
    // Tests run with the crate directory as cwd; the workspace target dir is ignored by git.
    let rel = format!(
        "../../target/store-test-{}/nested/state.db",
        std::process::id()
    );
    let store = open(&format!("sqlite://{rel}")).await.unwrap();
    drop(store);
    let path = std::env::current_dir().unwrap().join(&rel);
    assert!(path.exists(), "{}", path.display());
    let top = path.ancestors().nth(2).unwrap().to_owned();
    std::fs::remove_dir_all(top).unwrap();
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let urls = [
        // Nothing listens on port 1: a connection error.
        "postgres://postgres:Sup3rS3cret@127.0.0.1:1/test",
        // An invalid port: a URL error.
        "postgresql://postgres:Sup3rS3cret@127.0.0.1:notaport/test",
        // A percent-encoded password must be hidden in both forms.
        "postgres://postgres:Sup3r%53%33cret@127.0.0.1:1/test",
    ];
    for url in urls {
        let err = open(url).await.err().unwrap();
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("Sup3r"), "{shown}");
    }
    let err = open("mysql://u:Sup3rS3cret@h/db").await.err().unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("Sup3r"));
}

#[test]
fn scrub_hides_raw_and_decoded_passwords() {
    use crate::redact::{scrub, secrets_of};
    let secrets = secrets_of("postgres://me:p%40ss@db.example:5432/x?sslmode=require");
    assert_eq!(secrets, ["p%40ss", "p@ss"]);
    assert_eq!(scrub("bad p@ss and p%40ss", &secrets), "bad *** and ***");
    assert!(secrets_of("postgres://me@db/x").is_empty());
    assert!(secrets_of("postgres://db/x").is_empty());
    assert_eq!(secrets_of("postgres://me:a:b@c@h/x"), ["a:b@c"]);
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = open("sqlite::memory:").await.unwrap();
    store.audit_append(&[row("a", 1, 1)]).await.unwrap();
    assert_eq!(store.audit_tail("a").await.unwrap().unwrap().seq, 1);
}

both!(audit_log_appends_chains_and_checkpoints);
/// The audit writer's view: SQLite's own connection, PostgreSQL's async methods.
async fn audit_log_appends_chains_and_checkpoints(store: Arc<dyn Store>) {
    let mut log = crate::audit_log(store.clone()).await.unwrap();
    assert_eq!(log.blocking(), store.backend() == "sqlite");
    assert_eq!(log.tail("a").await.unwrap(), None);
    log.append(&[]).await.unwrap();
    let rows: Vec<_> = (1..=1234).map(|s| row("a", s, s)).collect();
    log.append(&rows[..1]).await.unwrap();
    log.append(&rows[1..]).await.unwrap();
    assert_eq!(log.tail("a").await.unwrap().as_ref(), rows.last());
    // What the writer's log wrote, the store reads, and the other way round.
    assert_eq!(store.audit_page("a", 0, 5000).await.unwrap(), rows);
    store.audit_append(&[row("a", 1235, 1235)]).await.unwrap();
    assert_eq!(log.tail("a").await.unwrap().unwrap().seq, 1235);

    // A batch whose last row collides leaves nothing behind.
    let batch: Vec<_> = [1236, 1237, 5].iter().map(|&s| row("a", s, s)).collect();
    let err = log.append(&batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(log.tail("a").await.unwrap().unwrap().seq, 1235);

    let cp = CheckpointRow {
        node: "a".to_owned(),
        seq: 1235,
        ts_ms: 1,
        hash: "h".to_owned(),
        public_key: "ed25519:AAAA".to_owned(),
        signature: "sig".to_owned(),
    };
    log.checkpoint_put(&cp).await.unwrap();
    log.checkpoint_put(&cp).await.unwrap();
    assert_eq!(store.checkpoints("a").await.unwrap(), [cp]);
    log.sync().await.unwrap();
}

#[tokio::test]
async fn sqlite_audit_log_keeps_the_stores_durability() {
    let dir = tempfile::tempdir().unwrap();
    for (durability, file, expect) in [
        (crate::Durability::Fsync, "f.db", 2),
        (crate::Durability::Crash, "c.db", 1),
    ] {
        let url = format!("sqlite://{}", dir.path().join(file).display());
        let store = crate::sqlite::SqliteStore::open(&url, durability)
            .await
            .unwrap();
        let Some((path, synchronous)) = store.file.clone() else {
            panic!("a file database gets a log of its own");
        };
        let log = crate::log::SqliteLog::open(&path, synchronous).unwrap();
        assert_eq!(log.synchronous(), expect, "{durability:?}");
    }
    // An in-memory database has no file a second connection could open.
    let store = crate::sqlite::SqliteStore::open("sqlite::memory:", crate::Durability::Fsync)
        .await
        .unwrap();
    assert!(store.own_audit_log().await.unwrap().is_none());
}
