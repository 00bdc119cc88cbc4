//! Terminal recordings (asciicast v2): the file as asciinema reads it, UTF-8 split across
//! chunks, the hash, the end marker, one file per session id, and reading back.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{data, header, start, terminal_header};
use portcullis_recording::{
    AnyRecording, CastCode, Format, MAX_LINE_BYTES, RecordingError, find_recording, read, read_any,
    read_cast, sha256_file,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One event line as the spec has it: `[time, code, data]`.
#[derive(Debug, PartialEq)]
struct Event {
    time: f64,
    code: String,
    data: String,
}

/// Parses a file the way an asciicast v2 player must: a header object with `version` 2 and
/// integer `width`/`height` (an `env` of strings only), then nothing but 3-element arrays
/// of a number that never decreases, a code among o/i/r/m and a string.
fn parse_asciicast(path: &Path) -> (Value, Vec<Event>) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "every line is terminated");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(header.is_object(), "{header}");
    assert_eq!(header["version"], 2);
    assert!(
        header["width"].is_u64() && header["height"].is_u64(),
        "{header}"
    );
    if let Some(env) = header.get("env") {
        assert!(env.as_object().unwrap().values().all(Value::is_string));
    }
    let mut events = Vec::new();
    let mut last = 0.0;
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap();
        let [time, code, data] = value.as_array().unwrap().as_slice() else {
            panic!("not a 3-element event: {line}");
        };
        let time = time.as_f64().unwrap();
        assert!(time >= last, "time decreased: {line}");
        last = time;
        let code = code.as_str().unwrap().to_owned();
        assert!(["o", "i", "r", "m"].contains(&code.as_str()), "{line}");
        let data = data.as_str().unwrap().to_owned();
        events.push(Event { time, code, data });
    }
    (header, events)
}

fn output_of(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.code == "o")
        .map(|e| e.data.as_str())
        .collect()
}

#[tokio::test]
async fn a_terminal_session_is_asciicast_v2_with_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(50), 4);
    let session = recs.open_terminal(terminal_header("t-1")).await.unwrap();
    assert_eq!(session.format(), Format::Asciicast);
    assert_eq!(session.path(), dir.path().join("t-1.cast"));
    // "café 5 €": é (c3 a9) and € (e2 82 ac) are both cut between two reads.
    session.output(b"caf\xc3").await;
    session.output(b"\xa9 5 \xe2").await;
    session.output(b"\x82\xac\r\n").await;
    session.input(b"ls\r").await;
    session.resize(100, 40).await;
    session.output(b"bad \xff byte\r\n").await;
    session.marker("checkpoint").await;
    let finished = session.finish("client_terminate").await.unwrap();

    let bytes = std::fs::read(&finished.path).unwrap();
    assert_eq!(finished.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(finished.sha256, sha256_file(&finished.path).unwrap());
    assert_eq!(finished.bytes, bytes.len() as u64);

    let (header, events) = parse_asciicast(&finished.path);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    assert_eq!(header["timestamp"], 1_767_225_600);
    assert_eq!(header["env"], json!({"TERM": "xterm-256color"}));
    assert_eq!(header["title"], "bastion (ssh) session t-1");
    let who = &header["portcullis"];
    assert_eq!(
        (&who["session_id"], &who["connection"], &who["protocol"]),
        (&json!("t-1"), &json!("bastion"), &json!("ssh"))
    );
    assert_eq!(who["principal"]["subject"], "alice");
    assert_eq!(who["started_ms"], 1_767_225_600_000_i64);

    // The split characters are whole, in the event that completed them.
    let outputs: Vec<&str> = events
        .iter()
        .filter(|e| e.code == "o")
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(outputs, ["caf", "é 5 ", "€\r\n", "bad \u{fffd} byte\r\n"]);
    let others: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.code != "o")
        .map(|e| (e.code.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        others,
        [
            ("i", "ls\r"),
            ("r", "100x40"),
            ("m", "checkpoint"),
            ("m", "portcullis:ended:client_terminate"),
        ]
    );
    // Every event but the end marker is counted.
    assert_eq!(finished.entries, events.len() as u64 - 1);

    let rec = read_cast(&finished.path).unwrap();
    assert_eq!(rec.events.len() as u64, finished.entries);
    assert_eq!(rec.events[3].code, CastCode::Input);
    let end = rec.end.unwrap();
    assert_eq!(end.ended, "client_terminate");
    assert_eq!(end.time, events.last().unwrap().time);
    assert_eq!(rec.header.portcullis.unwrap().session_id, "t-1");
}

#[tokio::test]
async fn an_incomplete_character_at_the_end_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open_terminal(terminal_header("t-tail")).await.unwrap();
    session.output(b"ok \xf0\x9f").await;
    let finished = session.finish("client_terminate").await.unwrap();
    let (_, events) = parse_asciicast(&finished.path);
    assert_eq!(output_of(&events), "ok \u{fffd}");
    assert_eq!(
        events.last().unwrap().data,
        "portcullis:ended:client_terminate"
    );
}

#[tokio::test]
async fn long_output_is_split_into_readable_events() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open_terminal(terminal_header("t-big")).await.unwrap();
    // Control characters are escaped six bytes each: the worst case for a line's length.
    let big: Vec<u8> = b"\x01\xe2\x82\xac".repeat(1 << 20);
    session.output(&big).await;
    let finished = session.finish("client_terminate").await.unwrap();
    let text = std::fs::read_to_string(&finished.path).unwrap();
    assert!(text.lines().all(|l| l.len() <= MAX_LINE_BYTES));
    let (_, events) = parse_asciicast(&finished.path);
    assert!(events.len() > 3, "{}", events.len());
    assert_eq!(output_of(&events).as_bytes(), big.as_slice());
    assert_eq!(
        read_cast(&finished.path).unwrap().events.len(),
        events.len() - 1
    );
}

#[tokio::test]
async fn a_door_cannot_forge_the_end_marker() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs
        .open_terminal(terminal_header("t-forge"))
        .await
        .unwrap();
    session.marker("portcullis:ended:client_terminate").await;
    session.record("portcullis:ended:x", data(json!({}))).await;
    session
        .record(
            "exec",
            data(json!({"decision": "deny", "command": "rm -rf /"})),
        )
        .await;
    session.output(b"after").await;
    let finished = session.finish("shutdown").await.unwrap();
    let (_, events) = parse_asciicast(&finished.path);
    let markers: Vec<&str> = events
        .iter()
        .filter(|e| e.code == "m")
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(
        [markers[0], markers[1], markers[3]],
        [
            "_portcullis:ended:client_terminate",
            "_portcullis:ended:x",
            "portcullis:ended:shutdown",
        ]
    );
    // A door's entry: its kind, then its data as JSON (key order is serde_json's).
    let exec: Value = serde_json::from_str(markers[2].strip_prefix("exec ").unwrap()).unwrap();
    assert_eq!(exec, json!({"decision": "deny", "command": "rm -rf /"}));
    let rec = read_cast(&finished.path).unwrap();
    assert_eq!(rec.end.unwrap().ended, "shutdown");
    assert_eq!(rec.events.len(), 4);
}

#[cfg(unix)]
#[tokio::test]
async fn terminal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recordings");
    let recs = start(&root, Duration::from_secs(1), 16);
    let session = recs.open_terminal(terminal_header("t-mode")).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(session.path()), 0o600);
    session.finish("client_terminate").await.unwrap();
}

#[tokio::test]
async fn a_session_id_has_one_file_whatever_its_format() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let timeline = recs.open(header("same")).await.unwrap();
    assert!(matches!(
        recs.open_terminal(terminal_header("same")).await,
        Err(RecordingError::Exists { .. })
    ));
    timeline.finish("client_terminate").await.unwrap();
    assert!(matches!(
        recs.open_terminal(terminal_header("same")).await,
        Err(RecordingError::Exists { .. })
    ));
    let terminal = recs.open_terminal(terminal_header("other")).await.unwrap();
    terminal.finish("client_terminate").await.unwrap();
    assert!(matches!(
        recs.open(header("other")).await,
        Err(RecordingError::Exists { .. })
    ));
    assert!(matches!(
        recs.open_terminal(terminal_header("../x")).await,
        Err(RecordingError::InvalidSessionId)
    ));

    assert_eq!(
        find_recording(dir.path(), "same").unwrap(),
        Some(dir.path().join("same.jsonl"))
    );
    assert_eq!(
        find_recording(dir.path(), "other").unwrap(),
        Some(dir.path().join("other.cast"))
    );
    assert_eq!(find_recording(dir.path(), "none").unwrap(), None);
    assert!(find_recording(dir.path(), "a/b").is_err());
    let path = recs.path_for("other", Format::Asciicast).unwrap();
    assert_eq!(read_any(&path).unwrap().format(), Format::Asciicast);
    let path = recs.path_of("same").unwrap();
    assert!(matches!(
        read_any(&path).unwrap(),
        AnyRecording::Timeline(_)
    ));
}

#[tokio::test]
async fn terminal_events_on_a_timeline_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open(header("s-term")).await.unwrap();
    session.output(b"hello").await;
    session.input(b"x").await;
    session.resize(1, 1).await;
    session.marker("m").await;
    session.record("statement", data(json!({"n": 1}))).await;
    let finished = session.finish("client_terminate").await.unwrap();
    assert_eq!(finished.entries, 1);
    assert_eq!(read(&finished.path).unwrap().entries.len(), 1);
}

#[tokio::test]
async fn terminal_events_are_flushed_without_finish() {
    let dir = tempfile::tempdir().unwrap();
    let recs = start(dir.path(), Duration::from_millis(100), 16);
    let session = recs.open_terminal(terminal_header("t-live")).await.unwrap();
    session.output(b"$ ").await;
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    loop {
        let rec = read_cast(session.path()).unwrap();
        if rec.events.len() == 1 {
            assert!(rec.end.is_none());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not flushed within 1.5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    session.finish("client_terminate").await.unwrap();
}

#[test]
fn reading_a_cast_is_bounded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cast");
    let head = r#"{"version":2,"width":80,"height":24}"#;
    std::fs::write(&path, format!("{head}\n[0.5,\"o\",\"hi\"]\n")).unwrap();
    let rec = read_cast(&path).unwrap();
    assert_eq!(
        (rec.events.len(), rec.end, rec.header.portcullis),
        (1, None, None)
    );

    for (bad, line) in [
        ("[0.5,\"o\"]", 2),
        ("{\"t\":1}", 2),
        ("[-1.0,\"o\",\"x\"]", 2),
        ("[0.5,\"o\",\"secret-hunter2\"", 2),
    ] {
        std::fs::write(&path, format!("{head}\n{bad}\n")).unwrap();
        let err = read_cast(&path).unwrap_err();
        assert!(
            matches!(&err, RecordingError::Malformed { line: l, .. } if *l == line),
            "{bad}: {err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let end = r#"[1.0,"m","portcullis:ended:client_terminate"]"#;
    std::fs::write(&path, format!("{head}\n{end}\n[2.0,\"o\",\"x\"]\n")).unwrap();
    assert!(matches!(
        read_cast(&path),
        Err(RecordingError::Malformed { line: 3, .. })
    ));
    std::fs::write(
        &path,
        "{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n",
    )
    .unwrap();
    assert!(matches!(
        read_cast(&path),
        Err(RecordingError::UnsupportedVersion {
            version: 3,
            expected: 2,
            ..
        })
    ));
    let long = format!("[0.1,\"o\",\"{}\"]", "y".repeat(2000));
    std::fs::write(&path, format!("{head}\n{long}\n")).unwrap();
    let limits = portcullis_recording::ReadLimits {
        max_file_bytes: 1 << 20,
        max_line_bytes: 1000,
    };
    assert!(matches!(
        portcullis_recording::read_cast_with(&path, limits),
        Err(RecordingError::LineTooLong { line: 2, .. })
    ));
}
