//! The tools' shapes: their definitions and how an exec outcome or refusal becomes a tool
//! result. Pure functions, so they are tested without a gateway.

use std::sync::Arc;

use portcullis_pipeline::{BodyEncoding, ExecOutcome, ExecRefusal, Output, ToolSpec};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

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

/// A tool a door declared, as MCP lists it. Every door's tool acts on the gateway's own
/// connections only (not open world); the read-only hint is given when the door says so.
pub(crate) fn tool(spec: &ToolSpec) -> Tool {
    let mut annotations = ToolAnnotations::new().open_world(false);
    if spec.read_only {
        annotations = annotations.read_only(true);
    }
    Tool::new(
        spec.name.clone(),
        spec.description.clone(),
        schema(spec.input_schema.clone()),
    )
    .with_title(spec.title.clone())
    .annotate(annotations)
}

/// Arguments a door's tool cannot run with: what is wrong and how to call it instead
/// (`argument_invalid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgumentInvalid {
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl ArgumentInvalid {
    pub(crate) fn result(self, c: &Correlation) -> CallToolResult {
        error_result("argument_invalid", self.message, self.hint, c)
    }
}

/// The command and bound values a call of a [`ToolCall::Run`] tool carries, from the
/// arguments its door named (`input`, `parameters`, with `example` for the hint).
///
/// [`ToolCall::Run`]: portcullis_pipeline::ToolCall::Run
pub(crate) fn run_arguments(
    (input, parameters, example): (&str, Option<&str>, &str),
    args: &JsonObject,
) -> Result<(String, Vec<Value>), ArgumentInvalid> {
    let Some(command) = args.get(input).and_then(Value::as_str) else {
        return Err(ArgumentInvalid {
            message: format!("`{input}` (a string) is required"),
            hint: format!("pass the command as {}", json!({ input: example })),
        });
    };
    let values = match parameters.map(|p| (p, args.get(p))) {
        None | Some((_, None | Some(Value::Null))) => Vec::new(),
        Some((_, Some(Value::Array(v)))) => v.clone(),
        Some((p, Some(_))) => {
            return Err(ArgumentInvalid {
                message: format!("`{p}` must be an array"),
                hint: format!(
                    "pass the values for the command's placeholders, in order, as {}",
                    json!({ p: [42, "text"] })
                ),
            });
        }
    };
    Ok((command.to_owned(), values))
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

/// A command's outcome as a tool result: its output, or a pending review (not an error).
/// The structured content is what `POST /v1/exec` answers.
pub(crate) fn outcome_result(out: ExecOutcome, c: &Correlation) -> CallToolResult {
    let text = match &out {
        ExecOutcome::Done { output, .. } => summary(output),
        ExecOutcome::Pending {
            review_id,
            message,
            hint,
            ..
        } => format!(
            "Held for approval (review {review_id}): {message}. {hint} \
             Call {WAIT_FOR_REVIEW} with review_id \"{review_id}\", then run the same \
             command again once it is approved."
        ),
    };
    result(crate::exec::outcome_json(&out), text, false, c)
}

/// One line on what a command answered; the answer itself is in the structured content.
fn summary(output: &Output) -> String {
    let (mut text, truncated, rest) = match output {
        Output::Rows {
            columns,
            rows,
            row_count,
            truncated,
        } => {
            let mut text = format!("{row_count} row(s)");
            if !columns.is_empty() {
                text.push_str(&format!("; columns: {}", columns.join(", ")));
            }
            if *truncated {
                text.push_str(&format!(
                    "; truncated to the first {} row(s) by the gateway's limits",
                    rows.len()
                ));
            }
            (text, false, "The rows are in the structured content.")
        }
        Output::Stream {
            stdout,
            stderr,
            exit_status,
            truncated,
        } => {
            let ended = match exit_status {
                Some(s) => format!("Exited with status {s}"),
                None => "Ended without an exit status".to_owned(),
            };
            (
                format!(
                    "{ended}; {} byte(s) on stdout, {} on stderr",
                    stdout.len(),
                    stderr.len()
                ),
                *truncated,
                "stdout, stderr and exit_status are in the structured content.",
            )
        }
        Output::Http {
            status_code,
            headers,
            body,
            body_encoding,
            truncated,
        } => {
            let encoding = match body_encoding {
                BodyEncoding::Utf8 => "",
                BodyEncoding::Base64 => " (base64: the body is not UTF-8)",
            };
            (
                format!(
                    "HTTP {status_code}; {} header(s); a body of {} byte(s){encoding}",
                    headers.len(),
                    body.len()
                ),
                *truncated,
                "status_code, headers and body are in the structured content.",
            )
        }
    };
    if truncated {
        text.push_str("; truncated by the gateway's limits");
    }
    format!("{text}. {rest}")
}

/// A refusal as a tool error the model can act on: the reason and what to do instead.
pub(crate) fn refusal_result(r: ExecRefusal, c: &Correlation) -> CallToolResult {
    let f = &r.refusal;
    let text = format!("Refused ({}): {}. Hint: {}", f.code, f.message, f.hint);
    let mut v = json!({
        "code": f.code,
        "message": f.message,
        "hint": f.hint,
        "protocol_code": r.protocol_code,
        "session_id": r.session_id,
    });
    if let Value::Object(m) = &mut v {
        if !f.policies.is_empty() {
            m.insert("policies".into(), json!(f.policies));
        }
        if let Some(id) = &f.review_id {
            m.insert("review_id".into(), json!(id));
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
