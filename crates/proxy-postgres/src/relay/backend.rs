//! Server to client: relay every message, keep the cycle bookkeeping, and put the gateway's
//! denial in place of the error its injected statement provoked.

use bytes::Bytes;
use portcullis_pgwire::{Backend, Frame, FrameReader, FrameWriter, Severity, parse_backend, tag};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::PgError;
use crate::relay::state::{Finished, Stats, is_marker};
use crate::relay::{End, FLUSH_AT, Relay};
use crate::respond;

/// Relays until either side goes away or the server breaks the protocol.
pub(crate) async fn run<R, W>(
    relay: &Relay<'_>,
    upstream: &mut FrameReader<R>,
    client: &mut FrameWriter<W>,
) -> Result<End, PgError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut fatal_relayed = false;
    let mut result = Accumulated::default();
    loop {
        let frame = match upstream.next_frame().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(End::UpstreamGone { fatal_relayed }),
            Err(e) => {
                return match PgError::from_upstream(e) {
                    PgError::UpstreamGone => Ok(End::UpstreamGone { fatal_relayed }),
                    other => Err(other),
                };
            }
        };
        let (out, finished) = inspect(relay, frame, &mut fatal_relayed, &mut result)?;
        if let Some(out) = out {
            Stats::add(&relay.stats.bytes_to_client, out.len() as u64);
            client.push_bytes(out);
        }
        if let Some(done) = finished {
            relay.enforcer.result(done).await;
        }
        if (!upstream.has_complete_frame() || client.buffered() >= FLUSH_AT)
            && client.flush().await.is_err()
        {
            return Ok(End::ClientGone);
        }
    }
}

/// What the current statement has returned so far.
#[derive(Default)]
struct Accumulated {
    rows: u64,
    bytes: u64,
}

impl Accumulated {
    fn take(&mut self) -> (u64, u64) {
        let taken = (self.rows, self.bytes);
        *self = Self::default();
        taken
    }
}

/// What to send the client for one server message (`None`: nothing), and the statement
/// whose result it completed, if any.
fn inspect(
    relay: &Relay<'_>,
    frame: Frame,
    fatal: &mut bool,
    acc: &mut Accumulated,
) -> Result<(Option<Bytes>, Option<Finished>), PgError> {
    match frame.tag() {
        // The hot path: rows go through untouched.
        tag::DATA_ROW => {
            acc.rows += 1;
            acc.bytes += frame.wire_len() as u64;
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::EMPTY_QUERY_RESPONSE | tag::PORTAL_SUSPENDED => {
            let (rows, bytes) = acc.take();
            let done = relay.tracker().finish(rows, bytes, None);
            return Ok((Some(frame.as_bytes().clone()), done));
        }
        tag::ROW_DESCRIPTION
        | tag::BIND_COMPLETE
        | tag::NO_DATA
        | tag::PARAMETER_DESCRIPTION
        | tag::COPY_DATA
        | tag::COPY_DONE
        | tag::NOTICE_RESPONSE
        | tag::NOTIFICATION_RESPONSE
        | tag::COPY_OUT_RESPONSE
        | tag::COPY_BOTH_RESPONSE
        | tag::FUNCTION_CALL_RESPONSE => {
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        _ => {}
    }
    let message = parse_backend(&frame).map_err(PgError::UpstreamProtocol)?;
    let mut finished = None;
    match message {
        Backend::ParseComplete => relay.tracker().parse_complete(),
        Backend::CloseComplete => relay.tracker().close_complete(),
        Backend::CommandComplete { tag } => {
            let (seen, bytes) = acc.take();
            // The tag counts rows affected as well as returned; COPY rows arrive as CopyData.
            let rows = counted(&tag).unwrap_or(seen);
            Stats::add(&relay.stats.rows, rows);
            let mut tracker = relay.tracker();
            tracker.command_complete();
            finished = tracker.finish(rows, bytes, None);
        }
        Backend::ErrorResponse(fields) => {
            if matches!(fields.severity(), Some(Severity::Fatal | Severity::Panic)) {
                *fatal = true;
                relay
                    .stats
                    .upstream_fatal
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let mut tracker = relay.tracker();
            if !is_marker(&fields) {
                let (rows, bytes) = acc.take();
                let sqlstate = fields
                    .code()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
                finished = tracker.finish(rows, bytes, sqlstate);
            }
            if let Some(denial) = tracker.error(&fields) {
                return Ok((Some(respond::denial(&denial)), finished));
            }
        }
        Backend::ReadyForQuery(status) => relay.tracker().ready(status),
        Backend::CopyInResponse { .. } => relay.tracker().copy_in(),
        Backend::ParameterStatus { name, value } => {
            relay.tracker().parameter_status(&name, &value);
        }
        // The server's cancel key must never reach the client: the gateway gave it its own.
        Backend::BackendKeyData { .. } | Backend::NegotiateProtocolVersion { .. } => {
            tracing::warn!("dropping an unexpected start-up message from the server");
            return Ok((None, None));
        }
        Backend::Authentication(_) => {
            return Err(PgError::UpstreamProtocol(
                portcullis_pgwire::WireError::UnknownTag { tag: 'R' },
            ));
        }
        _ => {}
    }
    Ok((Some(frame.as_bytes().clone()), finished))
}

/// Rows affected or returned, from a CommandComplete tag such as `INSERT 0 5`, `SELECT 3`
/// or `COPY 10`; `None` for tags without a count.
pub(crate) fn counted(tag: &[u8]) -> Option<u64> {
    let counted = [
        &b"INSERT"[..],
        b"UPDATE",
        b"DELETE",
        b"SELECT",
        b"MERGE",
        b"COPY",
        b"FETCH",
        b"MOVE",
    ];
    if !counted.iter().any(|c| tag.starts_with(c)) {
        return None;
    }
    tag.rsplit(|&b| b == b' ')
        .next()
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse().ok())
}
