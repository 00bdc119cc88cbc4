//! `POST /v1/exec`: one command through the door of its connection's kind (DESIGN.md §1).
//! The door does everything a native client's session gets (token, decision, hold, masking,
//! recording, audit); this handler only picks the door and shapes the answer: 200 with the
//! (masked) result, 202 with the review id when approval is needed, or problem+json with the
//! reason code and hint. A result is the door's kind of output: rows, a command's
//! stdout/stderr and exit status, or an HTTP response (`output` says which).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_pipeline::{ExecOutcome, ExecRequest};
use serde::Deserialize;

use crate::auth::{bearer, origin, principal};
use crate::mcp::{RUN_ID_HEADER, TOOL_CALL_ID_HEADER, header_value};
use crate::{AppState, Problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecBody {
    connection: String,
    input: String,
    /// Values for the command's placeholders (`$1`, ... in SQL), in order.
    #[serde(default)]
    parameters: Vec<serde_json::Value>,
    /// Wait for approval (up to the door's hold time) instead of answering 202 at once.
    #[serde(default)]
    wait: bool,
}

pub(crate) async fn exec(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<ExecBody>,
) -> Response {
    let Some(token) = bearer(&headers) else {
        // Refused (and audited) the same way as every other endpoint.
        return match principal(&s, &headers, &origin(addr)).await {
            Ok(_) => Problem::internal("no token").into_response(),
            Err(p) => p.into_response(),
        };
    };
    let Some(door) = s.exec.iter().find(|d| d.serves(&body.connection)) else {
        // Only an authenticated caller learns that a connection does not exist.
        if let Err(p) = principal(&s, &headers, &origin(addr)).await {
            return p.into_response();
        }
        return Problem::not_found(format!("no connection named {:?}", body.connection))
            .into_response();
    };
    let req = ExecRequest {
        token: token.to_owned().into(),
        connection: body.connection,
        input: body.input,
        parameters: body.parameters,
        wait: body.wait,
        peer: addr,
        max_rows: s.exec_limits.0,
        max_bytes: s.exec_limits.1,
        run_id: header_value(&headers, RUN_ID_HEADER),
        tool_call_id: header_value(&headers, TOOL_CALL_ID_HEADER),
    };
    match door.exec(req).await {
        Ok(out) => {
            let status = match out {
                ExecOutcome::Done { .. } => StatusCode::OK,
                ExecOutcome::Pending { .. } => StatusCode::ACCEPTED,
            };
            (status, Json(outcome_json(&out))).into_response()
        }
        Err(r) => Problem::from(r).into_response(),
    }
}

/// An outcome as the exec API answers it, and as the MCP tools' structured content: the
/// outcome's fields (for `done`, the output's beside `status`, named by `output`) and
/// `decision`, the command's own last decision.
pub(crate) fn outcome_json(out: &ExecOutcome) -> serde_json::Value {
    let mut body = serde_json::to_value(out).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut body {
        m.insert("decision".into(), out.decision().into());
    }
    body
}
