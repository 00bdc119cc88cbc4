//! The PostgreSQL door's limits, against the real gateway and a real PostgreSQL, with small
//! limits: below each limit the session works; beyond it the client gets
//! the exact SQLSTATE and reason code (`code: ...` in the DETAIL, or the exec API's problem
//! code), the audit has the event, and the gateway keeps serving other sessions.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_integration_tests::clients::{PgConn, PgConnection, tokio_pg_connect};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder, http};
use serde_json::{Value, json};

async fn setup(keys: &[(&str, &str)]) -> Result<(PgServer, Gateway)> {
    let pg = PgServer::start().await?;
    let mut b = GatewayBuilder::new().quickstart_policies()?.pg_connection(
        "appdb",
        &pg,
        &[("environment", "dev")],
    );
    for (k, v) in keys {
        b = b.postgres_key(k, v);
    }
    Ok((pg, b.start().await?))
}

fn events(gw: &Gateway) -> Result<Vec<Value>> {
    let out = gw.cli(["audit", "export", "--format", "jsonl"])?;
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| Ok(serde_json::from_str::<Value>(l)?["event"].clone()))
        .collect()
}

/// The events of `kind` whose `field` (a JSON pointer) is `value`, once there are `n`
/// (a session's close is audited after the client has seen it end).
async fn wait_events(
    gw: &Gateway,
    kind: &str,
    field: &str,
    value: &str,
    n: usize,
) -> Result<Vec<Value>> {
    for _ in 0..100 {
        let found: Vec<Value> = events(gw)?
            .into_iter()
            .filter(|e| {
                e["kind"] == kind && e.pointer(field).and_then(Value::as_str) == Some(value)
            })
            .collect();
        if found.len() >= n {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "no {n} {kind} events with {field} = {value}: {:#?}",
        events(gw)?
    )
}

async fn connect(conn: &PgConn) -> Result<(tokio_postgres::Client, PgConnection)> {
    tokio_pg_connect(conn).await
}

async fn select1(c: &tokio_postgres::Client) -> Result<()> {
    let n: i32 = c.query_one("SELECT 1", &[]).await?.get(0);
    anyhow::ensure!(n == 1);
    Ok(())
}

/// The door's refusal inside `err`: SQLSTATE, the DETAIL's reason code, and a hint.
fn refusal(err: &tokio_postgres::Error) -> (String, String, String) {
    let Some(db) = err.as_db_error() else {
        return (
            format!("not a database error: {err}"),
            String::new(),
            String::new(),
        );
    };
    (
        db.code().code().to_owned(),
        db.detail()
            .and_then(|d| d.strip_prefix("code: "))
            .unwrap_or_default()
            .to_owned(),
        db.hint().unwrap_or_default().to_owned(),
    )
}

fn connect_refusal(err: &anyhow::Error) -> (String, String, String) {
    err.chain()
        .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .map(refusal)
        .unwrap_or_else(|| (format!("{err:#}"), String::new(), String::new()))
}

async fn exec(gw: &Gateway, token: &str, sql: &str) -> Result<(u16, Value)> {
    let r = http::client()?
        .post(format!("{}/v1/exec", gw.url()))
        .bearer_auth(token)
        .json(&json!({ "connection": "appdb", "input": sql }))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

#[tokio::test]
async fn sessions_are_limited_per_principal_and_per_connection() -> Result<()> {
    let (_pg, gw) = setup(&[
        ("max_sessions_per_principal", "2"),
        ("max_sessions_per_connection", "3"),
    ])
    .await?;
    let token = |who: &str| gw.mint(who, &["agents"], "15m");
    let (alice, bob, carol) = (
        token("agent-alice")?,
        token("agent-bob")?,
        token("agent-carol")?,
    );
    let alice_conn = gw.pg_conn("appdb", &alice)?;
    let bob_conn = gw.pg_conn("appdb", &bob)?;

    // Below the limits: two sessions of one principal, a third of another.
    let a1 = connect(&alice_conn).await?;
    let a2 = connect(&alice_conn).await?;
    select1(&a1.0).await?;
    select1(&a2.0).await?;
    let err = connect(&alice_conn)
        .await
        .err()
        .context("a third session for alice")?;
    let (code, reason, hint) = connect_refusal(&err);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("53300", "session_limit_principal"),
        "{err:#}"
    );
    assert!(
        hint.contains("close the sessions you no longer use"),
        "{hint}"
    );
    let b1 = connect(&bob_conn).await?;
    select1(&b1.0).await?;
    let err = connect(&bob_conn)
        .await
        .err()
        .context("a fourth session on appdb")?;
    let (code, reason, hint) = connect_refusal(&err);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("53300", "session_limit_connection"),
        "{err:#}"
    );
    assert!(hint.contains("retry"), "{hint}");

    // The exec API runs through the same sessions, and says why with an HTTP status.
    let (status, r) = exec(&gw, &alice, "SELECT 1").await?;
    assert_eq!(
        (status, r["code"].as_str()),
        (429, Some("session_limit_principal")),
        "{r}"
    );
    let (status, r) = exec(&gw, &carol, "SELECT 1").await?;
    assert_eq!(
        (status, r["code"].as_str()),
        (503, Some("session_limit_connection")),
        "{r}"
    );
    assert!(r["hint"].as_str().is_some_and(|h| !h.is_empty()), "{r}");

    // Each refusal is audited as a session that never opened, with its reason.
    let refused = wait_events(
        &gw,
        "session.refused",
        "/reason_code",
        "session_limit_principal",
        2,
    )
    .await?;
    for e in &refused {
        assert_eq!(e["who"]["subject"], "agent-alice", "{e}");
        assert_eq!(e["outcome"], "deny", "{e}");
        assert_eq!(e["connection"], "appdb", "{e}");
        assert!(
            e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("53300: ")),
            "{e}"
        );
    }
    let refused = wait_events(
        &gw,
        "session.refused",
        "/reason_code",
        "session_limit_connection",
        2,
    )
    .await?;
    let who: Vec<&str> = refused
        .iter()
        .filter_map(|e| e["who"]["subject"].as_str())
        .collect();
    assert!(
        who.contains(&"agent-bob") && who.contains(&"agent-carol"),
        "{refused:#?}"
    );

    // The gateway keeps serving: a session that ends makes room for another.
    drop(a1);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect(&alice_conn).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = again.context("alice could not connect after one of her sessions ended")?;
    select1(&again.0).await?;
    select1(&a2.0).await?;
    Ok(())
}

/// Backends of the harness's `app` role on the server, once a closed one has gone (the
/// server ends a backend shortly after its Terminate).
async fn backends(pg: &PgServer) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
        pg.app_user()
    );
    let mut n = 0;
    for _ in 0..30 {
        n = pg.superuser_sql(pg.app_db(), &sql).await?.trim().parse()?;
        if n <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(n)
}

#[tokio::test]
async fn server_connections_are_limited_per_connection() -> Result<()> {
    let (pg, gw) = setup(&[
        ("max_server_connections", "1"),
        ("server_connection_wait", "\"1s\""),
        ("pool_size", "1"),
    ])
    .await?;
    let token = gw.mint("agent-a", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let s1 = connect(&conn).await?;
    select1(&s1.0).await?;

    // Beyond it: the session waits for the one server connection, then gives up.
    let started = Instant::now();
    let err = connect(&conn)
        .await
        .err()
        .context("a second server connection")?;
    let (code, reason, hint) = connect_refusal(&err);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("53300", "server_connections_exhausted"),
        "{err:#}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(hint.contains("retry"), "{hint}");
    let (status, r) = exec(&gw, &token, "SELECT 1").await?;
    assert_eq!(
        (status, r["code"].as_str()),
        (503, Some("server_connections_exhausted")),
        "{r}"
    );
    let closed = wait_events(
        &gw,
        "session.close",
        "/data/ended",
        "server_connections_exhausted",
        2,
    )
    .await?;
    assert_eq!(closed[0]["outcome"], "error", "{closed:#?}");
    assert!(
        closed[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("53300: ")),
        "{closed:#?}"
    );
    assert_eq!(backends(&pg).await?, 1);

    // A session that waits gets the connection another one gives back.
    let waiting = {
        let conn = conn.clone();
        tokio::spawn(async move { connect(&conn).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s1);
    let s2 = waiting.await??;
    select1(&s2.0).await?;
    drop(s2);

    // Idle in the pool, it is closed to make room for a session with other start-up
    // parameters; the server never sees more than one backend.
    let other = connect(&conn.clone().application_name("other")).await?;
    select1(&other.0).await?;
    assert_eq!(backends(&pg).await?, 1);
    Ok(())
}
