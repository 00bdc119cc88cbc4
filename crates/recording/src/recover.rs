//! Start-up recovery: closing the recordings a crash (or an unfinished session) left open.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cast::{self, END_MARKER_PREFIX};
use crate::cast_read::scan_cast;
use crate::error::RecordingError;
use crate::format::Format;
use crate::read::{ReadLimits, scan, sha256_file};
use crate::timeline;

/// The `ended` value recovery writes (in a timeline's end line, or in a cast's
/// `portcullis:ended:interrupted` marker).
pub const INTERRUPTED: &str = "interrupted";

/// A recording that recovery closed, for its audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    pub session_id: String,
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file after recovery.
    pub sha256: String,
    /// Entry lines of a timeline, event lines of a terminal recording (the end not
    /// counted).
    pub entries: u64,
    /// Bytes of a torn last line that were cut off.
    pub truncated_bytes: u64,
}

/// Closes every `<id>.jsonl` and `<id>.cast` in `dir` that has no end, skipping sessions
/// being recorded right now. A file that cannot be recovered (no complete header, a corrupt line
/// in the middle, too large) is logged and left untouched: it is evidence, and destroying
/// it to tidy up would be worse than a warning at every start.
pub(crate) fn recover_dir(
    dir: &Path,
    open: &Mutex<HashSet<String>>,
) -> Result<Vec<Recovered>, RecordingError> {
    let mut recovered = Vec::new();
    for item in std::fs::read_dir(dir).map_err(RecordingError::io(dir))? {
        let item = item.map_err(RecordingError::io(dir))?;
        let path = item.path();
        // Regular files only: a symlink planted here must not redirect the append.
        let is_file = item.file_type().is_ok_and(|t| t.is_file());
        let Some((format, session_id)) = Format::of_path(&path).filter(|_| is_file) else {
            continue;
        };
        let session_id = session_id.to_owned();
        if open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&session_id)
        {
            continue;
        }
        match recover_file(&path, format, session_id) {
            Ok(Some(done)) => recovered.push(done),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot recover recording; left as it is"),
        }
    }
    recovered.sort_by(|a, b| (&a.session_id, &a.path).cmp(&(&b.session_id, &b.path)));
    Ok(recovered)
}

fn recover_file(
    path: &Path,
    format: Format,
    session_id: String,
) -> Result<Option<Recovered>, RecordingError> {
    let Some(open) = open_end(path, format)? else {
        return Ok(None);
    };
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(RecordingError::io(path))?;
    // Cut the torn line first so the end starts on a line of its own; in append mode the
    // write then lands at the new end of the file.
    file.set_len(open.complete_len)
        .and_then(|()| file.write_all(&open.end))
        .and_then(|()| file.sync_all())
        .map_err(RecordingError::io(path))?;
    tracing::info!(session = %session_id, entries = open.entries,
        truncated_bytes = open.torn_bytes, "recording closed as interrupted");
    Ok(Some(Recovered {
        session_id,
        path: path.to_owned(),
        sha256: sha256_file(path)?,
        entries: open.entries,
        truncated_bytes: open.torn_bytes,
    }))
}

/// A recording without an end, and the end recovery gives it.
struct OpenEnd {
    entries: u64,
    complete_len: u64,
    torn_bytes: u64,
    /// The format's end, `interrupted`, at the time of the last complete line.
    end: Vec<u8>,
}

/// Reads the file in its format; `None` when it already has its end.
fn open_end(path: &Path, format: Format) -> Result<Option<OpenEnd>, RecordingError> {
    let limits = ReadLimits::default();
    let open = match format {
        Format::Timeline => {
            let scan = scan(path, limits, |_| {})?;
            if scan.end.is_some() {
                return Ok(None);
            }
            OpenEnd {
                entries: scan.entries,
                complete_len: scan.complete_len,
                torn_bytes: scan.torn_bytes,
                end: timeline::encode_end(scan.last_t_ms, INTERRUPTED, scan.entries)?,
            }
        }
        Format::Asciicast => {
            let scan = scan_cast(path, limits, |_| {})?;
            if scan.end.is_some() {
                return Ok(None);
            }
            let t_us = cast::micros_at_least(scan.last_time);
            let marker = format!("{END_MARKER_PREFIX}{INTERRUPTED}");
            OpenEnd {
                entries: scan.events,
                complete_len: scan.complete_len,
                torn_bytes: scan.torn_bytes,
                end: cast::encode_event(t_us, "m", &marker)?,
            }
        }
    };
    Ok(Some(open))
}
