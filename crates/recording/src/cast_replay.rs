//! Replay of a terminal recording: the output events written to `out` as the terminal
//! received them, at their original pace, and everything else (the session line, input,
//! resizes, markers, the end) as timeline-style lines on `notes`.
//!
//! Output is written raw, escape sequences included, as asciinema's own player does: that
//! is what a terminal replay is, and it is what the user's terminal showed. Notes go
//! through the same escaping as a timeline replay. Keeping the two apart lets
//! `replay 2>/dev/null` show the bare session and `replay > file` capture it byte for byte.

use std::io::Write;
use std::time::Duration;

use crate::cast::{CastCode, CastEvent, CastHeader};
use crate::cast_read::CastRecording;
use crate::error::RecordingError;
use crate::replay::{check_speed, clean, intro, offset_ms, pace, quote};

/// Writes the output events to `out` and the rest to `notes`, sleeping between events to
/// keep their original spacing divided by `speed` (no sleep when `no_wait`). Waiting
/// starts at the first event, as in a timeline replay.
pub async fn replay_cast(
    rec: &CastRecording,
    speed: f64,
    no_wait: bool,
    out: &mut (dyn Write + Send),
    notes: &mut (dyn Write + Send),
) -> Result<(), RecordingError> {
    check_speed(speed)?;
    writeln!(notes, "{}", cast_intro(&rec.header))
        .and_then(|()| notes.flush())
        .map_err(RecordingError::Output)?;
    let start = tokio::time::Instant::now();
    let first = rec.events.first().map_or(0.0, |e| e.time);
    let wait = |time: f64| {
        let since_first = Duration::try_from_secs_f64(time - first).unwrap_or_default();
        pace(start, since_first, speed, no_wait)
    };
    for event in &rec.events {
        wait(event.time).await;
        write_event(event, out, notes).map_err(RecordingError::Output)?;
    }
    out.flush().map_err(RecordingError::Output)?;
    match &rec.end {
        Some(end) => {
            wait(end.time).await;
            let (at, ended, n) = (at(end.time), clean(&end.ended), rec.events.len());
            writeln!(notes, "{at} end {ended} ({n} events)")
        }
        None => writeln!(
            notes,
            "-- no end marker: the session is still running or was cut off"
        ),
    }
    .and_then(|()| notes.flush())
    .map_err(RecordingError::Output)
}

fn cast_intro(header: &CastHeader) -> String {
    let size = format!("size={}x{}", header.width, header.height);
    match &header.portcullis {
        Some(session) => format!("{} {size}", intro(session)),
        None => match &header.title {
            Some(title) => format!("# asciicast title={} {size}", quote(title)),
            None => format!("# asciicast {size}"),
        },
    }
}

/// Output straight to `out` (flushed, so a paced replay shows it when it is due); any
/// other event as one line on `notes`.
fn write_event(
    event: &CastEvent,
    out: &mut (dyn Write + Send),
    notes: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let data = || quote(&event.data);
    let note = match &event.code {
        CastCode::Output => {
            return out
                .write_all(event.data.as_bytes())
                .and_then(|()| out.flush());
        }
        CastCode::Input => format!("input data={}", data()),
        CastCode::Resize => format!("resize size={}", data()),
        CastCode::Marker => format!("marker label={}", data()),
        CastCode::Other(code) => format!("{} data={}", clean(code), data()),
    };
    writeln!(notes, "{} {note}", at(event.time))?;
    notes.flush()
}

/// `[+12.345s]` for an event time in seconds.
fn at(time: f64) -> String {
    // Float to integer casts saturate; times are non-negative once parsed.
    offset_ms((time * 1000.0) as u64)
}
