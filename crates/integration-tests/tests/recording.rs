//! Session recording through the PostgreSQL door, checked against what real clients did:
//! the JSONL timeline (statements, decisions, columns, the first masked rows, counts,
//! errors), the hash in `session.close` that `audit verify` checks, `sessions list|show|
//! replay`, `/v1/sessions`, and a gateway killed with SIGKILL mid-session.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_integration_tests::clients;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

async fn setup() -> Result<(PgServer, Gateway)> {
    let pg = PgServer::start().await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .start()
        .await?;
    Ok((pg, gw))
}

fn recording_file(gw: &Gateway, session_id: &str) -> PathBuf {
    gw.state_dir()
        .join("recordings")
        .join(format!("{session_id}.jsonl"))
}

fn lines(path: &PathBuf) -> Result<Vec<Value>> {
    std::fs::read_to_string(path)
        .with_context(|| path.display().to_string())?
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// The `session.close` events, newest last, once there are at least `n` (a session's close
/// is audited just after its client has gone).
async fn closes_at_least(gw: &Gateway, n: usize) -> Result<Vec<Value>> {
    for _ in 0..100 {
        let c = closes(gw)?;
        if c.len() >= n {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("fewer than {n} sessions closed")
}

fn closes(gw: &Gateway) -> Result<Vec<Value>> {
    let out = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    Ok(out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["event"].clone())
        .filter(|e| e["kind"] == "session.close")
        .collect())
}

#[tokio::test]
async fn recordings_match_what_psql_and_psycopg_did() -> Result<()> {
    let (_pg, gw) = setup().await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let script = "SELECT id, name, email FROM customers ORDER BY id LIMIT 3;\n\
                  DELETE FROM orders;\n\
                  UPDATE orders SET status = 'paid' WHERE id = 3;\n";
    let out = clients::psql(&conn, &["-X", "-f", "-"], Some(script)).await?;
    assert!(
        clients::stderr(&out).contains("no-unbounded-writes"),
        "{}",
        clients::describe(&out)
    );

    let close = closes_at_least(&gw, 1)
        .await?
        .pop()
        .context("no session.close")?;
    let id = close["session_id"]
        .as_str()
        .context("session id")?
        .to_owned();
    let path = recording_file(&gw, &id);
    let rec = lines(&path)?;
    let header = &rec[0];
    assert_eq!(header["session_id"], id.as_str());
    assert_eq!(header["connection"], "appdb");
    assert_eq!(header["principal"]["subject"], "autogen-analyst");
    let statements: Vec<&Value> = rec.iter().filter(|l| l["kind"] == "statement").collect();
    assert_eq!(statements.len(), 3, "{rec:#?}");
    let select = statements[0];
    assert_eq!(select["decision"], "allow");
    assert_eq!(select["action"], "sql.select");
    assert_eq!(select["columns"], json!(["id", "name", "email"]));
    assert_eq!(select["row_count"], 3);
    assert_eq!(
        select["rows"][0],
        json!(["1", "Alice Martin", "[EMAIL]"]),
        "masked, as sent"
    );
    assert_eq!(select["masked"]["EMAIL"], 3);
    let delete = statements[1];
    assert_eq!(delete["decision"], "deny");
    assert_eq!(delete["error"]["sqlstate"], "42501");
    let update = statements[2];
    assert_eq!(update["action"], "sql.update");
    assert_eq!(update["row_count"], 1);
    assert_eq!(
        update["statement"],
        "UPDATE orders SET status = $1 WHERE id = $2"
    );
    let end = rec.last().context("end")?;
    assert_eq!(end["ended"], "client_terminate");
    // No raw value anywhere in the recording.
    let raw = std::fs::read_to_string(&path)?;
    assert!(!raw.contains("alice.martin@example.com"));
    // The audit vouches for the recording's hash.
    let sha = portcullis_recording::sha256_file(&path)?;
    assert_eq!(close["data"]["recording"]["sha256"], sha.as_str());

    // psycopg (extended protocol) records the same way.
    let spec = json!({"statements": [
        {"sql": "SELECT email FROM customers WHERE id = %s", "params": [2]}]});
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_eq!(r["results"][0]["rows"][0][0], "[EMAIL]", "{r}");
    let close = closes_at_least(&gw, 2)
        .await?
        .pop()
        .context("no session.close")?;
    let rec = lines(&recording_file(
        &gw,
        close["session_id"].as_str().unwrap_or_default(),
    ))?;
    let st = rec
        .iter()
        .find(|l| l["kind"] == "statement" && l["action"] == "sql.select")
        .context("psycopg statement")?;
    assert_eq!(st["columns"], json!(["email"]));
    assert_eq!(st["rows"], json!([["[EMAIL]"]]));

    // sessions list / show / replay, and the API.
    let list = clients::stdout(&gw.cli(["sessions", "list", "--principal", "autogen-analyst"])?);
    assert!(list.contains(&id), "{list}");
    let show = clients::stdout(&gw.cli(["sessions", "show", &id])?);
    for needle in [
        "autogen-analyst",
        "appdb",
        "allow 2",
        "deny 1",
        "EMAIL 3",
        &sha,
    ] {
        assert!(show.contains(needle), "{needle} missing from:\n{show}");
    }
    let replay = gw.cli(["sessions", "replay", &id, "--no-wait"])?;
    let text = clients::stdout(&replay);
    assert!(replay.status.success(), "{}", clients::describe(&replay));
    assert!(
        text.contains("SELECT id, name, email") && text.contains("[EMAIL]"),
        "{text}"
    );
    assert!(text.contains("deny"), "{text}");
    let admin = gw.mint("auditor", &["admins"], "15m")?;
    let api = gw
        .get(&format!("/v1/sessions/{id}"), Some(&admin))
        .await?
        .json()?;
    assert_eq!(api["session_id"], id.as_str(), "{api}");
    let denied = gw.get("/v1/sessions", Some(&token)).await?;
    assert_eq!(denied.status, 403, "agents may not read recordings");
    let file = gw
        .get(&format!("/v1/sessions/{id}/recording"), Some(&admin))
        .await?;
    assert_eq!(file.body, raw);

    // Changing a recording after the fact fails `audit verify`, naming the session.
    let ok = gw.cli(["audit", "verify"])?;
    assert!(ok.status.success(), "{}", clients::describe(&ok));
    std::fs::write(&path, raw.replace("[EMAIL]", "[PHONE]"))?;
    let bad = gw.cli(["audit", "verify"])?;
    assert!(!bad.status.success());
    assert!(
        clients::stdout(&bad).contains(&id),
        "{}",
        clients::describe(&bad)
    );
    Ok(())
}

#[tokio::test]
async fn a_gateway_killed_mid_session_leaves_readable_interrupted_recordings() -> Result<()> {
    let (_pg, mut gw) = setup().await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    // Busy sessions: each runs statements, then sleeps in the server while the gateway dies.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let conn = conn.clone();
        busy.push(tokio::spawn(async move {
            let script = "SELECT count(*) FROM customers;\nSELECT email FROM customers LIMIT 2;\nSELECT pg_sleep(30);\n";
            clients::psql(&conn, &["-X", "-f", "-"], Some(script)).await
        }));
    }
    // Let the statements run and the recorder flush (at most every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gw.kill9();
    for b in busy {
        let _ = b.await;
    }
    gw.restart().await?;

    let verify = gw.cli(["audit", "verify"])?;
    assert!(verify.status.success(), "{}", clients::describe(&verify));
    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    let interrupted: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["event"].clone())
        .filter(|e| e["kind"] == "session.interrupted")
        .collect();
    assert_eq!(interrupted.len(), 3, "{export}");
    for e in &interrupted {
        let id = e["session_id"].as_str().context("id")?;
        let rec = lines(&recording_file(&gw, id))?;
        assert_eq!(rec.last().context("end")?["ended"], "interrupted");
        let statements = rec.iter().filter(|l| l["kind"] == "statement").count();
        assert!(
            statements >= 2,
            "entries up to the last flush survive: {rec:#?}"
        );
        let show = clients::stdout(&gw.cli(["sessions", "show", id])?);
        assert!(show.contains("interrupted"), "{show}");
    }
    Ok(())
}
