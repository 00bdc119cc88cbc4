//! The review service: every state change is one compare-and-set on the store, then one
//! call of the sink, then a wake-up of the review's waiters.

use std::sync::Arc;

use portcullis_store::Store;
use tokio::task::JoinError;

use crate::rules::{self, Step};
use crate::slots::Slots;
use crate::{Review, ReviewError, ReviewSettings, ReviewSink, Reviewer, Status, row};

/// How often one change may lose a compare-and-set race before giving up. Each loss means
/// another gateway stored a change in between, so this is only reached under a storm.
const MAX_RACES: usize = 32;

/// The review service. Cheap to clone: clones share the store, the sink and the waiters.
#[derive(Clone)]
pub struct Reviews {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: ReviewSettings,
    pub(crate) sink: Arc<dyn ReviewSink>,
    pub(crate) slots: Slots,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews")
            .field("backend", &self.inner.store.backend())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Reviews {
    pub fn new(
        store: Arc<dyn Store>,
        settings: ReviewSettings,
        sink: Arc<dyn ReviewSink>,
    ) -> Reviews {
        Reviews {
            inner: Arc::new(Inner {
                store,
                settings,
                sink,
                slots: Slots::default(),
            }),
        }
    }

    /// The review with this id, as stored.
    pub async fn get(&self, id: &str) -> Result<Option<Review>, ReviewError> {
        match self.inner.store.review_get(id).await? {
            Some(r) => row::decode(&r).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` reviews, of one status or all, newest first.
    pub async fn list(
        &self,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<Review>, ReviewError> {
        let rows = self
            .inner
            .store
            .review_list(status.map(Status::as_str), limit)
            .await?;
        rows.iter().map(row::decode).collect()
    }

    /// Adds `reviewer`'s approval. The review stays pending until enough distinct reviewers
    /// approved. A pending review past its deadline is stored as expired and refused.
    pub async fn approve(
        &self,
        id: &str,
        reviewer: &Reviewer,
        comment: &str,
        now_ms: i64,
    ) -> Result<Review, ReviewError> {
        let (who, comment) = (reviewer.clone(), comment.to_owned());
        let next = self
            .change(id, now_ms, move |r| {
                rules::approve(r, &who, &comment, now_ms)
            })
            .await?;
        unless_lapsed(next)
    }

    /// Denies the request: final, whoever else approved.
    pub async fn deny(
        &self,
        id: &str,
        reviewer: &Reviewer,
        comment: &str,
        now_ms: i64,
    ) -> Result<Review, ReviewError> {
        let (who, comment) = (reviewer.clone(), comment.to_owned());
        let next = self
            .change(id, now_ms, move |r| rules::deny(r, &who, &comment, now_ms))
            .await?;
        unless_lapsed(next)
    }

    /// Approved → Executed, atomically: `Ok(true)` for exactly one caller, however many
    /// gateways try at once. Used when a held command resumes after approval.
    pub async fn consume(&self, id: &str, now_ms: i64) -> Result<bool, ReviewError> {
        Ok(self.consume_review(id, now_ms).await?.is_some())
    }

    /// Like [`Reviews::consume`], with the executed review when this caller won.
    pub(crate) async fn consume_review(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Review>, ReviewError> {
        match self
            .change(id, now_ms, move |r| rules::consume(r, now_ms))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(ReviewError::NotPending { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pending reviews past their deadline → Expired, each reported to the sink and waking
    /// its waiters. Returns how many this call expired.
    pub async fn expire_due(&self, now_ms: i64) -> Result<usize, ReviewError> {
        let due = self
            .inner
            .store
            .reviews_due(Status::Pending.as_str(), now_ms)
            .await?;
        let mut expired = 0;
        for r in due {
            match self
                .change(&r.id, now_ms, move |r| rules::expire_if_lapsed(r, now_ms))
                .await
            {
                Ok(_) => expired += 1,
                // Decided or expired elsewhere since the query: nothing left to do.
                Err(ReviewError::NotPending { .. } | ReviewError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Applies `decide` to the newest stored state of `id`, stores the result with a
    /// compare-and-set (deciding again on the newer state after a lost race, so that two
    /// approvals at once both count), reports it to the sink and wakes the waiters.
    ///
    /// It runs in its own task: a change that has started is stored and reported even if
    /// its caller goes away (a reviewer's HTTP client disconnecting must not leave a stored
    /// decision unaudited).
    pub(crate) async fn change<F>(
        &self,
        id: &str,
        now_ms: i64,
        decide: F,
    ) -> Result<Review, ReviewError>
    where
        F: Fn(Review) -> Step + Send + 'static,
    {
        let this = self.clone();
        let id = id.to_owned();
        joined(tokio::spawn(async move { this.change_now(&id, now_ms, decide).await }).await)
    }

    async fn change_now<F>(&self, id: &str, now_ms: i64, decide: F) -> Result<Review, ReviewError>
    where
        F: Fn(Review) -> Step,
    {
        let slot = self.inner.slots.get(id);
        // One change per review at a time on this gateway: the sink then hears of them in
        // the order they were stored. Other gateways are ordered by the compare-and-set.
        let _turn = slot.turn.lock().await;
        for _ in 0..MAX_RACES {
            let Some(current) = self.inner.store.review_get(id).await? else {
                return Err(ReviewError::NotFound);
            };
            let (next, change) = decide(row::decode(&current)?)?;
            let stored = row::encode(&next, now_ms)?;
            if self.inner.store.review_replace(&current, &stored).await? {
                self.inner.sink.changed(&next, &change).await;
                slot.changed.notify_waiters();
                return Ok(next);
            }
        }
        Err(ReviewError::internal(
            "review_update",
            format!("review {id} kept changing under this gateway ({MAX_RACES} lost races)"),
        ))
    }
}

/// A reviewer's step that found the review lapsed stored it as expired; the reviewer is told so.
fn unless_lapsed(next: Review) -> Result<Review, ReviewError> {
    match next.status {
        Status::Expired => Err(ReviewError::Expired),
        _ => Ok(next),
    }
}

/// The result of a spawned step; a panic in it is the caller's panic.
pub(crate) fn joined<T>(r: Result<Result<T, ReviewError>, JoinError>) -> Result<T, ReviewError> {
    match r {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ReviewError::internal("review_change", e.to_string())),
    }
}
