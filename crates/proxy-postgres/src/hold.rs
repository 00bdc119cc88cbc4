//! Holding a statement for just-in-time approval (DESIGN.md §7): the policy said
//! RequireApproval, so the exact command (this principal, this connection, this text, these
//! parameters) waits for reviewers. The client is told at once with a NoticeResponse naming
//! the review and how to approve it; approved within the hold time, the statement runs (once);
//! denied, timed out or expired, it gets an error naming the review, and the session stays
//! usable. Running the same statement again after approval runs it without a new review.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portcullis_reviews::{NewReview, Requested, Requester, Review, Reviews, Status};
use tokio::sync::mpsc;

use crate::enforce::Denial;
use crate::respond;
use portcullis_reviews::wall_clock_ms as now_ms;

/// What a decision asked for: who must approve, how many, under which policies.
#[derive(Debug, Clone)]
pub(crate) struct NeedsReview {
    pub(crate) action: &'static str,
    /// The literal-free text, shown to reviewers.
    pub(crate) display: String,
    pub(crate) policies: Vec<String>,
    pub(crate) reviewers: Vec<String>,
    pub(crate) approvals: u32,
}

/// The door's review service and the session's line to its client.
pub(crate) struct Holder<'a> {
    pub(crate) reviews: Option<&'a Reviews>,
    pub(crate) recorder: crate::record::Recorder<'a>,
    pub(crate) hold: Duration,
    /// NoticeResponses for the client, written by the server-to-client loop.
    pub(crate) notices: &'a mpsc::Sender<Bytes>,
    /// Notified by a CancelRequest for this session: the hold ends, the review stays.
    pub(crate) canceled: &'a tokio::sync::Notify,
}

/// The command as it will run: its text and bound parameters (`None`: NULL).
pub(crate) struct Exact<'a> {
    pub(crate) text: &'a str,
    pub(crate) params: &'a [Option<Bytes>],
}

impl Holder<'_> {
    /// Holds `exact` until it is approved (`Ok`: run it now, once) or not (`Err`: the error
    /// the client gets instead).
    pub(crate) async fn hold(
        &self,
        need: &NeedsReview,
        requester: Requester,
        connection: &str,
        origin: &portcullis_pipeline::Origin,
        exact: &Exact<'_>,
    ) -> Result<(), Denial> {
        let Some(reviews) = self.reviews else {
            return Err(unavailable("this gateway has no review service"));
        };
        let params: Vec<Option<&[u8]>> = exact.params.iter().map(|p| p.as_deref()).collect();
        let binding = portcullis_reviews::binding(&requester, connection, exact.text, &params);
        let new = NewReview {
            requester,
            connection: connection.to_owned(),
            action: need.action.to_owned(),
            command: need.display.clone(),
            binding,
            policies: need.policies.clone(),
            reviewers: need.reviewers.clone(),
            approvals: need.approvals,
            session_id: origin.session_id.clone(),
            run_id: origin.run_id.clone(),
            tool_call_id: origin.tool_call_id.clone(),
        };
        let review = match reviews.request(new, now_ms()).await {
            Ok(Requested::Run(_)) => return Ok(()),
            Ok(Requested::Pending(review)) => review,
            Err(e) => return Err(unavailable(e.code())),
        };
        // Listen for a cancel before the client can know there is something to cancel.
        let canceled = self.canceled.notified();
        tokio::pin!(canceled);
        canceled.as_mut().enable();
        let _ = self.notices.send(held_notice(&review, self.hold)).await;
        self.recorder
            .review(&review.id, "pending", &review.reviewers)
            .await;
        let review = tokio::select! {
            r = reviews.wait(&review.id, self.hold) => r.map_err(|e| unavailable(e.code()))?,
            () = &mut canceled => {
                self.recorder.review(&review.id, "canceled", &review.reviewers).await;
                return Err(canceled_hold(&review));
            }
        };
        self.recorder
            .review(&review.id, review.status.as_str(), &review.reviewers)
            .await;
        match review.status {
            Status::Approved => match reviews.consume(&review.id, now_ms()).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(used_elsewhere(&review)),
                Err(e) => Err(unavailable(e.code())),
            },
            Status::Denied => Err(denied(&review)),
            Status::Pending => Err(still_pending(&review, self.hold)),
            Status::Expired => Err(expired(&review)),
            Status::Executed => Err(used_elsewhere(&review)),
        }
    }
}

fn approve_command(review: &Review) -> String {
    format!("portcullis reviews approve {} --comment \"...\"", review.id)
}

/// What ends the held notice's message; the exec door, which does not wait, cuts it off.
pub(crate) const HOLDING: &str = ": holding it up to ";

fn held_notice(review: &Review, hold: Duration) -> Bytes {
    let groups = review.reviewers.join(", ");
    let message = format!(
        "portcullis: {} on {} needs approval by {groups} ({} needed; policy {}){HOLDING}{}s for review {}",
        review.action,
        review.connection,
        review.approvals_needed,
        review.policies.join(", "),
        hold.as_secs(),
        review.id,
    );
    let detail = format!("review: {}; status: pending", review.id);
    let hint = format!(
        "a member of {groups} approves with: {}",
        approve_command(review)
    );
    respond::notice(&message, Some(&detail), Some(&hint))
}

fn detail(review: &Review, code: &str) -> Option<String> {
    Some(format!("review: {}; code: {code}", review.id))
}

fn denied(review: &Review) -> Denial {
    let (who, comment) = review.denial.as_ref().map_or(("a reviewer", ""), |v| {
        (v.reviewer.subject.as_str(), v.comment.as_str())
    });
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: {} denied by reviewer {who}: {comment} (review {})",
            review.action, review.id
        ),
        detail: detail(review, "approval_denied"),
        hint: Some("the reviewer refused this exact statement; change it, or ask them why".into()),
    }
}

fn still_pending(review: &Review, hold: Duration) -> Denial {
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: {} is waiting for approval (review {}, not approved within {}s)",
            review.action,
            review.id,
            hold.as_secs()
        ),
        detail: detail(review, "approval_pending"),
        hint: Some(format!(
            "run the same statement again once a member of {} has approved: {}",
            review.reviewers.join(", "),
            approve_command(review)
        )),
    }
}

fn canceled_hold(review: &Review) -> Denial {
    Denial {
        sqlstate: "57014",
        message: format!(
            "canceling statement due to user request; review {} stays pending",
            review.id
        ),
        detail: detail(review, "approval_canceled"),
        hint: Some(format!(
            "run the same statement again once it is approved: {}",
            approve_command(review)
        )),
    }
}

fn expired(review: &Review) -> Denial {
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: review {} expired before anyone approved it",
            review.id
        ),
        detail: detail(review, "approval_expired"),
        hint: Some("run the statement again to ask for a new review".into()),
    }
}

fn used_elsewhere(review: &Review) -> Denial {
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: the approval of review {} was already used: it runs its statement once",
            review.id
        ),
        detail: detail(review, "approval_used"),
        hint: Some("run the statement again to ask for a new review".into()),
    }
}

fn unavailable(code: &str) -> Denial {
    Denial {
        sqlstate: "58000",
        message: format!("portcullis: the statement needs approval, but it cannot be held: {code}"),
        detail: Some(format!("code: {code}")),
        hint: Some("retry later, or tell the gateway operator".into()),
    }
}

/// The principal as a review's requester.
pub(crate) fn requester(p: &portcullis_identity::Principal) -> Requester {
    Requester {
        subject: p.subject.clone(),
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
    }
}

/// Shared so a Parse-time decision can be carried to the Bind that runs it.
pub(crate) type Need = Arc<NeedsReview>;
