//! Group-commit throughput on SQLite with 64 concurrent recorders, each waiting for its
//! receipt before recording again. Run with
//! `cargo test -p portcullis-audit --release --test throughput -- --ignored --nocapture`.
//!
//! Target: at least 20,000 events/s. Measured on the 2-core development VM (ext4, SQLite
//! in WAL with synchronous=FULL, other builds running alongside): 45,000-52,000 events/s,
//! with about 50 events per commit. Before the writer yielded once per batch (see
//! `writer::take_batch`) and before events were encoded in the recording tasks, the same
//! run gave 14,000-20,000 events/s.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::event;
use portcullis_audit::{AuditSettings, Auditor, SigningKey, verify};

const RECORDERS: u64 = 64;
const PER_RECORDER: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "performance measurement; run explicitly"]
async fn sqlite_group_commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
    let settings = AuditSettings {
        checkpoint_every: Duration::from_secs(60),
        ..AuditSettings::default()
    };
    let key = SigningKey::generate().unwrap();
    let auditor = Auditor::start(store.clone(), key, settings).await.unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..RECORDERS)
        .map(|t| {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                for i in 0..PER_RECORDER {
                    auditor.record(event(t * PER_RECORDER + i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    auditor.shutdown().await.unwrap();
    let total = RECORDERS * PER_RECORDER;
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("{total} durable events in {elapsed:.2?}: {rate:.0} events/s");
    let report = verify(&*Arc::clone(&store), None).await.unwrap();
    assert!(report.ok);
    assert_eq!(report.nodes[0].events, total);
}
