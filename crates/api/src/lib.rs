//! The HTTP API on `server.listen`: health, readiness, metrics, identity (`/v1/whoami`),
//! admin endpoints (revocations, reload), the OpenAPI document, and the embedded dev
//! issuer's discovery and JWKS. Errors are `application/problem+json` ([`Problem`]).
//!
//! Handlers authenticate and authorize through the shared [`Pipeline`]; admin endpoints are
//! decided by Cedar like every other action (`admin.*` on `Gateway::"self"`). Reviews
//! (`/v1/reviews`) are decided by the review service: reviewers in the groups the policy named.

mod admin;
mod auth;
mod exec;
mod mcp;
mod openapi;
mod problem;
mod reviews;
mod sessions;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use portcullis_identity::DevIssuer;
use portcullis_pipeline::Pipeline;
use portcullis_store::Store;

pub use problem::Problem;

/// Reloads policies from their files; `Ok` carries the number of policies now in force,
/// `Err` every problem found (the old policies stay in force).
pub type Reload = Arc<dyn Fn() -> BoxFuture<'static, Result<usize, Vec<String>>> + Send + Sync>;

/// Everything the handlers share. Built once by the binary.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<dyn Store>,
    pub dev_issuer: Option<Arc<DevIssuer>>,
    pub reload: Reload,
    /// Request bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// The approval queue, when this gateway holds commands for review.
    pub reviews: Option<portcullis_reviews::Reviews>,
    /// Where session recordings are, when sessions are recorded.
    pub recordings_dir: Option<std::path::PathBuf>,
    /// Doors that run single commands for `POST /v1/exec`.
    pub exec: Vec<Arc<dyn portcullis_pipeline::ExecDoor>>,
    /// The most rows and bytes of result `POST /v1/exec` returns.
    pub exec_limits: (usize, usize),
}

/// The API router. Serve it with `into_make_service_with_connect_info::<std::net::SocketAddr>()`.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let mcp_service = mcp::service(&state);
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/whoami", get(auth::whoami))
        .route(
            "/v1/revocations",
            post(admin::revoke).get(admin::list_revocations),
        )
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/connections/{name}/refresh", post(admin::refresh))
        .route("/v1/reviews", get(reviews::list))
        .route("/v1/reviews/{id}", get(reviews::get))
        .route("/v1/reviews/{id}/approve", post(reviews::approve))
        .route("/v1/reviews/{id}/deny", post(reviews::deny))
        .route("/v1/exec", post(exec::exec))
        .route("/v1/sessions", get(sessions::list))
        .route("/v1/sessions/{id}", get(sessions::get))
        .route("/v1/sessions/{id}/recording", get(sessions::recording))
        .route(
            "/mcp",
            any(move |s, ci, req| mcp::handle(s, ci, mcp_service.clone(), req)),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(mcp::protected_resource),
        );
    if state.dev_issuer.is_some() {
        r = r
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks));
    }
    r.fallback(|| async { Problem::not_found("no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(serde_json::json!({
            "status": "ready",
            "store": s.store.backend(),
            "policies": s.pipeline.policy().len(),
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the state store does not answer",
                "wait and retry; the operator should check the store",
            )
            .into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.pipeline.metrics().encode(),
    )
        .into_response()
}

async fn discovery(State(s): State<AppState>) -> Response {
    match &s.dev_issuer {
        Some(d) => Json(d.discovery_document()).into_response(),
        None => Problem::not_found("the dev issuer is disabled").into_response(),
    }
}

async fn jwks(State(s): State<AppState>) -> Response {
    match &s.dev_issuer {
        Some(d) => Json(d.jwks()).into_response(),
        None => Problem::not_found("the dev issuer is disabled").into_response(),
    }
}
