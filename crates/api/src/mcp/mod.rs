//! The MCP server at `/mcp` (DESIGN.md §1, door 4): streamable HTTP through the official SDK
//! (`rmcp`), stateless (every POST stands alone, JSON answers). Tools are per request and per
//! caller: for each exec connection the caller's policy lets it connect to, the tools its
//! [`ExecDoor`](portcullis_pipeline::ExecDoor) declares (`query_<connection>` and
//! `describe_<connection>` on a SQL connection, with a `sql` argument that belongs to SQL
//! doors alone), plus `check_review` and `wait_for_review`. A call is found by the declared
//! tool's name and runs through its door exactly like `POST /v1/exec`, so the MCP server
//! decides nothing itself and knows no door's language.
//!
//! Authentication happens here, before the SDK sees the request: a missing or invalid bearer
//! token gets 401 problem+json with a `WWW-Authenticate` challenge naming the protected
//! resource metadata (`/.well-known/oauth-protected-resource`, RFC 9728).

mod server;
#[cfg(test)]
mod tests;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_identity::Principal;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tower::ServiceExt;

use crate::AppState;
use crate::auth::principal;

pub(crate) use server::McpServer;

/// Header naming the agent run a call belongs to.
pub(crate) const RUN_ID_HEADER: &str = "x-portcullis-run-id";
/// Header naming the model's tool call.
pub(crate) const TOOL_CALL_ID_HEADER: &str = "x-portcullis-tool-call-id";

/// The authenticated caller of one HTTP request, handed to the tools through the request's
/// extensions.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Arc<Principal>,
    pub(crate) token: Arc<str>,
    pub(crate) peer: SocketAddr,
    pub(crate) run_id: Option<String>,
    pub(crate) tool_call_id: Option<String>,
}

/// The SDK's service for `/mcp`, built once per router.
pub(crate) type Service = StreamableHttpService<McpServer, NeverSessionManager>;

pub(crate) fn service(state: &AppState) -> Service {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // The gateway is reached under the operator's host names; every request carries a
        // bearer token, so the SDK's loopback-only Host check (DNS rebinding) does not apply.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.max_body_bytes);
    let s = state.clone();
    StreamableHttpService::new(
        move || Ok(McpServer::new(s.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The public base URL of this request (`http://host:port`), for the metadata documents.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"']))
        .unwrap_or("127.0.0.1");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The RFC 9728 protected resource metadata for `/mcp`.
pub(crate) fn resource_metadata(base: &str, issuers: Vec<String>) -> serde_json::Value {
    serde_json::json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Portcullis MCP server",
    })
}

/// The issuers whose tokens this gateway accepts.
fn issuers(s: &AppState) -> Vec<String> {
    let mut v = s.pipeline.validator().issuers();
    if v.is_empty()
        && let Some(d) = &s.dev_issuer
    {
        v.push(d.issuer().to_owned());
    }
    v
}

/// `GET /.well-known/oauth-protected-resource`
pub(crate) async fn protected_resource(State(s): State<AppState>, headers: HeaderMap) -> Response {
    Json(resource_metadata(&base_url(&headers), issuers(&s))).into_response()
}

/// The `WWW-Authenticate` challenge of a 401 from `/mcp`.
pub(crate) fn challenge(base: &str, code: &str) -> String {
    format!(
        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource\", error=\"invalid_token\", error_description=\"{code}\""
    )
}

pub(crate) fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned)
}

/// `/mcp`: authenticate, then hand the request to the SDK with the caller attached.
pub(crate) async fn handle(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    svc: Service,
    mut req: Request,
) -> Response {
    let headers = req.headers().clone();
    let origin = portcullis_pipeline::Origin {
        source_ip: Some(addr.ip()),
        protocol: "mcp",
        session_id: None,
        ..portcullis_pipeline::Origin::default()
    };
    let p = match principal(&s, &headers, &origin).await {
        Ok(p) => p,
        Err(problem) => {
            let code = problem.code.clone();
            let mut resp = problem.into_response();
            if let Ok(v) = HeaderValue::from_str(&challenge(&base_url(&headers), &code)) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return resp;
        }
    };
    let Some(token) = crate::auth::bearer(&headers) else {
        return crate::Problem::internal("no token").into_response();
    };
    let caller = Caller {
        principal: p,
        token: Arc::from(token),
        peer: addr,
        run_id: header_value(&headers, RUN_ID_HEADER),
        tool_call_id: header_value(&headers, TOOL_CALL_ID_HEADER),
    };
    req.extensions_mut().insert(caller);
    match svc.oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}
