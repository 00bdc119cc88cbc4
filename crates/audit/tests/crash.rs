//! An event whose receipt was handed out survives `kill -9` of the process: the Auditor
//! answers only after the commit. The test re-runs this binary as a child that records
//! events and prints each receipt, kills it mid-stream, and checks the store.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use portcullis_audit::{AuditSettings, Auditor, SigningKey, verify};

const DB_ENV: &str = "PORTCULLIS_AUDIT_CRASH_DB";

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(DB_ENV, &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last_acked = 0i64;
    let mut acks = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            last_acked = last_acked.max(seq.parse().unwrap());
            acks += 1;
            if acks == 300 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acks, 300, "the child stopped early");

    let store = portcullis_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let tail = store.audit_tail("local").await.unwrap().unwrap();
    assert!(
        tail.seq >= last_acked,
        "acked {last_acked}, stored {}",
        tail.seq
    );
    let report = verify(&*store, None).await.unwrap();
    assert!(report.ok, "{:?}", report.nodes);
}

/// The child half of the test above; does nothing unless started by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by acknowledged_events_survive_kill_9"]
async fn crash_child() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let url = format!("sqlite://{}", std::path::Path::new(&db).display());
    let store = portcullis_store::open(&url).await.unwrap();
    let key = SigningKey::generate().unwrap();
    let auditor = Auditor::start(store, key, AuditSettings::default())
        .await
        .unwrap();
    let recorders: Vec<_> = (0..8u64)
        .map(|t| {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let seq = auditor
                        .record(common::event(t * 1_000_000 + i))
                        .await
                        .unwrap()
                        .seq;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {seq}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for r in recorders {
        r.await.unwrap();
    }
}
