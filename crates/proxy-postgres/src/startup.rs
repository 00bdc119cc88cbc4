//! The client side of start-up: TLS and GSS negotiation, the startup packet's parameters,
//! and the cleartext password exchange that carries the agent's token
//! (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP>).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::encode_backend::{self, ACCEPT, REFUSE};
use portcullis_pgwire::{FrameReader, FrameWriter, Initial, Limits, Side, Startup, WireError, tag};
use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio_rustls::TlsAcceptor;

use crate::encoding::ClientEncoding;
use crate::error::PgError;
use crate::respond;
use crate::stream::MaybeTls;

/// The ParameterStatus that tells every client its session id (quoted in the audit).
pub(crate) const SESSION_ID_PARAMETER: &str = "portcullis_session_id";

/// Startup parameters passed on to the server. Everything else is dropped, above all
/// `options`, whose `-c role=...` or `-c session_authorization=...` would bypass policy.
const FORWARDED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
];

pub(crate) type ClientReader<S> = FrameReader<ReadHalf<MaybeTls<S>>>;
pub(crate) type ClientWriter<S> = FrameWriter<WriteHalf<MaybeTls<S>>>;

/// The client connection through start-up, including the switch to TLS.
pub(crate) struct ClientConn<S> {
    halves: Option<(ClientReader<S>, ClientWriter<S>)>,
    tls: bool,
    limits: Limits,
}

/// What a client's first packets asked for.
pub(crate) enum Greeting {
    Startup(Startup),
    Cancel { pid: i32, secret: Bytes },
    Gone,
}

/// What the startup packet asks for, checked.
pub(crate) struct Requested {
    pub(crate) user: String,
    /// The connection name.
    pub(crate) database: String,
    pub(crate) forward: Vec<(String, String)>,
    /// `_pq_.` protocol options, none of which the gateway supports.
    pub(crate) unsupported: Vec<String>,
    pub(crate) minor: u16,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientConn<S> {
    pub(crate) fn new(stream: S, limits: Limits) -> Self {
        Self {
            halves: Some(split(MaybeTls::Plain(stream), limits)),
            tls: false,
            limits,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }

    fn halves(&mut self) -> Result<&mut (ClientReader<S>, ClientWriter<S>), PgError> {
        self.halves
            .as_mut()
            .ok_or_else(|| PgError::ClientIo(std::io::ErrorKind::NotConnected.into()))
    }

    pub(crate) async fn send(&mut self, bytes: Bytes) -> Result<(), PgError> {
        let (_, w) = self.halves()?;
        w.push_bytes(bytes);
        w.flush().await.map_err(PgError::ClientIo)
    }

    /// Tells the client why the session ends. Best effort: a client that does not read
    /// cannot hold the gateway for more than a few seconds.
    pub(crate) async fn send_fatal(&mut self, err: &PgError) {
        let bytes = respond::fatal(err);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.send(bytes)).await;
    }

    pub(crate) async fn close(&mut self) {
        if let Some((_, w)) = self.halves.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), w.shutdown()).await;
        }
    }

    pub(crate) fn into_halves(self) -> Option<(ClientReader<S>, ClientWriter<S>)> {
        self.halves
    }

    /// Reads the next frame of the password exchange.
    async fn next_frame(&mut self) -> Result<Option<portcullis_pgwire::Frame>, PgError> {
        let (r, _) = self.halves()?;
        r.next_frame().await.map_err(PgError::from_client)
    }

    /// Answers 'S' and runs the TLS handshake. Bytes the client sent after its SSLRequest
    /// were sent in plaintext and are refused (CVE-2021-23214).
    async fn upgrade(&mut self, acceptor: &TlsAcceptor) -> Result<(), PgError> {
        if self.halves()?.0.buffered() > 0 {
            return Err(PgError::Protocol(WireError::BufferedBeforeTls));
        }
        self.send(Bytes::from_static(&[ACCEPT])).await?;
        let (r, w) = self.halves.take().ok_or(PgError::Unexpected('S'))?;
        let plain = match r
            .into_inner()
            .map_err(PgError::Protocol)?
            .unsplit(w.into_inner())
        {
            MaybeTls::Plain(s) => s,
            _ => return Err(PgError::Unexpected('S')),
        };
        let tls = acceptor.accept(plain).await.map_err(PgError::ClientTls)?;
        self.halves = Some(split(MaybeTls::Server(Box::new(tls)), self.limits));
        self.tls = true;
        Ok(())
    }
}

fn split<S: AsyncRead + AsyncWrite + Unpin>(
    stream: MaybeTls<S>,
    limits: Limits,
) -> (ClientReader<S>, ClientWriter<S>) {
    let (r, w) = tokio::io::split(stream);
    (
        FrameReader::new(r, Side::Frontend, limits),
        FrameWriter::new(w),
    )
}

/// Reads the first packets: answers SSLRequest with TLS (once) and GSSENCRequest with 'N'
/// (once), until a StartupMessage or CancelRequest arrives.
pub(crate) async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut ClientConn<S>,
    acceptor: &TlsAcceptor,
) -> Result<Greeting, PgError> {
    let mut gss_refused = false;
    loop {
        let (r, _) = conn.halves()?;
        let initial = r.read_initial().await.map_err(PgError::from_client)?;
        match initial {
            None => return Ok(Greeting::Gone),
            Some(Initial::SslRequest) if !conn.tls => conn.upgrade(acceptor).await?,
            Some(Initial::GssEncRequest) if !conn.tls && !gss_refused => {
                gss_refused = true;
                conn.send(Bytes::from_static(&[REFUSE])).await?;
            }
            Some(Initial::Cancel { pid, secret }) => return Ok(Greeting::Cancel { pid, secret }),
            Some(Initial::Startup(s)) => return Ok(Greeting::Startup(s)),
            Some(_) => {
                return Err(PgError::Protocol(WireError::Malformed {
                    what: "startup",
                    problem: "a repeated TLS or GSS encryption request",
                }));
            }
        }
    }
}

/// Checks the startup parameters and picks those forwarded to the server.
pub(crate) fn requested(s: &Startup) -> Result<Requested, PgError> {
    let user = s
        .param("user")
        .filter(|u| !u.is_empty())
        .ok_or(PgError::NoUser)?;
    // Like PostgreSQL, the database defaults to the user name.
    let database = s
        .param("database")
        .filter(|d| !d.is_empty())
        .unwrap_or(user);
    let mut forward = Vec::new();
    let mut unsupported = Vec::new();
    for (name, value) in &s.params {
        if name == "replication"
            && !matches!(
                value.to_ascii_lowercase().as_str(),
                "false" | "off" | "no" | "0"
            )
        {
            return Err(PgError::Replication);
        }
        if name.eq_ignore_ascii_case("client_encoding") {
            check_encoding(value)?;
        }
        if name == "options" {
            for value in option_encodings(value) {
                check_encoding(value)?;
            }
        }
        if name.starts_with("_pq_.") {
            unsupported.push(name.clone());
        } else if FORWARDED.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            forward.push((name.clone(), value.clone()));
        } else if name == "options" {
            tracing::debug!("not forwarding the client's startup options");
        }
    }
    Ok(Requested {
        user: user.to_owned(),
        database: database.to_owned(),
        forward,
        unsupported,
        minor: s.minor,
    })
}

/// A client_encoding the gateway can follow, or the refusal. The value `auto` is libpq's
/// own (resolved by the client before it is sent); anything PostgreSQL does not know is
/// refused too.
fn check_encoding(value: &str) -> Result<(), PgError> {
    match ClientEncoding::lookup(value) {
        Some(e) if e.is_safe() => Ok(()),
        _ => Err(PgError::Encoding(value.to_owned())),
    }
}

/// The client_encoding values an `options` startup parameter sets, in any spelling the
/// server accepts: `-c client_encoding=X`, `-cclient_encoding=X`, `--client_encoding=X`,
/// `--client-encoding=X` (PostgreSQL turns dashes in option names into underscores).
/// `options` is never forwarded, but a client asking for an encoding the gateway cannot
/// follow is refused rather than served in another one. Backslash escapes (`\ `) in
/// `options` only matter for spaces, which no encoding name contains.
fn option_encodings(options: &str) -> Vec<&str> {
    let words: Vec<&str> = options.split_ascii_whitespace().collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let setting = if let Some(rest) = word.strip_prefix("--") {
            rest
        } else if *word == "-c" {
            words.get(i + 1).copied().unwrap_or_default()
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest
        } else {
            continue;
        };
        if let Some((name, value)) = setting.split_once('=')
            && name
                .replace('-', "_")
                .eq_ignore_ascii_case("client_encoding")
        {
            found.push(value);
        }
    }
    found
}

/// Asks for the password (the token) in cleartext. `None` when the client hangs up instead,
/// as psql does to prompt for a password before reconnecting.
pub(crate) async fn ask_password<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut ClientConn<S>,
    req: &Requested,
) -> Result<Option<SecretString>, PgError> {
    let mut buf = BytesMut::new();
    if req.minor > 0 || !req.unsupported.is_empty() {
        let names: Vec<&str> = req.unsupported.iter().map(String::as_str).collect();
        encode_backend::negotiate_protocol_version(&mut buf, &names).map_err(PgError::Protocol)?;
    }
    encode_backend::authentication_cleartext_password(&mut buf);
    conn.send(buf.freeze()).await?;
    let frame = match conn.next_frame().await {
        Ok(Some(f)) => f,
        Ok(None) | Err(PgError::ClientIo(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if frame.tag() != tag::PASSWORD {
        return Err(PgError::Unexpected(char::from(frame.tag())));
    }
    let password = portcullis_pgwire::parse_frontend(&frame)
        .and_then(|m| m.cleartext_password())
        .map_err(PgError::Protocol)?;
    // Bytes that are not UTF-8 cannot be a JWT; the validator rejects (and audits) them.
    let token = String::from_utf8_lossy(&password).into_owned();
    Ok(Some(SecretString::from(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(params: &[(&str, &str)]) -> Startup {
        Startup {
            minor: 0,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn only_allow_listed_parameters_are_forwarded() {
        let r = requested(&startup(&[
            ("user", "agent"),
            ("database", "analytics"),
            ("options", "-c role=postgres"),
            ("application_name", "psql"),
            ("datestyle", "ISO"),
            ("search_path", "evil"),
            ("_pq_.compression", "on"),
            ("replication", "false"),
        ]))
        .unwrap();
        assert_eq!(
            (r.user.as_str(), r.database.as_str()),
            ("agent", "analytics")
        );
        let names: Vec<&str> = r.forward.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["application_name", "datestyle"]);
        assert_eq!(r.unsupported, ["_pq_.compression"]);
    }

    #[test]
    fn startup_refusals() {
        let db = requested(&startup(&[("user", "agent")])).unwrap();
        assert_eq!(
            db.database, "agent",
            "defaults to the user name, like PostgreSQL"
        );
        assert!(matches!(requested(&startup(&[])), Err(PgError::NoUser)));
        let repl = startup(&[("user", "a"), ("replication", "database")]);
        assert!(matches!(requested(&repl), Err(PgError::Replication)));
        for refused in [
            [("user", "a"), ("client_encoding", "SJIS")],
            [("user", "a"), ("client_encoding", "Shift-JIS")],
            [("user", "a"), ("client_encoding", "no-such-encoding")],
            [("user", "a"), ("options", "-c client_encoding=SJIS")],
            [("user", "a"), ("options", "-cclient_encoding=big5")],
            [
                ("user", "a"),
                ("options", "-c search_path=x --client-encoding=GBK"),
            ],
            [("user", "a"), ("options", "--CLIENT_ENCODING=win932")],
        ] {
            let r = requested(&startup(&refused));
            assert!(matches!(r, Err(PgError::Encoding(_))), "{refused:?}");
        }
        let latin1 = startup(&[("user", "a"), ("options", "-c client_encoding=LATIN1")]);
        assert!(requested(&latin1).is_ok());
    }
}
