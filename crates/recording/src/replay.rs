//! Replay of a timeline: a recording as human-readable lines on a terminal, at its
//! original pace. The pacing and the text helpers are shared with the terminal replay.
//!
//! Recorded values come from agents and targets, so everything printed is passed through
//! [`clean`]: control characters (escape sequences included) are shown escaped, never sent
//! to the terminal raw.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::RecordingError;
use crate::read::Recording;
use crate::table;
use crate::timeline::{Entry, Header};

/// The fields a summary line shows, in this order, when an entry has them.
const SUMMARY_FIELDS: [&str; 8] = [
    "action",
    "decision",
    "statement",
    "row_count",
    "error",
    "review_id",
    "status",
    "masked",
];

/// Writes the timeline to `out`, sleeping between entries to keep their original spacing
/// divided by `speed` (no sleep when `no_wait`). Waiting starts at the first entry, so a
/// session that idled before its first command replays at once.
pub async fn replay(
    rec: &Recording,
    speed: f64,
    no_wait: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), RecordingError> {
    check_speed(speed)?;
    writeln!(out, "{}", intro(&rec.header)).map_err(RecordingError::Output)?;
    let start = tokio::time::Instant::now();
    let first = rec.entries.first().map_or(0, |e| e.t_ms);
    let wait = |t_ms: u64| {
        let since_first = Duration::from_millis(t_ms.saturating_sub(first));
        pace(start, since_first, speed, no_wait)
    };
    for entry in &rec.entries {
        wait(entry.t_ms).await;
        write_entry(entry, out).map_err(RecordingError::Output)?;
    }
    match &rec.end {
        Some(end) => {
            wait(end.t_ms).await;
            let ended = clean(&end.ended);
            let n = end.entries;
            writeln!(out, "{} end {ended} ({n} entries)", offset_ms(end.t_ms))
        }
        None => writeln!(
            out,
            "-- no end line: the session is still running or was cut off"
        ),
    }
    .and_then(|()| out.flush())
    .map_err(RecordingError::Output)
}

pub(crate) fn check_speed(speed: f64) -> Result<(), RecordingError> {
    if speed.is_finite() && speed > 0.0 {
        Ok(())
    } else {
        Err(RecordingError::InvalidSpeed)
    }
}

/// Sleeps until `offset / speed` after `start`. Deadlines are absolute so the time spent
/// printing does not accumulate as drift; an offset too large to represent (a pathological
/// speed) is not waited for.
pub(crate) async fn pace(start: tokio::time::Instant, offset: Duration, speed: f64, no_wait: bool) {
    if no_wait {
        return;
    }
    let due = Duration::try_from_secs_f64(offset.as_secs_f64() / speed)
        .ok()
        .and_then(|d| start.checked_add(d));
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

/// The first line of a replay, without its newline: `# session … started=…`.
pub(crate) fn intro(header: &Header) -> String {
    let who = match header.principal.get("subject") {
        Some(Value::String(subject)) => clean(subject),
        _ => clean(&header.principal.to_string()),
    };
    let started = u64::try_from(header.started_ms)
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .map_or_else(|| header.started_ms.to_string(), rfc3339);
    let mut line = format!(
        "# session {} protocol={} connection={} principal={} started={started}",
        clean(&header.session_id),
        quote(&header.protocol),
        quote(&header.connection),
        quote(&who),
    );
    if let Some(ip) = &header.source_ip {
        line.push_str(&format!(" source_ip={}", quote(ip)));
    }
    line
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn write_entry(entry: &Entry, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    write!(out, "{} {}", offset_ms(entry.t_ms), clean(&entry.kind))?;
    for field in SUMMARY_FIELDS {
        if let Some(value) = entry.data.get(field) {
            write!(out, " {field}={}", render(value))?;
        }
    }
    writeln!(out)?;
    write_table(&entry.data, out)?;
    // Flushing per line makes a paced replay show each entry when it is due.
    out.flush()
}

/// The `columns` and recorded `rows`, if the entry has them, as an indented table.
fn write_table(data: &Map<String, Value>, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    let Some(Value::Array(columns)) = data.get("columns") else {
        return Ok(());
    };
    let rows = match data.get("rows") {
        Some(Value::Array(rows)) => rows.as_slice(),
        _ => &[],
    };
    for line in table::render(columns, rows) {
        writeln!(out, "    {line}")?;
    }
    let total = data.get("row_count").and_then(Value::as_u64);
    if let Some(total) = total.filter(|&t| t > rows.len() as u64) {
        writeln!(out, "    ({} of {total} rows recorded)", rows.len())?;
    }
    Ok(())
}

/// `[+12.345s]`.
pub(crate) fn offset_ms(t_ms: u64) -> String {
    format!("[+{}.{:03}s]", t_ms / 1000, t_ms % 1000)
}

/// A summary value: strings as text (quoted when they hold spaces), the rest as compact
/// JSON.
fn render(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        other => clean(&other.to_string()),
    }
}

/// Cleans a string and wraps it in double quotes when it is empty or holds spaces or
/// quotes, so `key=value` pairs stay unambiguous.
pub(crate) fn quote(s: &str) -> String {
    let cleaned = clean(s);
    if cleaned.is_empty() || cleaned.contains(|c: char| c.is_whitespace() || c == '"') {
        format!("\"{}\"", cleaned.replace('"', "\\\""))
    } else {
        cleaned
    }
}

/// Escapes control characters (C0, DEL, C1) so recorded text can neither break the
/// one-line layout nor drive the terminal.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
