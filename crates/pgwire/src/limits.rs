//! Per-message-type maximum lengths. PostgreSQL itself caps startup packets at 10,000 bytes
//! and most messages at 1 GiB; the gateway is stricter because it buffers each message whole
//! (it must see every message to enforce policy).

use crate::frame::{Side, tag};

/// The largest startup packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest),
/// PostgreSQL's own `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP_BYTES: usize = 10_000;
/// Messages with no variable payload beyond names (Sync, Describe, Close, Execute, ...).
const SMALL: usize = 10_000;
/// PasswordMessage and the SASL messages that share its tag: a token fits easily.
const PASSWORD: usize = 64 * 1024;
/// Backend messages other than rows: descriptions, errors, notices, tags.
const BACKEND_OTHER: usize = 64 * 1024 * 1024;

/// Configurable maxima, as declared lengths (including the 4-byte length field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Query, Parse, Bind, FunctionCall, CopyData and CopyFail from clients.
    pub max_message_bytes: usize,
    /// DataRow and CopyData from servers.
    pub max_row_bytes: usize,
    /// How long a client has to send the rest of a message once its first byte arrived
    /// (see [`crate::FrameReader`]); `None`: no deadline. Only the frontend side has one:
    /// what a server sends is bounded by the caller's own timeouts.
    pub message_timeout: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024 * 1024,
            max_row_bytes: 256 * 1024 * 1024,
            message_timeout: None,
        }
    }
}

impl Limits {
    /// The maximum declared length of a message with `tag` coming from `side`, or `None` when
    /// that side may not send such a message at all.
    pub fn max_for(&self, side: Side, t: u8) -> Option<usize> {
        match side {
            Side::Frontend => self.frontend_max(t),
            Side::Backend => Some(self.backend_max(t)),
        }
    }

    fn frontend_max(&self, t: u8) -> Option<usize> {
        match t {
            tag::SYNC
            | tag::FLUSH
            | tag::TERMINATE
            | tag::DESCRIBE
            | tag::CLOSE
            | tag::COPY_DONE
            | tag::EXECUTE => Some(SMALL),
            tag::PASSWORD => Some(PASSWORD),
            tag::QUERY
            | tag::PARSE
            | tag::BIND
            | tag::FUNCTION_CALL
            | tag::COPY_DATA
            | tag::COPY_FAIL => Some(self.max_message_bytes),
            _ => None,
        }
    }

    fn backend_max(&self, t: u8) -> usize {
        match t {
            tag::DATA_ROW | tag::COPY_DATA => self.max_row_bytes,
            _ => BACKEND_OTHER,
        }
    }
}
