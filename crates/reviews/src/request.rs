//! Asking for a review: reuse what exists for the same exact command, or open a new one.

use portcullis_store::StoreError;

use crate::binding::new_id;
use crate::rules::{self, covers, lapsed};
use crate::service::joined;
use crate::{Change, NewReview, Requested, Review, ReviewError, Reviews, Status, row};

/// Attempts before giving up when other requests for the same binding keep winning.
const MAX_ATTEMPTS: usize = 16;

impl Reviews {
    /// Asks for a review of `new.binding`, without ever making a duplicate:
    ///
    /// - a pending, unexpired review of the same command is returned to wait on;
    /// - an approved one is consumed now (Approved → Executed) and returned as
    ///   [`Requested::Run`], so the command runs once;
    /// - denied, expired and executed reviews are history: a new pending review is made.
    ///
    /// Only reviews made under terms at least as strict as `new`'s are reused (see
    /// [`rules::covers`]). Two gateways asking at once end up with one pending review: the
    /// store refuses a second pending row per binding and the loser reuses the winner's.
    pub async fn request(&self, new: NewReview, now_ms: i64) -> Result<Requested, ReviewError> {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(found) = self.reuse(&new, now_ms).await? {
                return Ok(found);
            }
            match self.create(&new, now_ms).await {
                Err(ReviewError::Store(StoreError::Conflict { .. })) => continue,
                created => return created.map(Requested::Pending),
            }
        }
        Err(ReviewError::internal(
            "review_request",
            "other requests for the same command kept winning; retry",
        ))
    }

    /// The pending review to wait on or the approved one consumed now, if any.
    async fn reuse(&self, new: &NewReview, now_ms: i64) -> Result<Option<Requested>, ReviewError> {
        let open = [Status::Pending.as_str(), Status::Approved.as_str()];
        let rows = self.inner.store.review_find(&new.binding, &open).await?;
        for found in rows {
            let review = row::decode(&found)?;
            match review.status {
                Status::Pending if lapsed(&review, now_ms) || !covers(&review, new) => {
                    // Out of date: end it, so that a new review with the current terms can
                    // take the binding's one pending slot. Losing that race to another
                    // change of the same review is as good.
                    let ended = self.change(&review.id, now_ms, rules::supersede).await;
                    ignore_gone(ended)?;
                }
                Status::Pending => return Ok(Some(Requested::Pending(review))),
                // Approved under laxer terms than the policy's current ones: not for this run.
                _ if !covers(&review, new) => {}
                _ => {
                    // Another caller may consume it first; then look further or ask anew.
                    if let Some(done) = self.consume_review(&review.id, now_ms).await? {
                        return Ok(Some(Requested::Run(done)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Stores a new pending review and reports it. A concurrent request that stored one
    /// for the same binding first makes this fail with `StoreError::Conflict`.
    async fn create(&self, new: &NewReview, now_ms: i64) -> Result<Review, ReviewError> {
        let ttl_ms = i64::try_from(self.inner.settings.ttl.as_millis()).unwrap_or(i64::MAX);
        let review = Review {
            id: new_id(),
            binding: new.binding.clone(),
            status: Status::Pending,
            requester: new.requester.clone(),
            connection: new.connection.clone(),
            action: new.action.clone(),
            command: new.command.clone(),
            policies: new.policies.clone(),
            reviewers: new.reviewers.clone(),
            approvals_needed: rules::needed(new.approvals),
            approvals: Vec::new(),
            denial: None,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            executed_ms: None,
            session_id: new.session_id.clone(),
            run_id: new.run_id.clone(),
            tool_call_id: new.tool_call_id.clone(),
        };
        let stored = row::encode(&review, now_ms)?;
        let this = self.clone();
        // In its own task, like every change: once stored, it is reported.
        joined(
            tokio::spawn(async move {
                let slot = this.inner.slots.get(&review.id);
                // Taken before the insert, so no approval can be reported before the request.
                let _turn = slot.turn.lock().await;
                this.inner.store.review_insert(&stored).await?;
                this.inner.sink.changed(&review, &Change::Requested).await;
                Ok(review)
            })
            .await,
        )
    }
}

/// A change refused because the review already moved on (or vanished) is no failure here.
fn ignore_gone(r: Result<Review, ReviewError>) -> Result<(), ReviewError> {
    match r {
        Ok(_) | Err(ReviewError::NotPending { .. } | ReviewError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}
