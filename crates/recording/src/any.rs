//! Either kind of recording, for readers that take a session id (the CLI): find its file,
//! read it in its format, replay it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cast_read::{CastRecording, read_cast};
use crate::cast_replay::replay_cast;
use crate::error::RecordingError;
use crate::format::Format;
use crate::read::{Recording, read};
use crate::replay::replay;

/// A recording in either format.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyRecording {
    Timeline(Recording),
    Terminal(CastRecording),
}

impl AnyRecording {
    pub fn format(&self) -> Format {
        match self {
            AnyRecording::Timeline(_) => Format::Timeline,
            AnyRecording::Terminal(_) => Format::Asciicast,
        }
    }
}

/// The file of `session_id` in `dir`, in whichever format it was recorded (`.jsonl`
/// first, then `.cast`); `None` when there is neither. A session id that could leave
/// `dir` is refused.
pub fn find_recording(dir: &Path, session_id: &str) -> Result<Option<PathBuf>, RecordingError> {
    for format in Format::ALL {
        let path = format.path(dir, session_id)?;
        if path.try_exists().map_err(RecordingError::io(&path))? {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Reads a recording in the format its name says (`.cast` is a terminal recording;
/// anything else is read as a timeline), with the default limits.
pub fn read_any(path: &Path) -> Result<AnyRecording, RecordingError> {
    let is_cast = path
        .extension()
        .is_some_and(|e| e == Format::Asciicast.extension());
    if is_cast {
        read_cast(path).map(AnyRecording::Terminal)
    } else {
        read(path).map(AnyRecording::Timeline)
    }
}

/// Replays either kind: a timeline entirely to `out` (as [`replay`]), a terminal session's
/// output to `out` and its notes to `notes` (as [`replay_cast`]).
pub async fn replay_any(
    rec: &AnyRecording,
    speed: f64,
    no_wait: bool,
    out: &mut (dyn Write + Send),
    notes: &mut (dyn Write + Send),
) -> Result<(), RecordingError> {
    match rec {
        AnyRecording::Timeline(rec) => replay(rec, speed, no_wait, out).await,
        AnyRecording::Terminal(rec) => replay_cast(rec, speed, no_wait, out, notes).await,
    }
}
