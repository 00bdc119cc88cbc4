//! The HTTP client paths: `POST /v1/exec` (the JSON answer or the problem+json body) and the
//! MCP tool `query_appdb` (the tool result or the tool error, as the official Rust MCP client
//! receives them). Each case is one command: its statements joined into one input.

use std::time::Duration;

use anyhow::{Context, Result};
use portcullis_integration_tests::{Gateway, http};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

use crate::capture::{Capture, json_leaves};
use crate::cases::{Case, Transport};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn exec(gw: &Gateway, token: &str, cases: &[Case]) -> Result<Vec<Capture>> {
    let t = Transport::Exec;
    let client = http::client()?;
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.runs_on(t)) {
        let mut cap = Capture::new(t, i);
        let sent = client
            .post(format!("{}/v1/exec", gw.url()))
            .bearer_auth(token)
            .json(&json!({"connection": "appdb", "input": case.one_command(t)}))
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                if status != 200 {
                    let code = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    cap.outcome.fail(format!("{status}:{code}"));
                }
                cap.text(json_leaves(&body));
                cap.text(body);
            }
            Err(e) => cap.outcome.lose(format!("{e:#}")),
        }
        out.push(cap);
    }
    Ok(out)
}

pub async fn mcp(gw: &Gateway, token: &str, cases: &[Case]) -> Result<Vec<Capture>> {
    let t = Transport::Mcp;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", gw.url()))
        .auth_header(token.to_owned());
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .context("MCP client")?;
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.runs_on(t)) {
        let mut cap = Capture::new(t, i);
        let mut call = CallToolRequestParams::new("query_appdb".to_owned());
        call.arguments = Some(serde_json::from_value(json!({"sql": case.one_command(t)}))?);
        match tokio::time::timeout(CALL_TIMEOUT, client.call_tool(call)).await {
            Ok(Ok(result)) => {
                let text = serde_json::to_string(&result)?;
                if result.is_error == Some(true) {
                    let code = result
                        .structured_content
                        .as_ref()
                        .and_then(|v| v["code"].as_str())
                        .unwrap_or("tool error");
                    cap.outcome.fail(code);
                }
                cap.text(json_leaves(&text));
                cap.text(text);
            }
            Ok(Err(e)) => {
                cap.text(format!("{e:?}"));
                cap.outcome.fail(format!("mcp: {e}"));
            }
            Err(_) => cap
                .outcome
                .lose(format!("no answer within {CALL_TIMEOUT:?}")),
        }
        out.push(cap);
    }
    client.cancel().await?;
    Ok(out)
}
