//! The journal of `durability = "crash"`: a recorder's event is in an append-only file before
//! `record` returns, the writer moves it into the store, and what a crash left only in the
//! journal is replayed into the store at the next start.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Env, Flaky, event, settings};
use portcullis_audit::{AuditError, AuditSettings, Auditor, verify};
use portcullis_store::Store;

fn crash_settings(journal: &Path) -> AuditSettings {
    AuditSettings {
        sync_every: Some(Duration::from_millis(20)),
        journal: Some(journal.to_owned()),
        ..settings()
    }
}

/// Every segment file under the journal directory (any node).
fn segments(journal: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(nodes) = std::fs::read_dir(journal) else {
        return found;
    };
    for node in nodes {
        for f in std::fs::read_dir(node.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.file_name().unwrap() != "lock" {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Copies the journal directory, as a `kill -9` at this instant would leave it.
fn snapshot(from: &Path, to: &Path) {
    for seg in segments(from) {
        let node = seg.parent().unwrap().file_name().unwrap();
        // The lock, as the dead gateway's was, is free.
        std::fs::create_dir_all(to.join(node)).unwrap();
        std::fs::copy(&seg, to.join(node).join(seg.file_name().unwrap())).unwrap();
    }
}

/// A gateway whose store refuses every append, with `n` events recorded: they are only in
/// its journal under `env.dir/journal`. The caller forgets the Auditor to "kill" it.
async fn refusing_gateway(env: &Env, n: u64) -> (Auditor, PathBuf) {
    let journal = env.dir.path().join("journal");
    let flaky = Flaky::new(env.store.clone());
    flaky.broken.store(true, Ordering::SeqCst);
    let auditor = Auditor::start(flaky, env.key(), crash_settings(&journal))
        .await
        .unwrap();
    for i in 0..n {
        auditor.record(event(i)).await.unwrap();
    }
    (auditor, journal)
}

async fn stored(store: &dyn Store) -> usize {
    store
        .audit_page("test-node", 0, 100_000)
        .await
        .unwrap()
        .len()
}

both!(recorded_and_submitted_events_reach_the_store_and_the_journal_empties);
/// Waited and submitted events from concurrent recorders end up in the store in one verified
/// chain; a clean shutdown leaves no journal behind.
async fn recorded_and_submitted_events_reach_the_store_and_the_journal_empties(env: Env) {
    let journal = env.dir.path().join("journal");
    let auditor = Auditor::start(env.store.clone(), env.key(), crash_settings(&journal))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let a = auditor.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                a.record(event(t * 1000 + i)).await.unwrap();
                a.submit(event(t * 1000 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The writer moves events without being asked: the store has them before shutdown.
    let mut n = 0;
    for _ in 0..200 {
        n = stored(&*env.store).await;
        if n == 800 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(n, 800);
    auditor.shutdown().await.unwrap();
    assert!(matches!(
        auditor.record(event(1)).await,
        Err(AuditError::Stopped)
    ));
    let report = verify(&*env.store, None).await.unwrap();
    assert!(report.ok, "{:?}", report.nodes);
    assert_eq!(report.nodes[0].events, 800);
    assert!(report.nodes[0].checkpoints > 0);
    assert_eq!(segments(&journal), Vec::<PathBuf>::new());
}

/// A gateway killed while the store refuses its appends: every event a recorder saw succeed
/// was in the journal, and the next start puts it into the store, chained and verified. A
/// torn last line (a write the kill cut short) is ignored.
#[tokio::test]
async fn events_only_in_the_journal_at_a_crash_are_replayed_at_the_next_start() {
    common::on_sqlite(|env| async move {
        let journal = env.dir.path().join("journal");
        let flaky = Flaky::new(env.store.clone());
        let first = Auditor::start(flaky.clone(), env.key(), crash_settings(&journal))
            .await
            .unwrap();
        for i in 0..5 {
            first.record(event(i)).await.unwrap();
        }
        // Wait until the writer has moved those five.
        for _ in 0..200 {
            if stored(&*env.store).await == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stored(&*env.store).await, 5);
        flaky.broken.store(true, Ordering::SeqCst);
        let mut last = None;
        for i in 5..25 {
            // The store is failing, yet the events are durable: the journal has them.
            last = Some(first.record(event(i)).await.unwrap());
            first.submit(event(100 + i)).await.unwrap();
        }
        first.record(event(99)).await.unwrap();
        let killed = env.dir.path().join("after-kill");
        snapshot(&journal, &killed);
        let seg = segments(&killed).pop().unwrap();
        let mut torn = std::fs::read(&seg).unwrap();
        torn.extend_from_slice(br#"{"event":{"kind":"decis"#);
        std::fs::write(&seg, torn).unwrap();
        assert_eq!(stored(&*env.store).await, 5, "nothing reached the store");
        // The killed gateway's writer must not touch the store the next one replays into.
        std::mem::forget(first);

        let second = Auditor::start(env.store.clone(), env.key(), crash_settings(&killed))
            .await
            .unwrap();
        assert_eq!(
            stored(&*env.store).await,
            5 + 41,
            "replayed before start returns"
        );
        let next = second.record(event(1000)).await.unwrap();
        assert_eq!(
            next.seq, 47,
            "the chain continues after the replayed events"
        );
        assert!(last.unwrap().seq < next.seq);
        second.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].events, 47);
        assert_eq!(segments(&killed), Vec::<PathBuf>::new());
    })
    .await;
}

/// A journal line that does not continue the chain (the one after an edited line) stops the
/// replay there: what came before is replayed, the rest is kept aside for inspection, never
/// put into the store, and the chain still verifies.
#[tokio::test]
async fn a_journal_that_breaks_the_chain_is_replayed_up_to_the_break_and_kept() {
    common::on_sqlite(|env| async move {
        let (first, journal) = refusing_gateway(&env, 10).await;
        let killed = env.dir.path().join("after-kill");
        snapshot(&journal, &killed);
        std::mem::forget(first);
        let seg = segments(&killed).pop().unwrap();
        let text = std::fs::read_to_string(&seg).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[6] = lines[6].replace("SELECT 6", "SELECT 666");
        std::fs::write(&seg, lines.join("\n") + "\n").unwrap();

        let second = Auditor::start(env.store.clone(), env.key(), crash_settings(&killed))
            .await
            .unwrap();
        // The edited line itself still links to the one before it; the next one no longer
        // links to it. (A line is only as trustworthy as the file, like a row in the store:
        // checkpoints are what pin the chain.)
        assert_eq!(stored(&*env.store).await, 7, "replayed up to the break");
        second.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        let kept = segments(&killed);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0].to_string_lossy().ends_with(".unreplayed"),
            "{kept:?}"
        );
    })
    .await;
}

/// While the store refuses events the journal holds them, up to a bound; past it, recording
/// fails (the command is refused) instead of growing without limit, and once the store takes
/// events again everything held reaches it.
#[tokio::test]
async fn a_failing_store_fills_a_bounded_backlog_then_refuses_then_recovers() {
    common::on_sqlite(|env| async move {
        let journal = env.dir.path().join("journal");
        let flaky = Flaky::new(env.store.clone());
        let settings = AuditSettings {
            max_batch: 4,
            ..crash_settings(&journal)
        };
        let auditor = Auditor::start(flaky.clone(), env.key(), settings)
            .await
            .unwrap();
        flaky.broken.store(true, Ordering::SeqCst);
        // Let the writer see the failure once, so a full backlog fails rather than waits.
        auditor.record(event(0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut held = 1;
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(5), auditor.record(event(held)))
                .await
                .expect("a full backlog with a failing store fails, it does not wait")
            {
                Ok(_) => held += 1,
                Err(e) => break e,
            }
            assert!(held < 1000, "the backlog is bounded");
        };
        assert!(matches!(err, AuditError::WriteFailed(_)), "{err}");
        assert!(err.to_string().contains("disk full"), "{err}");
        flaky.broken.store(false, Ordering::SeqCst);
        auditor.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].events as u64, held);
    })
    .await;
}

/// One journal, one writer: a second gateway on the same journal is refused, and the
/// command-line recovery leaves a live gateway's journal alone but moves a dead one's.
#[tokio::test]
async fn a_journal_has_one_writer_and_recovery_waits_for_it_to_die() {
    common::on_sqlite(|env| async move {
        let (first, journal) = refusing_gateway(&env, 3).await;
        let err = Auditor::start(env.store.clone(), env.key(), crash_settings(&journal))
            .await
            .unwrap_err();
        assert!(matches!(err, AuditError::JournalBusy { .. }), "{err}");
        let live = portcullis_audit::recover_journal(env.store.clone(), &journal, "test-node")
            .await
            .unwrap();
        assert_eq!(live, None, "a live gateway's journal is its own");
        assert_eq!(stored(&*env.store).await, 0);

        let killed = env.dir.path().join("after-kill");
        snapshot(&journal, &killed);
        std::mem::forget(first);
        let dead = portcullis_audit::recover_journal(env.store.clone(), &killed, "test-node")
            .await
            .unwrap();
        assert_eq!(dead, Some(3));
        let again = portcullis_audit::recover_journal(env.store.clone(), &killed, "test-node")
            .await
            .unwrap();
        assert_eq!(again, Some(0), "nothing is moved twice");
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].events, 3);
    })
    .await;
}

/// A store that still refuses events at shutdown does not hold the shutdown: it fails, and
/// what the store did not take stays in the journal for the next start.
#[tokio::test]
async fn shutdown_with_a_failing_store_leaves_the_journal_for_the_next_start() {
    common::on_sqlite(|env| async move {
        let (first, journal) = refusing_gateway(&env, 4).await;
        let stopped = tokio::time::timeout(Duration::from_secs(5), first.shutdown())
            .await
            .expect("shutdown does not wait for a failing store");
        assert!(stopped.is_err(), "the events did not reach the store");
        assert_eq!(stored(&*env.store).await, 0);
        assert!(!segments(&journal).is_empty(), "the journal is kept");
        // The journal's lock goes with the last handle, as with the process that held it.
        drop(first);
        let second = Auditor::start(env.store.clone(), env.key(), crash_settings(&journal))
            .await
            .unwrap();
        assert_eq!(stored(&*env.store).await, 4);
        second.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
    })
    .await;
}

/// A gateway restarted at `durability = "fsync"` (no journal of its own) still moves into the
/// store what its earlier run at `crash` left only in the journal, before its first event.
#[tokio::test]
async fn a_gateway_restarted_at_fsync_moves_what_the_journal_held() {
    common::on_sqlite(|env| async move {
        let (first, journal) = refusing_gateway(&env, 5).await;
        let killed = env.dir.path().join("after-kill");
        snapshot(&journal, &killed);
        std::mem::forget(first);
        let fsync = AuditSettings {
            journal: Some(killed.clone()),
            ..settings()
        };
        let second = Auditor::start(env.store.clone(), env.key(), fsync)
            .await
            .unwrap();
        assert_eq!(stored(&*env.store).await, 5);
        assert_eq!(second.record(event(5)).await.unwrap().seq, 6);
        second.shutdown().await.unwrap();
        let report = verify(&*env.store, None).await.unwrap();
        assert!(report.ok, "{:?}", report.nodes);
        assert_eq!(segments(&killed), Vec::<PathBuf>::new());
    })
    .await;
}
