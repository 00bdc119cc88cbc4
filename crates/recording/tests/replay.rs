//! Replay: the text a terminal shows, and its pacing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{data, header};
use portcullis_recording::{End, Entry, Recording, RecordingError, replay};
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
