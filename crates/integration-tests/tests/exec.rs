//! `POST /v1/exec`: one SQL command through the PostgreSQL door's own path, from the HTTP
//! API: masked results, denials as problem+json with the reason code and hint, approval as
//! 202 with the review id (and the same command running once approved), bad tokens, unknown
//! connections, result limits.

use anyhow::Result;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder, http};
use serde_json::{Value, json};

async fn exec(gw: &Gateway, token: &str, body: Value) -> Result<(u16, Value)> {
    let r = http::client()?
        .post(format!("{}/v1/exec", gw.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

#[tokio::test]
async fn exec_runs_sql_through_the_door_with_masking_denials_and_approvals() -> Result<()> {
    let pg = PgServer::start().await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .pg_connection("billing", &pg, &[("environment", "prod")])
        .pg_connection("ledger", &pg, &[("environment", "ledger")])
        .policy(
            "ledger.cedar",
            r#"@id("ledger-writes-bounded")
@max_rows("1000")
permit (principal in Group::"agents", action in Action::"sql.write", resource == Connection::"ledger");"#,
        )
        .start()
        .await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;

    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb",
        "input": "SELECT id, email FROM customers ORDER BY id LIMIT 2"}),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "done");
    assert_eq!(r["columns"], json!(["id", "email"]));
    assert_eq!(r["rows"], json!([["1", "[EMAIL]"], ["2", "[EMAIL]"]]));
    assert_eq!(r["row_count"], 2);
    assert_eq!(r["truncated"], false);
    assert!(
        r["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    // The answer names its audit events: the session's connect, then the statement's.
    assert_eq!(r["decision"], "allow", "{r}");
    let actions: Vec<&str> = r["decisions"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["action"].as_str()).collect())
        .unwrap_or_default();
    // (data.unmask: whether this agent may see raw values, asked once on first need)
    assert_eq!(actions, ["connect", "sql.select", "data.unmask"], "{r}");
    let select_seq = r["decisions"][1]["seq"].as_i64().unwrap_or_default();

    // Bound parameters, in text: values never need quoting, NULL is null.
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb",
        "input": "SELECT $1::text AS quoted, $2::int + 1 AS next, $3::text IS NULL AS missing, email FROM customers WHERE id = $4",
        "parameters": ["O'Brien; DROP TABLE orders", 41, null, 2]}),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["rows"],
        json!([["O'Brien; DROP TABLE orders", "42", "t", "[EMAIL]"]]),
        "{r}"
    );

    // The last statement's result is the answer; COPY TO STDOUT comes back as rows, masked.
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb", "input": "SELECT 1; SELECT 2 AS two, 3 AS three"}),
    )
    .await?;
    assert_eq!((status, &r["rows"]), (200, &json!([["2", "3"]])), "{r}");
    assert_eq!(r["columns"], json!(["two", "three"]));
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb",
        "input": "COPY (SELECT id, email FROM customers ORDER BY id LIMIT 2) TO STDOUT"}),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["rows"], json!([["1\t[EMAIL]"], ["2\t[EMAIL]"]]), "{r}");
    assert_eq!(r["row_count"], 2);

    // More parameters than the protocol can carry: a clear 400, not a broken session.
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb", "input": "SELECT 1", "parameters": vec![Value::Null; 40_000]}),
    )
    .await?;
    assert_eq!(
        (status, &r["code"]),
        (400, &json!("parameters_too_many")),
        "{r}"
    );

    // A statement the server refuses: 422 with its SQLSTATE.
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb", "input": "SELECT * FROM no_such_table"}),
    )
    .await?;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["code"], "statement_failed", "{r}");

    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb", "input": "DELETE FROM orders"}),
    )
    .await?;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["code"], "policy_forbid", "{r}");
    assert_eq!(r["policies"], json!(["no-unbounded-writes"]), "{r}");
    let denial = r["decisions"].as_array().and_then(|d| d.last()).cloned();
    assert_eq!(
        denial.as_ref().map(|d| (&d["action"], &d["outcome"])),
        Some((&json!("sql.delete"), &json!("deny"))),
        "{r}"
    );
    let deny_seq = denial.and_then(|d| d["seq"].as_i64()).unwrap_or_default();
    assert!(
        r["hint"].as_str().unwrap_or_default().contains("WHERE"),
        "{r}"
    );

    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb",
        "input": "SELECT g FROM generate_series(1, 5000) AS g"}),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["rows"].as_array().map(Vec::len), Some(1000));
    assert_eq!(r["truncated"], true);
    assert_eq!(r["row_count"], 5000);

    // A production write needs a DBA: 202 with the review id at once, then it runs once.
    let update = json!({"connection": "billing", "input": "UPDATE orders SET status = 'refunded' WHERE id = 5"});
    let (status, r) = exec(&gw, &agent, update.clone()).await?;
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["decision"], "approval_required", "{r}");
    let id = r["review_id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("rv_"), "{r}");
    let message = r["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&id) && !message.contains("holding"),
        "the exec API does not hold: {r}"
    );
    assert!(
        r["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("portcullis reviews approve"),
        "{r}"
    );
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let approved = http::client()?
        .post(format!("{}/v1/reviews/{id}/approve", gw.url()))
        .bearer_auth(&dba)
        .json(&json!({"comment": "ok"}))
        .send()
        .await?;
    assert_eq!(approved.status().as_u16(), 200);
    let (status, r) = exec(&gw, &agent, update.clone()).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["row_count"], 1);
    let (status, r) = exec(&gw, &agent, update).await?;
    assert_eq!(status, 202, "an approval runs its command once: {r}");
    assert_ne!(r["review_id"], id.as_str());

    // With parameters, the review binds their values: other values are another review.
    let param_update = |id: i64| {
        json!({"connection": "billing", "input": "UPDATE orders SET status = $1 WHERE id = $2",
               "parameters": ["refunded", id]})
    };
    let (status, r) = exec(&gw, &agent, param_update(6)).await?;
    assert_eq!(status, 202, "{r}");
    let bound = r["review_id"].as_str().unwrap_or_default().to_owned();
    let approved = http::client()?
        .post(format!("{}/v1/reviews/{bound}/approve", gw.url()))
        .bearer_auth(&dba)
        .json(&json!({"comment": "order 6 only"}))
        .send()
        .await?;
    assert_eq!(approved.status().as_u16(), 200);
    let (status, r) = exec(&gw, &agent, param_update(7)).await?;
    assert_eq!(status, 202, "order 7 is not what was approved: {r}");
    assert_ne!(r["review_id"], bound.as_str());
    let (status, r) = exec(&gw, &agent, param_update(6)).await?;
    assert_eq!((status, &r["row_count"]), (200, &json!(1)), "{r}");

    let (status, r) = exec(
        &gw,
        "not-a-token",
        json!({"connection": "appdb", "input": "SELECT 1"}),
    )
    .await?;
    assert_eq!(status, 401, "{r}");
    assert_eq!(r["code"], "token_malformed", "{r}");
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "nosuch", "input": "SELECT 1"}),
    )
    .await?;
    assert_eq!(status, 404, "{r}");

    // The upstream password is nowhere in what the agent saw, nor in the audit.
    let export = String::from_utf8(gw.cli(["audit", "export", "--format", "jsonl"])?.stdout)?;
    assert!(!export.contains(pg.app_password()));

    // The seqs an answer quoted are the audit's own events.
    let records: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |seq: i64| {
        records
            .iter()
            .find(|r| r["seq"] == seq)
            .map(|r| r["event"].clone())
            .unwrap_or_default()
    };
    assert_eq!(at(select_seq)["action"], "sql.select");
    assert_eq!(at(deny_seq)["action"], "sql.delete");
    assert_eq!(at(deny_seq)["outcome"], "deny");

    // Row limits (`ledger` bounds writes to 1000 rows): the refusal is a 403 with its code
    // and hint, and nothing changed.
    pg.superuser_sql(
        "appdb",
        "CREATE TABLE bulk AS SELECT g AS id, 0 AS n FROM generate_series(1, 1200) g;
         GRANT ALL ON bulk TO PUBLIC",
    )
    .await?;
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "ledger", "input": "UPDATE bulk SET n = 1 WHERE id > 0"}),
    )
    .await?;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["code"], "row_limit_exceeded", "{r}");
    assert!(
        r["hint"].as_str().is_some_and(|h| h.contains("1000")),
        "{r}"
    );
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "ledger",
        "input": "WITH d AS (DELETE FROM bulk WHERE id > $1 RETURNING id) SELECT count(*) FROM d",
        "parameters": [0]}),
    )
    .await?;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["code"], "row_limit_unenforceable", "{r}");
    let changed = pg
        .superuser_sql("appdb", "SELECT count(*) FROM bulk WHERE n = 1")
        .await?;
    assert_eq!(changed.trim(), "0");
    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "ledger", "input": "UPDATE bulk SET n = 2 WHERE id <= 10"}),
    )
    .await?;
    assert_eq!(status, 200, "{r}");
    Ok(())
}
