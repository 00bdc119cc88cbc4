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

    let (status, r) = exec(
        &gw,
        &agent,
        json!({"connection": "appdb", "input": "DELETE FROM orders"}),
    )
    .await?;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["code"], "policy_forbid", "{r}");
    assert_eq!(r["policies"], json!(["no-unbounded-writes"]), "{r}");
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
    let id = r["review_id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("rv_"), "{r}");
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
    Ok(())
}
