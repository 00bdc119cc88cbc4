//! The JSONL timeline (format version 1): its three line kinds and how they are encoded
//! (see the crate docs).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RecordingError;
use crate::format::encode_line;
use crate::read::MAX_LINE_BYTES;

/// The format version written in every timeline header.
pub const FORMAT_VERSION: u32 = 1;

/// Keys an entry's data cannot use, because the entry's own fields take them on the line.
pub(crate) const RESERVED_KEYS: [&str; 2] = ["t_ms", "kind"];

/// First line of a timeline recording; also the `portcullis` object of an asciicast
/// header, where it says who and what the terminal session was.
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

/// Encodes an entry, replacing one that would be too long for `read` by a stub that says
/// so: an unreadable recording would lose far more than one oversized entry.
pub(crate) fn encode_entry(entry: Entry) -> Option<Vec<u8>> {
    let line = match encode_line(&entry) {
        Ok(line) if line.len() <= MAX_LINE_BYTES => line,
        Ok(line) => {
            tracing::warn!(kind = %entry.kind, bytes = line.len(), "recording entry too long; stubbed");
            let mut data = Map::new();
            data.insert("oversized".to_owned(), Value::Bool(true));
            data.insert("bytes".to_owned(), Value::from(line.len()));
            let stub = Entry { data, ..entry };
            encode_line(&stub).ok()?
        }
        Err(_) => {
            tracing::warn!(kind = %entry.kind, "recording entry cannot be encoded; dropped");
            return None;
        }
    };
    Some(line)
}

/// The end line of a timeline.
pub(crate) fn encode_end(t_ms: u64, ended: &str, entries: u64) -> Result<Vec<u8>, RecordingError> {
    encode_line(&End {
        t_ms,
        ended: ended.to_owned(),
        entries,
    })
}
