//! `application/problem+json` (RFC 9457): the one place API errors become HTTP responses.
//! Every problem carries a stable `code` and a `hint` an agent can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_pipeline::{Code, Refusal};
use portcullis_policy::Decision;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    pub hint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The audited decisions the request took (the exec API), the refusing one last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<portcullis_pipeline::Receipt>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &str,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:portcullis:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            hint: hint.into(),
            policies: Vec::new(),
            decisions: Vec::new(),
        }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail, hint)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail,
            "retry later; if it persists, the operator will find the cause in the gateway log",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            detail,
            "see /v1/openapi.json for the routes this gateway serves",
        )
    }

    /// A policy decision that is not a plain allow.
    pub fn from_decision(d: &Decision, action: &str) -> Option<Self> {
        match d {
            Decision::Allow { .. } => None,
            Decision::Deny {
                code,
                policies,
                reason,
                hint,
            } => {
                let mut p = Self::new(
                    StatusCode::FORBIDDEN,
                    code.code(),
                    reason.clone(),
                    hint.clone(),
                );
                p.policies = policies.clone();
                Some(p)
            }
            Decision::RequireApproval {
                policies,
                reviewers,
                ..
            } => {
                let mut p = Self::new(
                    StatusCode::FORBIDDEN,
                    "approval_required",
                    format!("`{action}` needs approval by {}", reviewers.join(", ")),
                    "this endpoint does not hold requests for approval; ask a reviewer to run it",
                );
                p.policies = policies.clone();
                Some(p)
            }
        }
    }
}

/// The HTTP status of a refusal: chosen here, from its code, for every door.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Token(_) | Code::TokenExpired | Code::TlsRequired => StatusCode::UNAUTHORIZED,
        Code::ConnectionUnknown => StatusCode::NOT_FOUND,
        // The caller's own sessions are at their limit: it can wait for one to end.
        Code::SessionLimitPrincipal => StatusCode::TOO_MANY_REQUESTS,
        Code::ParametersTooMany => StatusCode::BAD_REQUEST,
        Code::Unsupported => StatusCode::NOT_IMPLEMENTED,
        // The target's own error: the request was understood and allowed, and failed there.
        Code::StatementFailed => StatusCode::UNPROCESSABLE_ENTITY,
        c if c.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        let mut p = Self::new(status_of(r.code), r.code(), r.message, r.hint);
        p.policies = r.policies;
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                self.code
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

impl From<portcullis_pipeline::ExecRefusal> for Problem {
    /// A door's refusal of a command (exec, describe, refresh): its status, code, message
    /// and hint, and the policies and audited decisions behind it.
    fn from(r: portcullis_pipeline::ExecRefusal) -> Self {
        let mut p = Problem::from(r.refusal);
        p.decisions = r.decisions;
        p
    }
}
