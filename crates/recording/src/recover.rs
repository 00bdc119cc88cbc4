//! Start-up recovery: closing the recordings a crash (or an unfinished session) left open.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::RecordingError;
use crate::format::{End, encode_line, validate_session_id};
use crate::read::{ReadLimits, scan, sha256_file};

/// The `ended` value recovery writes.
pub const INTERRUPTED: &str = "interrupted";

/// A recording that recovery closed, for its audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered {
    pub session_id: String,
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file after recovery.
    pub sha256: String,
    pub entries: u64,
    /// Bytes of a torn last line that were cut off.
    pub truncated_bytes: u64,
}

/// Closes every `<id>.jsonl` in `dir` that has no end line, skipping sessions being
/// recorded right now. A file that cannot be recovered (no complete header, a corrupt line
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
        let Some(session_id) = session_id_of(&path).filter(|_| is_file) else {
            continue;
        };
        if open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&session_id)
        {
            continue;
        }
        match recover_file(&path, session_id) {
            Ok(Some(done)) => recovered.push(done),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot recover recording; left as it is"),
        }
    }
    recovered.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    Ok(recovered)
}

/// `<valid session id>.jsonl` → the id; anything else is not ours.
fn session_id_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".jsonl")?;
    validate_session_id(id).ok()?;
    Some(id.to_owned())
}

fn recover_file(path: &Path, session_id: String) -> Result<Option<Recovered>, RecordingError> {
    let scan = scan(path, ReadLimits::default(), |_| {})?;
    if scan.end.is_some() {
        return Ok(None);
    }
    let end = End {
        t_ms: scan.last_t_ms,
        ended: INTERRUPTED.to_owned(),
        entries: scan.entries,
    };
    let line = encode_line(&end)?;
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(RecordingError::io(path))?;
    // Cut the torn line first so the end line starts on a line of its own; in append mode
    // the write then lands at the new end of the file.
    file.set_len(scan.complete_len)
        .and_then(|()| file.write_all(&line))
        .and_then(|()| file.sync_all())
        .map_err(RecordingError::io(path))?;
    tracing::info!(session = %session_id, entries = scan.entries,
        truncated_bytes = scan.torn_bytes, "recording closed as interrupted");
    Ok(Some(Recovered {
        session_id,
        path: path.to_owned(),
        sha256: sha256_file(path)?,
        entries: scan.entries,
        truncated_bytes: scan.torn_bytes,
    }))
}
