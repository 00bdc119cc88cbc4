//! Writing recordings: round trip, hashes, interleaving, flushing and back-pressure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{data, header, start};
use portcullis_recording::{RecordingError, read, sha256_file};
use serde_json::json;

#[tokio::test]
async fn round_trip_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open(header("s-1")).await.unwrap();
    assert_eq!(session.started_ms(), 1_767_225_600_000);
    let statement = json!({"action": "sql.select", "decision": "allow",
        "statement": "SELECT 1", "row_count": 1, "columns": ["x"], "rows": [["1"]]});
    session.record("statement", data(statement.clone())).await;
    session
        .record("notice", data(json!({"message": "line\nbreak"})))
        .await;
    let finished = session.finish("client_terminate").await.unwrap();

    assert_eq!(finished.entries, 2);
    assert_eq!(finished.path, recs.path_of("s-1").unwrap());
    assert_eq!(finished.sha256, sha256_file(&finished.path).unwrap());
    assert_eq!(
        finished.bytes,
        std::fs::metadata(&finished.path).unwrap().len()
    );

    let rec = read(&finished.path).unwrap();
    assert_eq!(rec.header, header("s-1"));
    assert_eq!(rec.entries.len(), 2);
    assert_eq!(rec.entries[0].kind, "statement");
    assert_eq!(
        serde_json::Value::Object(rec.entries[0].data.clone()),
        statement
    );
    assert_eq!(rec.entries[1].data["message"], "line\nbreak");
    assert!(rec.entries[0].t_ms <= rec.entries[1].t_ms);
    let end = rec.end.unwrap();
    assert_eq!((end.ended.as_str(), end.entries), ("client_terminate", 2));
    // Four lines, each terminated: the embedded newline was escaped.
    let text = std::fs::read_to_string(&finished.path).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.ends_with('\n'));
    recs.shutdown().await;
}

#[tokio::test]
async fn reserved_keys_in_data_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open(header("s-reserved")).await.unwrap();
    session
        .record(
            "statement",
            data(json!({"kind": "end", "t_ms": 5, "ok": true})),
        )
        .await;
    let finished = session.finish("client_terminate").await.unwrap();
    let rec = read(&finished.path).unwrap();
    assert_eq!(rec.entries[0].kind, "statement");
    assert_eq!(rec.entries[0].data, data(json!({"ok": true})));
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recordings");
    let recs = start(&root, Duration::from_secs(1), 16);
    let session = recs.open(header("s-mode")).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(session.path()), 0o600);
    session.finish("client_terminate").await.unwrap();
}

#[tokio::test]
async fn interleaved_sessions_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(50), 4);
    let a = recs.open(header("a")).await.unwrap();
    let b = recs.open(header("b")).await.unwrap();
    for i in 0..50 {
        a.record("statement", data(json!({"n": i, "who": "a"})))
            .await;
        b.record("statement", data(json!({"n": i, "who": "b"})))
            .await;
    }
    let fa = a.finish("client_terminate").await.unwrap();
    b.record("statement", data(json!({"n": 50, "who": "b"})))
        .await;
    let fb = b.finish("shutdown").await.unwrap();
    for (finished, who, count) in [(fa, "a", 50), (fb, "b", 51)] {
        assert_eq!(finished.sha256, sha256_file(&finished.path).unwrap());
        let rec = read(&finished.path).unwrap();
        assert_eq!(rec.header.session_id, who);
        assert_eq!(rec.entries.len(), count);
        for (i, entry) in rec.entries.iter().enumerate() {
            assert_eq!(
                (entry.data["n"].as_u64(), entry.data["who"].as_str()),
                (Some(i as u64), Some(who))
            );
        }
    }
}

#[tokio::test]
async fn entries_are_flushed_without_finish() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(200), 16);
    let session = recs.open(header("live")).await.unwrap();
    session
        .record("statement", data(json!({"statement": "SELECT 1"})))
        .await;
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let rec = read(session.path()).unwrap();
        if rec.entries.len() == 1 {
            assert!(rec.end.is_none());
            break;
        }
        assert!(Instant::now() < deadline, "entry not flushed within 1.5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    session.finish("client_terminate").await.unwrap();
}

#[tokio::test]
async fn bad_session_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let long = "x".repeat(129);
    for id in [
        "",
        "../etc/passwd",
        "a/b",
        "a.b",
        "a b",
        "é",
        "a\0b",
        long.as_str(),
    ] {
        assert!(
            matches!(recs.path_of(id), Err(RecordingError::InvalidSessionId)),
            "{id:?}"
        );
        let err = recs.open(header(id)).await.unwrap_err();
        assert!(matches!(err, RecordingError::InvalidSessionId), "{id:?}");
    }
    assert!(recs.path_of("0198c7e2-aaaa_BBBB-1234").is_ok());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_existing_recording_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let first = recs.open(header("dup")).await.unwrap();
    assert!(matches!(
        recs.open(header("dup")).await,
        Err(RecordingError::Exists { .. })
    ));
    let finished = first.finish("client_terminate").await.unwrap();
    assert!(matches!(
        recs.open(header("dup")).await,
        Err(RecordingError::Exists { .. })
    ));
    assert_eq!(read(&finished.path).unwrap().end.unwrap().entries, 0);
}

#[tokio::test]
async fn a_tiny_queue_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(20), 1);
    let session = recs.open(header("flood")).await.unwrap();
    for i in 0..10_000u64 {
        session
            .record(
                "statement",
                data(json!({"n": i, "statement": "SELECT pg_sleep(0)"})),
            )
            .await;
    }
    let finished = session.finish("client_terminate").await.unwrap();
    assert_eq!(finished.entries, 10_000);
    assert_eq!(finished.sha256, sha256_file(&finished.path).unwrap());
    let rec = read(&finished.path).unwrap();
    assert_eq!(rec.entries.len(), 10_000);
    assert!(
        rec.entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.data["n"] == i as u64)
    );
}

/// Entries wake no writer one by one, but a session that records a lot is written before
/// the tick: its inbox asks to be taken once it holds about 64 KiB.
#[tokio::test]
async fn a_busy_session_is_written_before_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(3600), 16);
    let session = recs.open(header("busy")).await.unwrap();
    let filler = "x".repeat(1000);
    for i in 0..300u64 {
        session
            .record("statement", data(json!({"n": i, "statement": filler})))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let on_disk = std::fs::metadata(session.path()).unwrap().len();
        if on_disk >= 64 * 1024 {
            break;
        }
        assert!(Instant::now() < deadline, "only {on_disk} bytes written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finished = session.finish("client_terminate").await.unwrap();
    let rec = read(&finished.path).unwrap();
    assert_eq!(rec.entries.len(), 300);
    assert!(
        rec.entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.data["n"] == i as u64)
    );
}

#[tokio::test]
async fn an_oversized_entry_is_stubbed() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open(header("big")).await.unwrap();
    let huge = "x".repeat(portcullis_recording::MAX_LINE_BYTES);
    session.record("result", data(json!({"blob": huge}))).await;
    let finished = session.finish("client_terminate").await.unwrap();
    let rec = read(&finished.path).unwrap();
    assert_eq!(rec.entries[0].kind, "result");
    assert_eq!(rec.entries[0].data["oversized"], true);
    assert!(rec.entries[0].data.get("blob").is_none());
}

#[tokio::test]
async fn shutdown_flushes_open_sessions_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(3600), 16);
    let session = recs.open(header("open-at-shutdown")).await.unwrap();
    session.record("statement", data(json!({"n": 1}))).await;
    recs.shutdown().await;
    let rec = read(session.path()).unwrap();
    assert_eq!((rec.entries.len(), rec.end), (1, None));
    session.record("statement", data(json!({"n": 2}))).await;
    assert!(matches!(
        session.finish("shutdown").await,
        Err(RecordingError::Stopped)
    ));
    assert!(matches!(
        recs.open(header("late")).await,
        Err(RecordingError::Stopped)
    ));
}

#[tokio::test]
async fn a_dropped_session_is_flushed_and_left_for_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(3600), 16);
    let session = recs.open(header("dropped")).await.unwrap();
    session.record("statement", data(json!({"n": 1}))).await;
    let path = session.path().to_owned();
    drop(session);
    recs.shutdown().await;
    assert_eq!(read(&path).unwrap().entries.len(), 1);
    let recovered = start(dir.path(), Duration::from_secs(1), 16)
        .recover()
        .unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].session_id, "dropped");
}

#[test]
fn start_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let settings = portcullis_recording::RecordingSettings::new(dir.path());
    assert!(matches!(
        portcullis_recording::Recordings::start(settings),
        Err(RecordingError::NoRuntime)
    ));
}
