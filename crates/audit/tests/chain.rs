//! The Auditor's behaviour: round trip, restart, concurrency, failures, checkpoints, export.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Env, Flaky, event, settings, sha256_hex};
use portcullis_audit::{AuditError, Auditor, Event, GENESIS_PREV, export_jsonl, verify};
use portcullis_store::AuditRow;

both!(round_trip_and_verify);
async fn round_trip_and_verify(env: Env) {
    let receipts = env.record_run(1, 3).await;
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let first = env.row(1).await;
    assert_eq!(first.prev_hash, GENESIS_PREV);
    assert_eq!(first.hash, receipts[0].hash);
    assert_eq!(first.hash, sha256_hex(&first.body));
    assert_eq!(env.row(2).await.prev_hash, receipts[0].hash);

    // The body is the documented canonical record.
    let body: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["v"], 1);
    assert_eq!(body["node"], "test-node");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["prev"], GENESIS_PREV);
    assert_eq!(body["ts_ms"], first.ts_ms);
    let stored: Event = serde_json::from_value(body["event"].clone()).unwrap();
    assert_eq!(stored, event(1));
    // Empty fields are left out; keys are sorted; there is no whitespace.
    assert!(!first.body.contains("\"who\""));
    assert!(!first.body.contains("\": ") && !first.body.contains(", \""));
    assert!(
        first
            .body
            .starts_with(r#"{"event":{"action":"sql.select","command":"SELECT 1","#)
    );
    assert!(!first.body.contains("reason_code"));

    let report = verify(&*env.store, Some(&env.key().public_key()))
        .await
        .unwrap();
    assert!(report.ok);
    assert_eq!(report.nodes[0].events, 3);
    assert_eq!(report.nodes[0].checkpoints, 1, "the shutdown checkpoint");
}

both!(restart_continues_the_chain);
async fn restart_continues_the_chain(env: Env) {
    let first = env.record_run(1, 5).await;
    let second = env.record_run(6, 5).await;
    assert_eq!(second[0].seq, 6);
    assert_eq!(env.row(6).await.prev_hash, first[4].hash);
    let report = verify(&*env.store, Some(&env.key().public_key()))
        .await
        .unwrap();
    assert!(report.ok, "{:?}", report.nodes);
    assert_eq!(
        (report.nodes[0].events, report.nodes[0].checkpoints),
        (10, 2)
    );
}

both!(concurrent_recorders_share_one_chain);
async fn concurrent_recorders_share_one_chain(env: Env) {
    let auditor = env.auditor().await;
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..150 {
                    seqs.push(auditor.record(event(t * 1000 + i)).await.unwrap().seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    auditor.shutdown().await.unwrap();
    seqs.sort_unstable();
    // More events than one page of verify and export, so both page.
    assert_eq!(seqs, (1..=2400).collect::<Vec<_>>());
    let report = verify(&*env.store, None).await.unwrap();
    assert!(report.ok, "{:?}", report.nodes);
    assert_eq!(report.nodes[0].signed_seq, 2400);
    let mut out = Vec::new();
    assert_eq!(
        export_jsonl(&*env.store, None, None, &mut out)
            .await
            .unwrap(),
        2400
    );
}

both!(export_lines_are_the_stored_records);
async fn export_lines_are_the_stored_records(env: Env) {
    let receipts = env.record_run(1, 12).await;
    let mut out = Vec::new();
    let n = export_jsonl(&*env.store, None, None, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 12);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 12);
    for (line, receipt) in lines.iter().zip(&receipts) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["seq"], receipt.seq);
        // A line is the hashed record byte for byte.
        assert_eq!(sha256_hex(line), receipt.hash);
    }
    let ts = env.row(1).await.ts_ms;
    let mut none = Vec::new();
    let n = export_jsonl(&*env.store, Some(ts + 3_600_000), None, &mut none)
        .await
        .unwrap();
    assert_eq!((n, none.len()), (0, 0));
    let mut all = Vec::new();
    let n = export_jsonl(&*env.store, Some(ts), Some(i64::MAX), &mut all)
        .await
        .unwrap();
    assert_eq!(n, 12);
}

both!(nodes_keep_separate_chains);
async fn nodes_keep_separate_chains(env: Env) {
    for node in ["gw-a", "gw-b"] {
        let settings = portcullis_audit::AuditSettings {
            node: node.to_owned(),
            ..settings()
        };
        let auditor = Auditor::start(env.store.clone(), env.key(), settings)
            .await
            .unwrap();
        for i in 0..3 {
            assert_eq!(auditor.record(event(i)).await.unwrap().seq, i as i64 + 1);
        }
        auditor.shutdown().await.unwrap();
    }
    let report = verify(&*env.store, Some(&env.key().public_key()))
        .await
        .unwrap();
    assert!(report.ok);
    let names: Vec<_> = report.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["gw-a", "gw-b"]);
}

both!(empty_store_verifies);
async fn empty_store_verifies(env: Env) {
    let report = verify(&*env.store, None).await.unwrap();
    assert!(report.ok && report.nodes.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json, serde_json::json!({"ok": true, "nodes": []}));
}

#[tokio::test]
async fn time_based_checkpoint_signs_new_events() {
    common::on_sqlite(|env| async move {
        let settings = portcullis_audit::AuditSettings {
            checkpoint_every: Duration::from_millis(100),
            checkpoint_every_events: 1_000_000,
            ..settings()
        };
        let auditor = Auditor::start(env.store.clone(), env.key(), settings)
            .await
            .unwrap();
        for i in 0..3 {
            auditor.record(event(i)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let cps = env.store.checkpoints("test-node").await.unwrap();
        assert_eq!(cps.iter().map(|c| c.seq).collect::<Vec<_>>(), [3]);
        // Nothing new: shutdown adds no checkpoint.
        auditor.shutdown().await.unwrap();
        assert_eq!(env.store.checkpoints("test-node").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn record_after_shutdown_fails_closed() {
    common::on_sqlite(|env| async move {
        let auditor = env.auditor().await;
        auditor.record(event(1)).await.unwrap();
        auditor.shutdown().await.unwrap();
        auditor.shutdown().await.unwrap();
        let err = auditor.clone().record(event(2)).await.unwrap_err();
        assert!(matches!(err, AuditError::Stopped), "{err}");
    })
    .await;
}

#[tokio::test]
async fn invalid_node_names_are_refused() {
    common::on_sqlite(|env| async move {
        for node in ["", "a\nb", &"x".repeat(129)] {
            let settings = portcullis_audit::AuditSettings {
                node: node.to_owned(),
                ..settings()
            };
            let err = Auditor::start(env.store.clone(), env.key(), settings)
                .await
                .unwrap_err();
            assert!(matches!(err, AuditError::InvalidNode(_)), "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn failed_write_rejects_the_batch_and_the_chain_recovers() {
    common::on_sqlite(|env| async move {
        let flaky = Flaky::new(env.store.clone());
        let auditor = Auditor::start(flaky.clone(), env.key(), settings())
            .await
            .unwrap();
        assert_eq!(auditor.record(event(1)).await.unwrap().seq, 1);
        flaky.broken.store(true, Ordering::SeqCst);
        let err = auditor.record(event(2)).await.unwrap_err();
        assert!(matches!(err, AuditError::WriteFailed(_)), "{err}");
        assert!(err.to_string().contains("disk full"));
        flaky.broken.store(false, Ordering::SeqCst);
        // The failed event took no seq; the chain continues from the stored tail.
        assert_eq!(auditor.record(event(3)).await.unwrap().seq, 2);
        auditor.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].events, 2);
    })
    .await;
}

/// At `durability = "crash"` the writer fsyncs acknowledged events within `sync_every`, even
/// while events keep arriving, and does nothing while nothing waits for a sync.
#[tokio::test]
async fn crash_durability_syncs_within_the_interval() {
    common::on_sqlite(|env| async move {
        let flaky = Flaky::new(env.store.clone());
        let every = Duration::from_millis(30);
        let settings = portcullis_audit::AuditSettings {
            sync_every: Some(every),
            ..settings()
        };
        let auditor = Auditor::start(flaky.clone(), env.key(), settings)
            .await
            .unwrap();
        let syncs = || flaky.syncs.load(Ordering::SeqCst);
        tokio::time::sleep(every * 3).await;
        assert_eq!(syncs(), 0, "nothing written, nothing to sync");
        auditor.record(event(1)).await.unwrap();
        tokio::time::sleep(every * 4).await;
        assert_eq!(syncs(), 1, "one sync for the one event");
        // A steady stream: the bound holds although the queue is never idle.
        let started = std::time::Instant::now();
        while started.elapsed() < every * 10 {
            auditor.record(event(2)).await.unwrap();
        }
        assert!(
            syncs() >= 4,
            "synced every interval under load: {}",
            syncs()
        );
        auditor.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
    })
    .await;
}

both!(submitted_events_follow_what_they_were_submitted_after_and_are_written_unprompted);
/// Events recorded without waiting do not wake the writer, but they are still written: with
/// the next waited event, ahead of it; within `later_every` when nothing else comes; and at
/// shutdown. After shutdown, submitting fails rather than losing the event silently.
async fn submitted_events_follow_what_they_were_submitted_after_and_are_written_unprompted(
    env: Env,
) {
    let auditor = env.auditor().await;
    let kinds = |rows: &[AuditRow]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                body["event"]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    let named = |detail: &str| Event {
        kind: "test".into(),
        detail: Some(detail.into()),
        ..Event::default()
    };
    auditor.record(named("d1")).await.unwrap();
    auditor.submit(named("r1")).await.unwrap();
    auditor.record(named("d2")).await.unwrap();
    let rows = env.store.audit_page("test-node", 0, 100).await.unwrap();
    assert_eq!(kinds(&rows), ["d1", "r1", "d2"]);

    // Nothing waited comes: the timer writes it.
    auditor.submit(named("r2")).await.unwrap();
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = env.store.audit_page("test-node", 0, 100).await.unwrap();
        if rows.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kinds(&rows), ["d1", "r1", "d2", "r2"]);

    auditor.submit(named("r3")).await.unwrap();
    auditor.shutdown().await.unwrap();
    let rows = env.store.audit_page("test-node", 0, 100).await.unwrap();
    assert_eq!(kinds(&rows)[4], "r3", "shutdown writes what was submitted");
    assert!(matches!(
        auditor.submit(named("r4")).await,
        Err(AuditError::Stopped)
    ));
    assert!(verify(&*env.store, None).await.unwrap().ok);
}
