//! Holding a command for just-in-time approval (DESIGN.md §7), for every door: the policy
//! said RequireApproval, so the exact command (this principal, this connection, this text,
//! these parameters) waits for reviewers. The engine requests the review, tells the door to
//! tell its client, waits up to the hold time, honours the client's cancel, and consumes an
//! approval so the command runs once. A door supplies only a [`HoldLine`]: how its client
//! hears that the command is held, and how it cancels.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_reviews::{NewReview, Requested, Requester, Review, Status, wall_clock_ms};

use super::Session;
use crate::refusal::{Code, Refusal};

/// What a decision asked for: who must approve, how many, under which policies.
#[derive(Debug, Clone)]
pub struct NeedsReview {
    pub action: String,
    /// The command as reviewers see it (literal-free where the door can make it so).
    pub display: String,
    pub policies: Vec<String>,
    pub reviewers: Vec<String>,
    pub approvals: u32,
    /// What the door calls a command in its words (`statement`, `request`, `command`).
    pub noun: &'static str,
}

/// The command exactly as it will run: its text and bound parameters (`None`: NULL). The
/// review binds these bytes, so an approval never runs anything else.
#[derive(Debug, Clone, Copy)]
pub struct Exact<'a> {
    pub text: &'a str,
    pub params: &'a [Option<&'a [u8]>],
}

impl<'a> Exact<'a> {
    /// A command without bound parameters.
    pub fn text(text: &'a str) -> Self {
        Self { text, params: &[] }
    }
}

/// A command held for review, as its client is told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub review_id: String,
    /// `sql.update on billing needs approval by dba (1 needed; policy p)`.
    pub needs: String,
    /// The groups that may approve it.
    pub reviewers: Vec<String>,
    /// How a reviewer approves it.
    pub hint: String,
    /// How long the door waits for the verdict.
    #[serde(skip)]
    pub hold: Duration,
}

/// How a door's client hears about a hold and ends it.
#[async_trait]
pub trait HoldLine: Send + Sync {
    /// Tells the client the command is held (the PostgreSQL door sends a NoticeResponse).
    async fn held(&self, held: &Held);
    /// Notified when the client cancels the held command: the hold ends, the review stays.
    fn cancel(&self) -> &tokio::sync::Notify;
}

impl Session {
    /// Holds `exact` until it is approved (`Ok`: run it now, once) or not (`Err`: what the
    /// client is told instead).
    pub async fn hold(
        &self,
        need: &NeedsReview,
        exact: &Exact<'_>,
        line: &dyn HoldLine,
    ) -> Result<(), Refusal> {
        let Some(reviews) = self.engine.reviews.as_ref() else {
            return Err(unavailable(Code::ApprovalsUnavailable, need.noun));
        };
        let requester = requester(&self.principal);
        let binding = portcullis_reviews::binding(
            &requester,
            &self.connection.name,
            exact.text,
            exact.params,
        );
        let new = NewReview {
            requester,
            connection: self.connection.name.clone(),
            action: need.action.clone(),
            command: need.display.clone(),
            binding,
            policies: need.policies.clone(),
            reviewers: need.reviewers.clone(),
            approvals: need.approvals,
            session_id: self.origin.session_id.clone(),
            run_id: self.origin.run_id.clone(),
            tool_call_id: self.origin.tool_call_id.clone(),
        };
        let unavailable =
            |e: &portcullis_reviews::ReviewError| unavailable(Code::review(e), need.noun);
        let review = match reviews.request(new, wall_clock_ms()).await {
            Ok(Requested::Run(_)) => return Ok(()),
            Ok(Requested::Pending(review)) => review,
            Err(e) => return Err(unavailable(&e)),
        };
        let hold = self.engine.settings.hold;
        // Listen for a cancel before the client can know there is something to cancel.
        let canceled = line.cancel().notified();
        tokio::pin!(canceled);
        canceled.as_mut().enable();
        let held = held(&review, hold);
        if let Some(r) = &self.origin.receipts {
            r.held(&held);
        }
        line.held(&held).await;
        self.record_review(&review.id, "pending", &review.reviewers)
            .await;
        let review = tokio::select! {
            r = reviews.wait(&review.id, hold) => r.map_err(|e| unavailable(&e))?,
            () = &mut canceled => {
                self.record_review(&review.id, "canceled", &review.reviewers).await;
                return Err(canceled_hold(&review, need.noun));
            }
        };
        self.record_review(&review.id, review.status.as_str(), &review.reviewers)
            .await;
        match review.status {
            Status::Approved => match reviews.consume(&review.id, wall_clock_ms()).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(used_elsewhere(&review, need.noun)),
                Err(e) => Err(unavailable(&e)),
            },
            Status::Denied => Err(denied(&review, need.noun)),
            Status::Pending => Err(still_pending(&review, hold, need.noun)),
            Status::Expired => Err(expired(&review, need.noun)),
            Status::Executed => Err(used_elsewhere(&review, need.noun)),
        }
    }

    async fn record_review(&self, review_id: &str, status: &str, reviewers: &[String]) {
        self.record(
            "review",
            serde_json::json!({ "review_id": review_id, "status": status, "reviewers": reviewers }),
        )
        .await;
    }
}

/// The principal as a review's requester.
pub fn requester(p: &portcullis_identity::Principal) -> Requester {
    Requester {
        subject: p.subject.clone(),
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
    }
}

fn approve_command(review: &Review) -> String {
    format!("portcullis reviews approve {} --comment \"...\"", review.id)
}

fn held(review: &Review, hold: Duration) -> Held {
    let groups = review.reviewers.join(", ");
    Held {
        review_id: review.id.clone(),
        needs: format!(
            "{} on {} needs approval by {groups} ({} needed; policy {})",
            review.action,
            review.connection,
            review.approvals_needed,
            review.policies.join(", "),
        ),
        reviewers: review.reviewers.clone(),
        hint: format!(
            "a member of {groups} approves with: {}",
            approve_command(review)
        ),
        hold,
    }
}

fn about(review: &Review, code: Code, message: String, hint: String) -> Refusal {
    Refusal::new(code, message, hint).with_review(review.id.clone())
}

fn denied(review: &Review, noun: &str) -> Refusal {
    let (who, comment) = review.denial.as_ref().map_or(("a reviewer", ""), |v| {
        (v.reviewer.subject.as_str(), v.comment.as_str())
    });
    about(
        review,
        Code::ApprovalDenied,
        format!(
            "portcullis: {} denied by reviewer {who}: {comment} (review {})",
            review.action, review.id
        ),
        format!("the reviewer refused this exact {noun}; change it, or ask them why"),
    )
}

fn still_pending(review: &Review, hold: Duration, noun: &str) -> Refusal {
    about(
        review,
        Code::ApprovalPending,
        format!(
            "portcullis: {} is waiting for approval (review {}, not approved within {}s)",
            review.action,
            review.id,
            hold.as_secs()
        ),
        format!(
            "run the same {noun} again once a member of {} has approved: {}",
            review.reviewers.join(", "),
            approve_command(review)
        ),
    )
}

fn canceled_hold(review: &Review, noun: &str) -> Refusal {
    about(
        review,
        Code::ApprovalCanceled,
        format!(
            "canceling {noun} due to user request; review {} stays pending",
            review.id
        ),
        format!(
            "run the same {noun} again once it is approved: {}",
            approve_command(review)
        ),
    )
}

fn expired(review: &Review, noun: &str) -> Refusal {
    about(
        review,
        Code::ApprovalExpired,
        format!(
            "portcullis: review {} expired before anyone approved it",
            review.id
        ),
        format!("run the {noun} again to ask for a new review"),
    )
}

fn used_elsewhere(review: &Review, noun: &str) -> Refusal {
    about(
        review,
        Code::ApprovalUsed,
        format!(
            "portcullis: the approval of review {} was already used: it runs its {noun} once",
            review.id
        ),
        format!("run the {noun} again to ask for a new review"),
    )
}

fn unavailable(code: Code, noun: &str) -> Refusal {
    Refusal::new(
        code,
        format!("portcullis: the {noun} needs approval, but it cannot be held: {code}"),
        "retry later, or tell the gateway operator",
    )
}
