//! Just-in-time approval through the PostgreSQL door, with real clients against a real
//! server: a write to a production connection is held (the quickstart policy asks a `dba`
//! to approve), the client is told the review id at once, a reviewer approves or denies from
//! another process with the CLI, and the held statement runs (once) or fails, in the same
//! session. Also: timeout then retry, self-approval, outsiders, replay for another statement,
//! 50 held sessions at once, a gateway restart with reviews pending, and webhooks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_integration_tests::clients::{self, PgConn};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

async fn gateway(pg: &PgServer, extra: &str) -> Result<Gateway> {
    GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("billing", pg, &[("environment", "prod")])
        .extra_toml(extra)
        .start()
        .await
}

const HOLD_20S: &str = "[approvals]\nhold = \"20s\"\n";

async fn orders(pg: &PgServer, id: i64) -> Result<i64> {
    Ok(pg
        .superuser_sql(
            "appdb",
            &format!("SELECT count(*) FROM orders WHERE id = {id}"),
        )
        .await?
        .trim()
        .parse()?)
}

/// Waits for a pending review the `dba` token can see, whose command contains `needle`.
async fn pending(gw: &Gateway, dba: &str, needle: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = gw
            .get("/v1/reviews?status=pending", Some(dba))
            .await?
            .json()?;
        if let Some(found) = r["reviews"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["command"].as_str().is_some_and(|c| c.contains(needle)))
        {
            return Ok(found.clone());
        }
        if Instant::now() > deadline {
            bail!("no pending review for {needle}: {r}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn review_cli(
    gw: &Gateway,
    verb: &str,
    id: &str,
    token: &str,
    comment: &str,
) -> Result<std::process::Output> {
    gw.cli([
        "reviews",
        verb,
        id,
        "--token",
        token,
        "--comment",
        comment,
        "--output",
        "json",
        "--url",
        gw.url(),
    ])
}

#[tokio::test]
async fn psql_holds_a_delete_until_a_dba_approves_it_from_the_cli() -> Result<()> {
    let pg = PgServer::start().await?;
    let gw = gateway(&pg, HOLD_20S).await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let conn = gw.pg_conn("billing", &agent)?;
    assert_eq!(orders(&pg, 7).await?, 1);

    let held = tokio::spawn({
        let conn = conn.clone();
        async move {
            clients::psql(
                &conn,
                &[
                    "-c",
                    "SELECT 1 AS before",
                    "-c",
                    "DELETE FROM orders WHERE id = 7",
                    "-c",
                    "SELECT 2 AS after",
                ],
                None,
            )
            .await
        }
    });
    let review = pending(&gw, &dba, "DELETE FROM orders").await?;
    let id = review["id"].as_str().context("id")?.to_owned();
    assert_eq!(review["requester"]["subject"], "autogen-analyst");
    assert_eq!(review["reviewers"], json!(["dba"]));
    assert_eq!(orders(&pg, 7).await?, 1, "nothing runs while held");

    // The agent may not approve its own request, and a non-dba may not approve at all.
    let own = review_cli(&gw, "approve", &id, &agent, "me")?;
    assert!(!own.status.success());
    let other = gw.mint("olivia", &["analysts"], "15m")?;
    let outsider = review_cli(&gw, "approve", &id, &other, "why not")?;
    assert!(!outsider.status.success());
    assert!(
        clients::stdout(&outsider).contains("reviewer_not_in_group"),
        "{}",
        clients::describe(&outsider)
    );

    let ok = review_cli(&gw, "approve", &id, &dba, "ticket OPS-1")?;
    assert!(ok.status.success(), "{}", clients::describe(&ok));
    let out = held.await??;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let stdout = clients::stdout(&out);
    assert!(
        stdout.contains("DELETE 1") && stdout.contains("after"),
        "{stdout}"
    );
    let stderr = clients::stderr(&out);
    assert!(
        stderr.contains(&id) && stderr.contains("portcullis reviews approve"),
        "{stderr}"
    );
    assert_eq!(orders(&pg, 7).await?, 0);

    // Approved once, executed once: the same statement again needs a new review.
    let show = gw.cli([
        "reviews",
        "show",
        &id,
        "--token",
        &dba,
        "--output",
        "json",
        "--url",
        gw.url(),
    ])?;
    let shown: Value = serde_json::from_slice(&show.stdout)?;
    assert_eq!(shown["status"], "executed", "{shown}");

    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    for kind in ["review.requested", "review.approved", "review.executed"] {
        assert!(export.contains(kind), "{kind} missing from the audit");
    }
    assert!(
        export.contains("ticket OPS-1"),
        "the reviewer's comment is audited"
    );
    Ok(())
}

#[tokio::test]
async fn psycopg_denial_and_timeout_then_retry_keep_the_session_usable() -> Result<()> {
    let pg = PgServer::start().await?;
    let gw = gateway(&pg, "[approvals]\nhold = \"3s\"\n").await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let conn = gw.pg_conn("billing", &agent)?;

    // Deny: the held statement fails with the reviewer and comment; the session goes on.
    let run = |conn: PgConn, sql: &'static str| async move {
        let spec = json!({"autocommit": true, "statements": [
            {"sql": sql, "params": [11]}, {"sql": "SELECT 42"}]});
        clients::psycopg_run(&conn, &spec).await
    };
    let held = tokio::spawn(run(conn.clone(), "DELETE FROM orders WHERE id = %s"));
    let review = pending(&gw, &dba, "DELETE FROM orders").await?;
    let id = review["id"].as_str().context("id")?.to_owned();
    assert!(
        review_cli(&gw, "deny", &id, &dba, "not during the freeze")?
            .status
            .success()
    );
    let r = held.await??;
    let err = &r["results"][0]["error"];
    assert_eq!(err["sqlstate"], "42501", "{r}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not during the freeze"),
        "{r}"
    );
    assert!(
        err["message"].as_str().unwrap_or_default().contains("dana"),
        "{r}"
    );
    assert_eq!(r["results"][1]["rows"][0][0], 42, "{r}");
    assert_eq!(orders(&pg, 11).await?, 1);

    // Timeout: the error names the review; after approval the same statement runs once.
    let r = run(conn.clone(), "DELETE FROM orders WHERE id = %s").await?;
    let err = &r["results"][0]["error"];
    assert_eq!(err["sqlstate"], "42501", "{r}");
    let message = err["message"].as_str().unwrap_or_default();
    let review = pending(&gw, &dba, "DELETE FROM orders").await?;
    let id = review["id"].as_str().context("id")?.to_owned();
    assert!(
        message.contains(&id),
        "the timeout names the review: {message}"
    );
    assert_eq!(r["results"][1]["rows"][0][0], 42, "{r}");
    assert!(
        review_cli(&gw, "approve", &id, &dba, "ok")?
            .status
            .success()
    );

    // The approval is for id 11 only: another statement is a new review (and times out).
    let other = json!({"autocommit": true, "statements": [
        {"sql": "DELETE FROM orders WHERE id = %s", "params": [12]}]});
    let r = clients::psycopg_run(&conn, &other).await?;
    assert_eq!(r["results"][0]["error"]["sqlstate"], "42501", "{r}");
    assert_eq!(
        orders(&pg, 12).await?,
        1,
        "the approval was replayed for another statement"
    );

    let r = run(conn.clone(), "DELETE FROM orders WHERE id = %s").await?;
    assert_eq!(
        r["results"][0]["ok"], true,
        "the approved statement runs on retry: {r}"
    );
    assert_eq!(orders(&pg, 11).await?, 0);
    let r = run(conn, "DELETE FROM orders WHERE id = %s").await?;
    assert_eq!(
        r["results"][0]["error"]["sqlstate"], "42501",
        "an approval runs once: {r}"
    );
    Ok(())
}

#[tokio::test]
async fn fifty_held_sessions_each_run_exactly_their_own_statement() -> Result<()> {
    let pg = PgServer::start().await?;
    pg.superuser_sql(
        "appdb",
        "CREATE TABLE ledger (id int PRIMARY KEY, hits int NOT NULL DEFAULT 0); \
         INSERT INTO ledger (id) SELECT g FROM generate_series(1, 50) g; ALTER TABLE ledger OWNER TO app;",
    )
    .await?;
    let gw = gateway(&pg, "[approvals]\nhold = \"60s\"\n").await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let conn = gw.pg_conn("billing", &agent)?;
    let mut sessions = Vec::new();
    for i in 1..=50 {
        let conn = conn.clone();
        sessions.push(tokio::spawn(async move {
            let sql = format!("UPDATE ledger SET hits = hits + 1 WHERE id = {i}");
            clients::psql(&conn, &["-c", &sql], None).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids: Vec<String> = Vec::new();
    while ids.len() < 50 {
        let r = gw
            .get("/v1/reviews?status=pending&limit=1000", Some(&dba))
            .await?
            .json()?;
        ids = r["reviews"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        if Instant::now() > deadline {
            bail!("only {} reviews pending", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Approve in an order unrelated to the sessions'.
    ids.sort_by_key(|id| id.bytes().rev().collect::<Vec<_>>());
    for id in &ids {
        let r = review_cli(&gw, "approve", id, &dba, "batch")?;
        assert!(r.status.success(), "{}", clients::describe(&r));
    }
    for s in sessions {
        let out = s.await??;
        assert!(out.status.success(), "{}", clients::describe(&out));
        assert!(clients::stdout(&out).contains("UPDATE 1"));
    }
    let hits = pg
        .superuser_sql(
            "appdb",
            "SELECT count(*) FILTER (WHERE hits = 1), sum(hits) FROM ledger",
        )
        .await?;
    assert_eq!(hits.trim(), "50|50", "each statement ran exactly once");
    Ok(())
}

#[tokio::test]
async fn pending_reviews_survive_a_gateway_restart() -> Result<()> {
    let pg = PgServer::start().await?;
    let mut gw = gateway(&pg, "[approvals]\nhold = \"2s\"\n").await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let sql = "DELETE FROM orders WHERE id = 21";
    let out = clients::psql(&gw.pg_conn("billing", &agent)?, &["-c", sql], None).await?;
    assert!(
        !out.status.success(),
        "held, then timed out: {}",
        clients::describe(&out)
    );
    let review = pending(&gw, &dba, "DELETE FROM orders").await?;
    let id = review["id"].as_str().context("id")?.to_owned();

    gw.restart().await?;
    let again = gw.cli([
        "reviews",
        "show",
        &id,
        "--token",
        &dba,
        "--output",
        "json",
        "--url",
        gw.url(),
    ])?;
    let shown: Value = serde_json::from_slice(&again.stdout)?;
    assert_eq!(shown["status"], "pending", "{shown}");
    assert!(
        review_cli(&gw, "approve", &id, &dba, "after restart")?
            .status
            .success()
    );
    let out = clients::psql(&gw.pg_conn("billing", &agent)?, &["-c", sql], None).await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    assert_eq!(orders(&pg, 21).await?, 0);
    Ok(())
}

/// A local webhook receiver: records each delivery's headers and body.
async fn receiver() -> Result<(String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>)> {
    let seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                log.lock().map(|mut l| l.push((headers, body))).ok();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

#[tokio::test]
async fn reviewers_are_notified_by_signed_webhooks_without_blocking_the_hold() -> Result<()> {
    const SECRET: &str = "webhook-signing-secret-123";
    let (url, seen) = receiver().await?;
    let pg = PgServer::start().await?;
    let extra = format!(
        "[approvals]\nhold = \"20s\"\n\
         [[approvals.webhooks]]\nurl = \"{url}\"\nsecret = {{ env = \"HOOK_SECRET\" }}\ngroups = [\"dba\"]\n\
         [[approvals.webhooks]]\nurl = \"http://127.0.0.1:9/unreachable\"\n"
    );
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("billing", &pg, &[("environment", "prod")])
        .extra_toml(extra)
        .env("HOOK_SECRET", SECRET)
        .start()
        .await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let held = tokio::spawn({
        let conn = gw.pg_conn("billing", &agent)?;
        async move { clients::psql(&conn, &["-c", "DELETE FROM orders WHERE id = 31"], None).await }
    });
    let review = pending(&gw, &dba, "DELETE FROM orders").await?;
    let id = review["id"].as_str().context("id")?.to_owned();
    assert!(
        review_cli(&gw, "approve", &id, &dba, "fine")?
            .status
            .success()
    );
    assert!(held.await??.status.success());

    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let got: Vec<(axum::http::HeaderMap, String)> =
            seen.lock().map(|l| l.clone()).unwrap_or_default();
        let kinds: Vec<String> = got
            .iter()
            .filter_map(|(h, _)| {
                h.get("x-portcullis-event")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .collect();
        if kinds.iter().any(|k| k == "review.executed") || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|(h, _)| h.get("x-portcullis-event").and_then(|v| v.to_str().ok()))
        .collect();
    for k in ["review.requested", "review.approved", "review.executed"] {
        assert!(kinds.contains(&k), "{k} not delivered: {kinds:?}");
    }
    for (headers, body) in &events {
        let ts: i64 = headers["x-portcullis-timestamp"].to_str()?.parse()?;
        let sig = headers["x-portcullis-signature"].to_str()?;
        assert!(
            portcullis_notify::verify(SECRET.as_bytes(), ts, body.as_bytes(), sig),
            "bad signature"
        );
        let v: Value = serde_json::from_str(body)?;
        assert_eq!(v["review_id"], id.as_str());
        assert!(!body.contains(SECRET));
    }
    // The unreachable hook's failure is audited, with no secret and no path in it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
        if export.contains("notify.failed") {
            assert!(!export.contains("/unreachable") && !export.contains(SECRET));
            break;
        }
        if Instant::now() > deadline {
            bail!("no notify.failed event");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// An approved write still runs under its permit's row bound (the quickstart's 1000): the
/// approval lets it run, the server's count is checked when it does, and beyond the bound it
/// is refused and changes nothing.
#[tokio::test]
async fn an_approved_write_is_still_bounded_by_its_row_limit() -> Result<()> {
    let pg = PgServer::start().await?;
    pg.superuser_sql(
        "appdb",
        "CREATE TABLE bulk AS SELECT g AS id, 0 AS n FROM generate_series(1, 1500) g;\n         GRANT ALL ON bulk TO PUBLIC",
    )
    .await?;
    let gw = gateway(&pg, HOLD_20S).await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let conn = gw.pg_conn("billing", &agent)?;
    let held = tokio::spawn({
        let conn = conn.clone();
        async move { clients::psql(&conn, &["-c", "UPDATE bulk SET n = 1 WHERE id > 100"], None).await }
    });
    let review = pending(&gw, &dba, "UPDATE bulk").await?;
    let id = review["id"].as_str().context("id")?.to_owned();
    let ok = review_cli(&gw, "approve", &id, &dba, "bulk fix")?;
    assert!(ok.status.success(), "{}", clients::describe(&ok));
    let out = held.await??;
    assert!(!out.status.success(), "{}", clients::describe(&out));
    let stderr = clients::stderr(&out);
    assert!(
        stderr.contains("would change 1400 rows")
            && stderr.contains("agents-write-prod-approval")
            && stderr.contains("1000"),
        "{stderr}"
    );
    let changed = pg
        .superuser_sql("appdb", "SELECT count(*) FROM bulk WHERE n = 1")
        .await?;
    assert_eq!(changed.trim(), "0", "nothing committed");
    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    assert!(
        export.contains("row_limit_exceeded"),
        "the refusal is audited"
    );
    Ok(())
}
