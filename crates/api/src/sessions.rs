//! `/v1/sessions`: recorded sessions for auditors (Cedar action `admin.read` on
//! `Gateway::"self"`): the summary the audit trail gives, and the recording itself.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_audit::SessionFilter;
use serde::Deserialize;

use crate::admin::authorize;
use crate::{AppState, Problem};
use portcullis_reviews::wall_clock_ms as now_ms;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    principal: Option<String>,
    connection: Option<String>,
    /// Unix milliseconds.
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "reading sessions failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sessions_unavailable",
        "the audit store could not be read",
        "retry later; if it persists, tell the gateway operator",
    )
}

fn no_session(id: &str) -> Problem {
    Problem::not_found(format!("no session {id}"))
}

/// `GET /v1/sessions?principal=&connection=&since_ms=&until_ms=` (default: the last 7 days).
pub(crate) async fn list(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.read").await {
        return p.into_response();
    }
    let week_ago = now_ms() - 7 * 24 * 3600 * 1000;
    let filter = SessionFilter {
        principal: q.principal,
        connection: q.connection,
        since_ms: Some(q.since_ms.unwrap_or(week_ago)),
        until_ms: q.until_ms,
        session_id: None,
    };
    match portcullis_audit::sessions(s.store.as_ref(), &filter).await {
        Ok(list) => Json(serde_json::json!({ "sessions": list })).into_response(),
        Err(e) => unavailable(e).into_response(),
    }
}

/// `GET /v1/sessions/{id}`
pub(crate) async fn get(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.read").await {
        return p.into_response();
    }
    match portcullis_audit::session(s.store.as_ref(), &id).await {
        Ok(Some(one)) => Json(one).into_response(),
        Ok(None) => no_session(&id).into_response(),
        Err(e) => unavailable(e).into_response(),
    }
}

/// `GET /v1/sessions/{id}/recording`: the recording file as written (JSONL or asciicast v2,
/// masked values).
pub(crate) async fn recording(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.read").await {
        return p.into_response();
    }
    let Some(dir) = s.recordings_dir.as_ref() else {
        return no_session(&id).into_response();
    };
    let Ok(Some(path)) = portcullis_recording::find_recording(dir, &id) else {
        return no_session(&id).into_response();
    };
    // A command protocol's JSONL timeline, or a terminal session's asciicast v2.
    let kind = match portcullis_recording::Format::of_path(&path) {
        Some((portcullis_recording::Format::Asciicast, _)) => "application/x-asciicast",
        _ => "application/x-ndjson",
    };
    match tokio::fs::read(&path).await {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(_) => no_session(&id).into_response(),
    }
}
