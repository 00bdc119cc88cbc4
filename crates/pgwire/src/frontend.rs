//! Typed messages a client sends after startup
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>).

use bytes::Bytes;

use crate::WireError;
use crate::body::Body;
use crate::frame::{Frame, tag};

/// Whether Describe or Close names a prepared statement or a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Statement,
    Portal,
}

/// A Parse message: prepare `query` as statement `name` (empty: the unnamed statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    pub name: Bytes,
    pub query: Bytes,
    pub param_types: Vec<u32>,
}

/// A Bind message: bind `statement` with parameters into `portal`.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    pub portal: Bytes,
    pub statement: Bytes,
    pub param_formats: Vec<i16>,
    pub params: Vec<Option<Bytes>>,
    pub result_formats: Vec<i16>,
}

impl std::fmt::Debug for Bind {
    // Parameter values are data (possibly secret); only their number is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bind")
            .field("portal", &self.portal)
            .field("statement", &self.statement)
            .field("params", &self.params.len())
            .finish()
    }
}

/// A frontend message after startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    Query {
        sql: Bytes,
    },
    Parse(Parse),
    Bind(Bind),
    Describe {
        kind: ObjectKind,
        name: Bytes,
    },
    Execute {
        portal: Bytes,
        max_rows: i32,
    },
    Close {
        kind: ObjectKind,
        name: Bytes,
    },
    Sync,
    Flush,
    Terminate,
    FunctionCall {
        oid: u32,
        args: usize,
    },
    CopyData(Bytes),
    CopyDone,
    CopyFail {
        message: Bytes,
    },
    /// PasswordMessage (and the SASL and GSS messages that share its tag): the raw body.
    Password(Bytes),
}

/// Parses a frame read with [`crate::Side::Frontend`].
pub fn parse_frontend(frame: &Frame) -> Result<Frontend, WireError> {
    let body = frame.body();
    match frame.tag() {
        tag::QUERY => one_cstr(body, "Query").map(|sql| Frontend::Query { sql }),
        tag::PARSE => parse_parse(body).map(Frontend::Parse),
        tag::BIND => parse_bind(body).map(Frontend::Bind),
        tag::DESCRIBE => {
            kind_and_name(body, "Describe").map(|(kind, name)| Frontend::Describe { kind, name })
        }
        tag::CLOSE => {
            kind_and_name(body, "Close").map(|(kind, name)| Frontend::Close { kind, name })
        }
        tag::EXECUTE => {
            let mut b = Body::new(body, "Execute");
            let portal = b.cstr()?;
            let max_rows = b.i32()?;
            b.finish()?;
            Ok(Frontend::Execute { portal, max_rows })
        }
        tag::SYNC => empty(body, "Sync").map(|()| Frontend::Sync),
        tag::FLUSH => empty(body, "Flush").map(|()| Frontend::Flush),
        tag::TERMINATE => empty(body, "Terminate").map(|()| Frontend::Terminate),
        tag::COPY_DONE => empty(body, "CopyDone").map(|()| Frontend::CopyDone),
        tag::FUNCTION_CALL => parse_function_call(body),
        tag::COPY_DATA => Ok(Frontend::CopyData(body)),
        tag::COPY_FAIL => one_cstr(body, "CopyFail").map(|message| Frontend::CopyFail { message }),
        tag::PASSWORD => Ok(Frontend::Password(body)),
        t => Err(WireError::UnknownTag { tag: char::from(t) }),
    }
}

/// The password of a PasswordMessage body (cleartext: the gateway asks for nothing else).
fn password(body: Bytes) -> Result<Bytes, WireError> {
    one_cstr(body, "PasswordMessage")
}

impl Frontend {
    /// The cleartext password of a [`Frontend::Password`] message.
    pub fn cleartext_password(&self) -> Result<Bytes, WireError> {
        match self {
            Frontend::Password(body) => password(body.clone()),
            _ => Err(WireError::malformed(
                "PasswordMessage",
                "not a password message",
            )),
        }
    }
}

fn one_cstr(body: Bytes, what: &'static str) -> Result<Bytes, WireError> {
    let mut b = Body::new(body, what);
    let s = b.cstr()?;
    b.finish()?;
    Ok(s)
}

fn empty(body: Bytes, what: &'static str) -> Result<(), WireError> {
    Body::new(body, what).finish()
}

fn kind_and_name(body: Bytes, what: &'static str) -> Result<(ObjectKind, Bytes), WireError> {
    let mut b = Body::new(body, what);
    let kind = match b.u8()? {
        b'S' => ObjectKind::Statement,
        b'P' => ObjectKind::Portal,
        _ => {
            return Err(WireError::malformed(
                what,
                "the target is neither 'S' nor 'P'",
            ));
        }
    };
    let name = b.cstr()?;
    b.finish()?;
    Ok((kind, name))
}

fn parse_parse(body: Bytes) -> Result<Parse, WireError> {
    let mut b = Body::new(body, "Parse");
    let name = b.cstr()?;
    let query = b.cstr()?;
    let n = b.count16()?;
    let mut param_types = Vec::with_capacity(b.capacity(n, 4));
    for _ in 0..n {
        param_types.push(b.i32()? as u32);
    }
    b.finish()?;
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

fn formats(b: &mut Body) -> Result<Vec<i16>, WireError> {
    let n = b.count16()?;
    let mut out = Vec::with_capacity(b.capacity(n, 2));
    for _ in 0..n {
        out.push(b.i16()?);
    }
    Ok(out)
}

fn values(b: &mut Body) -> Result<Vec<Option<Bytes>>, WireError> {
    let n = b.count16()?;
    let mut out = Vec::with_capacity(b.capacity(n, 4));
    for _ in 0..n {
        out.push(b.nullable()?);
    }
    Ok(out)
}

fn parse_bind(body: Bytes) -> Result<Bind, WireError> {
    let mut b = Body::new(body, "Bind");
    let portal = b.cstr()?;
    let statement = b.cstr()?;
    let param_formats = formats(&mut b)?;
    let params = values(&mut b)?;
    let result_formats = formats(&mut b)?;
    b.finish()?;
    Ok(Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

fn parse_function_call(body: Bytes) -> Result<Frontend, WireError> {
    let mut b = Body::new(body, "FunctionCall");
    let oid = b.i32()? as u32;
    formats(&mut b)?;
    let args = values(&mut b)?.len();
    b.i16()?;
    b.finish()?;
    Ok(Frontend::FunctionCall { oid, args })
}
