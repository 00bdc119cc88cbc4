//! `/v1/reviews`: the just-in-time approval queue (DESIGN.md §7). Reviewers authenticate with
//! their own tokens; the review service checks that they are in a group the policy named,
//! that they did not ask for the command themselves, and counts distinct approvers. A
//! principal sees the reviews it asked for and those its groups may decide.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_identity::Principal;
use portcullis_reviews::{Review, ReviewError, Reviewer, Status};
use serde::Deserialize;

use crate::auth::{origin, principal};
use crate::{AppState, Problem};
use portcullis_reviews::wall_clock_ms as now_ms;

/// The longest `?wait=` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GetQuery {
    /// Long-poll: answer as soon as the review leaves `pending`, or after this long.
    wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerdictBody {
    #[serde(default)]
    comment: String,
}

fn reviewer(p: &Principal) -> Reviewer {
    Reviewer {
        subject: p.subject.clone(),
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
        groups: p.groups.clone(),
    }
}

/// Whether `p` may see `r`: it asked for it, or one of its groups reviews it.
pub(crate) fn visible(p: &Principal, r: &Review) -> bool {
    (r.requester.subject == p.subject && r.requester.issuer == p.issuer)
        || r.reviewers.iter().any(|g| p.groups.contains(g))
}

fn disabled() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "reviews_disabled",
        "this gateway holds no reviews",
        "approvals are served by the gateway that holds the commands",
    )
}

pub(crate) fn problem(e: &ReviewError) -> Problem {
    let status = match e {
        ReviewError::NotFound => StatusCode::NOT_FOUND,
        ReviewError::NotPending { .. } | ReviewError::Expired | ReviewError::AlreadyReviewed => {
            StatusCode::CONFLICT
        }
        ReviewError::NotAReviewer { .. } | ReviewError::SelfApproval => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    Problem::new(status, e.code(), e.to_string(), e.hint())
}

fn not_found() -> Problem {
    problem(&ReviewError::NotFound)
}

/// `GET /v1/reviews?status=pending&limit=100`
pub(crate) async fn list(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let run = async {
        let p = principal(&s, &headers, &origin(addr)).await?;
        let reviews = s.reviews.as_ref().ok_or_else(disabled)?;
        let status = match q.status.as_deref() {
            None | Some("") | Some("all") => None,
            Some(v) => Some(v.parse::<Status>().map_err(|_| {
                Problem::bad_request(
                    "status_invalid",
                    format!("unknown status `{v}`"),
                    "use pending, approved, denied, expired, executed or all",
                )
            })?),
        };
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let all = reviews.list(status, limit).await.map_err(|e| problem(&e))?;
        let mine: Vec<Review> = all.into_iter().filter(|r| visible(&p, r)).collect();
        Ok::<_, Problem>(Json(serde_json::json!({ "reviews": mine })).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1/reviews/{id}?wait=30s`
pub(crate) async fn get(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> Response {
    let run = async {
        let p = principal(&s, &headers, &origin(addr)).await?;
        let reviews = s.reviews.as_ref().ok_or_else(disabled)?;
        let wait = match q.wait.as_deref() {
            None | Some("") => None,
            Some(w) => Some(humantime::parse_duration(w).map_err(|_| {
                Problem::bad_request(
                    "wait_invalid",
                    format!("`{w}` is not a duration"),
                    "use e.g. wait=30s (at most 60s)",
                )
            })?),
        };
        let review = reviews.get(&id).await.map_err(|e| problem(&e))?;
        let review = review.filter(|r| visible(&p, r)).ok_or_else(not_found)?;
        let review = match wait {
            Some(w) if review.status == Status::Pending => reviews
                .wait(&id, w.min(MAX_WAIT))
                .await
                .map_err(|e| problem(&e))?,
            _ => review,
        };
        Ok::<_, Problem>(Json(review).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/reviews/{id}/approve` and `/deny` with `{"comment": "..."}`.
pub(crate) async fn approve(
    s: State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Path<String>,
    body: Option<Json<VerdictBody>>,
) -> Response {
    decide(s, addr, headers, id, body, true).await
}

pub(crate) async fn deny(
    s: State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Path<String>,
    body: Option<Json<VerdictBody>>,
) -> Response {
    decide(s, addr, headers, id, body, false).await
}

async fn decide(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<VerdictBody>>,
    approve: bool,
) -> Response {
    let run = async {
        let p = principal(&s, &headers, &origin(addr)).await?;
        let reviews = s.reviews.as_ref().ok_or_else(disabled)?;
        let comment = body.map(|Json(b)| b.comment).unwrap_or_default();
        let who = reviewer(&p);
        let result = if approve {
            reviews.approve(&id, &who, &comment, now_ms()).await
        } else {
            reviews.deny(&id, &who, &comment, now_ms()).await
        };
        let review = result.map_err(|e| problem(&e))?;
        Ok::<_, Problem>(Json(review).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
