//! The PostgreSQL door with real clients against a real SCRAM server: the client knows only
//! its token; the gateway injects the credentials, classifies every statement, enforces the
//! quickstart policies and audits each decision.

use anyhow::Result;
use portcullis_integration_tests::clients::{self, PgConn};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

async fn setup() -> Result<(PgServer, Gateway, String)> {
    let pg = PgServer::start().await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .start()
        .await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    Ok((pg, gw, token))
}

async fn count(pg: &PgServer, table: &str) -> Result<i64> {
    Ok(pg
        .superuser_sql("appdb", &format!("SELECT count(*) FROM {table}"))
        .await?
        .trim()
        .parse()?)
}

/// The exported records: `seq`, `event`, ...
fn records(gw: &Gateway) -> Result<Vec<Value>> {
    let out = gw.cli(["audit", "export", "--format", "jsonl"])?;
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| Ok(serde_json::from_str::<Value>(l)?))
        .collect()
}

fn events(gw: &Gateway) -> Result<Vec<Value>> {
    Ok(records(gw)?
        .into_iter()
        .map(|r| r["event"].clone())
        .collect())
}

/// The `statement.result` events, each with the decision event it refers back to.
fn results(gw: &Gateway) -> Result<Vec<(Value, Value)>> {
    let all = records(gw)?;
    let by_seq = |seq: &Value| {
        all.iter()
            .find(|r| &r["seq"] == seq)
            .map(|r| r["event"].clone())
            .unwrap_or(Value::Null)
    };
    Ok(all
        .iter()
        .filter(|r| r["event"]["kind"] == "statement.result")
        .map(|r| {
            let e = r["event"].clone();
            let decision = by_seq(&e["data"]["decision_seq"]);
            (e, decision)
        })
        .collect())
}

#[tokio::test]
async fn each_statement_that_runs_reports_its_result() -> Result<()> {
    let (_pg, gw, token) = setup().await?;
    let conn = gw.pg_conn("appdb", &token)?;
    let sql = "SELECT id FROM customers WHERE id <= 3; SELECT 1/0; SELECT 2";
    let out = clients::psql(&conn, &["-At", "-c", sql], None).await?;
    assert!(!out.status.success(), "{}", clients::describe(&out));
    let spec = json!({"autocommit": true, "statements": [
        {"sql": "UPDATE orders SET status = %s WHERE id <= %s", "params": ["packed", 2]}]});
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_eq!(r["results"][0]["rowcount"], 2, "{r}");

    let results = results(&gw)?;
    let find = |normalized: &str| {
        results
            .iter()
            .find(|(_, d)| {
                d["command"]
                    .as_str()
                    .is_some_and(|c| c.contains(normalized))
            })
            .unwrap_or_else(|| panic!("no result for {normalized}: {results:#?}"))
    };
    let (select, decision) = find("WHERE id <=");
    assert_eq!(decision["kind"], "decision");
    assert_eq!(decision["outcome"], "allow");
    assert_eq!(select["outcome"], "ok");
    assert_eq!(select["data"]["rows"], 3);
    assert!(
        select["data"]["bytes"].as_u64().unwrap_or(0) > 0,
        "{select}"
    );
    assert_eq!(select["who"]["subject"], "autogen-analyst");
    let (failed, _) = find("SELECT $1/$2");
    assert_eq!(failed["outcome"], "error");
    assert_eq!(failed["data"]["sqlstate"], "22012");
    // The statement after the error never ran, so it reports nothing.
    assert!(
        !results.iter().any(|(_, d)| d["command"] == "SELECT $1"),
        "{results:#?}"
    );
    let (update, decision) = find("UPDATE orders");
    assert_eq!(decision["action"], "sql.update");
    assert_eq!(update["data"]["rows"], 2);
    assert_eq!(update["action"], "sql.update");
    Ok(())
}

#[tokio::test]
async fn psql_reads_with_only_a_token_and_a_bare_delete_is_denied() -> Result<()> {
    let (pg, gw, token) = setup().await?;
    let conn = gw.pg_conn("appdb", &token)?;
    let out = clients::psql(
        &conn,
        &["-At", "-c", "SELECT count(*) FROM customers"],
        None,
    )
    .await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    assert_eq!(clients::stdout(&out).trim(), "20");

    let before = count(&pg, "orders").await?;
    let out = clients::psql(&conn, &["-c", "DELETE FROM orders"], None).await?;
    let err = clients::stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("no-unbounded-writes"), "{err}");
    assert!(err.contains("HINT:") && err.contains("WHERE"), "{err}");
    assert_eq!(
        count(&pg, "orders").await?,
        before,
        "the denied DELETE reached the database"
    );

    // Multi-statement: one denied statement refuses the whole string.
    let out = clients::psql(
        &conn,
        &["-c", "SELECT 1; DELETE FROM orders; SELECT 2"],
        None,
    )
    .await?;
    assert!(!out.status.success());
    assert_eq!(count(&pg, "orders").await?, before);

    let ev = events(&gw)?;
    let decided = |action: &str, outcome: &str| {
        ev.iter().any(|e| {
            e["kind"] == "decision"
                && e["action"] == action
                && e["outcome"] == outcome
                && e["protocol"] == "postgres"
                && e["who"]["subject"] == "autogen-analyst"
        })
    };
    assert!(decided("connect", "allow"));
    assert!(decided("sql.select", "allow"));
    assert!(decided("sql.delete", "deny"));
    assert!(ev.iter().any(|e| e["kind"] == "session.open"));
    // The upstream password is never in the audit.
    let all = serde_json::to_string(&ev)?;
    assert!(!all.contains(pg.app_password()));
    Ok(())
}

#[tokio::test]
async fn psycopg_extended_protocol_denial_keeps_the_session_consistent() -> Result<()> {
    let (pg, gw, token) = setup().await?;
    let conn = gw.pg_conn("appdb", &token)?;
    let before = count(&pg, "orders").await?;
    let spec = json!({
        "autocommit": false,
        "statements": [
            {"sql": "SELECT name FROM customers WHERE id = %s", "params": [3]},
            {"sql": "DELETE FROM orders"},
            {"sql": "SELECT 1"}
        ],
        "end": "rollback"
    });
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_eq!(r["connected"], true, "{r}");
    let res = r["results"].as_array().expect("results");
    assert_eq!(res[0]["ok"], true, "{r}");
    assert_eq!(res[1]["error"]["sqlstate"], "42501", "{r}");
    assert!(
        res[1]["error"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("WHERE"),
        "{r}"
    );
    // In a transaction block the denial aborts it, as a PostgreSQL error would.
    assert_eq!(res[2]["error"]["sqlstate"], "25P02", "{r}");
    assert_eq!(count(&pg, "orders").await?, before);

    // A bounded write on a dev connection is allowed and lands.
    let spec = json!({"autocommit": true, "statements": [
        {"sql": "UPDATE orders SET status = %s WHERE id = %s", "params": ["shipped", 1]}]});
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_eq!(r["results"][0]["rowcount"], 1, "{r}");
    assert_eq!(
        pg.superuser_sql("appdb", "SELECT status FROM orders WHERE id = 1")
            .await?
            .trim(),
        "shipped"
    );
    Ok(())
}

/// psycopg's executemany runs in pipeline mode, which libpq ends with Sync then Flush; the
/// commit that follows is a simple Query. Through the door the rows must be saved and the
/// session kept, as directly (psycopg's own suite found the door killing the session here).
#[tokio::test]
async fn psycopg_executemany_then_commit_saves_every_row() -> Result<()> {
    let (pg, gw, token) = setup().await?;
    let conn = gw.pg_conn("appdb", &token)?;
    let before = count(&pg, "orders").await?;
    let rows: Vec<Value> = (0..50).map(|i| json!([1, i, "pipelined"])).collect();
    let spec = json!({
        "autocommit": false,
        "statements": [
            {"sql": "INSERT INTO orders (customer_id, amount, status) VALUES (%s, %s, %s)",
             "many": rows},
            {"sql": "SELECT count(*) FROM orders WHERE status = 'pipelined'", "mode": "simple"}
        ],
        "end": "commit"
    });
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_eq!(r["connected"], true, "{r}");
    let res = r["results"].as_array().expect("results");
    assert!(res.iter().all(|x| x["ok"] == true), "{r}");
    assert_eq!(count(&pg, "orders").await?, before + 50, "{r}");
    Ok(())
}

#[tokio::test]
async fn asyncpg_binary_prepared_statements() -> Result<()> {
    let (_pg, gw, token) = setup().await?;
    let conn = gw.pg_conn("appdb", &token)?;
    let spec = json!({"statements": [
        {"sql": "SELECT id, balance, tags FROM customers WHERE id = $1", "params": [2]},
        {"sql": "SELECT id, balance, tags FROM customers WHERE id = $1", "params": [5]},
        {"sql": "DELETE FROM customers"}
    ]});
    let r = clients::asyncpg_run(&conn, &spec).await?;
    assert_eq!(r["connected"], true, "{r}");
    assert_eq!(r["results"][0]["rows"][0][0], 2, "{r}");
    assert_eq!(r["results"][1]["rows"][0][0], 5, "{r}");
    assert_eq!(r["results"][2]["error"]["sqlstate"], "42501", "{r}");
    Ok(())
}

#[tokio::test]
async fn bad_token_and_unknown_connection_are_refused_with_codes() -> Result<()> {
    let (_pg, gw, token) = setup().await?;
    let bad = gw.pg_conn("appdb", "not-a-token")?;
    let Err(err) = clients::tokio_pg_connect(&bad).await else {
        panic!("connection was not refused")
    };
    assert_eq!(
        clients::tokio_pg_sqlstate(&err).as_deref(),
        Some("28P01"),
        "{err:#}"
    );

    let unknown: PgConn = gw.pg_conn("nope", &token)?;
    let Err(err) = clients::tokio_pg_connect(&unknown).await else {
        panic!("connection was not refused")
    };
    assert_eq!(
        clients::tokio_pg_sqlstate(&err).as_deref(),
        Some("3D000"),
        "{err:#}"
    );

    // tokio-postgres: simple and extended protocol through the door.
    let ok = gw.pg_conn("appdb", &token)?;
    let (client, _conn) = clients::tokio_pg_connect(&ok).await?;
    let row = client
        .query_one("SELECT count(*) FROM customers WHERE id > $1", &[&10i32])
        .await?;
    assert_eq!(row.get::<_, i64>(0), 10);
    let err = client
        .batch_execute("DELETE FROM customers")
        .await
        .expect_err("denied");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    client.batch_execute("SELECT 1").await?;
    Ok(())
}

/// A trigger added outside the gateway is seen at the next catalog refresh, which
/// `portcullis connections refresh NAME` (an admin's) brings forward: the INSERT that ran
/// before it is then decided with the trigger's function, which may write (sql.admin).
#[tokio::test]
async fn connections_refresh_reads_a_change_made_outside_the_gateway() -> Result<()> {
    let (pg, gw, token) = setup().await?;
    let app = pg.app_user().to_owned();
    pg.superuser_sql(
        "appdb",
        &format!(
            "CREATE TABLE refresh_t (id int); ALTER TABLE refresh_t OWNER TO {app};
             CREATE FUNCTION refresh_note() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RETURN NEW; END $$;"
        ),
    )
    .await?;
    let (client, _conn) = clients::tokio_pg_connect(&gw.pg_conn("appdb", &token)?).await?;
    client
        .batch_execute("INSERT INTO refresh_t VALUES (1)")
        .await?;
    pg.superuser_sql(
        "appdb",
        "CREATE TRIGGER refresh_trig BEFORE INSERT ON refresh_t
           FOR EACH ROW EXECUTE FUNCTION refresh_note()",
    )
    .await?;
    // Within `catalog_refresh` of the last read, a known table's new trigger is not seen.
    client
        .batch_execute("INSERT INTO refresh_t VALUES (2)")
        .await?;

    // An agent may not refresh; an admin may.
    let refresh = |name: &str, token: &str| {
        gw.cli([
            "connections",
            "refresh",
            name,
            "--token",
            token,
            "--url",
            gw.url(),
        ])
    };
    let refused = refresh("appdb", &token)?;
    assert!(!refused.status.success(), "{}", clients::describe(&refused));
    let admin = gw.mint("dba-1", &["admins"], "5m")?;
    let out = refresh("appdb", &admin)?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    assert!(
        clients::stdout(&out).contains("appdb: catalog read again"),
        "{}",
        clients::describe(&out)
    );
    let unknown = refresh("nope", &admin)?;
    assert!(!unknown.status.success());

    let err = client
        .batch_execute("INSERT INTO refresh_t VALUES (3)")
        .await
        .expect_err("the trigger's function may write: sql.admin");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    assert_eq!(count(&pg, "refresh_t").await?, 2);
    let decision = events(&gw)?
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "decision" && e["outcome"] == "deny")
        .expect("the denial's decision");
    assert_eq!(decision["action"], "sql.admin", "{decision}");
    let audited = events(&gw)?.into_iter().any(|e| {
        e["kind"] == "decision" && e["action"] == "admin.refresh" && e["outcome"] == "allow"
    });
    assert!(audited, "the refresh is decided and audited");
    Ok(())
}
