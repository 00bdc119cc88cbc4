//! The PostgreSQL door's limits, against the real gateway and a real PostgreSQL, with small
//! limits and short timeouts: below each limit the session works; beyond it the client gets
//! the exact SQLSTATE and reason code (`code: ...` in the DETAIL, or the exec API's problem
//! code), the audit has the event, and the gateway keeps serving other sessions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_integration_tests::clients::{PgConn, PgConnection, tokio_pg_connect};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder, http};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// A raw protocol client, to stop in the middle of a message or pipeline without reading.
struct Raw {
    s: TcpStream,
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(
        &i32::try_from(body.len() + 4)
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    m.extend_from_slice(body);
    m
}

fn query(sql: &str) -> Vec<u8> {
    message(b'Q', format!("{sql}\0").as_bytes())
}

impl Raw {
    async fn open(gw: &Gateway) -> Result<Raw> {
        let addr = gw.postgres_addr().context("no postgres door")?;
        Ok(Raw {
            s: TcpStream::connect(addr).await?,
        })
    }

    /// Start-up with `token` as the password, through the first ReadyForQuery.
    async fn login(gw: &Gateway, token: &str) -> Result<Raw> {
        let mut r = Raw::open(gw).await?;
        let mut body = 196_608_i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0agent\0database\0appdb\0\0");
        let mut startup = i32::try_from(body.len() + 4)?.to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        r.send(&startup).await?;
        r.expect(b'R').await?;
        r.send(&message(b'p', format!("{token}\0").as_bytes()))
            .await?;
        r.expect(b'Z').await?;
        Ok(r)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(self.s.write_all(bytes).await?)
    }

    /// The next message, `None` when the door closed the connection.
    async fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match tokio::time::timeout(Duration::from_secs(20), self.s.read_exact(&mut head)).await? {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let mut body = vec![0u8; usize::try_from(len)?.saturating_sub(4)];
        self.s.read_exact(&mut body).await?;
        Ok(Some((head[0], body)))
    }

    /// Reads up to a message tagged `tag`; fails on an ErrorResponse or the end.
    async fn expect(&mut self, tag: u8) -> Result<Vec<u8>> {
        loop {
            match self.next().await? {
                Some((t, body)) if t == tag => return Ok(body),
                Some((b'E', body)) => {
                    bail!("error instead of {}: {:?}", tag as char, fields(&body))
                }
                Some(_) => {}
                None => bail!("the door closed the connection before {}", tag as char),
            }
        }
    }

    /// The FATAL that ends the session (whatever came before it), then the end.
    async fn fatal(&mut self) -> Result<HashMap<u8, String>> {
        loop {
            match self.next().await? {
                Some((b'E', body)) => {
                    let f = fields(&body);
                    if f.get(&b'V').map(String::as_str) == Some("FATAL") {
                        anyhow::ensure!(self.next().await?.is_none(), "more after the FATAL");
                        return Ok(f);
                    }
                }
                Some(_) => {}
                None => bail!("the door closed the connection without a FATAL"),
            }
        }
    }
}

/// An ErrorResponse's fields by type (`C` SQLSTATE, `D` detail, ...).
fn fields(body: &[u8]) -> HashMap<u8, String> {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

fn assert_fatal(f: &HashMap<u8, String>, sqlstate: &str, code: &str) {
    assert_eq!(f.get(&b'C').map(String::as_str), Some(sqlstate), "{f:?}");
    assert_eq!(
        f.get(&b'D').cloned(),
        Some(format!("code: {code}")),
        "{f:?}"
    );
    assert!(f.get(&b'H').is_some_and(|h| !h.is_empty()), "{f:?}");
}

#[tokio::test]
async fn stalls_and_idle_sessions_end_the_session_deep_pipelines_do_not() -> Result<()> {
    let (pg, gw) = setup(&[
        ("message_timeout", "\"1s\""),
        ("idle_session_timeout", "\"2s\""),
        ("idle_in_transaction_timeout", "\"1s\""),
        ("max_pipeline_depth", "5"),
    ])
    .await?;
    let token = gw.mint("agent-a", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;

    // A client that stops in the middle of a message, in a session and at start-up.
    let mut raw = Raw::login(&gw, &token).await?;
    // A message that arrives in pieces, whole within the timeout, is fine.
    let q = query("SELECT 1");
    raw.send(&q[..3]).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    raw.send(&q[3..]).await?;
    raw.expect(b'Z').await?;
    let started = Instant::now();
    raw.send(&query("SELECT 2")[..3]).await?;
    assert_fatal(&raw.fatal().await?, "08P01", "client_stalled");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let mut raw = Raw::open(&gw).await?;
    raw.send(&[0, 0]).await?;
    assert_fatal(&raw.fatal().await?, "08P01", "client_stalled");

    // Pipelining deeper than the bound is not refused: the door reads ahead of the server
    // by at most five answers, and every statement is answered.
    let mut raw = Raw::login(&gw, &token).await?;
    let ten: Vec<u8> = (0..10)
        .flat_map(|_| query("SELECT pg_sleep(0.1)"))
        .collect();
    raw.send(&ten).await?;
    for _ in 0..10 {
        raw.expect(b'Z').await?;
    }

    // Idle outside and inside a transaction; the transaction is rolled back. A statement
    // that runs longer than the timeouts is not idling.
    let busy = connect(&conn).await?;
    let long = tokio::spawn(async move {
        let r = busy.0.batch_execute("SELECT pg_sleep(2.5)").await;
        (r, busy)
    });
    let idle = connect(&conn).await?;
    select1(&idle.0).await?;
    let in_tx = connect(&conn).await?;
    in_tx
        .0
        .batch_execute("BEGIN; UPDATE orders SET status = 'idle-test' WHERE id = 1")
        .await?;
    let started = Instant::now();
    let (idle_end, tx_end) = tokio::join!(idle.1, in_tx.1);
    let idle_err = idle_end?.err().context("the idle session did not end")?;
    let (code, reason, _) = refusal(&idle_err);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("57P05", "idle_timeout"),
        "{idle_err}"
    );
    let tx_err = tx_end?.err().context("the idle transaction did not end")?;
    let (code, reason, _) = refusal(&tx_err);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("25P03", "idle_in_transaction_timeout"),
        "{tx_err}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let status = pg
        .superuser_sql(pg.app_db(), "SELECT status FROM orders WHERE id = 1")
        .await?;
    assert_ne!(status.trim(), "idle-test");
    let (r, busy) = long.await?;
    r.context("a long statement was taken for idling")?;
    select1(&busy.0).await?;

    // Each end is audited with its reason and what the client was told.
    for (ended, sqlstate, n) in [
        ("client_stalled", "08P01", 1),
        ("idle_timeout", "57P05", 1),
        ("idle_in_transaction_timeout", "25P03", 1),
    ] {
        let closed = wait_events(&gw, "session.close", "/data/ended", ended, n).await?;
        assert_eq!(closed[0]["outcome"], "error", "{closed:#?}");
        let detail = closed[0]["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(&format!("{sqlstate}: ")), "{closed:#?}");
    }

    // The gateway keeps serving.
    let fresh = connect(&conn).await?;
    select1(&fresh.0).await?;
    Ok(())
}
