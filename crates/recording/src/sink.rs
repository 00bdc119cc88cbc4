//! What the writer task knows of a session's format: how the session's records become
//! lines, and how its end is written. The writer itself (queue, buffers, hashing,
//! flushing, fsync) is the same for every format.

use std::time::Duration;

use crate::cast::{self, END_MARKER_PREFIX, MAX_EVENT_TEXT, MAX_MARKER_TEXT};
use crate::error::RecordingError;
use crate::format::Format;
use crate::timeline;
use crate::utf8::Utf8Stream;

/// One thing a session recorded, on its way through the queue.
pub(crate) enum Record {
    /// A timeline entry line, already encoded by the session: no state spans entries, so
    /// the encoding cost stays with the session that records.
    Line(Vec<u8>),
    /// A terminal event, at this offset from the session's start. Encoded by the writer,
    /// which holds the state that spans events (the UTF-8 carry, the last time).
    Terminal(Duration, TermEvent),
}

impl Record {
    /// About how many bytes it holds, for the inbox's bound.
    pub(crate) fn size(&self) -> usize {
        match self {
            Record::Line(line) => line.len(),
            Record::Terminal(_, TermEvent::Output(b) | TermEvent::Input(b)) => b.len() + 16,
            Record::Terminal(_, TermEvent::Marker(label)) => label.len() + 16,
            Record::Terminal(_, TermEvent::Resize { .. }) => 32,
        }
    }
}

/// A terminal event as a door hands it over.
pub(crate) enum TermEvent {
    Output(Vec<u8>),
    Input(Vec<u8>),
    Resize { cols: u16, rows: u16 },
    Marker(String),
}

/// How a session ended: written by `finish` as the format's end.
pub(crate) struct Ending {
    pub at: Duration,
    pub ended: String,
}

/// A session's encoder in the writer task.
pub(crate) enum Sink {
    Timeline { entries: u64 },
    Cast(CastSink),
}

#[derive(Default)]
pub(crate) struct CastSink {
    entries: u64,
    /// The time of the last event written, in microseconds: events queued out of order by
    /// concurrent callers are written at this time rather than earlier, so times never
    /// decrease in the file.
    last_us: u64,
    output: Utf8Stream,
    input: Utf8Stream,
}

impl Sink {
    pub(crate) fn new(format: Format) -> Sink {
        match format {
            Format::Timeline => Sink::Timeline { entries: 0 },
            Format::Asciicast => Sink::Cast(CastSink::default()),
        }
    }

    /// Entry or event lines written so far (headers and ends not counted).
    pub(crate) fn entries(&self) -> u64 {
        match self {
            Sink::Timeline { entries } => *entries,
            Sink::Cast(cast) => cast.entries,
        }
    }

    /// The bytes `record` adds to the file: zero or more complete lines. A record of the
    /// other format cannot be queued by a session (its methods pick by format); were one
    /// to arrive it is dropped.
    pub(crate) fn encode(&mut self, record: Record) -> Vec<u8> {
        match (self, record) {
            (Sink::Timeline { entries }, Record::Line(line)) => {
                *entries += 1;
                line
            }
            (Sink::Cast(cast), Record::Terminal(at, event)) => cast.encode(at, event),
            _ => Vec::new(),
        }
    }

    /// The format's end: the timeline's end line, or the cast's end marker after whatever
    /// incomplete UTF-8 was still carried.
    pub(crate) fn end(&mut self, ending: &Ending) -> Result<Vec<u8>, RecordingError> {
        match self {
            Sink::Timeline { entries } => {
                let t_ms = u64::try_from(ending.at.as_millis()).unwrap_or(u64::MAX);
                timeline::encode_end(t_ms, &ending.ended, *entries)
            }
            Sink::Cast(cast) => cast.end(ending),
        }
    }
}

impl CastSink {
    fn encode(&mut self, at: Duration, event: TermEvent) -> Vec<u8> {
        let t_us = self.time(at);
        let mut out = Vec::new();
        match event {
            TermEvent::Output(bytes) => {
                let text = self.output.decode(&bytes);
                self.text_events(t_us, "o", &text, &mut out);
            }
            TermEvent::Input(bytes) => {
                let text = self.input.decode(&bytes);
                self.text_events(t_us, "i", &text, &mut out);
            }
            TermEvent::Resize { cols, rows } => {
                self.event(t_us, "r", &format!("{cols}x{rows}"), &mut out);
            }
            TermEvent::Marker(label) => {
                self.event(t_us, "m", &cast::door_marker(&label), &mut out);
            }
        }
        out
    }

    fn end(&mut self, ending: &Ending) -> Result<Vec<u8>, RecordingError> {
        let t_us = self.time(ending.at);
        let mut out = Vec::new();
        let output = self.output.finish();
        self.text_events(t_us, "o", &output, &mut out);
        let input = self.input.finish();
        self.text_events(t_us, "i", &input, &mut out);
        let ended = cast::cut(&ending.ended, MAX_MARKER_TEXT);
        out.extend(cast::encode_event(
            t_us,
            "m",
            &format!("{END_MARKER_PREFIX}{ended}"),
        )?);
        Ok(out)
    }

    fn time(&mut self, at: Duration) -> u64 {
        let t_us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX);
        self.last_us = self.last_us.max(t_us);
        self.last_us
    }

    /// Text as one event, or several with the same time when it is too long for one line.
    fn text_events(&mut self, t_us: u64, code: &str, mut text: &str, out: &mut Vec<u8>) {
        while !text.is_empty() {
            let piece = cast::cut(text, MAX_EVENT_TEXT);
            self.event(t_us, code, piece, out);
            text = &text[piece.len()..];
        }
    }

    fn event(&mut self, t_us: u64, code: &str, data: &str, out: &mut Vec<u8>) {
        match cast::encode_event(t_us, code, data) {
            Ok(line) => {
                out.extend(line);
                self.entries += 1;
            }
            Err(_) => tracing::warn!(code, "terminal event cannot be encoded; dropped"),
        }
    }
}
