//! Codec errors. None of them carries message bodies, so none can leak a password, a token or
//! a query's literals: only tags, lengths and fixed descriptions.

/// What went wrong while reading or writing protocol messages.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a message.
    #[error("the connection closed in the middle of a message")]
    UnexpectedEof,
    /// A declared length is below the 4 bytes of the length field itself.
    #[error("invalid message length {len}")]
    BadLength { len: i64 },
    /// A declared length above the maximum for that message type.
    #[error("message {tag:?} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { tag: char, len: usize, max: usize },
    /// A message type that is not valid from this side.
    #[error("unexpected message type {tag:?}")]
    UnknownTag { tag: char },
    /// A body that does not have the layout its type requires.
    #[error("malformed {what} message: {problem}")]
    Malformed {
        what: &'static str,
        problem: &'static str,
    },
    /// A startup packet for a protocol other than 3.x.
    #[error("unsupported frontend protocol {major}.{minor}: the gateway speaks 3.0")]
    UnsupportedVersion { major: u16, minor: u16 },
    /// The peer sent part of a message and not the rest within [`crate::Limits::message_timeout`].
    #[error("the peer sent part of a message and not the rest within {after:?}")]
    Stalled { after: std::time::Duration },
    /// Bytes arrived after an SSLRequest, before the TLS handshake.
    #[error("data was sent after the TLS request, before the handshake")]
    BufferedBeforeTls,
    /// A value the encoder cannot put on the wire (a NUL inside a string, a length over 2 GiB).
    #[error("cannot encode {what}: {problem}")]
    Encode {
        what: &'static str,
        problem: &'static str,
    },
}

/// The broad class of a [`WireError`], for mapping to protocol responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireErrorKind {
    /// The transport failed or closed; there is nobody left to answer.
    Io,
    /// The peer broke the protocol; PostgreSQL answers 08P01 and closes.
    Protocol,
    /// The gateway itself tried to encode something impossible.
    Internal,
}

impl WireError {
    pub fn kind(&self) -> WireErrorKind {
        match self {
            WireError::Io(_) | WireError::UnexpectedEof => WireErrorKind::Io,
            WireError::Encode { .. } => WireErrorKind::Internal,
            _ => WireErrorKind::Protocol,
        }
    }

    pub(crate) fn malformed(what: &'static str, problem: &'static str) -> Self {
        WireError::Malformed { what, problem }
    }
}
