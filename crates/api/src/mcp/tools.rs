//! The tools' shapes: their definitions and how an exec outcome or refusal becomes a tool
//! result. Pure functions, so they are tested without a gateway.

use std::sync::Arc;

use portcullis_pipeline::{ExecOutcome, ExecRefusal};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// The prefix of a connection's tool.
pub(crate) const QUERY_PREFIX: &str = "query_";
/// The prefix of a connection's describe tool.
pub(crate) const DESCRIBE_PREFIX: &str = "describe_";
pub(crate) const CHECK_REVIEW: &str = "check_review";
pub(crate) const WAIT_FOR_REVIEW: &str = "wait_for_review";
/// The longest `wait_for_review` waits, and its default.
pub(crate) const MAX_WAIT_SECS: u64 = 60;
pub(crate) const DEFAULT_WAIT_SECS: u64 = 30;

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(JsonObject::new()),
    }
}

/// The tool that runs SQL on `connection` (of `kind`).
pub(crate) fn query_tool(connection: &str, kind: &str) -> Tool {
    let description = format!(
        "Run one SQL statement on the {kind} connection `{connection}` through the Portcullis gateway. \
         Policy decides; results are masked. A statement that needs approval answers \
         status \"pending\" with a review_id: call wait_for_review or check_review, then run \
         the same statement again once it is approved."
    );
    Tool::new(
        format!("{QUERY_PREFIX}{connection}"),
        description,
        schema(json!({
            "type": "object",
            "properties": {
                "sql": {
                    "type": "string",
                    "description": "one SQL statement; $1, $2, ... for bound parameters"
                },
                "parameters": {
                    "type": "array",
                    "description": "values for $1, $2, ... in order (strings, numbers, booleans, null; JSON for json columns)",
                    "items": {}
                }
            },
            "required": ["sql"],
            "additionalProperties": false
        })),
    )
    .with_title(format!("Query {connection}"))
    .annotate(ToolAnnotations::new().open_world(false))
}

/// The tool that lists what the caller may read on `connection`.
pub(crate) fn describe_tool(connection: &str, kind: &str) -> Tool {
    Tool::new(
        format!("{DESCRIBE_PREFIX}{connection}"),
        format!(
            "List the tables (with their columns and types) you may read on the {kind} \
             connection `{connection}`. Call it before writing a query."
        ),
        schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
    )
    .with_title(format!("Describe {connection}"))
    .annotate(ToolAnnotations::new().read_only(true).open_world(false))
}

/// What a connection holds that the caller may read, as a tool result.
pub(crate) fn described_result(
    connection: &str,
    d: portcullis_pipeline::Described,
    c: &Correlation,
) -> CallToolResult {
    let mut text = format!("{} table(s) you may read on {connection}:", d.tables.len());
    for t in &d.tables {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.kind))
            .collect();
        text.push_str(&format!("\n{}.{} ({})", t.schema, t.name, cols.join(", ")));
    }
    if d.hidden > 0 {
        text.push_str(&format!(
            "\n{} more table(s) exist that the policy does not let you read.",
            d.hidden
        ));
    }
    if d.truncated {
        text.push_str("\nThe catalog was too long to read whole; some tables are missing.");
    }
    let v = serde_json::to_value(&d).unwrap_or(Value::Null);
    result(v, text, false, c)
}

fn review_id_schema() -> Value {
    json!({"type": "string", "description": "the review id (rv_...) a pending query returned"})
}

pub(crate) fn check_review_tool() -> Tool {
    Tool::new(
        CHECK_REVIEW,
        "Show a review (approval request) you asked for or may decide: its status \
         (pending, approved, denied, expired, executed), reviewers and verdicts.",
        schema(json!({
            "type": "object",
            "properties": {"review_id": review_id_schema()},
            "required": ["review_id"],
            "additionalProperties": false
        })),
    )
    .annotate(ToolAnnotations::new().read_only(true).open_world(false))
}

pub(crate) fn wait_for_review_tool() -> Tool {
    Tool::new(
        WAIT_FOR_REVIEW,
        "Wait until a pending review is decided (or the timeout passes) and show it. \
         Once it is approved, run the same statement again.",
        schema(json!({
            "type": "object",
            "properties": {
                "review_id": review_id_schema(),
                "timeout_seconds": {
                    "type": "integer", "minimum": 1, "maximum": MAX_WAIT_SECS,
                    "default": DEFAULT_WAIT_SECS
                }
            },
            "required": ["review_id"],
            "additionalProperties": false
        })),
    )
    .annotate(ToolAnnotations::new().read_only(true).open_world(false))
}

/// The agent run and tool call a result belongs to, echoed in its structured content.
#[derive(Debug, Clone, Default)]
pub(crate) struct Correlation {
    pub(crate) run_id: Option<String>,
    pub(crate) tool_call_id: Option<String>,
}

impl Correlation {
    fn add_to(&self, v: &mut Value) {
        if let Value::Object(m) = v {
            if let Some(r) = &self.run_id {
                m.insert("run_id".into(), Value::String(r.clone()));
            }
            if let Some(t) = &self.tool_call_id {
                m.insert("tool_call_id".into(), Value::String(t.clone()));
            }
        }
    }
}

fn result(mut structured: Value, text: String, error: bool, c: &Correlation) -> CallToolResult {
    c.add_to(&mut structured);
    let mut r = if error {
        CallToolResult::structured_error(structured)
    } else {
        CallToolResult::structured(structured)
    };
    // The summary for the model, then the structured content as JSON text, as the MCP spec
    // asks of tools that return structured content (clients that read only text see rows).
    let json = serde_json::to_string(r.structured_content.as_ref().unwrap_or(&Value::Null))
        .unwrap_or_default();
    r.content = vec![ContentBlock::text(text), ContentBlock::text(json)];
    r
}

/// A query's outcome as a tool result: rows, or a pending review (not an error).
pub(crate) fn outcome_result(out: ExecOutcome, c: &Correlation) -> CallToolResult {
    let decision = out.decision().to_owned();
    match out {
        ExecOutcome::Done {
            session_id,
            columns,
            rows,
            row_count,
            truncated,
            decisions,
        } => {
            let shown = rows.len();
            let mut text = format!("{row_count} row(s)");
            if !columns.is_empty() {
                text.push_str(&format!("; columns: {}", columns.join(", ")));
            }
            if truncated {
                text.push_str(&format!(
                    "; truncated to the first {shown} row(s) by the gateway's limits"
                ));
            }
            text.push_str(". The rows are in the structured content.");
            result(
                json!({
                    "status": "done",
                    "columns": columns,
                    "rows": rows,
                    "row_count": row_count,
                    "truncated": truncated,
                    "session_id": session_id,
                    "decision": decision,
                    "decisions": decisions,
                }),
                text,
                false,
                c,
            )
        }
        ExecOutcome::Pending {
            session_id,
            review_id,
            message,
            hint,
            decisions,
        } => {
            let text = format!(
                "Held for approval (review {review_id}): {message}. {hint} \
                 Call {WAIT_FOR_REVIEW} with review_id \"{review_id}\", then run the same \
                 statement again once it is approved."
            );
            result(
                json!({
                    "status": "pending",
                    "review_id": review_id,
                    "message": message,
                    "hint": hint,
                    "session_id": session_id,
                    "decision": decision,
                    "decisions": decisions,
                }),
                text,
                false,
                c,
            )
        }
    }
}

/// A refusal as a tool error the model can act on: the reason and what to do instead.
pub(crate) fn refusal_result(r: ExecRefusal, c: &Correlation) -> CallToolResult {
    let text = format!("Refused ({}): {}. Hint: {}", r.code, r.message, r.hint);
    let mut v = json!({
        "code": r.code,
        "message": r.message,
        "hint": r.hint,
        "protocol_code": r.protocol_code,
        "session_id": r.session_id,
    });
    if let Value::Object(m) = &mut v {
        if !r.policies.is_empty() {
            m.insert("policies".into(), json!(r.policies));
        }
        if !r.decisions.is_empty() {
            m.insert("decisions".into(), json!(r.decisions));
        }
    }
    result(v, text, true, c)
}

/// A tool error of the gateway's own (bad arguments, unknown review, ...).
pub(crate) fn error_result(
    code: &str,
    message: impl Into<String>,
    hint: impl Into<String>,
    c: &Correlation,
) -> CallToolResult {
    let (message, hint) = (message.into(), hint.into());
    let text = format!("Refused ({code}): {message}. Hint: {hint}");
    result(
        json!({"code": code, "message": message, "hint": hint}),
        text,
        true,
        c,
    )
}

/// A review as a tool result.
pub(crate) fn review_result(
    review: &portcullis_reviews::Review,
    c: &Correlation,
) -> CallToolResult {
    let v = serde_json::to_value(review).unwrap_or(Value::Null);
    let status = v.get("status").and_then(Value::as_str).unwrap_or("unknown");
    let text = match status {
        "approved" => format!(
            "Review {} is approved: run the same statement again now.",
            review.id
        ),
        "pending" => format!(
            "Review {} is still pending (reviewers: {}).",
            review.id,
            review.reviewers.join(", ")
        ),
        other => format!("Review {} is {other}.", review.id),
    };
    let mut structured = json!({"review": v});
    if let Value::Object(m) = &mut structured {
        m.insert("status".into(), Value::String(status.to_owned()));
    }
    result(structured, text, false, c)
}
