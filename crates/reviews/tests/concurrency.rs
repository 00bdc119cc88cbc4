//! Waiting, racing and several gateway nodes on one store, on both backends.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Env, NOW, dba, new_review};
use portcullis_reviews::{Requested, Review, ReviewSettings, Reviews, Status, wall_clock_ms};
use tokio_util::sync::CancellationToken;

async fn pending(reviews: &Reviews, command: &str, approvals: u32, now: i64) -> Review {
    match reviews
        .request(new_review(command, approvals), now)
        .await
        .unwrap()
    {
        Requested::Pending(r) => r,
        Requested::Run(r) => panic!("expected a pending review, got Run({})", r.id),
    }
}

/// Settings whose poll is too slow to matter, so only an in-process wake-up is fast.
fn slow_poll() -> ReviewSettings {
    ReviewSettings {
        poll: Duration::from_secs(30),
        ..ReviewSettings::default()
    }
}

both!(wait_wakes_at_once_and_times_out_otherwise);
async fn wait_wakes_at_once_and_times_out_otherwise(env: Env) {
    let reviews = env.reviews_with(slow_poll());
    let r = pending(&reviews, "DELETE FROM t", 1, NOW).await;

    let started = Instant::now();
    let timed_out = reviews
        .wait(&r.id, Duration::from_millis(200))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(timed_out.status, Status::Pending);
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    let waiter = {
        let (reviews, id) = (reviews.clone(), r.id.clone());
        tokio::spawn(async move {
            let got = reviews.wait(&id, Duration::from_secs(20)).await.unwrap();
            (got, Instant::now())
        })
    };
    // Let the waiter get to its sleep first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    reviews
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    let approved_at = Instant::now();
    let (got, woke_at) = waiter.await.unwrap();
    assert_eq!(got.status, Status::Approved);
    let lag = woke_at.saturating_duration_since(approved_at);
    assert!(
        lag < Duration::from_millis(500),
        "woke {lag:?} after the approval"
    );

    // A review that is already decided returns at once.
    let started = Instant::now();
    let done = reviews.wait(&r.id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.status, Status::Approved);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        reviews
            .wait("rv_nope", Duration::from_secs(1))
            .await
            .unwrap_err()
            .code(),
        "review_not_found"
    );
}

both!(wait_sees_another_node_by_polling);
async fn wait_sees_another_node_by_polling(env: Env) {
    let here = env.other_node(Duration::from_millis(50));
    let there = env.reviews_with(slow_poll());
    let r = pending(&here, "DELETE FROM t", 1, NOW).await;
    let waiter = {
        let (here, id) = (here.clone(), r.id.clone());
        tokio::spawn(async move { here.wait(&id, Duration::from_secs(20)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    there.deny(&r.id, &dba("alice"), "", NOW).await.unwrap();
    assert_eq!(waiter.await.unwrap().status, Status::Denied);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

both!(consume_is_single_use);
async fn consume_is_single_use(env: Env) {
    // Two nodes, so the race is settled by the store and not only by the in-process lock.
    let nodes = [env.reviews(), env.other_node(Duration::from_secs(1))];
    let r = pending(&nodes[0], "DELETE FROM t", 1, NOW).await;
    nodes[1]
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (reviews, id) = (nodes[i % 2].clone(), r.id.clone());
            tokio::spawn(async move { reviews.consume(&id, NOW + 1).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    let executed = env
        .sink
        .of(&r.id)
        .iter()
        .filter(|c| c.0 == "executed")
        .count();
    assert_eq!(executed, 1);
}

both!(concurrent_requests_share_one_review);
async fn concurrent_requests_share_one_review(env: Env) {
    let nodes = [env.reviews(), env.other_node(Duration::from_secs(1))];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let reviews = nodes[i % 2].clone();
            tokio::spawn(async move { pending(&reviews, "DELETE FROM t", 1, NOW).await.id })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(nodes[0].list(None, 100).await.unwrap().len(), 1);
}

both!(simultaneous_approvals_on_two_nodes_both_count);
async fn simultaneous_approvals_on_two_nodes_both_count(env: Env) {
    let nodes = [env.reviews(), env.other_node(Duration::from_secs(1))];
    for round in 0..10 {
        let r = pending(&nodes[0], &format!("DELETE FROM t{round}"), 3, NOW).await;
        let tasks: Vec<_> = ["alice", "bob", "carol"]
            .into_iter()
            .enumerate()
            .map(|(i, who)| {
                let (reviews, id) = (nodes[i % 2].clone(), r.id.clone());
                tokio::spawn(async move { reviews.approve(&id, &dba(who), "", NOW).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let done = nodes[1].get(&r.id).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.approvals.len()),
            (Status::Approved, 3),
            "round {round}"
        );
        let heard: Vec<_> = env.sink.of(&r.id).into_iter().map(|c| c.1).collect();
        assert_eq!(
            heard.iter().filter(|s| **s == Status::Approved).count(),
            1,
            "{heard:?}"
        );
    }
}

both!(fifty_requests_approved_in_random_order);
async fn fifty_requests_approved_in_random_order(env: Env) {
    let reviews = env.reviews();
    let asks: Vec<_> = (0..50)
        .map(|i| {
            let reviews = reviews.clone();
            tokio::spawn(async move {
                pending(&reviews, &format!("DELETE FROM t WHERE k = {i}"), 1, NOW).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in asks {
        ids.push(t.await.unwrap().id);
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 50);
    // Random order: ids are random, so sorting by them shuffles the creation order.
    let mut shuffled = ids.clone();
    shuffled.sort_by_key(|id| id.chars().rev().collect::<String>());
    let approvals: Vec<_> = shuffled
        .into_iter()
        .map(|id| {
            let reviews = reviews.clone();
            tokio::spawn(async move { reviews.approve(&id, &dba("alice"), "", NOW).await.unwrap() })
        })
        .collect();
    for t in approvals {
        t.await.unwrap();
    }
    for id in &ids {
        assert_eq!(
            reviews.get(id).await.unwrap().unwrap().status,
            Status::Approved,
            "{id}"
        );
        assert_eq!(
            env.sink.of(id),
            [
                ("requested", Status::Pending),
                ("approved", Status::Approved)
            ]
        );
    }
}

both!(sweeper_expires_and_wakes_waiters);
async fn sweeper_expires_and_wakes_waiters(env: Env) {
    let reviews = env.reviews_with(ReviewSettings {
        ttl: Duration::from_millis(300),
        poll: Duration::from_secs(30),
    });
    let r = pending(&reviews, "DELETE FROM t", 1, wall_clock_ms()).await;
    let stop = CancellationToken::new();
    let sweeper = reviews.spawn_sweeper(Duration::from_millis(50), stop.clone());
    let started = Instant::now();
    let got = reviews.wait(&r.id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got.status, Status::Expired);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), sweeper)
        .await
        .unwrap()
        .unwrap();
}
