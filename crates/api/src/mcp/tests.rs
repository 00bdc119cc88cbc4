#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portcullis_pipeline::{
    BodyEncoding, ExecDoor, ExecOutcome, ExecRefusal, ExecRequest, Output, ToolCall, ToolSpec,
};
use serde_json::{Value, json};

use super::server::declared;
use super::tools::{Correlation, outcome_result, refusal_result, run_arguments, tool};
use super::{base_url, challenge, resource_metadata};

/// A terminal-like door: on each connection one `run_<connection>` tool whose command is in
/// `command`, with no placeholders and no `sql`.
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
    fn tools(&self, connection: &str) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: format!("run_{connection}"),
            title: format!("Run on {connection}"),
            description: "Run one command".into(),
            input_schema: json!({
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
    async fn exec(&self, _req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        Err(ExecRefusal::unsupported("exec", "ssh"))
    }
}

/// A tool result's structured content and its text summary (the first text block).
fn rendered(output: Output) -> (Value, String) {
    let r = outcome_result(
        ExecOutcome::Done {
            session_id: Some("s".into()),
            output,
            decisions: Vec::new(),
        },
        &Correlation::default(),
    );
    assert_eq!(r.is_error, Some(false));
    let text = r.content[0].as_text().map(|t| t.text.clone()).unwrap();
    (r.structured_content.unwrap(), text)
}

#[test]
fn rows_keep_the_fields_the_exec_api_answers_with() {
    let (v, text) = rendered(Output::Rows {
        columns: vec!["id".into(), "email".into()],
        rows: vec![vec![Some("1".into()), None]],
        row_count: 3,
        truncated: true,
    });
    assert_eq!(
        v,
        json!({"status": "done", "output": "rows", "columns": ["id", "email"],
               "rows": [["1", null]], "row_count": 3, "truncated": true, "session_id": "s",
               "decision": "allow", "decisions": []})
    );
    assert_eq!(
        text,
        "3 row(s); columns: id, email; truncated to the first 1 row(s) by the gateway's \
         limits. The rows are in the structured content."
    );
}

#[test]
fn stream_renders_stdout_stderr_and_the_exit_status() {
    let (v, text) = rendered(Output::Stream {
        stdout: "up 3 days\n".into(),
        stderr: "warning\n".into(),
        exit_status: Some(2),
        truncated: false,
    });
    assert_eq!(
        v,
        json!({"status": "done", "output": "stream", "stdout": "up 3 days\n",
               "stderr": "warning\n", "exit_status": 2, "truncated": false, "session_id": "s",
               "decision": "allow", "decisions": []})
    );
    assert_eq!(
        text,
        "Exited with status 2; 10 byte(s) on stdout, 8 on stderr. stdout, stderr and \
         exit_status are in the structured content."
    );
    let (v, text) = rendered(Output::Stream {
        stdout: String::new(),
        stderr: String::new(),
        exit_status: None,
        truncated: true,
    });
    assert_eq!(v["exit_status"], Value::Null);
    assert!(
        text.starts_with("Ended without an exit status; 0 byte(s) on stdout, 0 on stderr; truncated by the gateway's limits."),
        "{text}"
    );
}

#[test]
fn http_renders_status_headers_and_body() {
    let (v, text) = rendered(Output::Http {
        status_code: 404,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("set-cookie".into(), "a=1".into()),
            ("set-cookie".into(), "b=2".into()),
        ],
        body: r#"{"error":"gone"}"#.into(),
        body_encoding: BodyEncoding::Utf8,
        truncated: false,
    });
    assert_eq!(
        v,
        json!({"status": "done", "output": "http", "status_code": 404,
               "headers": [["content-type", "application/json"], ["set-cookie", "a=1"],
                           ["set-cookie", "b=2"]],
               "body": "{\"error\":\"gone\"}", "body_encoding": "utf8", "truncated": false,
               "session_id": "s", "decision": "allow", "decisions": []})
    );
    assert_eq!(
        text,
        "HTTP 404; 3 header(s); a body of 16 byte(s). status_code, headers and body are in \
         the structured content."
    );
    let (v, text) = rendered(Output::Http {
        status_code: 200,
        headers: Vec::new(),
        body: "/w==".into(),
        body_encoding: BodyEncoding::Base64,
        truncated: true,
    });
    assert_eq!(v["body_encoding"], "base64");
    assert!(
        text.starts_with(
            "HTTP 200; 0 header(s); a body of 4 byte(s) (base64: the body is not UTF-8); truncated"
        ),
        "{text}"
    );
}

#[test]
fn a_call_finds_its_tool_by_the_declared_name() {
    let doors: Vec<Arc<dyn ExecDoor>> = vec![Arc::new(Shell)];
    let d = declared(&doors, "run_box").unwrap();
    assert_eq!((d.connection.as_str(), d.door.kind()), ("box", "ssh"));
    assert_eq!(
        d.spec.call,
        ToolCall::Run {
            input: "command",
            parameters: None,
            example: "uptime"
        }
    );
    // No name is assumed: a SQL-style name on this door is no tool at all.
    assert!(declared(&doors, "query_box").is_none());
    assert!(declared(&doors, "run_other").is_none());
}

#[test]
fn a_door_without_sql_lists_no_sql_argument() {
    let spec = Shell.tools("box").remove(0);
    let t = tool(&spec);
    assert_eq!(
        (t.name.as_ref(), t.title.as_deref()),
        ("run_box", Some("Run on box"))
    );
    assert_eq!(t.input_schema["required"], json!(["command"]));
    assert!(t.input_schema["properties"].get("sql").is_none());
    assert!(!format!("{:?}", t.input_schema).contains("sql"));
    let a = t.annotations.unwrap();
    assert_eq!((a.read_only_hint, a.open_world_hint), (None, Some(false)));
}

#[test]
fn run_arguments_come_from_the_declared_names() {
    let args = |v: Value| v.as_object().cloned().unwrap();
    let shell = ("command", None, "uptime");
    let got = run_arguments(shell, &args(json!({"command": "uptime"}))).unwrap();
    assert_eq!(got, ("uptime".to_owned(), Vec::new()));
    // `sql` means nothing to this door.
    let err = run_arguments(shell, &args(json!({"sql": "SELECT 1"}))).unwrap_err();
    assert_eq!(err.message, "`command` (a string) is required");
    assert_eq!(err.hint, r#"pass the command as {"command":"uptime"}"#);
    let v = err
        .result(&Correlation::default())
        .structured_content
        .unwrap();
    assert_eq!(v["code"], "argument_invalid");
    assert_eq!(v["message"], "`command` (a string) is required");

    let sql = ("sql", Some("parameters"), "SELECT ...");
    let got = run_arguments(sql, &args(json!({"sql": "SELECT $1", "parameters": [1]}))).unwrap();
    assert_eq!(got, ("SELECT $1".to_owned(), vec![json!(1)]));
    let got = run_arguments(sql, &args(json!({"sql": "SELECT 1", "parameters": null}))).unwrap();
    assert_eq!(got, ("SELECT 1".to_owned(), Vec::new()));
    let err = run_arguments(sql, &args(json!({"sql": "SELECT $1", "parameters": 1}))).unwrap_err();
    assert_eq!(err.message, "`parameters` must be an array");
    let err = run_arguments(sql, &args(json!({}))).unwrap_err();
    assert_eq!(err.message, "`sql` (a string) is required");
}

#[test]
fn pending_is_not_an_error_and_names_the_review() {
    let out = ExecOutcome::Pending {
        session_id: None,
        review_id: "rv_1".into(),
        message: "held".into(),
        hint: "wait".into(),
        decisions: vec![portcullis_pipeline::Receipt {
            seq: 7,
            action: "sql.update".into(),
            outcome: "approval_required".into(),
            policies: vec!["prod-writes".into()],
            command: true,
        }],
    };
    let r = outcome_result(out, &Correlation::default());
    assert_eq!(r.is_error, Some(false));
    let v = r.structured_content.unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["review_id"], "rv_1");
    assert_eq!(v["decision"], "approval_required");
    assert_eq!(v["decisions"][0]["seq"], 7);
    assert!(format!("{:?}", r.content).contains("wait_for_review"));
    // The structured content is also there as JSON text, for clients that read only text.
    assert_eq!(r.content.len(), 2);
    let json = r.content[1].as_text().map(|t| t.text.clone()).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), v);
}

#[test]
fn refusal_is_a_tool_error_with_code_and_hint() {
    let r = refusal_result(
        ExecRefusal::new(
            portcullis_pipeline::Code::TokenExpired,
            "the token expired",
            "get a new token",
        ),
        &Correlation {
            run_id: Some("r".into()),
            tool_call_id: None,
        },
    );
    assert_eq!(r.is_error, Some(true));
    let v = r.structured_content.unwrap();
    assert_eq!(v["code"], "token_expired");
    assert_eq!(v["run_id"], "r");
    assert!(v.get("policies").is_none());
    assert!(format!("{:?}", r.content).contains("get a new token"));
}

#[test]
fn protected_resource_metadata_and_challenge() {
    let mut h = axum::http::HeaderMap::new();
    h.insert("host", "gw.example:7070".parse().unwrap());
    h.insert("x-forwarded-proto", "https".parse().unwrap());
    let base = base_url(&h);
    assert_eq!(base, "https://gw.example:7070");
    let m = resource_metadata(&base, vec!["https://idp.example".into()]);
    assert_eq!(m["resource"], "https://gw.example:7070/mcp");
    assert_eq!(m["authorization_servers"], json!(["https://idp.example"]));
    assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    assert!(challenge(&base, "token_missing").starts_with(
        "Bearer resource_metadata=\"https://gw.example:7070/.well-known/oauth-protected-resource\""
    ));
}
