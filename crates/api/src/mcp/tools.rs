//! The tools' shapes: their definitions and how an exec outcome or refusal becomes a tool
//! result. Pure functions, so they are tested without a gateway.

use std::sync::Arc;

use portcullis_pipeline::{ExecOutcome, ExecRefusal};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// The prefix of a connection's tool.
pub(crate) const QUERY_PREFIX: &str = "query_";
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
                "sql": {"type": "string", "description": "one SQL statement"},
                "parameters": {
                    "type": "array",
                    "description": "bound parameters: not supported yet, leave empty",
                    "maxItems": 0
                }
            },
            "required": ["sql"],
            "additionalProperties": false
        })),
    )
    .with_title(format!("Query {connection}"))
    .annotate(ToolAnnotations::new().open_world(false))
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
    r.content = vec![ContentBlock::text(text)];
    r
}

/// A query's outcome as a tool result: rows, or a pending review (not an error).
pub(crate) fn outcome_result(out: ExecOutcome, c: &Correlation) -> CallToolResult {
    match out {
        ExecOutcome::Done {
            session_id,
            columns,
            rows,
            row_count,
            truncated,
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
    if let (false, Value::Object(m)) = (r.policies.is_empty(), &mut v) {
        m.insert("policies".into(), json!(r.policies));
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
