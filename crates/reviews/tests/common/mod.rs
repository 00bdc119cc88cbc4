//! Shared set-up for the review tests: a store on either backend, a sink that records what
//! it hears, and builders for requests and reviewers.

// Test support: panicking on a broken set-up is the point, and not every test binary uses
// every helper.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_reviews::{
    Change, NewReview, Requester, Review, ReviewSettings, ReviewSink, Reviewer, Reviews, Status,
    binding,
};
use portcullis_store::{Store, open, testing::with_postgres};

/// An instant in 2023, for tests that do not wait on the clock.
pub const NOW: i64 = 1_700_000_000_000;
/// The default TTL in ms.
pub const HOUR: i64 = 3_600_000;

/// A store plus what tests need around it.
pub struct Env {
    pub store: Arc<dyn Store>,
    pub sink: Arc<Recorder>,
}

impl Env {
    /// A review service on this store with default settings and the recording sink.
    pub fn reviews(&self) -> Reviews {
        self.reviews_with(ReviewSettings::default())
    }

    pub fn reviews_with(&self, settings: ReviewSettings) -> Reviews {
        Reviews::new(self.store.clone(), settings, self.sink.clone())
    }

    /// Another gateway node on the same store (its own waiters and locks).
    pub fn other_node(&self, poll: Duration) -> Reviews {
        let settings = ReviewSettings {
            poll,
            ..ReviewSettings::default()
        };
        Reviews::new(self.store.clone(), settings, self.sink.clone())
    }
}

/// One change the sink heard: (review id, status after, change kind, who).
pub type Heard = (String, Status, &'static str, Option<String>);

/// Every change the sink heard, in order.
#[derive(Default)]
pub struct Recorder {
    pub heard: Mutex<Vec<Heard>>,
}

impl Recorder {
    /// The changes heard for one review, as (kind, status) pairs.
    pub fn of(&self, id: &str) -> Vec<(&'static str, Status)> {
        let heard = self.heard.lock().unwrap();
        heard
            .iter()
            .filter(|h| h.0 == id)
            .map(|h| (h.2, h.1))
            .collect()
    }
}

#[async_trait::async_trait]
impl ReviewSink for Recorder {
    async fn changed(&self, review: &Review, change: &Change) {
        let (kind, who) = match change {
            Change::Requested => ("requested", None),
            Change::Approved { by, .. } => ("approved", Some(by.subject.clone())),
            Change::Denied { by, .. } => ("denied", Some(by.subject.clone())),
            Change::Expired => ("expired", None),
            Change::Executed => ("executed", None),
        };
        // A small delay widens the window in which out-of-order reports would show.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let entry = (review.id.clone(), review.status, kind, who);
        self.heard.lock().unwrap().push(entry);
    }
}

pub fn agent() -> Requester {
    Requester {
        subject: "agent-7".into(),
        issuer: "https://idp.example".into(),
        client_id: Some("autogen".into()),
    }
}

/// A request by `agent()` to run `command` on `prod`, reviewed by `dba`.
pub fn new_review(command: &str, approvals: u32) -> NewReview {
    let requester = agent();
    NewReview {
        binding: binding(&requester, "prod", command, &[Some(b"42"), None]),
        requester,
        connection: "prod".into(),
        action: "sql.delete".into(),
        command: command.into(),
        policies: vec!["deletes-need-approval".into()],
        reviewers: vec!["dba".into()],
        approvals,
        session_id: Some("s-1".into()),
        run_id: Some("run-1".into()),
        tool_call_id: Some("call-1".into()),
    }
}

pub fn reviewer(subject: &str, groups: &[&str]) -> Reviewer {
    Reviewer {
        subject: subject.into(),
        issuer: "https://idp.example".into(),
        client_id: Some(format!("console-{subject}")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

pub fn dba(subject: &str) -> Reviewer {
    reviewer(subject, &["dba"])
}

/// Runs `test` on a fresh SQLite file in a temporary directory.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = open(&url).await.unwrap();
    test(Env {
        store,
        sink: Arc::default(),
    })
    .await;
}

/// Runs `test` on a fresh PostgreSQL database, dropped afterwards.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres(|store, _url| async move {
        test(Env {
            store,
            sink: Arc::default(),
        })
        .await;
    })
    .await;
}

/// Generates a SQLite and a PostgreSQL test from `async fn $name(env: Env)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::common::on_sqlite(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::common::on_postgres(super::$name).await;
            }
        }
    };
}
