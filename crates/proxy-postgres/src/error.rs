//! The door's errors. Each has a [`ErrorKind`]; how each becomes an ErrorResponse (SQLSTATE,
//! text the client may see) is decided in one place, [`crate::respond`]. `Display` is for the
//! gateway's own log: upstream variants carry the server's words there and only there.

use portcullis_pgwire::WireError;

/// The broad class of an error, for metrics and for choosing who is told what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client did something wrong or went away.
    Client,
    /// The server or the network to it failed.
    Upstream,
    /// Policy or the identity layer refused.
    PolicyDenied,
    /// The gateway itself failed (setup, audit).
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Start-up configuration the door cannot use.
    #[error("{0}")]
    Setup(String),
    /// A client broke the protocol (oversized, malformed or unexpected message).
    #[error("client protocol violation: {0}")]
    Protocol(#[source] WireError),
    #[error("client i/o: {0}")]
    ClientIo(#[source] std::io::Error),
    #[error("the client sent {0:?} at a point where it is not allowed")]
    Unexpected(char),
    #[error("TLS handshake with the client failed: {0}")]
    ClientTls(#[source] std::io::Error),
    #[error("a password over plaintext from a non-loopback client")]
    TlsRequired,
    #[error("the startup packet names no user")]
    NoUser,
    #[error("replication connections are not supported")]
    Replication,
    #[error("client_encoding {0:?} is not supported")]
    Encoding(String),
    /// The server reported a setting under which the door cannot read SQL as the server
    /// does (an unsafe client_encoding, `standard_conforming_strings` off).
    #[error("the server reported {0}, which the gateway cannot follow")]
    EncodingChanged(String),
    /// A read-only session's `default_transaction_read_only` was turned off by something
    /// the door did not see coming (code inside a function).
    #[error("the server reported {0} in a read-only session")]
    ReadOnlyUndone(String),
    /// The engine refused the token.
    #[error("token rejected: {}", .0.code)]
    Token(Box<portcullis_pipeline::Refusal>),
    #[error("the audit trail is unavailable")]
    AuditUnavailable,
    #[error("no connection named {0:?}")]
    UnknownDatabase(String),
    /// The `connect` action was not allowed.
    #[error("connect refused: {}", .0.message)]
    ConnectDenied(Box<portcullis_pipeline::Refusal>),
    #[error("cannot reach the upstream server: {0}")]
    UpstreamConnect(String),
    #[error("upstream authentication failed: {0}")]
    UpstreamAuth(String),
    #[error("upstream startup failed: {0}")]
    UpstreamStartup(String),
    #[error("upstream protocol violation: {0}")]
    UpstreamProtocol(#[source] WireError),
    #[error("the upstream connection was lost")]
    UpstreamGone,
    /// The connection's catalog could not be read (the server's words, for the log).
    #[error("reading the catalog failed: {0}")]
    Catalog(String),
    #[error("the gateway is shutting down")]
    Shutdown,
    /// The token the session was opened with expired.
    #[error("the session's token expired")]
    TokenExpired,
    /// The session's recording could not be opened, so the session does not run.
    #[error("the session recording is unavailable")]
    RecordingUnavailable,
    /// A result the session's masking cannot rewrite (binary COPY output).
    #[error("{0} cannot be masked")]
    Unmaskable(&'static str),
    /// The session's identity was revoked while it was open.
    #[error("the identity was revoked: {}", .0.code())]
    Revoked(portcullis_identity::Reason),
    /// The server did not do what a row-limited statement needs (open its transaction).
    #[error("row limit: {0}")]
    RowLimit(&'static str),
    /// A limit of the door's refused or ended the session.
    #[error("limit: {}", .0.code())]
    Limit(crate::limits::Exceeded),
}

impl PgError {
    pub fn kind(&self) -> ErrorKind {
        use PgError::*;
        match self {
            Protocol(_) | ClientIo(_) | Unexpected(_) | ClientTls(_) | TlsRequired | NoUser
            | Replication | Encoding(_) | UnknownDatabase(_) => ErrorKind::Client,
            Token(_) | ConnectDenied(_) | Revoked(_) | TokenExpired | Unmaskable(_)
            | EncodingChanged(_) | ReadOnlyUndone(_) => ErrorKind::PolicyDenied,
            UpstreamConnect(_) | UpstreamAuth(_) | UpstreamStartup(_) | UpstreamProtocol(_)
            | UpstreamGone | Catalog(_) | RowLimit(_) => ErrorKind::Upstream,
            Setup(_) | AuditUnavailable | RecordingUnavailable | Shutdown => ErrorKind::Internal,
            // Running out of server connections is the operator's to see; the rest is the
            // client's doing.
            Limit(crate::limits::Exceeded::ServerConnections { .. }) => ErrorKind::Upstream,
            Limit(_) => ErrorKind::Client,
        }
    }

    /// Classifies a failure to read from the client: a closed socket is the client going
    /// away, anything else is a protocol violation.
    pub(crate) fn from_client(e: WireError) -> Self {
        match e {
            WireError::Io(io) => PgError::ClientIo(io),
            WireError::UnexpectedEof => PgError::ClientIo(std::io::ErrorKind::UnexpectedEof.into()),
            WireError::Stalled { after } => {
                PgError::Limit(crate::limits::Exceeded::ClientStalled(after))
            }
            other => PgError::Protocol(other),
        }
    }

    /// Classifies a failure to read from the server.
    pub(crate) fn from_upstream(e: WireError) -> Self {
        match e {
            WireError::Io(_) | WireError::UnexpectedEof => PgError::UpstreamGone,
            other => PgError::UpstreamProtocol(other),
        }
    }
}
