//! Reading timelines back, bounded and tolerant of what a crash leaves behind: a torn last
//! line (no terminating `\n`) is ignored, and a missing end line is reported as `None`.
//! The bounded line reader is shared with the asciicast reader.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Take};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::RecordingError;
use crate::timeline::{End, Entry, FORMAT_VERSION, Header, Line};

/// The largest file [`read`] accepts.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The longest line [`read`] accepts, newline excluded; the writer stubs longer entries.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A recording as read from its file.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub header: Header,
    pub entries: Vec<Entry>,
    /// `None` while the session runs, or after a crash that recovery has not handled yet.
    pub end: Option<End>,
}

/// Size limits for reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_file_bytes: u64,
    pub max_line_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_file_bytes: MAX_FILE_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
        }
    }
}

/// Reads a timeline recording (`.jsonl`) with the default limits.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    read_with(path, ReadLimits::default())
}

/// Reads a recording with explicit limits.
pub fn read_with(path: &Path, limits: ReadLimits) -> Result<Recording, RecordingError> {
    let mut entries = Vec::new();
    let scan = scan(path, limits, |entry| entries.push(entry))?;
    Ok(Recording {
        header: scan.header,
        entries,
        end: scan.end,
    })
}

/// Lowercase hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, RecordingError> {
    let mut file = File::open(path).map_err(RecordingError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(RecordingError::io(path))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// What a pass over a file found, besides the entries handed to the callback.
pub(crate) struct Scan {
    pub header: Header,
    pub end: Option<End>,
    pub entries: u64,
    pub last_t_ms: u64,
    /// Bytes up to and including the last `\n`: everything after it is a torn line.
    pub complete_len: u64,
    pub torn_bytes: u64,
}

/// Reads the file line by line, never holding more than one line (bounded) in memory.
pub(crate) fn scan(
    path: &Path,
    limits: ReadLimits,
    mut on_entry: impl FnMut(Entry),
) -> Result<Scan, RecordingError> {
    let mut lines = open_lines(path, limits)?;
    let header = match lines.next()? {
        Some((_, bytes)) => parse_header(path, bytes)?,
        None => return Err(malformed(path, 1, "no complete header line")),
    };
    let mut scan = Scan {
        header,
        end: None,
        entries: 0,
        last_t_ms: 0,
        complete_len: 0,
        torn_bytes: 0,
    };
    while let Some((number, bytes)) = lines.next()? {
        if scan.end.is_some() {
            return Err(malformed(path, number, "content after the end line"));
        }
        match Line::parse(bytes).map_err(|e| RecordingError::malformed(path, number, &e))? {
            Line::Entry(entry) => {
                scan.entries += 1;
                scan.last_t_ms = entry.t_ms;
                on_entry(entry);
            }
            Line::End(end) => scan.end = Some(end),
        }
    }
    scan.complete_len = lines.complete_len;
    scan.torn_bytes = lines.torn_bytes;
    Ok(scan)
}

/// The complete lines of a file no larger than `limits` allows.
pub(crate) fn open_lines(
    path: &Path,
    limits: ReadLimits,
) -> Result<Lines<BufReader<Take<File>>>, RecordingError> {
    let file = File::open(path).map_err(RecordingError::io(path))?;
    let size = file.metadata().map_err(RecordingError::io(path))?.len();
    if size > limits.max_file_bytes {
        return Err(RecordingError::TooLarge {
            path: path.to_owned(),
            size,
            limit: limits.max_file_bytes,
        });
    }
    // Reading only the size seen above keeps a file that grows meanwhile from escaping
    // the limit.
    Ok(Lines::new(
        BufReader::new(file.take(size)),
        path,
        limits.max_line_bytes,
    ))
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, RecordingError> {
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| RecordingError::malformed(path, 1, &e))?;
    if header.v != FORMAT_VERSION {
        return Err(RecordingError::UnsupportedVersion {
            path: path.to_owned(),
            version: header.v,
            expected: FORMAT_VERSION,
        });
    }
    Ok(header)
}

pub(crate) fn malformed(path: &Path, line: u64, problem: &str) -> RecordingError {
    RecordingError::Malformed {
        path: path.to_owned(),
        line,
        problem: problem.to_owned(),
    }
}

/// Complete lines of a reader, each bounded, counting what a torn tail leaves.
pub(crate) struct Lines<R> {
    reader: R,
    path: PathBuf,
    max: usize,
    buf: Vec<u8>,
    number: u64,
    /// Bytes up to and including the last `\n` read.
    pub(crate) complete_len: u64,
    /// Bytes after it, once the end is reached.
    pub(crate) torn_bytes: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R, path: &Path, max: usize) -> Self {
        Lines {
            reader,
            path: path.to_owned(),
            max,
            buf: Vec::new(),
            number: 0,
            complete_len: 0,
            torn_bytes: 0,
        }
    }

    /// The next complete line (its number, its bytes without the `\n`), or `None` at the
    /// end of the file or at a torn tail.
    pub(crate) fn next(&mut self) -> Result<Option<(u64, &[u8])>, RecordingError> {
        self.buf.clear();
        // One byte over the limit, plus the newline, tells "too long" from "just fits".
        let cap = self.max as u64 + 2;
        let n = (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.buf)
            .map_err(RecordingError::io(&self.path))?;
        let line = self.number + 1;
        let complete = self.buf.last() == Some(&b'\n');
        let content = if complete { n - 1 } else { n };
        if content > self.max {
            return Err(RecordingError::LineTooLong {
                path: self.path.clone(),
                line,
                limit: self.max,
            });
        }
        if !complete {
            // End of file, possibly mid-line: a crash cut the last write short.
            self.torn_bytes = n as u64;
            return Ok(None);
        }
        self.number = line;
        self.complete_len += n as u64;
        Ok(Some((line, &self.buf[..content])))
    }
}
