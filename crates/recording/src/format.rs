//! The two recording formats, and what they share: file names, session ids, line encoding.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RecordingError;

/// The longest session id accepted, in bytes.
pub const MAX_SESSION_ID: usize = 128;

/// How a recording is stored. Both are newline-delimited JSON written through the same
/// writer; they differ in their lines and in how they mark the end of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `<id>.jsonl`: the timeline of commands and (masked) results (format version 1).
    Timeline,
    /// `<id>.cast`: a terminal session as asciicast v2, playable by asciinema.
    Asciicast,
}

impl Format {
    /// Every format, in the order a session's file is looked for.
    pub const ALL: [Format; 2] = [Format::Timeline, Format::Asciicast];

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Timeline => "jsonl",
            Format::Asciicast => "cast",
        }
    }

    /// The format and session id of a recording file name, `None` for anything else.
    pub fn of_path(path: &Path) -> Option<(Format, &str)> {
        let name = path.file_name()?.to_str()?;
        Format::ALL.into_iter().find_map(|format| {
            let id = name.strip_suffix(format.extension())?.strip_suffix('.')?;
            validate_session_id(id).ok()?;
            Some((format, id))
        })
    }

    /// The file of `session_id` in this format; refuses ids that could leave `dir`.
    pub fn path(self, dir: &Path, session_id: &str) -> Result<PathBuf, RecordingError> {
        validate_session_id(session_id)?;
        Ok(dir.join(format!("{session_id}.{}", self.extension())))
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
