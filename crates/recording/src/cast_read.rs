//! Reading terminal recordings (`.cast`) back, with the same bounds and the same tolerance
//! of a crash as timelines: a torn last line is ignored, a missing end marker is `None`.

use std::path::Path;

use crate::cast::{CAST_VERSION, CastEvent, CastHeader};
use crate::error::RecordingError;
use crate::read::{ReadLimits, malformed, open_lines};

/// A terminal recording as read from its file.
#[derive(Clone, Debug, PartialEq)]
pub struct CastRecording {
    pub header: CastHeader,
    /// Every event but the end marker, in file order.
    pub events: Vec<CastEvent>,
    /// `None` while the session runs, or after a crash that recovery has not handled yet.
    pub end: Option<CastEnd>,
}

/// The end marker of a terminal recording.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEnd {
    /// Seconds since the session opened.
    pub time: f64,
    /// Why the session ended (`client_terminate`, ..., or `interrupted`).
    pub ended: String,
}

/// Reads a terminal recording with the default limits.
pub fn read_cast(path: &Path) -> Result<CastRecording, RecordingError> {
    read_cast_with(path, ReadLimits::default())
}

/// Reads a terminal recording with explicit limits.
pub fn read_cast_with(path: &Path, limits: ReadLimits) -> Result<CastRecording, RecordingError> {
    let mut events = Vec::new();
    let scan = scan_cast(path, limits, |event| events.push(event))?;
    Ok(CastRecording {
        header: scan.header,
        events,
        end: scan.end,
    })
}

/// What a pass over a `.cast` file found, besides the events handed to the callback.
pub(crate) struct CastScan {
    pub header: CastHeader,
    pub end: Option<CastEnd>,
    pub events: u64,
    /// The time of the last event, `0.0` when there is none.
    pub last_time: f64,
    pub complete_len: u64,
    pub torn_bytes: u64,
}

/// Reads the file line by line, never holding more than one line (bounded) in memory.
pub(crate) fn scan_cast(
    path: &Path,
    limits: ReadLimits,
    mut on_event: impl FnMut(CastEvent),
) -> Result<CastScan, RecordingError> {
    let mut lines = open_lines(path, limits)?;
    let header = match lines.next()? {
        Some((_, bytes)) => parse_header(path, bytes)?,
        None => return Err(malformed(path, 1, "no complete header line")),
    };
    let mut scan = CastScan {
        header,
        end: None,
        events: 0,
        last_time: 0.0,
        complete_len: 0,
        torn_bytes: 0,
    };
    while let Some((number, bytes)) = lines.next()? {
        if scan.end.is_some() {
            return Err(malformed(path, number, "content after the end marker"));
        }
        let event = CastEvent::parse(bytes).map_err(|e| {
            if e.is_data() {
                // Also a negative or non-finite time, which serde cannot place in a column.
                malformed(path, number, "not a [time, code, data] event")
            } else {
                RecordingError::malformed(path, number, &e)
            }
        })?;
        scan.last_time = event.time;
        match event.ended() {
            Some(ended) => {
                scan.end = Some(CastEnd {
                    time: event.time,
                    ended: ended.to_owned(),
                });
            }
            None => {
                scan.events += 1;
                on_event(event);
            }
        }
    }
    scan.complete_len = lines.complete_len;
    scan.torn_bytes = lines.torn_bytes;
    Ok(scan)
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<CastHeader, RecordingError> {
    // The version first, so a v1 or v3 file is reported as such rather than as malformed.
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let Version { version } =
        serde_json::from_slice(bytes).map_err(|e| RecordingError::malformed(path, 1, &e))?;
    if version != CAST_VERSION {
        return Err(RecordingError::UnsupportedVersion {
            path: path.to_owned(),
            version,
            expected: CAST_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| RecordingError::malformed(path, 1, &e))
}
