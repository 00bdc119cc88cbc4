//! Start-up validation, the bounded queue, independence of hooks, and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Receiver, Reply, failures, fast, hook, notification};
use portcullis_notify::{Notifier, NotifyError, Options, Webhook};

#[tokio::test]
async fn plain_http_is_refused_unless_loopback() {
    for url in ["http://hooks.example.com/x", "http://10.1.2.3:8080/x"] {
        let (on_failure, _) = failures();
        let err = Notifier::start(vec![Webhook::new(url)], on_failure).unwrap_err();
        assert!(
            matches!(err, NotifyError::InvalidUrl { index: 0, .. }),
            "{url}: {err}"
        );
    }
    let (on_failure, _) = failures();
    let hooks = vec![
        Webhook::new("https://hooks.example.com/x"),
        Webhook::new("http://127.0.0.1:9/x"),
        Webhook::new("http://[::1]:9/x"),
    ];
    assert!(Notifier::start(hooks, on_failure).is_ok());
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let (on_failure, _) = failures();
    let options = Options {
        queue_capacity: 0,
        ..Options::default()
    };
    let err = Notifier::start_with(Vec::new(), on_failure.clone(), options).unwrap_err();
    assert!(matches!(err, NotifyError::InvalidOption(_)));

    let mut h = Webhook::new("https://hooks.example.com/x");
    h.max_attempts = 0;
    let err =
        Notifier::start(vec![Webhook::new("https://ok.example/"), h], on_failure).unwrap_err();
    assert!(
        matches!(err, NotifyError::InvalidHook { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn start_needs_a_runtime() {
    let (on_failure, _) = failures();
    let err = Notifier::start(Vec::new(), on_failure).unwrap_err();
    assert!(matches!(err, NotifyError::NoRuntime));
}

#[tokio::test]
async fn full_queue_drops_and_reports_without_blocking() {
    let rx = Receiver::start(Vec::new(), Reply::Hang).await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&rx.url);
    h.timeout = Duration::from_secs(30);
    let options = Options {
        queue_capacity: 1,
        max_in_flight: 1,
        ..fast()
    };
    let notifier = Notifier::start_with(vec![h], on_failure, options).unwrap();

    // At most one in flight, one waiting for a slot, one queued: the rest must be dropped.
    let started = Instant::now();
    for i in 0..10 {
        notifier.notify(notification(&format!("rv_{i}"), &[]));
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "notify blocked"
    );

    let dropped = failed.drain();
    assert!(dropped.len() >= 7, "{} dropped", dropped.len());
    for f in &dropped {
        assert_eq!(f.error, "queue full");
        assert_eq!(f.attempts, 0);
        assert_eq!(f.url, rx.url);
    }
}

#[tokio::test]
async fn a_hanging_hook_does_not_hold_up_the_others() {
    let stuck = Receiver::start(Vec::new(), Reply::Hang).await;
    let fine = Receiver::ok().await;
    let (on_failure, _failed) = failures();
    let mut slow = hook(&stuck.url);
    slow.timeout = Duration::from_secs(30);
    let notifier = Notifier::start_with(vec![slow, hook(&fine.url)], on_failure, fast()).unwrap();

    let started = Instant::now();
    for i in 0..3 {
        notifier.notify(notification(&format!("rv_{i}"), &[]));
    }
    fine.wait_for(3).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    stuck.wait_for(3).await;
}

#[tokio::test]
async fn shutdown_delivers_what_is_queued() {
    let rx = Receiver::ok().await;
    let (on_failure, mut failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    for i in 0..20 {
        notifier.notify(notification(&format!("rv_{i}"), &[]));
    }
    notifier.shutdown(Duration::from_secs(10)).await;
    assert_eq!(rx.received().len(), 20);
    assert!(failed.drain().is_empty());

    // After shutdown nothing is taken, and the drop is reported.
    notifier.notify(notification("rv_late", &[]));
    let late = failed.next().await;
    assert_eq!(
        (late.review_id.as_str(), late.error.as_str()),
        ("rv_late", "notifier stopped")
    );
    notifier.clone().shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_grace_abandons_and_reports_pending_deliveries() {
    let rx = Receiver::start(Vec::new(), Reply::Hang).await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&rx.url);
    h.timeout = Duration::from_secs(30);
    let options = Options {
        max_in_flight: 1,
        ..fast()
    };
    let notifier = Notifier::start_with(vec![h], on_failure, options).unwrap();
    for i in 0..3 {
        notifier.notify(notification(&format!("rv_{i}"), &[]));
    }
    rx.wait_for(1).await;

    let started = Instant::now();
    notifier.shutdown(Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut abandoned = failed.drain();
    abandoned.sort_by(|a, b| a.review_id.cmp(&b.review_id));
    let summary: Vec<(&str, u32)> = abandoned
        .iter()
        .map(|f| (f.review_id.as_str(), f.attempts))
        .collect();
    assert_eq!(summary, [("rv_0", 1), ("rv_1", 0), ("rv_2", 0)]);
    assert!(
        abandoned
            .iter()
            .all(|f| f.error.contains("notifier stopped"))
    );
}

#[tokio::test]
async fn notifications_no_hook_wants_are_ignored() {
    let rx = Receiver::ok().await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&rx.url);
    h.groups = vec!["dba".into()];
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_sec", &["security"]));
    notifier.shutdown(Duration::from_secs(5)).await;
    assert!(rx.received().is_empty());
    assert!(failed.drain().is_empty());
}
