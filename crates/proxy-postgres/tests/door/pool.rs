//! Server connections are reused across sessions only after `DISCARD ALL`, and only when
//! the session ended cleanly with nothing open on the server.

use crate::support::{self, direct};

/// The server backend behind a session.
async fn backend_pid(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Ends `c` with Terminate and waits until the door has finished with its session.
async fn end(gw: &support::Gateway, c: tokio_postgres::Client, closed_before: usize) {
    drop(c);
    for _ in 0..100 {
        let n = gw
            .events()
            .await
            .iter()
            .filter(|e| e["kind"] == "session.close")
            .count();
        if n > closed_before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the session did not close");
}

#[tokio::test]
async fn a_reused_connection_keeps_nothing_of_the_last_session() {
    let gw = support::start().await;
    // An advisory lock is a side effect (sql.admin), which only "dbas" may take.
    let a = gw.client_in(&["agents", "dbas"]).await;
    let pid = backend_pid(&a).await;
    a.batch_execute(
        "CREATE TEMP TABLE pool_leftover (x int); \
         SET statement_timeout = '1234s'; \
         PREPARE pool_leftover_q AS SELECT 1; \
         LISTEN pool_leftover_channel; \
         SELECT pg_advisory_lock(424242);",
    )
    .await
    .unwrap();
    end(&gw, a, 0).await;

    let b = gw.client().await;
    assert_eq!(
        backend_pid(&b).await,
        pid,
        "the idle connection was not reused"
    );
    let temp: i64 = b
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'pool_leftover' AND relpersistence = 't'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(temp, 0, "a temp table survived");
    let timeout: String = b
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0", "statement_timeout survived");
    let prepared: i64 = b
        .query_one(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'pool_leftover_q'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(prepared, 0, "a prepared statement survived");
    let listening: i64 = b
        .query_one("SELECT count(*) FROM pg_listening_channels()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listening, 0);
    let locks: i64 = direct()
        .await
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "an advisory lock survived");
}

#[tokio::test]
async fn a_session_that_ends_inside_a_transaction_is_not_reused() {
    let gw = support::start().await;
    // An advisory lock is a side effect (sql.admin), which only "dbas" may take.
    let a = gw.client_in(&["agents", "dbas"]).await;
    let pid = backend_pid(&a).await;
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    end(&gw, a, 0).await;
    let b = gw.client().await;
    assert_ne!(backend_pid(&b).await, pid);
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_not_handed_out() {
    let gw = support::start().await;
    let a = gw.client().await;
    let pid = backend_pid(&a).await;
    end(&gw, a, 0).await;
    // The server ends the idle backend (a restart, an administrator, idle_session_timeout).
    let killed: bool = direct()
        .await
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let b = gw.client().await;
    let other = backend_pid(&b).await;
    assert_ne!(other, pid);
}

#[tokio::test]
async fn pool_size_zero_opens_a_connection_per_session() {
    let gw = support::start_with(|s| s.pool_size = 0).await;
    let a = gw.client().await;
    let pid = backend_pid(&a).await;
    end(&gw, a, 0).await;
    let b = gw.client().await;
    assert_ne!(backend_pid(&b).await, pid);
}

/// A client with `application_name` (a forwarded start-up parameter, so part of the key).
async fn client_as(gw: &support::Gateway, app: &str) -> tokio_postgres::Client {
    let mut config = gw.config("test", &gw.token(&["agents"]));
    config.application_name(app);
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

#[tokio::test]
async fn the_pool_is_bounded_across_start_up_parameters() {
    let gw = support::start_with(|s| s.pool_size = 1).await;
    let a = client_as(&gw, "pool-a").await;
    let b = client_as(&gw, "pool-b").await;
    let (pid_a, pid_b) = (backend_pid(&a).await, backend_pid(&b).await);
    end(&gw, a, 0).await;
    end(&gw, b, 1).await;
    // One idle connection in all: b's; a's made room for it and was closed.
    let again_b = client_as(&gw, "pool-b").await;
    assert_eq!(backend_pid(&again_b).await, pid_b);
    let again_a = client_as(&gw, "pool-a").await;
    assert_ne!(backend_pid(&again_a).await, pid_a);
    let app: String = again_a
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(app, "pool-a");
}

/// DROP DATABASE through one connection while the door's pool holds an idle server
/// connection to that database, left by a session on another connection: the door closes its
/// idle connections on that server first, so the server does not refuse with 55006 ("being
/// accessed by other users").
#[tokio::test]
async fn drop_database_closes_the_pools_idle_connections_first() {
    let scratch = format!("door_scratch_{}", std::process::id());
    let direct = support::direct().await;
    for sql in [
        format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"),
        format!("CREATE DATABASE {scratch}"),
    ] {
        direct.batch_execute(&sql).await.unwrap();
    }
    let mut other = support::local_target();
    other.info.name = "scratch".into();
    other.database = scratch.clone();
    let gw = support::start_targets(|_| {}, vec![support::local_target(), other]).await;
    let c = gw.connect("scratch", &gw.token(&["agents"])).await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    drop(c);
    // Its server connection is reset (DISCARD ALL) and kept.
    let pooled = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{scratch}' \
         AND state = 'idle' AND query = 'DISCARD ALL'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while direct
        .query_one(&pooled, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        != 1
    {
        assert!(std::time::Instant::now() < deadline, "never pooled");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let admin = gw.client_in(&["agents", "dbas"]).await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE {scratch}"))
        .await;
    if dropped.is_err() {
        let _ = direct
            .batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
            .await;
    }
    dropped.unwrap();
}
