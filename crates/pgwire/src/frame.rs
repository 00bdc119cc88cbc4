//! One typed message as it travels: a tag byte, a big-endian `i32` length that counts itself
//! but not the tag, and the body.

use bytes::Bytes;

/// Which side of the conversation sent a message; tags mean different things per side
/// (`D` is Describe from a client and DataRow from a server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Messages a client sends.
    Frontend,
    /// Messages a server sends.
    Backend,
}

/// Message tags. Where a byte has two meanings, both names are given.
pub mod tag {
    // Frontend.
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share it.
    pub const PASSWORD: u8 = b'p';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
    // Backend.
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// The size of the tag and length header.
pub(crate) const HEADER: usize = 5;

/// A complete message, kept as the bytes that arrived so relaying it copies nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
}

impl std::fmt::Debug for Frame {
    // Bodies may hold passwords or query literals, so only the tag and size are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("tag", &char::from(self.tag()))
            .field("len", &self.raw.len())
            .finish()
    }
}

impl Frame {
    /// Wraps bytes the reader has already validated (at least a header, length consistent).
    pub(crate) fn from_validated(raw: Bytes) -> Self {
        Self { raw }
    }

    /// Builds a frame from a tag and a body, e.g. in tests or when re-encoding.
    pub fn new(t: u8, body: &[u8]) -> Result<Self, crate::WireError> {
        let mut buf = bytes::BytesMut::with_capacity(body.len().saturating_add(HEADER));
        crate::encode::put_message(&mut buf, t, |b| {
            b.extend_from_slice(body);
            Ok(())
        })?;
        Ok(Self { raw: buf.freeze() })
    }

    pub fn tag(&self) -> u8 {
        self.raw.first().copied().unwrap_or(0)
    }

    /// The body, after the tag and the length.
    pub fn body(&self) -> Bytes {
        self.raw.slice(HEADER.min(self.raw.len())..)
    }

    /// The whole message as it goes on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The size on the wire, header included.
    pub fn wire_len(&self) -> usize {
        self.raw.len()
    }
}
