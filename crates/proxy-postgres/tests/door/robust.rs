//! Admission, cancellation, TLS, and everything that must fail cleanly.

use std::time::Duration;

use serde_json::Value;

use crate::raw::{self, Raw, errors, status, tags};
use crate::support::{self, code, drop_table, table};

#[tokio::test]
async fn a_bad_token_is_refused_with_28p01() {
    let gw = support::start().await;
    let err = gw.connect("test", "not-a-jwt").await.unwrap_err();
    assert_eq!(code(&err), "28P01");
    let db = err.as_db_error().unwrap();
    assert_eq!(db.message(), "token rejected: token_malformed");
    // The reason code, machine-readable, as in every refusal of the door's.
    assert_eq!(db.detail(), Some("code: token_malformed"));
    assert!(db.hint().is_some());
    gw.wait_event(|e| e["kind"] == "token.rejected").await;
}

#[tokio::test]
async fn an_unknown_database_is_3d000_after_authentication() {
    let gw = support::start().await;
    let err = gw
        .connect("nosuch", &gw.token(&["agents"]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "3D000");
    // Without a valid token the name is never looked at.
    let err = gw.connect("nosuch", "garbage").await.unwrap_err();
    assert_eq!(code(&err), "28P01");
}

#[tokio::test]
async fn connect_needs_a_policy_permit() {
    let gw = support::start().await;
    let err = gw
        .connect("test", &gw.token(&["visitors"]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("connect denied by policy (default deny)")
    );
    let events = gw.events().await;
    assert!(!events.iter().any(|e| e["kind"] == "session.open"));
}

#[tokio::test]
async fn cancel_request_reaches_the_right_query() {
    let gw = support::start().await;
    let client = gw.client().await;
    let token = client.cancel_token();
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let err = client
        .batch_execute("SELECT pg_sleep(20)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "57014", "canceled: {err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn function_call_messages_are_denied() {
    let gw = support::start().await;
    let mut raw = Raw::connect(&gw).await;
    // FunctionCall of pg_backend_pid (oid 2026) with no arguments and a text result.
    raw.send(&raw::msg(b'F', &[0, 0, 0x07, 0xea, 0, 0, 0, 0, 0, 0]))
        .await;
    let answer = raw.until_ready().await;
    assert_eq!(errors(&answer), ["42501"]);
    assert_eq!(status(&answer), b'I');
    raw.send(&raw::query("SELECT 1")).await;
    assert_eq!(tags(&raw.until_ready().await), "TDCZ");
    gw.wait_event(|e| e["reason_code"] == "function_call_forbidden")
        .await;
}

#[tokio::test]
async fn extended_denial_discards_until_sync() {
    let gw = support::start().await;
    let t = table("rawext", 2).await;
    let mut raw = Raw::connect(&gw).await;
    let mut batch = raw::parse("", "SELECT 1");
    batch.extend(raw::bind(""));
    batch.extend(raw::execute());
    batch.extend(raw::parse("", &format!("DELETE FROM {t}")));
    batch.extend(raw::bind(""));
    batch.extend(raw::execute());
    batch.extend(raw::sync());
    batch.extend(raw::query("SELECT 2"));
    raw.send(&batch).await;
    let first = raw.until_ready().await;
    // ParseComplete, BindComplete, DataRow, CommandComplete for SELECT 1; then the denial,
    // nothing for the discarded Bind/Execute, and ReadyForQuery.
    assert_eq!(tags(&first), "12DCEZ");
    assert_eq!(errors(&first), ["42501"]);
    assert_eq!(tags(&raw.until_ready().await), "TDCZ");
    assert_eq!(support::count(&t).await, 2);
    drop_table(&t).await;
}

#[tokio::test]
async fn an_oversized_message_gets_08p01_and_a_closed_connection() {
    let gw = support::start_with(|s| s.max_message_bytes = 1024).await;
    let mut raw = Raw::connect(&gw).await;
    raw.send(&raw::query(&format!("SELECT '{}'", "x".repeat(2000))))
        .await;
    let answer = raw.until_ready().await;
    assert_eq!(errors(&answer), ["08P01"]);
    assert!(raw.next().await.is_none(), "closed");
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "error");
    // A malformed length is the same.
    let mut raw = Raw::connect(&gw).await;
    raw.send(&[b'Q', 0, 0, 0, 2]).await;
    assert_eq!(errors(&raw.until_ready().await), ["08P01"]);
}

#[tokio::test]
async fn the_upstream_going_away_ends_the_session_cleanly() {
    let gw = support::start().await;
    let client = gw.client().await;
    client
        .batch_execute("SET application_name = 'pcx-victim'")
        .await
        .unwrap();
    let db = support::direct().await;
    db.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pcx-victim'")
        .await
        .unwrap();
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || code(&err) == "57P01", "{err}");
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "upstream_gone");
}

#[tokio::test]
async fn a_client_gone_mid_query_closes_the_upstream_session() {
    let gw = support::start().await;
    let mut raw = Raw::connect(&gw).await;
    raw.send(&raw::query("SET application_name = 'pcx-gone'"))
        .await;
    raw.until_ready().await;
    raw.send(&raw::query("SELECT pg_sleep(30)")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(raw);
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "client_gone");
    let db = support::direct().await;
    let mut left = 1;
    for _ in 0..100 {
        let row = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pcx-gone'",
                &[],
            )
            .await
            .unwrap();
        left = row.get::<_, i64>(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the server session ended with the client");
}

fn psql(gw: &support::Gateway, sslmode: &str, sql: &str) -> std::process::Output {
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=test user=agent sslmode={sslmode}",
        gw.addr.port()
    );
    std::process::Command::new("psql")
        .args([conninfo.as_str(), "-XAtc", sql])
        .env("PGPASSWORD", gw.token(&["agents"]))
        .output()
        .expect("psql is installed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_with_the_generated_certificate() {
    let gw = support::start_with(|s| s.allow_plaintext_loopback = false).await;
    let out = tokio::task::block_in_place(|| psql(&gw, "require", "SHOW ssl; SELECT 6 * 7"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("42\n"), "{stdout}");
    assert!(gw.dir.path().join("pg-tls-key.pem").exists());
    let out = tokio::task::block_in_place(|| psql(&gw, "disable", "SELECT 1"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sslmode=require"), "{stderr}");
}

#[tokio::test]
async fn shutdown_ends_sessions_like_a_fast_shutdown() {
    let gw = support::start().await;
    let client = gw.client().await;
    client.batch_execute("SELECT 1").await.unwrap();
    gw.shutdown.cancel();
    let serving = gw.serving.lock().unwrap().take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns once sessions ended")
        .unwrap();
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || code(&err) == "57P01", "{err}");
    let events = gw.events().await;
    let close = events
        .iter()
        .find(|e| e["kind"] == "session.close")
        .expect("closed");
    assert_eq!(close["data"]["ended"], "shutdown");
}

#[tokio::test]
async fn revoking_the_identity_closes_its_live_sessions() {
    let gw = support::start().await;
    let client = gw.client().await;
    client.batch_execute("SELECT 1").await.unwrap();
    gw.pipeline
        .validator()
        .revocations()
        .add(portcullis_identity::Revocation::Subject("agent-7".into()));
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "revoked");
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || code(&err) == "57P01", "{err}");
}

/// A session remembers its decisions, but never past the policies or the identity that made
/// them: after a reload the very next statement of an open session is decided by the new
/// policies, and after a revocation the very next statement is refused (audited), without
/// waiting for the door to notice the lapse and close the session.
#[tokio::test]
async fn a_reload_or_a_revocation_decides_the_next_statement_of_an_open_session() {
    let gw = support::start().await;
    let t = table("memo", 4).await;
    let client = gw.client().await;
    let c = &client;
    let v = |id: i32| {
        let sql = format!("SELECT v FROM {t} WHERE id = $1");
        async move {
            c.query_one(&sql, &[&id])
                .await
                .map(|r| r.get::<_, String>(0))
        }
    };
    // Each shape decided twice, so that the second answer comes from the session's memo.
    for id in [1, 2] {
        client
            .batch_execute(&format!("UPDATE {t} SET v = 'w{id}' WHERE id = {id}"))
            .await
            .unwrap();
        assert_eq!(v(id).await.unwrap(), format!("w{id}"));
    }

    let forbid_updates = format!(
        "{}\n@id(\"no-updates\")\nforbid (principal, action == Action::\"sql.update\", resource);",
        support::POLICY
    );
    gw.pipeline.swap_policy(support::engine(&forbid_updates));
    let err = client
        .batch_execute(&format!("UPDATE {t} SET v = 'w3' WHERE id = 3"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    let db = err.as_db_error().unwrap();
    assert!(
        db.detail().unwrap_or_default().contains("no-updates"),
        "{db:?}"
    );
    assert_eq!(v(3).await.unwrap(), "v3", "the update did not run");

    gw.pipeline
        .validator()
        .revocations()
        .add(portcullis_identity::Revocation::Subject("agent-7".into()));
    // At once: the door may not yet have closed the session, and nothing may run in it.
    let err = client
        .batch_execute(&format!("DELETE FROM {t} WHERE id = 4"))
        .await
        .unwrap_err();
    assert!(
        err.is_closed() || ["42501", "57P01"].contains(&code(&err).as_str()),
        "{err}"
    );
    assert_eq!(support::count(&t).await, 4, "the delete did not run");
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "revoked");
    let deletes: Vec<Value> = gw
        .events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "decision" && e["action"] == "sql.delete")
        .collect();
    // Refused by the session's own check, or never decided because the door closed first.
    assert!(
        deletes
            .iter()
            .all(|e| e["outcome"] == "deny" && e["reason_code"] == "revoked_subject"),
        "{deletes:?}"
    );
    drop_table(&t).await;
}

/// Seeing raw values (`data.unmask`) is decided again after a reload: an open session whose
/// permission a reload took away gets its very next result masked.
#[tokio::test]
async fn a_reload_that_takes_unmask_away_masks_the_next_result() {
    let t = table("unmask", 1).await;
    support::direct()
        .await
        .batch_execute(&format!("UPDATE {t} SET v = 'ada@example.com'"))
        .await
        .unwrap();
    let target = portcullis_proxy_postgres::PgTarget {
        masking: Some("default".into()),
        ..support::local_target()
    };
    let unmask = format!(
        "{}\n@id(\"agents-unmask\")\npermit (principal in Group::\"agents\", action == Action::\"data.unmask\", resource);",
        support::POLICY
    );
    let gw = support::start_policy(&unmask, |_| {}, vec![target]).await;
    let client = gw.client().await;
    let c = &client;
    let email = || {
        let sql = format!("SELECT v FROM {t} WHERE id = 1");
        async move { c.query_one(&sql, &[]).await.unwrap().get::<_, String>(0) }
    };
    assert_eq!(email().await, "ada@example.com");
    assert_eq!(email().await, "ada@example.com");
    gw.pipeline.swap_policy(support::engine(support::POLICY));
    let masked = email().await;
    assert_ne!(masked, "ada@example.com", "masked after the reload");
    assert!(!masked.contains("ada"), "{masked}");
    drop_table(&t).await;
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires() {
    let gw = support::start().await;
    let token = gw.token_for(&["agents"], Duration::from_secs(2));
    let client = gw.connect("test", &token).await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "token_expired");
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || code(&err) == "57P01", "{err}");
}

#[tokio::test]
async fn without_an_audit_trail_nothing_runs() {
    let gw = support::start().await;
    let t = table("noaudit", 2).await;
    let client = gw.client().await;
    client.batch_execute("SELECT 1").await.unwrap();
    gw.pipeline.auditor().shutdown().await.unwrap();
    let err = client
        .batch_execute(&format!("DELETE FROM {t} WHERE id = 1"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "58000");
    let db = err.as_db_error().unwrap();
    assert!(db.hint().unwrap().contains("audit"), "{db:?}");
    assert_eq!(
        support::count(&t).await,
        2,
        "the allowed-by-policy statement did not run"
    );
    // New sessions are refused as well: the token check cannot be audited either way.
    let err = gw.connect("test", "garbage").await.unwrap_err();
    assert_eq!(code(&err), "58000");
    drop_table(&t).await;
}
