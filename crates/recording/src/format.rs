//! The three line kinds of a recording and how they are encoded (see the crate docs).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RecordingError;

/// The format version written in every header.
pub const FORMAT_VERSION: u32 = 1;

/// The longest session id accepted, in bytes.
pub const MAX_SESSION_ID: usize = 128;

/// Keys an entry's data cannot use, because the entry's own fields take them on the line.
pub(crate) const RESERVED_KEYS: [&str; 2] = ["t_ms", "kind"];

/// First line of a recording.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Format version; [`crate::Recordings::open`] always writes [`FORMAT_VERSION`].
    pub v: u32,
    pub session_id: String,
    /// Wall-clock start of the session, in Unix milliseconds.
    pub started_ms: i64,
    /// The door: `postgres`, `http`, `kubernetes`, ...
    pub protocol: String,
    /// The configured connection name.
    pub connection: String,
    /// Who: subject, issuer, client id, groups, token id, ... as the door describes them.
    pub principal: Value,
    #[serde(default)]
    pub source_ip: Option<String>,
}

/// One timeline line. `t_ms` is the offset from `started_ms` (replay keeps the original
/// timing).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub t_ms: u64,
    /// What happened: `statement`, `notice`, ... (door-defined).
    pub kind: String,
    /// Everything else on the line, as the door built it (already masked).
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

/// Last line of a cleanly closed recording, or of one closed by recovery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct End {
    pub t_ms: u64,
    /// Why the session ended: `client_terminate`, `shutdown`, ..., or `interrupted` when
    /// written by [`crate::Recordings::recover`].
    pub ended: String,
    /// How many entry lines precede this one.
    pub entries: u64,
}

/// What one complete line after the header is.
pub(crate) enum Line {
    Entry(Entry),
    End(End),
}

impl Line {
    /// An entry line always has `kind`; an end line never does. Deciding by that key keeps
    /// the end line free of any marker a door's entry kinds could collide with.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Line, serde_json::Error> {
        let map: Map<String, Value> = serde_json::from_slice(bytes)?;
        if map.contains_key("kind") {
            serde_json::from_value(Value::Object(map)).map(Line::Entry)
        } else {
            serde_json::from_value(Value::Object(map)).map(Line::End)
        }
    }
}

/// Encodes one line, newline included. serde_json escapes control characters inside
/// strings, so the only raw `\n` on the line is the terminator.
pub(crate) fn encode_line<T: Serialize>(value: &T) -> Result<Vec<u8>, RecordingError> {
    let mut line = serde_json::to_vec(value).map_err(|_| RecordingError::Encode)?;
    line.push(b'\n');
    Ok(line)
}

/// Session ids become file names, so only a conservative alphabet is accepted: no
/// separators, no dots, nothing a shell or a file system treats specially.
pub(crate) fn validate_session_id(id: &str) -> Result<(), RecordingError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RecordingError::InvalidSessionId)
    }
}
