//! One token, one verdict, on every door: the HTTP API and the PostgreSQL door treat
//! whitespace around a token, the leeway after its `exp`, and the log level alike, because
//! both hand the token to the same validator.
//!
//! Needs `target/<profile>/portcullis` (`cargo build -p portcullis`), PostgreSQL binaries
//! and, for the leeway test, `node` (the real OpenID provider).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use std::time::Duration;

use anyhow::Result;
use portcullis_integration_tests::clients::{self, PgConn};
use portcullis_integration_tests::gateway::IssuerSpec;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder, Idp, Reply, http, jwt, now_unix};
use serde_json::{Value, json};

async fn gateway(pg: &PgServer, builder: GatewayBuilder) -> Result<Gateway> {
    builder
        .quickstart_policies()?
        .pg_connection("appdb", pg, &[("environment", "dev")])
        .start()
        .await
}

/// `GET /v1/whoami` with the header value `Bearer <token>`, the token sent as it is.
async fn whoami(gw: &Gateway, token: &str) -> Reply {
    http::get_with_authorization(
        &format!("{}/v1/whoami", gw.url()),
        &format!("Bearer {token}"),
    )
    .await
    .unwrap()
}

/// Opens a session with `password` and runs `SELECT 1`; the refusal's SQLSTATE and message.
async fn pg_login(conn: &PgConn) -> Result<(), (String, String)> {
    match clients::tokio_pg_connect(conn).await {
        Ok((client, _task)) => {
            client.batch_execute("SELECT 1").await.unwrap();
            Ok(())
        }
        Err(e) => {
            let db = e
                .chain()
                .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
                .and_then(tokio_postgres::Error::as_db_error)
                .unwrap_or_else(|| panic!("not a database error: {e:#}"));
            Err((db.code().code().to_owned(), db.message().to_owned()))
        }
    }
}

/// The audit events so far.
fn events(gw: &Gateway) -> Vec<Value> {
    let out = gw.cli(["audit", "export", "--format", "jsonl"]).unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

#[tokio::test]
async fn whitespace_around_a_token_is_ignored_and_inside_it_malformed_on_both_doors() -> Result<()>
{
    let pg = PgServer::start().await?;
    let gw = gateway(&pg, GatewayBuilder::new()).await?;
    let token = gw.mint("ws-agent", &["agents"], "15m")?;

    // An HTTP header value can carry spaces and tabs around the token, not line breaks.
    for padded in [
        format!(" {token}"),
        format!("{token} "),
        format!("\t{token}\t"),
    ] {
        let r = whoami(&gw, &padded).await;
        assert_eq!(r.status, 200, "HTTP {padded:?}: {}", r.summary());
    }
    // A password can carry anything: a token file read with its newline, say.
    for padded in [
        format!("{token}\n"),
        format!(" {token} "),
        format!("\t{token}\r\n"),
    ] {
        let conn = gw.pg_conn("appdb", &padded)?;
        assert_eq!(pg_login(&conn).await, Ok(()), "PostgreSQL {padded:?}");
    }

    let (head, tail) = token.split_at(token.len() / 2);
    let inside = format!("{head} {tail}");
    let r = whoami(&gw, &inside).await;
    assert_eq!(
        (r.status, r.problem_code().as_deref()),
        (401, Some("token_malformed")),
        "{}",
        r.summary()
    );
    let (code, message) = pg_login(&gw.pg_conn("appdb", &inside)?).await.unwrap_err();
    assert_eq!(code, "28P01", "{message}");
    assert!(message.contains("token_malformed"), "{message}");

    let rejected: Vec<Value> = events(&gw)
        .into_iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["kind"] == "token.rejected")
        .collect();
    for door in ["api", "postgres"] {
        assert!(
            rejected
                .iter()
                .any(|e| e["protocol"] == door && e["reason_code"] == "token_malformed"),
            "no token.rejected/token_malformed from {door}: {rejected:#?}"
        );
    }
    Ok(())
}

/// Sleeps until the wall clock reaches `unix` seconds.
async fn sleep_until(unix: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64((unix as f64 - now).max(0.0))).await;
}

#[tokio::test]
async fn a_session_lives_until_exp_plus_the_leeway_as_a_request_would() -> Result<()> {
    let (pg, idp) = (PgServer::start().await?, Idp::start().await?);
    let mut spec = IssuerSpec::new(idp.issuer());
    spec.leeway = "3s".into();
    let gw = gateway(&pg, GatewayBuilder::new().issuer_spec(spec)).await?;
    let now = now_unix();
    let exp = now + 2;
    let claims = json!({"iss": idp.issuer(), "sub": "leeway-agent", "aud": "portcullis",
        "iat": now, "exp": exp, "jti": format!("leeway-{now}"), "groups": ["agents"]});
    let token = idp.sign(json!({}), claims, "rs").await?;
    let (client, _task) = clients::tokio_pg_connect(&gw.pg_conn("appdb", &token)?).await?;
    client.batch_execute("SELECT 1").await?;

    // Past `exp`, inside the leeway: the session still runs, and a request is still accepted.
    sleep_until(exp + 1).await;
    client.batch_execute("SELECT 1").await?;
    let r = whoami(&gw, &token).await;
    assert_eq!(r.status, 200, "{}", r.summary());
    assert_eq!(r.json()?["valid_until"], exp + 3);

    // At `exp + leeway` both end.
    let valid_until = exp + 3;
    let close = loop {
        let closed = events(&gw).into_iter().find(|r| {
            r["event"]["kind"] == "session.close" && r["event"]["who"]["subject"] == "leeway-agent"
        });
        if let Some(c) = closed {
            break c;
        }
        assert!(now_unix() < valid_until + 10, "the session was not closed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ts_ms = close["ts_ms"].as_i64().unwrap();
    assert!(
        ts_ms >= valid_until * 1000 && ts_ms < (valid_until + 3) * 1000,
        "closed at {ts_ms} ms, valid until {valid_until} s"
    );
    let data = &close["event"]["data"];
    assert_eq!(data["ended"], "token_expired", "{close}");
    assert_eq!(data["valid_until"], valid_until, "{close}");
    assert!(client.batch_execute("SELECT 1").await.is_err());
    let r = whoami(&gw, &token).await;
    assert_eq!(
        r.problem_code().as_deref(),
        Some("expired"),
        "{}",
        r.summary()
    );

    let open = events(&gw)
        .into_iter()
        .map(|r| r["event"].clone())
        .find(|e| e["kind"] == "session.open" && e["who"]["subject"] == "leeway-agent")
        .unwrap();
    assert_eq!(open["data"]["token_expires_at"], exp, "{open}");
    assert_eq!(open["data"]["valid_until"], valid_until, "{open}");
    Ok(())
}

/// `RUST_LOG` sets the log level (`PORTCULLIS_LOG` is unset here), and even at `trace` no
/// token, accepted or refused, reaches the logs of the gateway or of the CLI that minted it.
#[tokio::test]
async fn rust_log_is_honoured_and_trace_logs_hold_no_token() -> Result<()> {
    let pg = PgServer::start().await?;
    let gw = gateway(&pg, GatewayBuilder::new().env("RUST_LOG", "trace")).await?;
    let out = gw.cli([
        "token",
        "mint",
        "--subject",
        "log-agent",
        "--groups",
        "agents",
    ])?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let token = String::from_utf8(out.stdout)?
        .lines()
        .map(str::trim)
        .find(|l| l.split('.').count() == 3 && !l.contains(' '))
        .unwrap()
        .to_owned();
    let cli_logs = String::from_utf8_lossy(&out.stderr).into_owned();

    assert_eq!(whoami(&gw, &token).await.status, 200);
    assert_eq!(
        pg_login(&gw.pg_conn("appdb", &format!("{token}\n"))?).await,
        Ok(())
    );
    let forged = jwt::with_flipped_signature(&token)?;
    assert_eq!(whoami(&gw, &forged).await.status, 401);
    assert!(pg_login(&gw.pg_conn("appdb", &forged)?).await.is_err());

    let logs = gw.output();
    assert!(
        logs.contains("TRACE"),
        "RUST_LOG=trace was not honoured:\n{}",
        gw.logs_tail()
    );
    for (name, text) in [("gateway", &logs), ("token mint", &cli_logs)] {
        for t in [&token, &forged] {
            for part in jwt::segments(t)? {
                assert!(!text.contains(part), "the {name} logs hold a token part");
            }
        }
    }
    Ok(())
}
