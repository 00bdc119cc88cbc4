//! Row limits (`@max_rows`, issue 9): a write that changes more rows than its permit allows
//! is refused with the server's own count and leaves the database as it was, in and out of
//! transactions, in the simple and the extended protocol and through COPY; a write whose
//! count the server cannot give whole is refused before it runs.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::{self, code, direct};

const POLICY: &str = r#"
@id("agents-connect")
permit (principal in Group::"agents", action == Action::"connect", resource is Connection);

@id("agents-read")
permit (principal in Group::"agents",
        action in [Action::"sql.read", Action::"sql.transaction", Action::"sql.session"],
        resource is Connection);

@id("agents-write-few")
@max_rows("5")
permit (principal in Group::"agents", action in Action::"sql.write", resource is Connection);

@id("agents-admin-few")
@max_rows("5")
permit (principal in Group::"agents", action == Action::"sql.admin", resource is Connection);
"#;

/// Schema `s` with `t` (ids 1..=20), a table with a rule that writes elsewhere, and one with
/// a trigger that does.
fn fixture(s: &str) -> String {
    format!(
        r#"
DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};
CREATE TABLE {s}.t (id int PRIMARY KEY, v text);
INSERT INTO {s}.t SELECT g, 'v' || g FROM generate_series(1, 20) g;
CREATE TABLE {s}.log (id serial PRIMARY KEY, note text);
CREATE TABLE {s}.ruled (id int);
CREATE RULE ruled_also AS ON INSERT TO {s}.ruled DO ALSO DELETE FROM {s}.t;
CREATE TABLE {s}.triggered (id int);
CREATE FUNCTION {s}.wipe() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.t; RETURN NEW; END $$;
CREATE TRIGGER triggered_wipe BEFORE INSERT ON {s}.triggered
  FOR EACH ROW EXECUTE FUNCTION {s}.wipe();
CREATE FUNCTION {s}.bump() RETURNS int LANGUAGE sql AS
  $$ UPDATE {s}.t SET v = 'bumped' RETURNING 1 $$;
"#
    )
}

/// Every row of `s.t`, in order: what "the database is unchanged" is checked against.
async fn fingerprint(s: &str) -> String {
    let rows = direct()
        .await
        .query(&format!("SELECT id, v FROM {s}.t ORDER BY id"), &[])
        .await
        .unwrap();
    let pairs: Vec<String> = rows
        .iter()
        .map(|r| format!("{}={}", r.get::<_, i32>(0), r.get::<_, String>(1)))
        .collect();
    let log: i64 = direct()
        .await
        .query_one(&format!("SELECT count(*) FROM {s}.log"), &[])
        .await
        .unwrap()
        .get(0);
    format!("{} log={log}", pairs.join(","))
}

async fn setup(name: &str) -> (support::Gateway, Client, String) {
    let s = format!("pcx_rl_{name}_{}", std::process::id());
    direct().await.batch_execute(&fixture(&s)).await.unwrap();
    let gw = support::start_policy(POLICY, |_| {}, vec![support::local_target()]).await;
    let client = gw.client().await;
    (gw, client, s)
}

async fn teardown(s: &str) {
    let _ = direct()
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
        .await;
}

/// The refusal's SQLSTATE and its machine-readable code (from DETAIL).
fn refusal(e: &tokio_postgres::Error) -> (String, String) {
    let detail = e
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_owned();
    let code_field = detail
        .split("; ")
        .find_map(|f| f.strip_prefix("code: "))
        .unwrap_or_default()
        .to_owned();
    (code(e), code_field)
}

fn exceeded(e: &tokio_postgres::Error) {
    assert_eq!(
        refusal(e),
        ("42501".into(), "row_limit_exceeded".into()),
        "{e:?}"
    );
    let db = e.as_db_error().unwrap();
    assert!(
        db.message().contains("agents-write-few"),
        "{}",
        db.message()
    );
    assert!(db.hint().unwrap_or_default().contains("5"), "{db:?}");
}

/// Whether the session's transaction is idle: a statement that cannot run in a block.
async fn idle(client: &Client) -> bool {
    // Inside a block `BEGIN` would only warn; `SHOW transaction_isolation` answers either
    // way, so ask the server's own view of the transaction instead.
    let rows = client
        .simple_query("SELECT now() = statement_timestamp()")
        .await
        .unwrap();
    rows.iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")))
}

#[tokio::test]
async fn simple_writes_within_the_bound_commit_and_beyond_it_change_nothing() {
    let (gw, client, s) = setup("simple").await;
    // Within the bound: it runs, commits, and the session is not left in a block.
    client
        .batch_execute(&format!("UPDATE {s}.t SET v = 'a' WHERE id <= 5"))
        .await
        .unwrap();
    assert!(idle(&client).await, "the gateway's own block was closed");
    let before = fingerprint(&s).await;
    assert!(
        before.contains("5=a") && before.contains("6=v6"),
        "{before}"
    );

    // Beyond it: refused with the server's count; nothing changed, even the statement
    // before it in the same Query, and the session goes on outside any block.
    for sql in [
        format!("UPDATE {s}.t SET v = 'b' WHERE id <= 6"),
        format!("DELETE FROM {s}.t WHERE id > 0"),
        format!("INSERT INTO {s}.log (note) SELECT 'x' FROM generate_series(1, 6)"),
        format!(
            "UPDATE {s}.t SET v = 'c' WHERE id = 1; DELETE FROM {s}.t WHERE id > 10; INSERT INTO {s}.log (note) VALUES ('after')"
        ),
        format!("DELETE FROM {s}.t WHERE id <= 10 RETURNING id, v"),
        format!(
            "INSERT INTO {s}.t SELECT g, 'n' FROM generate_series(100, 110) g ON CONFLICT (id) DO UPDATE SET v = 'u'"
        ),
        format!(
            "MERGE INTO {s}.t USING generate_series(1, 8) g ON t.id = g WHEN MATCHED THEN UPDATE SET v = 'm'"
        ),
    ] {
        let e = client.batch_execute(&sql).await.unwrap_err();
        exceeded(&e);
        assert_eq!(fingerprint(&s).await, before, "{sql}");
        assert!(
            idle(&client).await,
            "{sql}: the session is outside any block"
        );
    }
    let e = client
        .simple_query(&format!("DELETE FROM {s}.t WHERE id <= 10 RETURNING id"))
        .await
        .unwrap_err();
    exceeded(&e);
    // The next write within the bound runs and commits.
    client
        .batch_execute(&format!("DELETE FROM {s}.t WHERE id = 20"))
        .await
        .unwrap();
    assert!(!fingerprint(&s).await.contains("20="), "committed");

    // The refusal is audited with the server's count.
    let refused = gw
        .wait_event(|e| e["kind"] == "statement.result" && e["outcome"] == "refused")
        .await;
    assert_eq!(refused["reason_code"], "row_limit_exceeded");
    assert_eq!(refused["data"]["row_limit"]["max"], 5);
    assert_eq!(refused["data"]["row_limit"]["count"], 6);
    assert_eq!(refused["data"]["row_limit"]["policy"], "agents-write-few");
    teardown(&s).await;
}

#[tokio::test]
async fn in_a_transaction_the_block_fails_and_rolls_back() {
    let (_gw, client, s) = setup("block").await;
    let before = fingerprint(&s).await;
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute(&format!("UPDATE {s}.t SET v = 'in' WHERE id <= 2"))
        .await
        .unwrap();
    let e = client
        .batch_execute(&format!("UPDATE {s}.t SET v = 'over' WHERE id <= 9"))
        .await
        .unwrap_err();
    exceeded(&e);
    // The block is aborted: nothing more runs in it, and COMMIT rolls it back.
    let e = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(code(&e), "25P02");
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(fingerprint(&s).await, before);

    // Transaction control in the same Query: a block the Query opens holds the bounded
    // statement (a ROLLBACK in it is the client's), a COMMIT after it is refused.
    client
        .batch_execute(&format!(
            "BEGIN; UPDATE {s}.t SET v = 'q' WHERE id <= 2; ROLLBACK"
        ))
        .await
        .unwrap();
    assert_eq!(fingerprint(&s).await, before);
    assert!(idle(&client).await);
    let e = client
        .batch_execute(&format!(
            "BEGIN; UPDATE {s}.t SET v = 'q' WHERE id <= 8; ROLLBACK"
        ))
        .await
        .unwrap_err();
    exceeded(&e);
    assert!(idle(&client).await);
    client
        .batch_execute(&format!("BEGIN; UPDATE {s}.t SET v = 'q' WHERE id = 3"))
        .await
        .unwrap();
    assert!(
        !idle(&client).await,
        "the Query's own BEGIN leaves its block open"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    for sql in [
        format!("BEGIN; UPDATE {s}.t SET v = 'q' WHERE id = 3; COMMIT"),
        format!("UPDATE {s}.t SET v = 'q' WHERE id = 3; ROLLBACK"),
        format!("BEGIN; COMMIT; UPDATE {s}.t SET v = 'q' WHERE id = 3"),
    ] {
        let e = client.batch_execute(&sql).await.unwrap_err();
        assert_eq!(refusal(&e).1, "row_limit_unenforceable", "{sql}");
        assert!(idle(&client).await, "{sql}");
    }
    assert_eq!(fingerprint(&s).await, before);

    // Within the bound in a block: the client's COMMIT decides.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute(&format!("UPDATE {s}.t SET v = 'kept' WHERE id <= 5"))
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    assert!(fingerprint(&s).await.contains("5=kept"));
    teardown(&s).await;
}

#[tokio::test]
async fn extended_protocol_executes_are_counted_too() {
    let (_gw, mut client, s) = setup("extended").await;
    let n = client
        .execute(
            &format!("UPDATE {s}.t SET v = $1 WHERE id <= $2"),
            &[&"e", &4i32],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    let before = fingerprint(&s).await;
    assert!(before.contains("4=e"), "{before}");
    let e = client
        .execute(
            &format!("UPDATE {s}.t SET v = $1 WHERE id <= $2"),
            &[&"x", &12i32],
        )
        .await
        .unwrap_err();
    exceeded(&e);
    assert_eq!(fingerprint(&s).await, before);
    let e = client
        .query(
            &format!("DELETE FROM {s}.t WHERE id > $1 RETURNING id"),
            &[&0i32],
        )
        .await
        .unwrap_err();
    exceeded(&e);
    assert_eq!(fingerprint(&s).await, before);
    // The session goes on, and a prepared statement runs again under its bound.
    let stmt = client
        .prepare(&format!("DELETE FROM {s}.t WHERE id = $1"))
        .await
        .unwrap();
    assert_eq!(client.execute(&stmt, &[&19i32]).await.unwrap(), 1);

    // In a transaction: the block is failed, and rolled back.
    let tx = client.transaction().await.unwrap();
    tx.execute(
        &format!("UPDATE {s}.t SET v = 'tx' WHERE id = $1"),
        &[&1i32],
    )
    .await
    .unwrap();
    let e = tx
        .execute(
            &format!("UPDATE {s}.t SET v = 'tx' WHERE id > $1"),
            &[&1i32],
        )
        .await
        .unwrap_err();
    exceeded(&e);
    let e = tx.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), "25P02");
    drop(tx);
    let after = fingerprint(&s).await;
    assert!(!after.contains("tx") && !after.contains("19="), "{after}");

    // A portal fetched a few rows at a time cannot be counted before it commits.
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare(&format!(
            "UPDATE {s}.t SET v = 'p' WHERE id <= $1 RETURNING id"
        ))
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[&2i32]).await.unwrap();
    let e = tx.query_portal(&portal, 1).await.unwrap_err();
    assert_eq!(
        refusal(&e),
        ("42501".into(), "row_limit_unenforceable".into())
    );
    drop(tx);
    assert!(!fingerprint(&s).await.contains("=p"));
    teardown(&s).await;
}

#[tokio::test]
async fn copy_from_stdin_is_counted() {
    use futures::SinkExt;
    let (_gw, client, s) = setup("copy").await;
    let before = fingerprint(&s).await;
    let copy = |rows: std::ops::Range<i32>| {
        let data: String = rows.map(|i| format!("{i}\tc{i}\n")).collect();
        bytes::Bytes::from(data)
    };
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {s}.t FROM STDIN"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(copy(100..110)).await.unwrap();
    let e = sink.finish().await.unwrap_err();
    exceeded(&e);
    assert_eq!(fingerprint(&s).await, before);
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {s}.t FROM STDIN"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(copy(100..103)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 3);
    assert!(fingerprint(&s).await.contains("102=c102"));
    teardown(&s).await;
}

#[tokio::test]
async fn writes_the_count_would_miss_are_refused_before_they_run() {
    let (gw, client, s) = setup("uncountable").await;
    let before = fingerprint(&s).await;
    for sql in [
        // The count is the outer statement's only.
        format!(
            "WITH d AS (DELETE FROM {s}.t RETURNING id) INSERT INTO {s}.log (note) SELECT 'x' FROM d LIMIT 1"
        ),
        format!("WITH d AS (DELETE FROM {s}.t RETURNING id) SELECT count(*) FROM d"),
        // EXPLAIN ANALYZE runs the write; its tag counts nothing.
        format!("EXPLAIN ANALYZE DELETE FROM {s}.t WHERE id > 0"),
        // A rule and a trigger write rows no tag counts.
        format!("INSERT INTO {s}.ruled VALUES (1)"),
        format!("INSERT INTO {s}.triggered VALUES (1)"),
        // A function that writes.
        format!("SELECT {s}.bump()"),
        format!("UPDATE {s}.log SET note = 'n' WHERE id = {s}.bump()"),
        // Code the gateway cannot see into.
        format!("DO $$ BEGIN DELETE FROM {s}.t; END $$"),
        format!("TRUNCATE {s}.t"),
        // Transaction control next to a bounded write could commit it before its count.
        format!("BEGIN; DELETE FROM {s}.t WHERE id = 1; COMMIT"),
        format!("DELETE FROM {s}.t WHERE id = 1; COMMIT"),
    ] {
        let e = client.batch_execute(&sql).await.unwrap_err();
        assert_eq!(
            refusal(&e),
            ("42501".into(), "row_limit_unenforceable".into()),
            "{sql}: {e:?}"
        );
        assert_eq!(fingerprint(&s).await, before, "{sql}");
        assert!(idle(&client).await, "{sql}");
    }
    // The same in the extended protocol.
    let e = client
        .execute(&format!("INSERT INTO {s}.ruled VALUES ($1)"), &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(refusal(&e).1, "row_limit_unenforceable");
    assert_eq!(fingerprint(&s).await, before);
    let denied = gw
        .wait_event(|e| e["kind"] == "decision" && e["reason_code"] == "row_limit_unenforceable")
        .await;
    assert_eq!(denied["outcome"], "deny");
    teardown(&s).await;
}

/// psql runs each command as a simple Query: COPY FROM STDIN through it is counted, a
/// RETURNING write beyond the bound is refused, and a write within it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copy_and_returning() {
    use std::io::Write;
    let (gw, _client, s) = setup("psql").await;
    let before = fingerprint(&s).await;
    let psql = |sql: &str, stdin: &str| {
        let conninfo = format!(
            "host=127.0.0.1 port={} dbname=test user=agent sslmode=disable",
            gw.addr.port()
        );
        let mut child = std::process::Command::new("psql")
            .args([
                conninfo.as_str(),
                "-XAt",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", gw.token(&["agents"]))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql is installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let rows: String = (200..210).map(|i| format!("{i}\tp{i}\n")).collect();
    let out = tokio::task::block_in_place(|| psql(&format!("COPY {s}.t FROM STDIN"), &rows));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("would change 10 rows"), "{stderr}");
    assert_eq!(fingerprint(&s).await, before);

    let out = tokio::task::block_in_place(|| {
        psql(
            &format!("DELETE FROM {s}.t WHERE id <= 12 RETURNING id"),
            "",
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("row_limit_exceeded") || stderr.contains("would change 12 rows"),
        "{stderr}"
    );
    assert_eq!(fingerprint(&s).await, before);

    let out =
        tokio::task::block_in_place(|| psql(&format!("COPY {s}.t FROM STDIN"), "300\tq\n301\tq\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fingerprint(&s).await.contains("301=q"));
    teardown(&s).await;
}
