//! The MCP server of the real gateway, with a real PostgreSQL behind the door and the
//! official Rust MCP client: tools listed by policy, a SELECT answered with masked e-mails, a
//! bare DELETE refused as a tool error with the reason and hint a model can act on, a held
//! UPDATE answered as pending, approved by a DBA, and completed through `wait_for_review` and
//! a second call.

use anyhow::{Context, Result};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{GatewayBuilder, http};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

fn call(tool: &str, args: Value) -> Result<CallToolRequestParams> {
    let mut c = CallToolRequestParams::new(tool.to_owned());
    c.arguments = Some(serde_json::from_value(args)?);
    Ok(c)
}

#[tokio::test]
async fn an_mcp_client_queries_through_the_gateway() -> Result<()> {
    let pg = PgServer::start().await?;
    // A view over the forbidden table: the catalog shows what it reads.
    let app = pg.app_user().to_owned();
    pg.superuser_sql(
        "appdb",
        &format!(
            "CREATE VIEW order_summary AS SELECT id FROM orders; \
             ALTER VIEW order_summary OWNER TO {app};"
        ),
    )
    .await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .policy(
            "no-orders",
            "@id(\"no-reading-orders\")\nforbid (principal in Group::\"agents\", action == Action::\"sql.select\", resource)\nwhen { context.sql.tables.contains(\"orders\") };\n",
        )
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .pg_connection("billing", &pg, &[("environment", "prod")])
        .start()
        .await?;
    let agent = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", gw.url()))
        .auth_header(agent.clone());
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await?;

    let tools = client.list_all_tools().await?;
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "check_review",
            "describe_appdb",
            "describe_billing",
            "query_appdb",
            "query_billing",
            "wait_for_review"
        ]
    );

    // describe lists what this agent may read: customers, not orders (a policy forbids it).
    let described = client.call_tool(call("describe_appdb", json!({}))?).await?;
    assert_eq!(described.is_error, Some(false), "{described:?}");
    let v = described.structured_content.context("structured")?;
    let tables: Vec<&str> = v["tables"]
        .as_array()
        .context("tables")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tables.contains(&"customers"), "{v}");
    assert!(!tables.contains(&"orders"), "{v}");
    assert!(
        !tables.contains(&"order_summary"),
        "a view over orders: {v}"
    );
    assert!(v["hidden"].as_u64().unwrap_or_default() >= 1, "{v}");
    let customers = v["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "customers"))
        .context("customers")?;
    assert!(
        customers["columns"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["name"] == "email" && c["type"] == "text")),
        "{customers}"
    );

    // Bound parameters.
    let by_id = client
        .call_tool(call(
            "query_appdb",
            json!({"sql": "SELECT name, email FROM customers WHERE id = $1", "parameters": [2]}),
        )?)
        .await?;
    let v = by_id.structured_content.context("structured")?;
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["rows"][0][1], "[EMAIL]", "{v}");

    let mut select = call(
        "query_appdb",
        json!({"sql": "SELECT name, email FROM customers ORDER BY id LIMIT 2"}),
    )?;
    select.meta = Some(rmcp::model::RequestMetaObject::from(
        serde_json::from_value::<rmcp::model::JsonObject>(
            json!({"run_id": "run-42", "tool_call_id": "call-7"}),
        )?,
    ));
    let done = client.call_tool(select).await?;
    assert_eq!(done.is_error, Some(false));
    let v = done.structured_content.context("structured")?;
    assert_eq!(v["rows"][0], json!(["Alice Martin", "[EMAIL]"]), "{v}");

    let refused = client
        .call_tool(call("query_appdb", json!({"sql": "DELETE FROM orders"}))?)
        .await?;
    assert_eq!(refused.is_error, Some(true));
    let v = refused.structured_content.context("structured")?;
    assert_eq!(v["code"], "policy_forbid", "{v}");
    assert!(
        v["hint"].as_str().unwrap_or_default().contains("WHERE"),
        "{v}"
    );

    let update = json!({"sql": "UPDATE orders SET status = 'refunded' WHERE id = 9"});
    let held = client
        .call_tool(call("query_billing", update.clone())?)
        .await?;
    assert_eq!(held.is_error, Some(false));
    let v = held.structured_content.context("structured")?;
    assert_eq!(v["status"], "pending", "{v}");
    let id = v["review_id"].as_str().context("review id")?.to_owned();
    let dba = gw.mint("dana", &["dba"], "15m")?;
    let approved = http::client()?
        .post(format!("{}/v1/reviews/{id}/approve", gw.url()))
        .bearer_auth(&dba)
        .json(&json!({"comment": "ok"}))
        .send()
        .await?;
    assert_eq!(approved.status().as_u16(), 200);
    let waited = client
        .call_tool(call(
            "wait_for_review",
            json!({"review_id": id, "timeout_seconds": 5}),
        )?)
        .await?;
    let v = waited.structured_content.context("structured")?;
    assert_eq!(v["status"], "approved", "{v}");
    let ran = client.call_tool(call("query_billing", update)?).await?;
    let v = ran.structured_content.context("structured")?;
    assert_eq!(v["row_count"], 1, "{v}");
    client.cancel().await?;

    // The agent's run and tool call are on every audit event the call caused.
    let export = String::from_utf8(gw.cli(["audit", "export", "--format", "jsonl"])?.stdout)?;
    let tagged: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["event"].clone())
        .filter(|e| e["run_id"] == "run-42")
        .collect();
    let kinds: Vec<&str> = tagged.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["session.open", "decision", "statement.result"] {
        assert!(kinds.contains(&kind), "{kind} lacks the run id: {kinds:?}");
    }
    assert!(tagged.iter().all(|e| e["tool_call_id"] == "call-7"));
    assert!(
        tagged
            .iter()
            .any(|e| e["kind"] == "decision" && e["action"] == "sql.select")
    );
    Ok(())
}
