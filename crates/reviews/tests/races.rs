//! Lost compare-and-set races, made deterministic: a store wrapper lets another gateway
//! node store its change between this node's read and its write.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{Env, NOW, dba, new_review};
use portcullis_reviews::{Requested, Review, ReviewSettings, Reviews, Status};
use portcullis_store::{AuditRow, CheckpointRow, ReviewRow, RevocationRow, Store, StoreError};

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Delegates to the real store, but runs `hook` (once) just before the next compare-and-set.
struct Interfering {
    inner: Arc<dyn Store>,
    hook: Mutex<Option<Hook>>,
}

/// The node under test (on the interfering store) and the other node (on the real one).
fn two_nodes(env: &Env) -> (Reviews, Reviews, Arc<Interfering>) {
    let store = Arc::new(Interfering {
        inner: env.store.clone(),
        hook: Mutex::new(None),
    });
    let here = Reviews::new(store.clone(), ReviewSettings::default(), env.sink.clone());
    (here, env.reviews(), store)
}

impl Interfering {
    fn before_next_write(&self, hook: impl Future<Output = ()> + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::pin(hook));
    }
}

async fn pending(reviews: &Reviews, approvals: u32) -> Review {
    match reviews
        .request(new_review("DELETE FROM t", approvals), NOW)
        .await
        .unwrap()
    {
        Requested::Pending(r) => r,
        Requested::Run(_) => panic!("expected a pending review"),
    }
}

both!(approval_that_loses_a_race_still_counts);
async fn approval_that_loses_a_race_still_counts(env: Env) {
    let (here, there, store) = two_nodes(&env);
    let r = pending(&here, 2).await;
    let id = r.id.clone();
    store.before_next_write(async move {
        there.approve(&id, &dba("bob"), "", NOW).await.unwrap();
    });
    let done = here
        .approve(&r.id, &dba("alice"), "", NOW + 1)
        .await
        .unwrap();
    assert_eq!(done.status, Status::Approved);
    let who: Vec<_> = done
        .approvals
        .iter()
        .map(|v| v.reviewer.subject.as_str())
        .collect();
    assert_eq!(who, ["bob", "alice"]);
    assert_eq!(
        env.sink.of(&r.id),
        [
            ("requested", Status::Pending),
            ("approved", Status::Pending),
            ("approved", Status::Approved)
        ]
    );
}

both!(approval_that_loses_to_a_denial_is_refused);
async fn approval_that_loses_to_a_denial_is_refused(env: Env) {
    let (here, there, store) = two_nodes(&env);
    let r = pending(&here, 1).await;
    let id = r.id.clone();
    store.before_next_write(async move {
        there.deny(&id, &dba("bob"), "no", NOW).await.unwrap();
    });
    let err = here
        .approve(&r.id, &dba("alice"), "", NOW + 1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "review_not_pending");
    let stored = here.get(&r.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.approvals.len()), (Status::Denied, 0));
}

both!(consume_that_loses_a_race_is_false);
async fn consume_that_loses_a_race_is_false(env: Env) {
    let (here, there, store) = two_nodes(&env);
    let r = pending(&here, 1).await;
    here.approve(&r.id, &dba("alice"), "", NOW).await.unwrap();
    let id = r.id.clone();
    store.before_next_write(async move {
        assert!(there.consume(&id, NOW).await.unwrap());
    });
    assert!(!here.consume(&r.id, NOW + 1).await.unwrap());
    let executed = env
        .sink
        .of(&r.id)
        .iter()
        .filter(|c| c.0 == "executed")
        .count();
    assert_eq!(executed, 1);
}

#[async_trait]
impl Store for Interfering {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        self.inner.audit_append(rows).await
    }
    async fn audit_tail(&self, node: &str) -> Result<Option<AuditRow>, StoreError> {
        self.inner.audit_tail(node).await
    }
    async fn audit_page(
        &self,
        node: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.inner.audit_page(node, after, limit).await
    }
    async fn audit_nodes(&self) -> Result<Vec<String>, StoreError> {
        self.inner.audit_nodes().await
    }
    async fn audit_between(
        &self,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.inner
            .audit_between(since_ms, until_ms, after, limit)
            .await
    }
    async fn checkpoint_put(&self, cp: &CheckpointRow) -> Result<(), StoreError> {
        self.inner.checkpoint_put(cp).await
    }
    async fn checkpoints(&self, node: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        self.inner.checkpoints(node).await
    }
    async fn revocation_put(&self, r: &RevocationRow) -> Result<(), StoreError> {
        self.inner.revocation_put(r).await
    }
    async fn revocations(&self) -> Result<Vec<RevocationRow>, StoreError> {
        self.inner.revocations().await
    }
    async fn review_insert(&self, r: &ReviewRow) -> Result<(), StoreError> {
        self.inner.review_insert(r).await
    }
    async fn review_get(&self, id: &str) -> Result<Option<ReviewRow>, StoreError> {
        self.inner.review_get(id).await
    }
    async fn review_find(
        &self,
        binding: &str,
        statuses: &[&str],
    ) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.review_find(binding, statuses).await
    }
    async fn review_list(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.review_list(status, limit).await
    }
    async fn review_update(&self, from: &str, row: &ReviewRow) -> Result<bool, StoreError> {
        self.inner.review_update(from, row).await
    }
    async fn review_replace(
        &self,
        current: &ReviewRow,
        next: &ReviewRow,
    ) -> Result<bool, StoreError> {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.review_replace(current, next).await
    }
    async fn reviews_due(&self, status: &str, now_ms: i64) -> Result<Vec<ReviewRow>, StoreError> {
        self.inner.reviews_due(status, now_ms).await
    }
}
