//! Which failures are retried, how long the notifier waits, and when it gives up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Receiver, Reply, failures, fast, hook, notification};
use portcullis_notify::{Backoff, Notifier, Options};

const GRACE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let rx = Receiver::start(
        vec![Reply::Status(500), Reply::Status(503)],
        Reply::Status(200),
    )
    .await;
    let (on_failure, mut failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    let n = notification("rv_retry", &[]);
    notifier.notify(n.clone());
    notifier.shutdown(GRACE).await;

    let got = rx.received();
    assert_eq!(got.len(), 3, "two failures, then the delivery");
    // The same delivery id on every attempt, so that the receiver can de-duplicate.
    assert!(
        got.iter()
            .all(|r| r.header("x-portcullis-delivery") == n.id)
    );
    assert!(failed.drain().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = Receiver::start(vec![Reply::RetryAfter(429, 1)], Reply::Status(200)).await;
    let (on_failure, mut failed) = failures();
    // A 1 ms backoff: any wait near a second can only come from Retry-After.
    let options = Options {
        backoff: Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_secs(5),
        },
        ..Options::default()
    };
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, options).unwrap();
    notifier.notify(notification("rv_429", &[]));

    let got = rx.wait_for(2).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    notifier.shutdown(GRACE).await;
    assert_eq!(rx.received().len(), 2);
    assert!(failed.drain().is_empty());
}

#[tokio::test]
async fn retry_after_is_capped() {
    // An hour asked; the 50 ms cap of `fast()` wins.
    let rx = Receiver::start(vec![Reply::RetryAfter(503, 3600)], Reply::Status(200)).await;
    let (on_failure, mut failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_cap", &[]));
    let got = rx.wait_for(2).await;
    assert!(got[1].at - got[0].at < Duration::from_secs(2));
    notifier.shutdown(GRACE).await;
    assert!(failed.drain().is_empty());
}

#[tokio::test]
async fn client_errors_fail_at_once() {
    let rx = Receiver::start(vec![Reply::Status(400)], Reply::Status(200)).await;
    let (on_failure, mut failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_400", &[]));

    let failure = failed.next().await;
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.error, "HTTP 400 Bad Request");
    assert_eq!(failure.url, rx.url);
    assert_eq!(failure.event, "review.requested");
    assert_eq!(failure.review_id, "rv_400");
    notifier.shutdown(GRACE).await;
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn unreachable_receiver_fails_after_max_attempts() {
    let url = common::closed_url().await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&url);
    h.max_attempts = 3;
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_down", &[]));

    let failure = failed.next().await;
    assert_eq!(failure.attempts, 3);
    assert!(failure.error.contains("connect"), "{}", failure.error);
    notifier.shutdown(GRACE).await;
    assert!(failed.drain().is_empty(), "reported once");
}

#[tokio::test]
async fn each_attempt_is_bounded_by_the_timeout() {
    let rx = Receiver::start(Vec::new(), Reply::Hang).await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&rx.url);
    h.timeout = Duration::from_millis(100);
    h.max_attempts = 2;
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_slow", &[]));

    let failure = failed.next().await;
    assert_eq!(failure.attempts, 2);
    assert_eq!(failure.error, "timed out after 100ms");
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Receiver::ok().await;
    let rx = Receiver::start(
        vec![Reply::Redirect(elsewhere.url.clone())],
        Reply::Status(200),
    )
    .await;
    let (on_failure, mut failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_302", &[]));

    let failure = failed.next().await;
    assert_eq!(failure.attempts, 1);
    assert!(failure.error.starts_with("HTTP 302"), "{}", failure.error);
    notifier.shutdown(GRACE).await;
    assert!(elsewhere.received().is_empty());
}
