//! Crash recovery: interrupted recordings are closed, torn lines cut, hashes returned.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use common::{data, header, start};
use portcullis_recording::{ReadLimits, RecordingError, read, read_with, sha256_file};
use serde_json::json;

/// Records in a runtime that is then torn down without any shutdown, as a killed process
/// would leave it: only what the writer flushed reaches the file.
fn crash_after_recording(dir: &std::path::Path, session_id: &str, entries: u64) -> PathBuf {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = runtime.block_on(async {
        let recs = start(dir, Duration::from_millis(50), 16);
        let session = recs.open(header(session_id)).await.unwrap();
        for n in 0..entries {
            session.record("statement", data(json!({"n": n}))).await;
        }
        // Past one flush interval, then "crash" with the session still open.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = session.path().to_owned();
        std::mem::forget(session);
        path
    });
    runtime.shutdown_background();
    path
}

#[test]
fn recover_closes_a_crashed_recording_and_cuts_the_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_after_recording(dir.path(), "crashed", 3);
    let intact_len = std::fs::metadata(&path).unwrap().len();
    // Half a JSON line, as a write cut short by the crash would leave.
    let torn = br#"{"t_ms":999,"kind":"statement","n":"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();

    // Readable before recovery: the torn tail is ignored, the end is missing.
    let before = read(&path).unwrap();
    assert_eq!((before.entries.len(), before.end), (3, None));

    // A fresh process: a new runtime and a new writer.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let recovered = recs.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    let r = &recovered[0];
    assert_eq!((r.session_id.as_str(), r.entries), ("crashed", 3));
    assert_eq!(r.truncated_bytes, torn.len() as u64);
    assert_eq!(r.path, path);
    assert_eq!(r.sha256, sha256_file(&path).unwrap());

    let after = read(&path).unwrap();
    assert_eq!(after.entries, before.entries);
    let end = after.end.unwrap();
    assert_eq!((end.ended.as_str(), end.entries), ("interrupted", 3));
    assert_eq!(end.t_ms, after.entries[2].t_ms);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(r#""n":{"#) && !text.contains("999"));
    assert!(std::fs::metadata(&path).unwrap().len() > intact_len);

    // Recovery is idempotent: a closed recording is left alone.
    assert!(recs.recover().unwrap().is_empty());
}

#[tokio::test]
async fn recover_skips_finished_live_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(50), 16);
    let done = recs.open(header("done")).await.unwrap();
    let finished = done.finish("client_terminate").await.unwrap();
    let live = recs.open(header("live")).await.unwrap();
    live.record("statement", data(json!({"n": 1}))).await;
    std::fs::write(dir.path().join("notes.txt"), "not a recording").unwrap();
    std::fs::write(dir.path().join("bad.name.jsonl"), "{}\n").unwrap();
    // No complete header: left untouched rather than destroyed.
    std::fs::write(dir.path().join("headless.jsonl"), "{\"v\":1,\"sess").unwrap();

    assert!(recs.recover().unwrap().is_empty());
    assert_eq!(finished.sha256, sha256_file(&finished.path).unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("headless.jsonl")).unwrap(),
        b"{\"v\":1,\"sess"
    );
    let finished_live = live.finish("client_terminate").await.unwrap();
    assert_eq!(read(&finished_live.path).unwrap().end.unwrap().entries, 1);
}

#[tokio::test]
async fn a_recording_with_only_a_header_recovers_with_zero_entries() {
    let dir = tempfile::tempdir().unwrap();
    let line = serde_json::to_string(&header("empty")).unwrap() + "\n";
    std::fs::write(dir.path().join("empty.jsonl"), line).unwrap();
    let recovered = start(dir.path(), Duration::from_secs(1), 16)
        .recover()
        .unwrap();
    assert_eq!((recovered[0].entries, recovered[0].truncated_bytes), (0, 0));
    let end = read(&dir.path().join("empty.jsonl")).unwrap().end.unwrap();
    assert_eq!((end.t_ms, end.entries), (0, 0));
}

#[test]
fn read_is_bounded_and_errors_do_not_quote_contents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.jsonl");
    let head = serde_json::to_string(&header("r")).unwrap();
    let secret_line = r#"{"t_ms":"hunter2-secret","kind":"statement"}"#;
    std::fs::write(&path, format!("{head}\n{secret_line}\n")).unwrap();
    let err = read(&path).unwrap_err();
    assert!(
        matches!(err, RecordingError::Malformed { line: 2, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let long = format!(r#"{{"t_ms":1,"kind":"x","pad":"{}"}}"#, "y".repeat(2000));
    std::fs::write(&path, format!("{head}\n{long}\n")).unwrap();
    let limits = ReadLimits {
        max_file_bytes: 1 << 20,
        max_line_bytes: 1000,
    };
    let err = read_with(&path, limits).unwrap_err();
    assert!(
        matches!(err, RecordingError::LineTooLong { line: 2, .. }),
        "{err}"
    );
    let limits = ReadLimits {
        max_file_bytes: 100,
        max_line_bytes: 1 << 20,
    };
    assert!(matches!(
        read_with(&path, limits),
        Err(RecordingError::TooLarge { .. })
    ));
    let limits = ReadLimits {
        max_file_bytes: 1 << 20,
        max_line_bytes: long.len(),
    };
    assert_eq!(read_with(&path, limits).unwrap().entries.len(), 1);

    std::fs::write(
        &path,
        format!("{head}\n{{\"t_ms\":1,\"ended\":\"x\",\"entries\":0}}\n{long}\n"),
    )
    .unwrap();
    assert!(matches!(
        read(&path),
        Err(RecordingError::Malformed { line: 3, .. })
    ));
    std::fs::write(&path, head.replace("\"v\":1", "\"v\":2") + "\n").unwrap();
    assert!(matches!(
        read(&path),
        Err(RecordingError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn recover_closes_a_crashed_terminal_recording_and_cuts_the_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = runtime.block_on(async {
        let recs = start(dir.path(), Duration::from_millis(50), 16);
        let session = recs
            .open_terminal(common::terminal_header("t-crashed"))
            .await
            .unwrap();
        session.output(b"$ ").await;
        session.input(b"top\r").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        session.output(b"load average: 0.01\r\n").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = session.path().to_owned();
        std::mem::forget(session);
        path
    });
    runtime.shutdown_background();
    // Half an event line, as a write cut short by the crash would leave.
    let torn = br#"[9.5,"o","Tasks: 1"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();
    let before = portcullis_recording::read_cast(&path).unwrap();
    assert_eq!((before.events.len(), before.end.is_none()), (3, true));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let recovered = recs.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    let r = &recovered[0];
    assert_eq!((r.session_id.as_str(), r.entries), ("t-crashed", 3));
    assert_eq!(
        (r.path.as_path(), r.truncated_bytes),
        (path.as_path(), torn.len() as u64)
    );
    assert_eq!(r.sha256, sha256_file(&path).unwrap());

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("Tasks") && text.ends_with('\n'), "{text}");
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last[1], "m");
    assert_eq!(last[2], "portcullis:ended:interrupted");
    let after = portcullis_recording::read_cast(&path).unwrap();
    assert_eq!(after.events, before.events);
    let end = after.end.unwrap();
    assert_eq!(end.ended, "interrupted");
    // At the last event's time: never earlier, so times stay non-decreasing.
    let last_event = after.events.last().unwrap().time;
    assert!(
        end.time >= last_event && end.time - last_event < 1e-5,
        "{end:?}"
    );

    assert!(recs.recover().unwrap().is_empty());
}

#[tokio::test]
async fn recover_handles_both_formats_and_leaves_a_headless_cast_alone() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(3600), 16);
    let timeline = recs.open(header("a-timeline")).await.unwrap();
    timeline.record("statement", data(json!({"n": 1}))).await;
    let terminal = recs
        .open_terminal(common::terminal_header("b-terminal"))
        .await
        .unwrap();
    terminal.output(b"hi").await;
    let done = recs
        .open_terminal(common::terminal_header("c-done"))
        .await
        .unwrap();
    done.finish("client_terminate").await.unwrap();
    drop((timeline, terminal));
    recs.shutdown().await;
    std::fs::write(dir.path().join("headless.cast"), "{\"version\":2,\"wid").unwrap();

    let recovered = start(dir.path(), Duration::from_secs(1), 16)
        .recover()
        .unwrap();
    let ids: Vec<(&str, u64)> = recovered
        .iter()
        .map(|r| (r.session_id.as_str(), r.entries))
        .collect();
    assert_eq!(ids, [("a-timeline", 1), ("b-terminal", 1)]);
    for r in &recovered {
        assert_eq!(r.sha256, sha256_file(&r.path).unwrap());
    }
    assert_eq!(
        std::fs::read(dir.path().join("headless.cast")).unwrap(),
        b"{\"version\":2,\"wid"
    );
}
