//! In-process bookkeeping that the public API cannot show: waiters' slots are freed.

use std::sync::Arc;
use std::time::Duration;

use crate::{NewReview, NoSink, Requested, Requester, ReviewSettings, Reviewer, Reviews, binding};

fn ask(i: usize) -> NewReview {
    let requester = Requester {
        subject: "agent".into(),
        issuer: "https://idp".into(),
        client_id: None,
    };
    let command = format!("DELETE FROM t WHERE k = {i}");
    NewReview {
        binding: binding(&requester, "prod", &command, &[]),
        requester,
        connection: "prod".into(),
        action: "sql.delete".into(),
        command,
        policies: vec![],
        reviewers: vec!["dba".into()],
        approvals: 1,
        session_id: None,
        run_id: None,
        tool_call_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slots_do_not_outlive_their_use() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
    let reviews = Reviews::new(store, ReviewSettings::default(), Arc::new(NoSink));
    let alice = Reviewer {
        subject: "alice".into(),
        issuer: "https://idp".into(),
        client_id: None,
        groups: vec!["dba".into()],
    };
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (reviews, alice) = (reviews.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            let Requested::Pending(r) = reviews.request(ask(i), 1).await.unwrap() else {
                panic!("expected Pending")
            };
            let waiter = {
                let (reviews, id) = (reviews.clone(), r.id.clone());
                tokio::spawn(async move { reviews.wait(&id, Duration::from_secs(10)).await })
            };
            if i % 3 == 0 {
                // Some waits end by timing out, some by a decision.
                reviews
                    .wait(&r.id, Duration::from_millis(20))
                    .await
                    .unwrap();
            }
            reviews.approve(&r.id, &alice, "", 2).await.unwrap();
            waiter.await.unwrap().unwrap();
            assert!(reviews.consume(&r.id, 3).await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(reviews.expire_due(i64::MAX).await.unwrap(), 0);
    assert_eq!(reviews.inner.slots.len(), 0);
}
