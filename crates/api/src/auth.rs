//! Bearer authentication for API handlers, and `/v1/whoami`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_audit::Event;
use portcullis_identity::Principal;
use portcullis_pipeline::Origin;

use crate::{AppState, Problem};

pub(crate) fn origin(addr: SocketAddr) -> Origin {
    Origin {
        source_ip: Some(addr.ip()),
        protocol: "api",
        session_id: None,
        ..Origin::default()
    }
}

/// The bearer token of a request, if it has exactly one well-formed `Authorization` header.
/// The token is returned as sent: the validator drops whitespace around it, the same way for
/// every door, so this only tells a missing token (`token_missing`) from a present one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let v = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let v = v.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token)
        .filter(|t| !t.trim_ascii().is_empty())
}

/// Authenticates a request; every refusal is audited by the pipeline before it is returned.
pub(crate) async fn principal(
    s: &AppState,
    headers: &HeaderMap,
    origin: &Origin,
) -> Result<Arc<Principal>, Problem> {
    let Some(token) = bearer(headers) else {
        let event = Event {
            kind: "token.rejected".into(),
            outcome: Some("deny".into()),
            source_ip: origin.source_ip.map(|i| i.to_string()),
            protocol: Some(origin.protocol.into()),
            reason_code: Some("token_missing".into()),
            detail: Some("no bearer token in the Authorization header".into()),
            ..Event::default()
        };
        s.pipeline.record(event).await?;
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "token_missing",
            "no bearer token in the Authorization header",
            "send `Authorization: Bearer <token>` with a token from your identity provider (or `portcullis token mint` for the dev issuer)",
        ));
    };
    Ok(s.pipeline.authenticate(token, origin).await?)
}

/// `GET /v1/whoami`: the principal the gateway resolves from the bearer token.
pub(crate) async fn whoami(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match principal(&s, &headers, &origin(addr)).await {
        Ok(p) => Json(p.as_ref()).into_response(),
        Err(problem) => problem.into_response(),
    }
}
