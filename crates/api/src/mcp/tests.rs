#![allow(clippy::unwrap_used, clippy::expect_used)]

use portcullis_pipeline::{ExecOutcome, ExecRefusal};
use serde_json::json;

use super::tools::{Correlation, describe_tool, outcome_result, query_tool, refusal_result};
use super::{base_url, challenge, resource_metadata};

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
        ExecRefusal {
            code: "token_expired".into(),
            status: 401,
            message: "the token expired".into(),
            hint: "get a new token".into(),
            policies: Vec::new(),
            protocol_code: None,
            session_id: None,
            decisions: Vec::new(),
        },
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
fn query_tool_schema_requires_sql_and_takes_parameters() {
    let t = query_tool("orders", "postgres");
    assert_eq!(t.name, "query_orders");
    assert_eq!(t.input_schema["required"], json!(["sql"]));
    assert_eq!(t.input_schema["properties"]["parameters"]["type"], "array");
    let d = describe_tool("orders", "postgres");
    assert_eq!(d.name, "describe_orders");
    assert_eq!(d.annotations.and_then(|a| a.read_only_hint), Some(true));
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
