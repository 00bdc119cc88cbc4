//! The asciicast v2 format of terminal recordings: its header, its event lines and the
//! marker that ends a session (see the crate docs and
//! <https://docs.asciinema.org/manual/asciicast/v2/>).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RecordingError;
use crate::format::encode_line;
use crate::timeline::{FORMAT_VERSION, Header};

/// The asciicast version written in every terminal header.
pub const CAST_VERSION: u32 = 2;

/// Markers starting with this are the crate's own; a door's marker that starts with it is
/// written with a leading `_`, so no door can forge the end of a session.
pub const RESERVED_MARKER_PREFIX: &str = "portcullis:";

/// The end of a terminal session is a marker event with this prefix and the reason, e.g.
/// `portcullis:ended:client_terminate`.
pub const END_MARKER_PREFIX: &str = "portcullis:ended:";

/// The longest event text written in one event line; longer output is split into several
/// events with the same time. Even if every byte were escaped as `\u00XX` the line stays
/// well under [`crate::MAX_LINE_BYTES`].
pub(crate) const MAX_EVENT_TEXT: usize = 1 << 20;

/// The longest marker label kept; players show markers as labels, not documents.
pub(crate) const MAX_MARKER_TEXT: usize = 4096;

/// What a door says about a terminal session when it opens its recording.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminalHeader {
    pub session_id: String,
    /// Wall-clock start of the session, in Unix milliseconds.
    pub started_ms: i64,
    /// The door: `ssh`, ...
    pub protocol: String,
    /// The configured connection name.
    pub connection: String,
    /// Who, as the door describes them (as in [`Header::principal`]).
    pub principal: Value,
    pub source_ip: Option<String>,
    /// Initial terminal size, in columns and rows.
    pub width: u16,
    pub height: u16,
    /// The client's `TERM`, if it sent one (recorded under `env`).
    pub term: Option<String>,
    /// The command run instead of a shell (`ssh host cmd`), if any.
    pub command: Option<String>,
    /// A title for players; by default one naming the connection and the session.
    pub title: Option<String>,
}

/// The first line of a `.cast` file, as written and as read back. The asciicast keys come
/// first; Portcullis' own description of the session is one extra key, `portcullis`, which
/// asciinema ignores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CastHeader {
    /// Always [`CAST_VERSION`].
    pub version: u32,
    pub width: u16,
    pub height: u16,
    /// Wall-clock start of the session, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// String to string, as the asciicast spec requires (players reject other values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Who and what (the same fields as a timeline [`Header`]); `None` only in a cast file
    /// Portcullis did not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portcullis: Option<Header>,
}

impl TerminalHeader {
    pub(crate) fn to_cast_header(&self) -> CastHeader {
        let title = self.title.clone().unwrap_or_else(|| {
            format!(
                "{} ({}) session {}",
                self.connection, self.protocol, self.session_id
            )
        });
        let env = self
            .term
            .iter()
            .map(|term| ("TERM".to_owned(), term.clone()))
            .collect();
        CastHeader {
            version: CAST_VERSION,
            width: self.width,
            height: self.height,
            timestamp: u64::try_from(self.started_ms.div_euclid(1000)).ok(),
            command: self.command.clone(),
            title: Some(title),
            env,
            portcullis: Some(Header {
                v: FORMAT_VERSION,
                session_id: self.session_id.clone(),
                started_ms: self.started_ms,
                protocol: self.protocol.clone(),
                connection: self.connection.clone(),
                principal: self.principal.clone(),
                source_ip: self.source_ip.clone(),
            }),
        }
    }
}

/// The type of an event (its second element).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CastCode {
    /// `o`: data written to the terminal.
    Output,
    /// `i`: data typed by the user.
    Input,
    /// `r`: the terminal was resized; data is `COLSxROWS`.
    Resize,
    /// `m`: a marker; data is its label.
    Marker,
    /// A code this version does not know (the spec lets new ones appear).
    Other(String),
}

impl CastCode {
    pub fn as_str(&self) -> &str {
        match self {
            CastCode::Output => "o",
            CastCode::Input => "i",
            CastCode::Resize => "r",
            CastCode::Marker => "m",
            CastCode::Other(code) => code,
        }
    }

    fn parse(code: String) -> CastCode {
        match code.as_str() {
            "o" => CastCode::Output,
            "i" => CastCode::Input,
            "r" => CastCode::Resize,
            "m" => CastCode::Marker,
            _ => CastCode::Other(code),
        }
    }
}

/// One event line after the header: `[time, code, data]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEvent {
    /// Seconds since the session opened; never decreases within a file Portcullis wrote.
    pub time: f64,
    pub code: CastCode,
    pub data: String,
}

impl CastEvent {
    /// The reason of an end marker, `None` for every other event.
    pub fn ended(&self) -> Option<&str> {
        match self.code {
            CastCode::Marker => self.data.strip_prefix(END_MARKER_PREFIX),
            _ => None,
        }
    }

    /// Parses one line: a JSON array of a non-negative number and two strings.
    pub(crate) fn parse(bytes: &[u8]) -> Result<CastEvent, serde_json::Error> {
        let (time, code, data): (f64, String, String) = serde_json::from_slice(bytes)?;
        if !(time.is_finite() && time >= 0.0) {
            return Err(serde::de::Error::custom("time"));
        }
        Ok(CastEvent {
            time,
            code: CastCode::parse(code),
            data,
        })
    }
}

/// Encodes one event line, newline included: `[1.234567,"o","text"]`. The time is written
/// with exactly six decimals from whole microseconds, so equal offsets give equal text and
/// later offsets never print as earlier ones.
pub(crate) fn encode_event(t_us: u64, code: &str, data: &str) -> Result<Vec<u8>, RecordingError> {
    let data = serde_json::to_string(data).map_err(|_| RecordingError::Encode)?;
    let code = serde_json::to_string(code).map_err(|_| RecordingError::Encode)?;
    let line = format!("[{},{code},{data}]\n", format_time(t_us));
    Ok(line.into_bytes())
}

pub(crate) fn encode_header(header: &CastHeader) -> Result<Vec<u8>, RecordingError> {
    encode_line(header)
}

/// `1234567` µs → `1.234567`.
pub(crate) fn format_time(t_us: u64) -> String {
    format!("{}.{:06}", t_us / 1_000_000, t_us % 1_000_000)
}

/// Seconds as read back to whole microseconds, never earlier than `time` itself, so an
/// event appended after it (recovery's end marker) keeps the times non-decreasing.
pub(crate) fn micros_at_least(time: f64) -> u64 {
    if !(time.is_finite() && time > 0.0) {
        return 0;
    }
    let us = (time * 1e6).round();
    // Float to integer casts saturate, so a huge time cannot wrap.
    let us = us as u64;
    if (us as f64) / 1e6 < time {
        us.saturating_add(1)
    } else {
        us
    }
}

/// A door's marker label: bounded, and kept out of the reserved prefix.
pub(crate) fn door_marker(label: &str) -> String {
    let label = cut(label, MAX_MARKER_TEXT);
    if label.starts_with(RESERVED_MARKER_PREFIX) {
        format!("_{label}")
    } else {
        label.to_owned()
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}
