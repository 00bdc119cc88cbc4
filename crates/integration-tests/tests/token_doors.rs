//! One token, one verdict, on every door: the HTTP API and the PostgreSQL door treat the
//! leeway after a token's `exp` alike, because both hand the token to the same validator.
//!
//! Needs `target/<profile>/portcullis` (`cargo build -p portcullis`), PostgreSQL binaries
//! and `node` (the real OpenID provider).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use std::time::Duration;

use anyhow::Result;
use portcullis_integration_tests::clients;
use portcullis_integration_tests::gateway::IssuerSpec;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder, Idp, Reply, http, now_unix};
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

/// The audit events so far.
fn events(gw: &Gateway) -> Vec<Value> {
    let out = gw.cli(["audit", "export", "--format", "jsonl"]).unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
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
