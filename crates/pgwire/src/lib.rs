//! The PostgreSQL frontend/backend protocol, version 3.0, as a codec: framing, typed
//! messages and the encoders the gateway needs. It knows nothing about policy or sockets
//! beyond `AsyncRead`/`AsyncWrite`.
//!
//! Reference: <https://www.postgresql.org/docs/current/protocol.html>, in particular
//! [message flow](https://www.postgresql.org/docs/current/protocol-flow.html) and
//! [message formats](https://www.postgresql.org/docs/current/protocol-message-formats.html).
//!
//! Architecture Invariant: every read is bounded. A message's declared length is checked
//! against a per-type maximum ([`Limits`]) before a byte of its body is buffered, all length
//! arithmetic is checked, and no input makes the codec panic (a test feeds it random bytes).
//!
//! Architecture Invariant: the codec does not hand out the raw stream. [`FrameReader`] and
//! [`FrameWriter`] deliberately implement neither `AsyncRead` nor `AsyncWrite`, so bytes cannot
//! reach the other side without being framed (and so seen) first. The only way back to the
//! stream is [`FrameReader::into_inner`] for the TLS upgrade, which refuses when bytes are
//! buffered (CVE-2021-23214: plaintext injected ahead of the TLS handshake).

mod backend;
mod body;
mod encode;
mod error;
mod frame;
mod frontend;
mod initial;
mod limits;
mod reader;
mod rows;
mod writer;

#[cfg(test)]
mod tests;

pub use backend::{
    Authentication, Backend, ErrorFields, Notification, Severity, TransactionStatus, parse_backend,
    parse_notification, parse_report,
};
pub use encode::{backend as encode_backend, frontend as encode_frontend};
pub use error::{WireError, WireErrorKind};
pub use frame::{Frame, Side, tag};
pub use frontend::{Bind, Frontend, ObjectKind, Parse, parse_frontend};
pub use initial::{CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, Initial, SSL_REQUEST_CODE, Startup};
pub use limits::{Limits, MAX_STARTUP_BYTES};
pub use reader::FrameReader;
pub use rows::{FieldDescription, encode_data_row, parse_data_row, parse_row_description};
pub use writer::FrameWriter;
