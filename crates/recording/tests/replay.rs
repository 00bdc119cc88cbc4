//! Replay: the text a terminal shows, and its pacing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{data, header};
use portcullis_recording::{
    CastCode, CastEnd, CastEvent, CastHeader, CastRecording, End, Entry, Recording, RecordingError,
    replay, replay_any, replay_cast,
};
use serde_json::json;

fn entry(t_ms: u64, kind: &str, fields: serde_json::Value) -> Entry {
    Entry {
        t_ms,
        kind: kind.to_owned(),
        data: data(fields),
    }
}

fn recording(entries: Vec<Entry>, end: Option<End>) -> Recording {
    Recording {
        header: header("s-1"),
        entries,
        end,
    }
}

async fn check(rec: &Recording, expect: &str) {
    let mut out = Vec::new();
    replay(rec, 1.0, true, &mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), expect);
}

#[tokio::test]
async fn replay_prints_summaries_and_tables() {
    let rec = recording(
        vec![
            entry(
                12_345,
                "statement",
                json!({
                "action": "sql.select", "decision": "allow",
                "statement": "SELECT id, email FROM users", "row_count": 3,
                "masked": {"email": 2}, "columns": ["id", {"name": "email", "type": "text"}],
                "rows": [[1, "[EMAIL]"], [22, null]], "other": "not shown"}),
            ),
            entry(
                13_000,
                "statement",
                json!({
                "action": "sql.delete", "decision": "deny", "statement": "DELETE FROM t",
                "error": "denied by no-unbounded-delete"}),
            ),
            entry(14_001, "notice", json!({"review_id": "r-9"})),
        ],
        Some(End {
            t_ms: 20_000,
            ended: "client_terminate".to_owned(),
            entries: 3,
        }),
    );
    check(
        &rec,
        concat!(
            "# session s-1 protocol=postgres connection=orders principal=agent-7 ",
            "started=2026-01-01T00:00:00.000Z source_ip=10.0.0.5\n",
            "[+12.345s] statement action=sql.select decision=allow ",
            "statement=\"SELECT id, email FROM users\" row_count=3 masked={\"email\":2}\n",
            "    id | email\n",
            "    ---+--------\n",
            "    1  | [EMAIL]\n",
            "    22 | NULL\n",
            "    (2 of 3 rows recorded)\n",
            "[+13.000s] statement action=sql.delete decision=deny statement=\"DELETE FROM t\" ",
            "error=\"denied by no-unbounded-delete\"\n",
            "[+14.001s] notice review_id=r-9\n",
            "[+20.000s] end client_terminate (3 entries)\n",
        ),
    )
    .await;
}

#[tokio::test]
async fn replay_escapes_control_characters_and_notes_a_missing_end() {
    let rec = recording(
        vec![entry(
            5,
            "statement",
            json!({
            "statement": "SELECT '\u{1b}[2J'\nFROM t", "columns": ["c\u{9b}"], "rows": [["a\tb"]]}),
        )],
        None,
    );
    let mut out = Vec::new();
    replay(&rec, 1.0, true, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\u{9b}') && !text.contains('\t'));
    assert!(
        text.contains(r#"statement="SELECT '\u{1b}[2J'\nFROM t""#),
        "{text}"
    );
    assert!(
        text.contains("    c\\u{9b}\n") && text.contains("    a\\tb\n"),
        "{text}"
    );
    assert!(text.ends_with("-- no end line: the session is still running or was cut off\n"));
}

#[tokio::test]
async fn replay_keeps_the_spacing_divided_by_speed() {
    let rec = recording(
        vec![
            entry(1_000, "statement", json!({})),
            entry(1_300, "statement", json!({})),
        ],
        None,
    );
    let mut out = Vec::new();
    let started = Instant::now();
    replay(&rec, 3.0, false, &mut out).await.unwrap();
    let took = started.elapsed();
    // 300 ms at speed 3 is 100 ms; the 1 s before the first entry is not waited for.
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(took < Duration::from_millis(900), "{took:?}");

    let started = Instant::now();
    replay(&rec, 3.0, true, &mut Vec::new()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn replay_refuses_a_bad_speed() {
    let rec = recording(vec![], None);
    for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let result = replay(&rec, speed, true, &mut Vec::new()).await;
        assert!(
            matches!(result, Err(RecordingError::InvalidSpeed)),
            "{speed}"
        );
    }
}

#[tokio::test]
async fn replay_reads_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let recs = common::start(dir.path(), Duration::from_secs(1), 16);
    let session = recs.open(header("s-1")).await.unwrap();
    session
        .record(
            "statement",
            data(json!({"action": "sql.select", "columns": ["n"], "rows": [[1]]})),
        )
        .await;
    let finished = session.finish("client_terminate").await.unwrap();
    let rec = portcullis_recording::read(&finished.path).unwrap();
    let mut out = Vec::new();
    replay(&rec, 1.0, true, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("] statement action=sql.select\n    n\n    -\n    1\n"),
        "{text}"
    );
    assert!(
        text.contains("] end client_terminate (1 entries)\n"),
        "{text}"
    );
}

fn cast(events: &[(f64, &str, &str)], end: Option<(f64, &str)>) -> CastRecording {
    let cast_header = CastHeader {
        version: 2,
        width: 80,
        height: 24,
        timestamp: None,
        command: None,
        title: None,
        env: Default::default(),
        portcullis: Some(portcullis_recording::Header {
            protocol: "ssh".to_owned(),
            connection: "bastion".to_owned(),
            ..header("t-1")
        }),
    };
    let code = |c: &str| match c {
        "o" => CastCode::Output,
        "i" => CastCode::Input,
        "r" => CastCode::Resize,
        "m" => CastCode::Marker,
        other => CastCode::Other(other.to_owned()),
    };
    CastRecording {
        header: cast_header,
        events: events
            .iter()
            .map(|(time, c, data)| CastEvent {
                time: *time,
                code: code(c),
                data: (*data).to_owned(),
            })
            .collect(),
        end: end.map(|(time, ended)| CastEnd {
            time,
            ended: ended.to_owned(),
        }),
    }
}

#[tokio::test]
async fn a_terminal_replay_writes_output_raw_and_notes_the_rest() {
    let rec = cast(
        &[
            (0.25, "o", "\u{1b}[1m$ \u{1b}[0m"),
            (1.0, "i", "ls\r"),
            (1.0125, "o", "a  b\r\n"),
            (2.0, "r", "100x40"),
            (2.5, "m", "before exit"),
            (3.0, "x", "\u{1b}"),
        ],
        Some((4.0, "client_terminate")),
    );
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    replay_cast(&rec, 1.0, true, &mut out, &mut notes)
        .await
        .unwrap();
    // Output exactly as the terminal got it, escape sequences included.
    assert_eq!(out, b"\x1b[1m$ \x1b[0ma  b\r\n");
    assert_eq!(
        String::from_utf8(notes).unwrap(),
        concat!(
            "# session t-1 protocol=ssh connection=bastion principal=agent-7 ",
            "started=2026-01-01T00:00:00.000Z source_ip=10.0.0.5 size=80x24\n",
            "[+1.000s] input data=ls\\r\n",
            "[+2.000s] resize size=100x40\n",
            "[+2.500s] marker label=\"before exit\"\n",
            "[+3.000s] x data=\\u{1b}\n",
            "[+4.000s] end client_terminate (6 events)\n",
        )
    );

    let rec = cast(&[], None);
    let mut notes = Vec::new();
    replay_cast(&rec, 1.0, true, &mut Vec::new(), &mut notes)
        .await
        .unwrap();
    assert!(
        String::from_utf8(notes)
            .unwrap()
            .ends_with("-- no end marker: the session is still running or was cut off\n")
    );
    for speed in [0.0, f64::NAN] {
        let result = replay_cast(&rec, speed, true, &mut Vec::new(), &mut Vec::new()).await;
        assert!(matches!(result, Err(RecordingError::InvalidSpeed)));
    }
}

#[tokio::test]
async fn a_terminal_replay_keeps_the_spacing_divided_by_speed() {
    let rec = cast(&[(1.0, "o", "a"), (1.3, "o", "b")], None);
    let mut out = Vec::new();
    let started = Instant::now();
    replay_cast(&rec, 3.0, false, &mut out, &mut Vec::new())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert_eq!(out, b"ab");
}

#[tokio::test]
async fn a_recorded_terminal_session_replays_its_output_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let recs = common::start(dir.path(), Duration::from_secs(1), 2);
    let session = recs
        .open_terminal(common::terminal_header("t-replay"))
        .await
        .unwrap();
    let mut expect = Vec::new();
    for n in 0..200 {
        let chunk = format!("line {n} \u{2713}\r\n").into_bytes();
        // Split every chunk inside the three-byte check mark.
        let cut = chunk.len() - 3;
        session.output(&chunk[..cut]).await;
        session.output(&chunk[cut..]).await;
        if n % 50 == 0 {
            session.input(b"\x03").await;
        }
        expect.extend_from_slice(&chunk);
    }
    let finished = session.finish("client_terminate").await.unwrap();
    let path = portcullis_recording::find_recording(dir.path(), "t-replay")
        .unwrap()
        .unwrap();
    assert_eq!(path, finished.path);
    let rec = portcullis_recording::read_any(&path).unwrap();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    replay_any(&rec, 1.0, true, &mut out, &mut notes)
        .await
        .unwrap();
    assert_eq!(out, expect);
    let notes = String::from_utf8(notes).unwrap();
    assert_eq!(notes.matches("] input data=\\u{3}\n").count(), 4, "{notes}");
    assert!(notes.starts_with("# session t-replay protocol=ssh connection=bastion"));
    assert!(notes.ends_with(&format!(
        "] end client_terminate ({} events)\n",
        finished.entries
    )));

    // A timeline replays through the same call, all of it to `out`.
    let session = recs.open(header("s-any")).await.unwrap();
    session.record("statement", data(json!({"n": 1}))).await;
    let finished = session.finish("client_terminate").await.unwrap();
    let rec = portcullis_recording::read_any(&finished.path).unwrap();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    replay_any(&rec, 1.0, true, &mut out, &mut notes)
        .await
        .unwrap();
    assert!(notes.is_empty());
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with("] end client_terminate (1 entries)\n"),
        "{text}"
    );
}
