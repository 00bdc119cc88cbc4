//! Typed messages a server sends, as far as the gateway needs to understand them
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>); everything else
//! is relayed as a [`Frame`] without interpretation.

use bytes::Bytes;

use crate::WireError;
use crate::body::Body;
use crate::frame::{Frame, tag};

/// An Authentication* request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    /// AuthenticationSASL with the mechanisms offered.
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue(Bytes),
    SaslFinal(Bytes),
    /// Kerberos, GSS, SSPI and anything newer: not supported by the gateway.
    Other(i32),
}

/// The transaction status of a ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; statements are refused until it ends.
    Failed,
}

impl TransactionStatus {
    pub fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// The severity of an ErrorResponse or NoticeResponse (the non-localized `V` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Panic,
    Warning,
    Notice,
    Info,
    Log,
    Debug,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Info => "INFO",
            Severity::Log => "LOG",
            Severity::Debug => "DEBUG",
        }
    }

    fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"ERROR" => Severity::Error,
            b"FATAL" => Severity::Fatal,
            b"PANIC" => Severity::Panic,
            b"WARNING" => Severity::Warning,
            b"NOTICE" => Severity::Notice,
            b"INFO" => Severity::Info,
            b"LOG" => Severity::Log,
            s if s.starts_with(b"DEBUG") => Severity::Debug,
            _ => return None,
        })
    }
}

/// The fields of an ErrorResponse or NoticeResponse: `(field type, value)` in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields {
    pub fields: Vec<(u8, Bytes)>,
}

impl ErrorFields {
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(t, _)| *t == field)
            .map(|(_, v)| v.as_ref())
    }

    /// The SQLSTATE (`C`).
    pub fn code(&self) -> Option<&[u8]> {
        self.get(b'C')
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&[u8]> {
        self.get(b'M')
    }

    /// The severity, preferring the never-localized `V` over `S`.
    pub fn severity(&self) -> Option<Severity> {
        self.get(b'V')
            .or_else(|| self.get(b'S'))
            .and_then(Severity::parse)
    }
}

/// A NotificationResponse: a NOTIFY delivered to a session that LISTENs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notifying backend's process id.
    pub pid: i32,
    pub channel: Bytes,
    pub payload: Bytes,
}

/// Parses the body of a NotificationResponse (`A`).
pub fn parse_notification(frame: &Frame) -> Result<Notification, WireError> {
    let mut b = Body::new(frame.body(), "NotificationResponse");
    let pid = b.i32()?;
    let channel = b.cstr()?;
    let payload = b.cstr()?;
    b.finish()?;
    Ok(Notification {
        pid,
        channel,
        payload,
    })
}

/// Parses the fields of an ErrorResponse or NoticeResponse frame.
pub fn parse_report(frame: &Frame) -> Result<ErrorFields, WireError> {
    parse_fields(frame.body(), "ErrorResponse or NoticeResponse")
}

/// A backend message the gateway interprets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Authentication(Authentication),
    ParameterStatus {
        name: String,
        value: String,
    },
    BackendKeyData {
        pid: i32,
        secret: Bytes,
    },
    ReadyForQuery(TransactionStatus),
    CommandComplete {
        tag: Bytes,
    },
    ErrorResponse(ErrorFields),
    NoticeResponse(ErrorFields),
    /// CopyInResponse, CopyOutResponse, CopyBothResponse: the overall format, 0 text 1 binary.
    CopyInResponse {
        format: u8,
    },
    CopyOutResponse {
        format: u8,
    },
    CopyBothResponse {
        format: u8,
    },
    ParseComplete,
    BindComplete,
    CloseComplete,
    NegotiateProtocolVersion {
        minor: i32,
        unrecognized: Vec<String>,
    },
    /// Any other message: the gateway relays it as it is.
    Other(u8),
}

/// Parses a frame read with [`crate::Side::Backend`].
pub fn parse_backend(frame: &Frame) -> Result<Backend, WireError> {
    let body = frame.body();
    Ok(match frame.tag() {
        tag::AUTHENTICATION => Backend::Authentication(parse_auth(body)?),
        tag::PARAMETER_STATUS => {
            let mut b = Body::new(body, "ParameterStatus");
            let name = b.utf8()?;
            let value = b.utf8()?;
            b.finish()?;
            Backend::ParameterStatus { name, value }
        }
        tag::BACKEND_KEY_DATA => {
            let mut b = Body::new(body, "BackendKeyData");
            let pid = b.i32()?;
            let secret = b.rest();
            if secret.len() < 4 || secret.len() > 256 {
                return Err(WireError::malformed("BackendKeyData", "bad key length"));
            }
            Backend::BackendKeyData { pid, secret }
        }
        tag::READY_FOR_QUERY => Backend::ReadyForQuery(parse_status(body)?),
        tag::COMMAND_COMPLETE => {
            let mut b = Body::new(body, "CommandComplete");
            let tag = b.cstr()?;
            b.finish()?;
            Backend::CommandComplete { tag }
        }
        tag::ERROR_RESPONSE => Backend::ErrorResponse(parse_fields(body, "ErrorResponse")?),
        tag::NOTICE_RESPONSE => Backend::NoticeResponse(parse_fields(body, "NoticeResponse")?),
        tag::COPY_IN_RESPONSE => Backend::CopyInResponse {
            format: copy_format(body)?,
        },
        tag::COPY_OUT_RESPONSE => Backend::CopyOutResponse {
            format: copy_format(body)?,
        },
        tag::COPY_BOTH_RESPONSE => Backend::CopyBothResponse {
            format: copy_format(body)?,
        },
        tag::PARSE_COMPLETE => Backend::ParseComplete,
        tag::BIND_COMPLETE => Backend::BindComplete,
        tag::CLOSE_COMPLETE => Backend::CloseComplete,
        tag::NEGOTIATE_PROTOCOL_VERSION => parse_negotiate(body)?,
        other => Backend::Other(other),
    })
}

fn parse_auth(body: Bytes) -> Result<Authentication, WireError> {
    let mut b = Body::new(body, "Authentication");
    let code = b.i32()?;
    let auth = match code {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let s = b.take(4)?;
            Authentication::Md5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = b.utf8()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl { mechanisms }
        }
        11 => return Ok(Authentication::SaslContinue(b.rest())),
        12 => return Ok(Authentication::SaslFinal(b.rest())),
        other => return Ok(Authentication::Other(other)),
    };
    b.finish()?;
    Ok(auth)
}

fn parse_status(body: Bytes) -> Result<TransactionStatus, WireError> {
    let mut b = Body::new(body, "ReadyForQuery");
    let status = match b.u8()? {
        b'I' => TransactionStatus::Idle,
        b'T' => TransactionStatus::InTransaction,
        b'E' => TransactionStatus::Failed,
        _ => return Err(WireError::malformed("ReadyForQuery", "unknown status")),
    };
    b.finish()?;
    Ok(status)
}

fn parse_fields(body: Bytes, what: &'static str) -> Result<ErrorFields, WireError> {
    let mut b = Body::new(body, what);
    let mut fields = Vec::new();
    loop {
        let t = b.u8()?;
        if t == 0 {
            break;
        }
        fields.push((t, b.cstr()?));
    }
    b.finish()?;
    Ok(ErrorFields { fields })
}

fn copy_format(body: Bytes) -> Result<u8, WireError> {
    let mut b = Body::new(body, "CopyResponse");
    let format = b.u8()?;
    let n = b.count16()?;
    for _ in 0..n {
        b.i16()?;
    }
    b.finish()?;
    Ok(format)
}

fn parse_negotiate(body: Bytes) -> Result<Backend, WireError> {
    let mut b = Body::new(body, "NegotiateProtocolVersion");
    let minor = b.i32()?;
    let n = usize::try_from(b.i32()?)
        .map_err(|_| WireError::malformed("NegotiateProtocolVersion", "a negative count"))?;
    let mut unrecognized = Vec::with_capacity(b.capacity(n, 1));
    for _ in 0..n {
        unrecognized.push(b.utf8()?);
    }
    b.finish()?;
    Ok(Backend::NegotiateProtocolVersion {
        minor,
        unrecognized,
    })
}
