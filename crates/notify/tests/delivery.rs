//! What a receiver gets: headers, signature, both body formats, and which hooks get what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Receiver, failures, fast, hook, notification};
use portcullis_notify::{Format, Notifier, signature, verify};
use secrecy::SecretString;

const SECRET: &str = "whsec_0123456789abcdef";
const GRACE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn generic_delivery_is_signed_and_carries_the_headers() {
    let rx = Receiver::ok().await;
    let (on_failure, mut failed) = failures();
    let mut h = hook(&rx.url);
    h.secret = Some(SecretString::from(SECRET));
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();

    let n = notification("rv_abc", &["dba"]);
    notifier.notify(n.clone());
    notifier.shutdown(GRACE).await;

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.header("content-type"), "application/json");
    assert_eq!(req.header("x-portcullis-event"), "review.requested");
    assert_eq!(req.header("x-portcullis-delivery"), n.id);
    let ts: i64 = req.header("x-portcullis-timestamp").parse().unwrap();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!((now - ts).abs() < 60, "timestamp {ts}, now {now}");

    // The receiver's recipe: HMAC over "<timestamp>.<raw body>".
    let sig = req.header("x-portcullis-signature");
    assert_eq!(sig, signature(SECRET.as_bytes(), ts, &req.body));
    assert!(verify(SECRET.as_bytes(), ts, &req.body, sig));
    assert!(!verify(b"wrong", ts, &req.body, sig));

    assert_eq!(req.json(), serde_json::to_value(&n).unwrap());
    assert_eq!(req.json()["review"]["id"], "rv_abc");
    assert!(failed.drain().is_empty());
}

#[tokio::test]
async fn unsigned_hook_gets_no_signature_header() {
    let rx = Receiver::ok().await;
    let (on_failure, _failed) = failures();
    let notifier = Notifier::start_with(vec![hook(&rx.url)], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_1", &[]));
    notifier.shutdown(GRACE).await;
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].headers.get("x-portcullis-signature").is_none());
}

#[tokio::test]
async fn slack_format_is_an_incoming_webhook_message() {
    let rx = Receiver::ok().await;
    let (on_failure, _failed) = failures();
    let mut h = hook(&rx.url);
    h.format = Format::Slack;
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();
    notifier.notify(notification("rv_slack", &["dba"]));
    notifier.shutdown(GRACE).await;

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("autogen-analyst wants to run sql.delete"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    assert_eq!(blocks[0]["text"]["text"], text);
    assert_eq!(blocks[1]["type"], "context");
    let context = blocks[1]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains("rv_slack") && context.contains("review.requested"),
        "{context}"
    );
    assert_eq!(blocks[2]["type"], "section");
    assert_eq!(
        blocks[2]["text"]["text"],
        "To approve: `portcullis reviews approve rv_slack --comment ...`"
    );
    // The Slack body replaces the generic one; the headers stay.
    assert!(body.get("review").is_none());
    assert_eq!(got[0].header("x-portcullis-event"), "review.requested");
}

#[tokio::test]
async fn hooks_get_only_their_groups() {
    let dba = Receiver::ok().await;
    let all = Receiver::ok().await;
    let (on_failure, mut failed) = failures();
    let mut dba_hook = hook(&dba.url);
    dba_hook.groups = vec!["dba".into()];
    let notifier =
        Notifier::start_with(vec![dba_hook, hook(&all.url)], on_failure, fast()).unwrap();

    notifier.notify(notification("rv_dba", &["dba"]));
    notifier.notify(notification("rv_sec", &["security"]));
    notifier.notify(notification("rv_both", &["security", "dba"]));
    notifier.shutdown(GRACE).await;

    let ids = |rx: &Receiver| {
        let mut ids: Vec<String> = rx
            .received()
            .iter()
            .map(|r| r.json()["review_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&dba), ["rv_both", "rv_dba"]);
    assert_eq!(ids(&all), ["rv_both", "rv_dba", "rv_sec"]);
    assert!(failed.drain().is_empty());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_failures() {
    let closed = common::closed_url().await;
    // Credentials in the userinfo and the query, as some receivers expect them.
    let url = closed.replace("http://", "http://alice:pw_in_userinfo@") + "?token=tok_in_query";
    let (on_failure, mut failed) = failures();
    let mut h = hook(&url);
    h.secret = Some(SecretString::from(SECRET));
    h.max_attempts = 2;
    let secrets = [SECRET, "pw_in_userinfo", "tok_in_query", "alice"];

    let debug = format!("{h:?}");
    let notifier = Notifier::start_with(vec![h], on_failure, fast()).unwrap();
    let debug_notifier = format!("{notifier:?}");
    notifier.notify(notification("rv_leak", &[]));
    let failure = failed.next().await;

    assert_eq!(failure.attempts, 2);
    assert_eq!(failure.url, closed);
    let shown = [
        debug,
        debug_notifier,
        format!("{failure:?}"),
        failure.error.clone(),
    ];
    for text in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
    assert!(!failure.error.is_empty());
    notifier.shutdown(GRACE).await;
}
