//! Test support shared by the OCSF and report tests: a SQLite store in a temporary
//! directory with an Auditor writing to it, and event builders.

// Test support: panicking on a broken set-up is the point.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::Store;
use serde_json::Value;
use tempfile::TempDir;

use crate::{AuditSettings, Auditor, Event, SigningKey, Who};

pub(crate) const NODE: &str = "gw-1";

/// A fresh SQLite store and its state directory (which holds the signing key).
pub(crate) struct Env {
    pub store: Arc<dyn Store>,
    pub dir: TempDir,
}

impl Env {
    pub(crate) async fn sqlite() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = portcullis_store::open(&url).await.unwrap();
        Env { store, dir }
    }

    pub(crate) fn key(&self) -> SigningKey {
        SigningKey::load_or_create(self.dir.path()).unwrap()
    }

    /// An Auditor that signs a checkpoint every 5 events.
    pub(crate) async fn auditor(&self) -> Auditor {
        let settings = AuditSettings {
            node: NODE.to_owned(),
            checkpoint_every_events: 5,
            checkpoint_every: Duration::from_secs(3600),
            max_batch: 64,
            sync_every: None,
            ..AuditSettings::default()
        };
        Auditor::start(self.store.clone(), self.key(), settings)
            .await
            .unwrap()
    }

    /// Records `events` one at a time and shuts the Auditor down (a final checkpoint).
    pub(crate) async fn record_all(&self, events: Vec<Event>) {
        let auditor = self.auditor().await;
        for e in events {
            auditor.record(e).await.unwrap();
        }
        auditor.shutdown().await.unwrap();
    }
}

/// A principal of `kind` (`machine`, `human`, `reviewer`, `requester`).
pub(crate) fn who(subject: &str, kind: &str) -> Who {
    Who {
        subject: subject.to_owned(),
        issuer: "https://idp.example.test".to_owned(),
        client_id: Some(format!("{subject}-client")),
        groups: vec!["agents".to_owned()],
        kind: kind.to_owned(),
        delegation: Vec::new(),
        token_id: Some(format!("tok-{subject}")),
    }
}

/// An event of `kind` with `outcome`; the rest is filled in with struct update syntax.
pub(crate) fn event(kind: &str, outcome: &str) -> Event {
    Event {
        kind: kind.to_owned(),
        outcome: (!outcome.is_empty()).then(|| outcome.to_owned()),
        ..Event::default()
    }
}

/// A decision by `subject` (a machine) on `connection`.
pub(crate) fn decision(subject: &str, connection: &str, action: &str, outcome: &str) -> Event {
    Event {
        who: Some(who(subject, "machine")),
        source_ip: Some("10.1.2.3".to_owned()),
        connection: Some(connection.to_owned()),
        protocol: Some("postgres".to_owned()),
        session_id: Some(format!("s-{subject}")),
        action: Some(action.to_owned()),
        command: Some(format!("{action} command")),
        ..event("decision", outcome)
    }
}

/// The stored record `{"event":..,"node":..,"prev":..,"seq":..,"ts_ms":..,"v":1}` of `e`.
pub(crate) fn record(seq: i64, ts_ms: i64, e: &Event) -> Value {
    serde_json::json!({
        "event": serde_json::to_value(e).unwrap(),
        "node": NODE,
        "prev": crate::GENESIS_PREV,
        "seq": seq,
        "ts_ms": ts_ms,
        "v": 1,
    })
}
