//! Encoders for the messages the gateway writes itself: to clients (authentication, errors,
//! ready-for-query, ...) and to servers (startup, authentication, the injected statements).
//! Everything the gateway merely relays goes out as the [`crate::Frame`] it came in as.

use bytes::{BufMut, BytesMut};

use crate::WireError;

/// Appends `tag`, a length placeholder and the body written by `body`, then patches the
/// length. Fails when the body does not fit a message; `buf` is then left as it was, so a
/// failed encode never leaves half a message behind.
pub(crate) fn put_message(
    buf: &mut BytesMut,
    tag: u8,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = buf.len();
    buf.put_u8(tag);
    put_length_prefixed(buf, body).inspect_err(|_| buf.truncate(start))
}

/// Appends an `Int32` length (counting itself) and the body written by `body`.
fn put_length_prefixed(
    buf: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let at = buf.len();
    buf.put_i32(0);
    if let Err(e) = body(buf) {
        buf.truncate(at);
        return Err(e);
    }
    let len = buf.len().saturating_sub(at);
    let Ok(len) = i32::try_from(len) else {
        buf.truncate(at);
        return Err(WireError::Encode {
            what: "message",
            problem: "longer than 2 GiB",
        });
    };
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Appends a NUL-terminated string; a NUL inside it cannot be encoded.
fn put_cstr(buf: &mut BytesMut, s: &[u8]) -> Result<(), WireError> {
    if s.contains(&0) {
        return Err(WireError::Encode {
            what: "string",
            problem: "it contains a NUL byte",
        });
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

/// Messages a server sends, written by the gateway to its clients.
pub mod backend {
    use bytes::{BufMut, BytesMut};

    use super::{put_cstr, put_message};
    use crate::WireError;
    use crate::backend::{Severity, TransactionStatus};
    use crate::frame::tag;

    /// The answer to an SSLRequest or GSSENCRequest that accepts it.
    pub const ACCEPT: u8 = b'S';
    /// The answer to an SSLRequest or GSSENCRequest that refuses it.
    pub const REFUSE: u8 = b'N';

    /// An ErrorResponse or NoticeResponse written by the gateway.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Report<'a> {
        pub severity: Severity,
        /// The SQLSTATE, five characters.
        pub code: &'a str,
        pub message: &'a str,
        pub detail: Option<&'a str>,
        pub hint: Option<&'a str>,
    }

    /// Writes `report` as an ErrorResponse. NUL bytes in the texts are dropped (they cannot
    /// be encoded), so this never fails.
    pub fn error_response(buf: &mut BytesMut, report: &Report<'_>) {
        put_report(buf, tag::ERROR_RESPONSE, report);
    }

    /// Writes `report` as a NoticeResponse.
    pub fn notice_response(buf: &mut BytesMut, report: &Report<'_>) {
        put_report(buf, tag::NOTICE_RESPONSE, report);
    }

    fn put_report(buf: &mut BytesMut, t: u8, r: &Report<'_>) {
        let field = |b: &mut BytesMut, f: u8, v: &str| {
            b.put_u8(f);
            b.extend(v.bytes().filter(|&c| c != 0));
            b.put_u8(0);
        };
        // Reports are short texts built by the gateway; should one ever exceed 2 GiB, nothing
        // is written rather than a broken message (put_message leaves `buf` untouched).
        let _ = put_message(buf, t, |b| {
            field(b, b'S', r.severity.as_str());
            field(b, b'V', r.severity.as_str());
            field(b, b'C', r.code);
            field(b, b'M', r.message);
            if let Some(d) = r.detail {
                field(b, b'D', d);
            }
            if let Some(h) = r.hint {
                field(b, b'H', h);
            }
            b.put_u8(0);
            Ok(())
        });
    }

    /// Writes an ErrorResponse or NoticeResponse (`t`) with the given fields, in order: how
    /// a server's report goes out once the gateway has rewritten some of its fields.
    pub fn report_fields(
        buf: &mut BytesMut,
        t: u8,
        fields: &[(u8, &[u8])],
    ) -> Result<(), WireError> {
        put_message(buf, t, |b| {
            for (f, v) in fields {
                if *f == 0 {
                    return Err(WireError::Encode {
                        what: "report field",
                        problem: "a field type of 0",
                    });
                }
                b.put_u8(*f);
                put_cstr(b, v)?;
            }
            b.put_u8(0);
            Ok(())
        })
    }

    /// Writes a NotificationResponse (LISTEN/NOTIFY).
    pub fn notification(
        buf: &mut BytesMut,
        pid: i32,
        channel: &[u8],
        payload: &[u8],
    ) -> Result<(), WireError> {
        put_message(buf, tag::NOTIFICATION_RESPONSE, |b| {
            b.put_i32(pid);
            put_cstr(b, channel)?;
            put_cstr(b, payload)
        })
    }

    pub fn ready_for_query(buf: &mut BytesMut, status: TransactionStatus) {
        buf.put_u8(tag::READY_FOR_QUERY);
        buf.put_i32(5);
        buf.put_u8(status.byte());
    }

    pub fn authentication_ok(buf: &mut BytesMut) {
        auth_code(buf, 0);
    }

    pub fn authentication_cleartext_password(buf: &mut BytesMut) {
        auth_code(buf, 3);
    }

    fn auth_code(buf: &mut BytesMut, code: i32) {
        buf.put_u8(tag::AUTHENTICATION);
        buf.put_i32(8);
        buf.put_i32(code);
    }

    pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) -> Result<(), WireError> {
        put_message(buf, tag::PARAMETER_STATUS, |b| {
            put_cstr(b, name.as_bytes())?;
            put_cstr(b, value.as_bytes())
        })
    }

    pub fn backend_key_data(buf: &mut BytesMut, pid: i32, secret: i32) {
        buf.put_u8(tag::BACKEND_KEY_DATA);
        buf.put_i32(12);
        buf.put_i32(pid);
        buf.put_i32(secret);
    }

    /// Tells a client asking for protocol 3.`asked` (or for `_pq_.` options) that the
    /// gateway speaks 3.0 and which options it did not recognize.
    pub fn negotiate_protocol_version(
        buf: &mut BytesMut,
        unrecognized: &[&str],
    ) -> Result<(), WireError> {
        put_message(buf, tag::NEGOTIATE_PROTOCOL_VERSION, |b| {
            b.put_i32(0x0003_0000);
            let n = i32::try_from(unrecognized.len()).map_err(|_| WireError::Encode {
                what: "NegotiateProtocolVersion",
                problem: "too many options",
            })?;
            b.put_i32(n);
            unrecognized
                .iter()
                .try_for_each(|o| put_cstr(b, o.as_bytes()))
        })
    }
}

/// Messages a client sends, written by the gateway to servers.
pub mod frontend {
    use bytes::{BufMut, BytesMut};

    use super::{put_cstr, put_length_prefixed, put_message};
    use crate::WireError;
    use crate::frame::tag;
    use crate::initial::{CANCEL_REQUEST_CODE, SSL_REQUEST_CODE};

    /// A protocol 3.0 StartupMessage.
    pub fn startup<'a>(
        buf: &mut BytesMut,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), WireError> {
        put_length_prefixed(buf, |b| {
            b.put_i32(0x0003_0000);
            for (k, v) in params {
                put_cstr(b, k.as_bytes())?;
                put_cstr(b, v.as_bytes())?;
            }
            b.put_u8(0);
            Ok(())
        })
    }

    pub fn ssl_request(buf: &mut BytesMut) {
        buf.put_i32(8);
        buf.put_i32(SSL_REQUEST_CODE);
    }

    pub fn cancel_request(buf: &mut BytesMut, pid: i32, secret: &[u8]) -> Result<(), WireError> {
        put_length_prefixed(buf, |b| {
            b.put_i32(CANCEL_REQUEST_CODE);
            b.put_i32(pid);
            b.put_slice(secret);
            Ok(())
        })
    }

    /// A PasswordMessage carrying a cleartext or MD5 password.
    pub fn password(buf: &mut BytesMut, password: &[u8]) -> Result<(), WireError> {
        put_message(buf, tag::PASSWORD, |b| put_cstr(b, password))
    }

    pub fn sasl_initial_response(
        buf: &mut BytesMut,
        mechanism: &str,
        data: &[u8],
    ) -> Result<(), WireError> {
        put_message(buf, tag::PASSWORD, |b| {
            put_cstr(b, mechanism.as_bytes())?;
            let n = i32::try_from(data.len()).map_err(|_| WireError::Encode {
                what: "SASLInitialResponse",
                problem: "data longer than 2 GiB",
            })?;
            b.put_i32(n);
            b.put_slice(data);
            Ok(())
        })
    }

    pub fn sasl_response(buf: &mut BytesMut, data: &[u8]) -> Result<(), WireError> {
        put_message(buf, tag::PASSWORD, |b| {
            b.put_slice(data);
            Ok(())
        })
    }

    pub fn query(buf: &mut BytesMut, sql: &str) -> Result<(), WireError> {
        put_message(buf, tag::QUERY, |b| put_cstr(b, sql.as_bytes()))
    }

    /// A Parse of the unnamed statement without parameter types.
    pub fn parse_unnamed(buf: &mut BytesMut, sql: &str) -> Result<(), WireError> {
        put_message(buf, tag::PARSE, |b| {
            b.put_u8(0);
            put_cstr(b, sql.as_bytes())?;
            b.put_i16(0);
            Ok(())
        })
    }

    /// A Bind of the unnamed portal to the unnamed statement: every parameter and every
    /// result column in text format (`None`: NULL).
    pub fn bind_text(buf: &mut BytesMut, params: &[Option<&[u8]>]) -> Result<(), WireError> {
        let n = i16::try_from(params.len()).map_err(|_| WireError::Encode {
            what: "Bind",
            problem: "more than 32767 parameters",
        })?;
        put_message(buf, tag::BIND, |b| {
            b.put_u8(0); // portal
            b.put_u8(0); // statement
            b.put_i16(0); // parameter formats: all text
            b.put_i16(n);
            for p in params {
                match p {
                    None => b.put_i32(-1),
                    Some(v) => {
                        let len = i32::try_from(v.len()).map_err(|_| WireError::Encode {
                            what: "Bind",
                            problem: "parameter longer than 2 GiB",
                        })?;
                        b.put_i32(len);
                        b.put_slice(v);
                    }
                }
            }
            b.put_i16(0); // result formats: all text
            Ok(())
        })
    }

    /// A Describe of the unnamed portal.
    pub fn describe_portal(buf: &mut BytesMut) {
        buf.put_u8(tag::DESCRIBE);
        buf.put_i32(6);
        buf.put_u8(b'P');
        buf.put_u8(0);
    }

    /// An Execute of the unnamed portal, all rows.
    pub fn execute(buf: &mut BytesMut) {
        buf.put_u8(tag::EXECUTE);
        buf.put_i32(9);
        buf.put_u8(0);
        buf.put_i32(0);
    }

    /// A CopyFail with `reason`.
    pub fn copy_fail(buf: &mut BytesMut, reason: &str) -> Result<(), WireError> {
        put_message(buf, tag::COPY_FAIL, |b| put_cstr(b, reason.as_bytes()))
    }

    pub fn sync(buf: &mut BytesMut) {
        buf.put_u8(tag::SYNC);
        buf.put_i32(4);
    }

    pub fn flush(buf: &mut BytesMut) {
        buf.put_u8(tag::FLUSH);
        buf.put_i32(4);
    }

    pub fn terminate(buf: &mut BytesMut) {
        buf.put_u8(tag::TERMINATE);
        buf.put_i32(4);
    }
}
