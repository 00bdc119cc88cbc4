//! Admin endpoints. Authorization is a Cedar decision on `Gateway::"self"` with the
//! `admin.*` actions, so who may administer the gateway lives in policy like everything else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_audit::{Event, Who};
use portcullis_identity::{Principal, Revocation};
use portcullis_pipeline::Ask;
use portcullis_policy::Target;
use portcullis_store::RevocationRow;
use serde::Deserialize;

use crate::auth::{origin, principal};
use crate::{AppState, Problem};

/// Authenticates and asks policy for an admin action; anything but Allow is a problem.
pub(crate) async fn authorize(
    s: &AppState,
    headers: &HeaderMap,
    addr: SocketAddr,
    action: &str,
) -> Result<Arc<Principal>, Problem> {
    let origin = origin(addr);
    let p = principal(s, headers, &origin).await?;
    let facts = serde_json::Value::Null;
    let ask = Ask {
        action,
        target: Target::Gateway,
        facts: &facts,
        command: None,
    };
    let d = s.pipeline.decide(&p, &ask, &origin).await?;
    match Problem::from_decision(&d, action) {
        None => Ok(p),
        Some(problem) => Err(problem),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    kind: String,
    value: String,
    #[serde(default)]
    reason: String,
}

/// `POST /v1/revocations`: revoke a subject, client id or token id, effective at once.
pub(crate) async fn revoke(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RevokeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let who = match authorize(&s, &headers, addr, "admin.revoke").await {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return Problem::bad_request(
                "body_invalid",
                e.body_text(),
                "send {\"kind\": \"subject\"|\"client_id\"|\"token_id\", \"value\": \"...\", \"reason\": \"...\"}",
            )
            .into_response();
        }
    };
    let Some(rev) = Revocation::from_parts(&body.kind, &body.value) else {
        return Problem::bad_request(
            "body_invalid",
            format!(
                "cannot revoke kind `{}` with an empty or unknown value",
                body.kind
            ),
            "kind is one of subject, client_id, token_id; value is non-empty",
        )
        .into_response();
    };
    let row = RevocationRow {
        kind: rev.kind().to_string(),
        value: rev.value().to_string(),
        created_ms: portcullis_reviews::wall_clock_ms(),
        created_by: who.subject.clone(),
        reason: body.reason.clone(),
    };
    if let Err(e) = s.store.revocation_put(&row).await {
        tracing::error!(error = %e, "storing a revocation failed");
        return Problem::internal("the revocation could not be stored").into_response();
    }
    s.pipeline.validator().revocations().add(rev.clone());
    let event = Event {
        kind: "revocation".into(),
        outcome: Some("ok".into()),
        who: Some(Who::from(who.as_ref())),
        source_ip: Some(addr.ip().to_string()),
        protocol: Some("api".into()),
        detail: Some(body.reason),
        data: serde_json::to_value(&rev).ok(),
        ..Event::default()
    };
    if let Err(p) = s.pipeline.record(event).await {
        return Problem::from(p).into_response();
    }
    (StatusCode::CREATED, Json(rev)).into_response()
}

/// `GET /v1/revocations`: every revocation in force.
pub(crate) async fn list_revocations(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.read").await {
        return p.into_response();
    }
    Json(s.pipeline.validator().revocations().list()).into_response()
}

/// `POST /v1/admin/reload`: recompile policies; a bad set keeps the old one and says why.
pub(crate) async fn reload(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.reload").await {
        return p.into_response();
    }
    match (s.reload)().await {
        Ok(n) => Json(serde_json::json!({ "reloaded": true, "policies": n })).into_response(),
        Err(problems) => {
            let p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reload_failed",
                problems.join("\n"),
                "fix the listed problems (`portcullis config check` shows them); the previous policies stay in force",
            );
            p.into_response()
        }
    }
}

/// `POST /v1/connections/{name}/refresh`: the door reads the connection's catalog again now
/// (views, functions, triggers and rules changed outside the gateway).
pub(crate) async fn refresh(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = authorize(&s, &headers, addr, "admin.refresh").await {
        return p.into_response();
    }
    let Some(door) = s.exec.iter().find(|d| d.serves(&name)) else {
        return Problem::not_found(format!("no connection named {name:?}")).into_response();
    };
    match door.refresh(&name).await {
        Ok(answer) => Json(answer).into_response(),
        Err(r) => Problem::from(r).into_response(),
    }
}
