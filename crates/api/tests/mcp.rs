//! The MCP server end to end in process: the real API router on 127.0.0.1:0 with a real
//! pipeline (SQLite audit, dev issuer, Cedar), two fake exec doors (one SQL, one that runs
//! command lines), and the `rmcp` client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_audit::{AuditSettings, Auditor, SigningKey};
use portcullis_identity::{DevIssuer, IdentitySettings, MintRequest, Validator};
use portcullis_pipeline::{
    ExecDoor, ExecOutcome, ExecRefusal, ExecRequest, Output, Pipeline, ToolCall, ToolSpec,
};
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

const POLICY: &str = r#"
@id("connect") permit (principal in Group::"agents", action == Action::"connect", resource)
when { resource.kind == "postgres" || resource.kind == "ssh" };
@id("no-secret") forbid (principal, action == Action::"connect", resource == Connection::"secret");
"#;

struct FakeDoor;

#[async_trait::async_trait]
impl ExecDoor for FakeDoor {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    fn serves(&self, c: &str) -> bool {
        c == "x" || c == "secret"
    }
    fn connections(&self) -> Vec<String> {
        vec!["secret".into(), "x".into()]
    }
    fn connection_info(&self, c: &str) -> Option<ConnectionInfo> {
        info(self, c)
    }
    fn tools(&self, c: &str) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: format!("query_{c}"),
            title: format!("Query {c}"),
            description: "Run one SQL statement".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"sql": {"type": "string"}, "parameters": {"type": "array"}},
                "required": ["sql"]
            }),
            read_only: false,
            call: ToolCall::Run {
                input: "sql",
                parameters: Some("parameters"),
                example: "SELECT ...",
            },
        }]
    }
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        match req.input.as_str() {
            "SELECT 1" => Ok(ExecOutcome::Done {
                session_id: Some("s1".into()),
                output: Output::Rows {
                    columns: vec!["one".into()],
                    rows: vec![vec![Some("1".into())]],
                    row_count: 1,
                    truncated: false,
                },
                decisions: Vec::new(),
            }),
            _ => Err(ExecRefusal {
                refusal: portcullis_pipeline::Refusal::new(
                    portcullis_pipeline::Code::Policy(portcullis_policy::DenyCode::Forbidden),
                    "sql.delete denied by policy no-delete: no deletes",
                    "do not delete",
                )
                .with_policies(vec!["no-delete".into()]),
                protocol_code: Some("42501".into()),
                session_id: Some("s2".into()),
                decisions: Vec::new(),
            }),
        }
    }
}

fn info(door: &dyn ExecDoor, c: &str) -> Option<ConnectionInfo> {
    door.serves(c).then(|| ConnectionInfo {
        name: c.into(),
        kind: door.kind().into(),
        labels: Default::default(),
    })
}

/// A door that runs command lines: one `run_<connection>` tool, its command in `command`.
struct Shell;

#[async_trait::async_trait]
impl ExecDoor for Shell {
    fn kind(&self) -> &'static str {
        "ssh"
    }
    fn serves(&self, c: &str) -> bool {
        c == "box"
    }
    fn connections(&self) -> Vec<String> {
        vec!["box".into()]
    }
    fn connection_info(&self, c: &str) -> Option<ConnectionInfo> {
        info(self, c)
    }
    fn tools(&self, c: &str) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: format!("run_{c}"),
            title: format!("Run on {c}"),
            description: "Run one command line".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"]
            }),
            read_only: false,
            call: ToolCall::Run {
                input: "command",
                parameters: None,
                example: "uptime",
            },
        }]
    }
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        Ok(ExecOutcome::Done {
            session_id: Some("s3".into()),
            output: Output::Stream {
                stdout: format!("ran {}\n", req.input),
                stderr: String::new(),
                exit_status: Some(0),
                truncated: false,
            },
            decisions: Vec::new(),
        })
    }
}

async fn gateway(dir: &std::path::Path) -> (SocketAddr, String) {
    let url = format!("sqlite://{}", dir.join("state.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
    let key = SigningKey::load_or_create(dir).unwrap();
    let auditor = Auditor::start(store.clone(), key, AuditSettings::default())
        .await
        .unwrap();
    let dev = DevIssuer::load_or_create(dir, "http://127.0.0.1:1/dev").unwrap();
    let validator = Validator::new(IdentitySettings {
        issuers: vec![dev.issuer_settings(vec!["portcullis".into()])],
        static_groups: Vec::new(),
        max_token_bytes: 16 * 1024,
        cache_capacity: 1000,
    })
    .unwrap();
    let engine = PolicyEngine::compile(&[PolicySource {
        name: "t.cedar".into(),
        text: POLICY.into(),
    }])
    .unwrap();
    let pipeline = Arc::new(Pipeline::new(validator, engine, auditor));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let token = dev
        .mint(
            &MintRequest {
                subject: "agent".into(),
                groups: vec!["agents".into()],
                audience: "portcullis".into(),
                ttl: Duration::from_secs(3600),
                ..MintRequest::default()
            },
            now.as_secs() as i64,
        )
        .unwrap();
    let state = portcullis_api::AppState {
        pipeline,
        store,
        dev_issuer: Some(Arc::new(dev)),
        reload: Arc::new(|| Box::pin(async { Ok(0) })),
        max_body_bytes: 1 << 20,
        reviews: None,
        recordings_dir: None,
        exec: vec![Arc::new(FakeDoor), Arc::new(Shell)],
        exec_limits: (100, 1 << 20),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = portcullis_api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, token)
}

#[tokio::test]
async fn lists_and_calls_tools_over_streamable_http() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, token) = gateway(dir.path()).await;
    let config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
        .auth_header(token)
        .custom_headers(std::collections::HashMap::from([(
            http::HeaderName::from_static("x-portcullis-run-id"),
            http::HeaderValue::from_static("run-h"),
        )]));
    let transport = StreamableHttpClientTransport::from_config(config);
    let client = ().serve(transport).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["query_x", "run_box"], "`secret` is not connectable");
    let run = tools.iter().find(|t| t.name == "run_box").unwrap();
    assert!(
        run.input_schema["properties"].get("sql").is_none(),
        "{:?}",
        run.input_schema
    );

    let mut call = CallToolRequestParams::new("query_x");
    call.arguments = Some(serde_json::from_value(serde_json::json!({"sql": "SELECT 1"})).unwrap());
    call.meta = Some(RequestMetaObject::from(
        serde_json::from_value::<rmcp::model::JsonObject>(
            serde_json::json!({"run_id": "run-7", "tool_call_id": "call-3"}),
        )
        .unwrap(),
    ));
    let done = client.call_tool(call).await.unwrap();
    assert_eq!(done.is_error, Some(false));
    let v = done.structured_content.unwrap();
    assert_eq!(v["rows"], serde_json::json!([["1"]]));
    assert_eq!(v["columns"], serde_json::json!(["one"]));
    assert_eq!(v["row_count"], 1);
    assert_eq!(v["session_id"], "s1");
    assert_eq!(v["run_id"], "run-7");
    assert_eq!(v["tool_call_id"], "call-3");

    let mut call = CallToolRequestParams::new("query_x");
    call.arguments =
        Some(serde_json::from_value(serde_json::json!({"sql": "DELETE FROM t"})).unwrap());
    let refused = client.call_tool(call).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    let v = refused.structured_content.unwrap();
    assert_eq!(v["code"], "policy_forbid");
    assert_eq!(v["policies"], serde_json::json!(["no-delete"]));
    assert_eq!(v["protocol_code"], "42501");
    assert_eq!(
        v["run_id"], "run-h",
        "the header names the run when _meta does not"
    );
    let text = format!("{:?}", refused.content);
    assert!(text.contains("do not delete"), "{text}");

    // The command door's tool, by its declared name and argument.
    let mut call = CallToolRequestParams::new("run_box");
    call.arguments =
        Some(serde_json::from_value(serde_json::json!({"command": "uptime"})).unwrap());
    let ran = client.call_tool(call).await.unwrap();
    assert_eq!(ran.is_error, Some(false));
    let v = ran.structured_content.unwrap();
    assert_eq!(v["output"], "stream");
    assert_eq!(v["stdout"], "ran uptime\n");
    assert_eq!(v["exit_status"], 0);
    let mut call = CallToolRequestParams::new("run_box");
    call.arguments = Some(serde_json::from_value(serde_json::json!({"sql": "uptime"})).unwrap());
    let bad = client.call_tool(call).await.unwrap();
    assert_eq!(bad.is_error, Some(true));
    let v = bad.structured_content.unwrap();
    assert_eq!(v["code"], "argument_invalid");
    assert_eq!(v["message"], "`command` (a string) is required");

    // A name no door declared is no tool, whatever it looks like.
    let unknown = client
        .call_tool(CallToolRequestParams::new("query_box"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn refuses_without_a_token_and_names_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _token) = gateway(dir.path()).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource\""
        )),
        "{challenge}"
    );
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    let meta: serde_json::Value = http
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("http://{addr}/mcp"));
    assert_eq!(
        meta["authorization_servers"],
        serde_json::json!(["http://127.0.0.1:1/dev"])
    );
    assert_eq!(
        meta["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
}
