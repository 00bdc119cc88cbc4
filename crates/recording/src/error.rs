//! Recording errors. None of them carries entry contents: a malformed line is described by
//! its number and the kind of problem, never by its text, because a recording holds command
//! text and result rows that must not spill into logs (DESIGN.md §2, invariant 3).

use std::io;
use std::path::PathBuf;

/// An error from writing, reading, recovering or replaying a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A session id that cannot name a file safely.
    #[error("invalid session id: use 1 to 128 characters from A-Z, a-z, 0-9, '_' and '-'")]
    InvalidSessionId,

    /// `open` found a recording (or a session being recorded) with the same id.
    #[error("recording {} already exists", .path.display())]
    Exists { path: PathBuf },

    /// A file system operation failed.
    #[error("recording {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An earlier buffered write of this session failed, so the file on disk does not hold
    /// everything that was recorded (and its hash would not match the running one).
    #[error("recording {}: write failed ({kind})", .path.display())]
    WriteFailed { path: PathBuf, kind: io::ErrorKind },

    /// The background writer is not running (shut down, or no longer reachable).
    #[error("the recording writer has stopped")]
    Stopped,

    /// `Recordings::start` was called outside a Tokio runtime.
    #[error("the recording writer needs a Tokio runtime")]
    NoRuntime,

    /// A line could not be encoded as JSON.
    #[error("cannot encode a recording line")]
    Encode,

    /// The file is larger than the reader accepts.
    #[error("recording {}: {size} bytes is over the {limit}-byte limit", .path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    /// One line is longer than the reader accepts.
    #[error("recording {}, line {line}: longer than {limit} bytes", .path.display())]
    LineTooLong {
        path: PathBuf,
        line: u64,
        limit: usize,
    },

    /// A complete line is not what the format allows at that place.
    #[error("recording {}, line {line}: {problem}", .path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        problem: String,
    },

    /// The header names a format version this build cannot read.
    #[error("recording {}: format version {version} is not supported (expected {expected})", .path.display())]
    UnsupportedVersion {
        path: PathBuf,
        version: u32,
        expected: u32,
    },

    /// `replay` was asked for a speed that is not a positive finite number.
    #[error("replay speed must be a positive number")]
    InvalidSpeed,

    /// Writing the replay to its output failed.
    #[error("cannot write the replay: {0}")]
    Output(#[source] io::Error),
}

impl RecordingError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> RecordingError {
        let path = path.into();
        move |source| RecordingError::Io { path, source }
    }

    /// Describes a JSON problem by category and column only: serde_json's own message can
    /// quote the offending value, which may be recorded data.
    pub(crate) fn malformed(path: &std::path::Path, line: u64, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let problem = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                format!("not valid JSON (column {})", e.column())
            }
            Category::Data => "a field is missing or has the wrong type".to_owned(),
        };
        RecordingError::Malformed {
            path: path.to_owned(),
            line,
            problem,
        }
    }
}
