//! A scripted webhook receiver on 127.0.0.1:0 and helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_notify::{
    Backoff, DeliveryFailure, Notification, OnFailure, Options, Webhook, events,
};
use tokio::sync::mpsc;

/// How long a test waits for something that should happen before declaring it lost.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// `302 Found` to this location.
    Redirect(String),
    /// Never answers.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Script {
    log: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
}

/// A webhook receiver that answers with `replies` in order, then with `otherwise` forever.
pub struct Receiver {
    pub url: String,
    script: Arc<Script>,
}

impl Receiver {
    pub async fn start(replies: Vec<Reply>, otherwise: Reply) -> Receiver {
        let script = Arc::new(Script {
            log: Mutex::new(Vec::new()),
            replies: Mutex::new(replies.into()),
            otherwise,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, script }
    }

    /// Answers 200 to everything.
    pub async fn ok() -> Receiver {
        Self::start(Vec::new(), Reply::Status(200)).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.log.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    script.log.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let reply = script
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| script.otherwise.clone());
    match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Reply::RetryAfter(s, secs) => (
            StatusCode::from_u16(s).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Reply::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// A loopback URL nothing listens on (bound, then released).
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// The failures the notifier reports, in order.
pub struct Failures {
    rx: mpsc::UnboundedReceiver<DeliveryFailure>,
}

pub fn failures() -> (OnFailure, Failures) {
    let (tx, rx) = mpsc::unbounded_channel();
    let on_failure: OnFailure = Arc::new(move |f| {
        let _ = tx.send(f);
    });
    (on_failure, Failures { rx })
}

impl Failures {
    pub async fn next(&mut self) -> DeliveryFailure {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("no failure reported in time")
            .expect("failure channel closed")
    }

    /// What has been reported so far, without waiting.
    pub fn drain(&mut self) -> Vec<DeliveryFailure> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }
}

/// Options with a backoff short enough for tests.
pub fn fast() -> Options {
    Options {
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(50),
        },
        ..Options::default()
    }
}

pub fn hook(url: &str) -> Webhook {
    Webhook {
        timeout: Duration::from_secs(2),
        ..Webhook::new(url)
    }
}

pub fn notification(review_id: &str, groups: &[&str]) -> Notification {
    Notification::new(
        events::REQUESTED,
        review_id,
        groups.iter().map(|g| (*g).to_owned()).collect(),
        format!(
            "autogen-analyst wants to run sql.delete on billing ({review_id}): DELETE FROM orders WHERE id = $1"
        ),
        format!("portcullis reviews approve {review_id} --comment ..."),
        serde_json::json!({"id": review_id, "state": "pending", "groups": groups}),
    )
}
