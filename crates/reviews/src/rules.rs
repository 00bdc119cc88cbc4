//! The review rules as pure functions: each takes a review's current state and returns its
//! next state and the change to report, or the reason the step is refused. No I/O and no
//! clock: the service loads, calls one of these, and stores the result with a
//! compare-and-set, calling again on the newest state when it loses a race.

use crate::{Change, NewReview, Review, ReviewError, Reviewer, Status, Verdict};

/// A step's outcome: the next state and what changed.
pub(crate) type Step = Result<(Review, Change), ReviewError>;

/// A pending review past its deadline, which every path treats as expired.
pub(crate) fn lapsed(r: &Review, now_ms: i64) -> bool {
    r.status == Status::Pending && now_ms >= r.expires_ms
}

/// Distinct approvals needed; a policy asking for none still needs one, or approval
/// would be a formality nobody performs.
pub(crate) fn needed(approvals: u32) -> u32 {
    approvals.max(1)
}

/// Whether reusing `existing` for `new` would give at most the access the policy asks for
/// now: the same or fewer eligible reviewers, and at least as many approvals. A review made
/// under a laxer policy is not reused after the policy was tightened.
pub(crate) fn covers(existing: &Review, new: &NewReview) -> bool {
    existing.reviewers.iter().all(|g| new.reviewers.contains(g))
        && existing.approvals_needed >= needed(new.approvals)
}

fn is_self(r: &Review, who: &Reviewer) -> bool {
    let asker = &r.requester;
    let same_identity = asker.issuer == who.issuer && asker.subject == who.subject;
    // A client id names one OAuth client; a human reviewing through the very client that
    // asked is the requester in another guise.
    let same_client = matches!((&asker.client_id, &who.client_id), (Some(a), Some(b)) if a == b);
    same_identity || same_client
}

fn same_reviewer(a: &Reviewer, b: &Reviewer) -> bool {
    a.issuer == b.issuer && a.subject == b.subject
}

/// Refuses a reviewer's step unless `r` is pending, unexpired, and `who` may review it.
/// `Ok(false)` means it lapsed: the caller stores it as expired instead.
fn may_review(r: &Review, who: &Reviewer, now_ms: i64) -> Result<bool, ReviewError> {
    if r.status != Status::Pending {
        return Err(ReviewError::NotPending { status: r.status });
    }
    if lapsed(r, now_ms) {
        return Ok(false);
    }
    if !who.groups.iter().any(|g| r.reviewers.contains(g)) {
        return Err(ReviewError::NotAReviewer {
            groups: r.reviewers.clone(),
        });
    }
    if is_self(r, who) {
        return Err(ReviewError::SelfApproval);
    }
    Ok(true)
}

/// Pending → Expired.
pub(crate) fn expire(mut r: Review) -> (Review, Change) {
    r.status = Status::Expired;
    (r, Change::Expired)
}

/// Expires `r` if it is pending and past its deadline; any other state is left alone.
pub(crate) fn expire_if_lapsed(r: Review, now_ms: i64) -> Step {
    if lapsed(&r, now_ms) {
        Ok(expire(r))
    } else {
        Err(ReviewError::NotPending { status: r.status })
    }
}

/// Ends a pending review that is out of date (lapsed, or made under terms a tightened
/// policy no longer accepts), so that a new one can take its place: there is one pending
/// review per binding.
pub(crate) fn supersede(r: Review) -> Step {
    match r.status {
        Status::Pending => Ok(expire(r)),
        status => Err(ReviewError::NotPending { status }),
    }
}

/// One approval; the last one needed makes the review Approved.
pub(crate) fn approve(mut r: Review, who: &Reviewer, comment: &str, now_ms: i64) -> Step {
    if !may_review(&r, who, now_ms)? {
        return Ok(expire(r));
    }
    if r.approvals.iter().any(|v| same_reviewer(&v.reviewer, who)) {
        return Err(ReviewError::AlreadyReviewed);
    }
    r.approvals.push(Verdict {
        reviewer: who.clone(),
        comment: comment.to_owned(),
        at_ms: now_ms,
    });
    let count = u32::try_from(r.approvals.len()).unwrap_or(u32::MAX);
    if count >= needed(r.approvals_needed) {
        r.status = Status::Approved;
    }
    let by = who.clone();
    let comment = comment.to_owned();
    Ok((r, Change::Approved { by, comment }))
}

/// A denial by any eligible reviewer ends the review, even one who approved before: the
/// safe direction is always open.
pub(crate) fn deny(mut r: Review, who: &Reviewer, comment: &str, now_ms: i64) -> Step {
    if !may_review(&r, who, now_ms)? {
        return Ok(expire(r));
    }
    r.status = Status::Denied;
    r.denial = Some(Verdict {
        reviewer: who.clone(),
        comment: comment.to_owned(),
        at_ms: now_ms,
    });
    let by = who.clone();
    let comment = comment.to_owned();
    Ok((r, Change::Denied { by, comment }))
}

/// Approved → Executed: the one run the approval allows.
pub(crate) fn consume(mut r: Review, now_ms: i64) -> Step {
    if r.status != Status::Approved {
        return Err(ReviewError::NotPending { status: r.status });
    }
    r.status = Status::Executed;
    r.executed_ms = Some(now_ms);
    Ok((r, Change::Executed))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
