//! The gateway's own connection to a server: TCP, optional TLS, start-up with the target's
//! credentials, and everything the server says before its first ReadyForQuery.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::{
    Backend, Frame, FrameReader, FrameWriter, Limits, Side, encode_frontend, parse_backend,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::PgError;
use crate::pool::Slot;
use crate::settings::PgTarget;
use crate::stream::MaybeTls;
use crate::{tls, upstream_auth};

/// How long opening and logging in to a server may take.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type UpStream = MaybeTls<TcpStream>;

/// How to reach one target's server.
pub(crate) struct UpstreamConn {
    addr: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// A logged-in server connection, ready for the relay.
pub(crate) struct Upstream {
    pub(crate) reader: FrameReader<ReadHalf<UpStream>>,
    pub(crate) writer: FrameWriter<WriteHalf<UpStream>>,
    /// ParameterStatus values, relayed to the client as they are.
    pub(crate) params: Vec<(String, String)>,
    /// The server's cancel key, which only the gateway ever holds.
    pub(crate) pid: i32,
    pub(crate) secret: Bytes,
    /// Notices sent during start-up, relayed to the client.
    pub(crate) notices: Vec<Frame>,
    /// Its place in the target's budget of server connections, until it is closed.
    pub(crate) slot: Slot,
}

impl UpstreamConn {
    pub(crate) fn new(target: &PgTarget) -> Result<Self, PgError> {
        let host = host_of(&target.upstream).ok_or_else(|| {
            PgError::Setup(format!(
                "connection {:?}: upstream {:?} is not host:port",
                target.info.name, target.upstream
            ))
        })?;
        let tls = match tls::upstream_config(&target.tls)? {
            None => None,
            Some(config) => {
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    PgError::Setup(format!("connection {:?}: {e}", target.info.name))
                })?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Self {
            addr: target.upstream.clone(),
            tls,
        })
    }

    /// Opens TCP and, when configured, negotiates TLS with an SSLRequest.
    pub(crate) async fn open(&self) -> Result<UpStream, PgError> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| PgError::UpstreamConnect(format!("{}: {e}", self.addr)))?;
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(MaybeTls::Plain(tcp));
        };
        let mut tcp = tcp;
        let mut req = BytesMut::new();
        encode_frontend::ssl_request(&mut req);
        let io = |e: std::io::Error| PgError::UpstreamConnect(format!("{}: {e}", self.addr));
        tcp.write_all(&req).await.map_err(io)?;
        if tcp.read_u8().await.map_err(io)? != b'S' {
            return Err(PgError::UpstreamConnect(format!(
                "{}: the server refused TLS",
                self.addr
            )));
        }
        let stream = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| PgError::UpstreamConnect(format!("{}: TLS: {e}", self.addr)))?;
        Ok(MaybeTls::Client(Box::new(stream)))
    }
}

/// Tells the server the session is over (Terminate) and closes the connection.
pub(crate) async fn goodbye<W: tokio::io::AsyncWrite + Unpin>(w: &mut FrameWriter<W>) {
    let mut bye = BytesMut::new();
    encode_frontend::terminate(&mut bye);
    w.push_bytes(bye.freeze());
    let grace = Duration::from_secs(5);
    let _ = tokio::time::timeout(grace, w.flush()).await;
    let _ = tokio::time::timeout(grace, w.shutdown()).await;
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> Option<&str> {
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// Opens a session on the target as its configured role, forwarding `params`, in `slot` of
/// the target's budget.
pub(crate) async fn login(
    conn: &Arc<UpstreamConn>,
    target: &PgTarget,
    params: &[(String, String)],
    limits: Limits,
    slot: Slot,
) -> Result<Upstream, PgError> {
    let stream = conn.open().await?;
    let (r, w) = tokio::io::split(stream);
    let mut reader = FrameReader::new(r, Side::Backend, limits);
    let mut writer = FrameWriter::new(w);
    let mut buf = BytesMut::new();
    let fixed = [
        ("user", target.user.as_str()),
        ("database", target.database.as_str()),
    ];
    let forwarded = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    encode_frontend::startup(&mut buf, fixed.into_iter().chain(forwarded))
        .map_err(|e| PgError::UpstreamStartup(e.to_string()))?;
    writer.push_bytes(buf.freeze());
    writer
        .flush()
        .await
        .map_err(|e| PgError::UpstreamConnect(e.to_string()))?;
    upstream_auth::authenticate(
        &mut reader,
        &mut writer,
        &target.user,
        target.password.as_ref(),
    )
    .await?;
    until_ready(reader, writer, slot).await
}

/// Collects what the server sends between AuthenticationOk and ReadyForQuery.
async fn until_ready(
    mut reader: FrameReader<ReadHalf<UpStream>>,
    writer: FrameWriter<WriteHalf<UpStream>>,
    slot: Slot,
) -> Result<Upstream, PgError> {
    let mut params = Vec::new();
    let mut notices = Vec::new();
    let mut key = None;
    loop {
        let frame = reader
            .next_frame()
            .await
            .map_err(PgError::from_upstream)?
            .ok_or(PgError::UpstreamGone)?;
        match parse_backend(&frame).map_err(PgError::UpstreamProtocol)? {
            Backend::ParameterStatus { name, value } => params.push((name, value)),
            Backend::BackendKeyData { pid, secret } => key = Some((pid, secret)),
            Backend::NoticeResponse(_) => notices.push(frame),
            Backend::ErrorResponse(e) => {
                let code = String::from_utf8_lossy(e.code().unwrap_or_default()).into_owned();
                let message = String::from_utf8_lossy(e.message().unwrap_or_default()).into_owned();
                return Err(PgError::UpstreamStartup(format!("{code}: {message}")));
            }
            Backend::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    // A server without a cancel key (a pooler, say) just cannot be cancelled through us.
    let (pid, secret) = key.unwrap_or((0, Bytes::new()));
    Ok(Upstream {
        reader,
        writer,
        params,
        pid,
        secret,
        notices,
        slot,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_parses_host_and_port() {
        assert_eq!(super::host_of("db.internal:5432"), Some("db.internal"));
        assert_eq!(super::host_of("[::1]:5432"), Some("::1"));
        assert_eq!(super::host_of("db"), None);
        assert_eq!(super::host_of(":5432"), None);
        assert_eq!(super::host_of("db:x"), None);
    }
}
