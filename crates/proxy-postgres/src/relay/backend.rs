//! Server to client: relay every message, keep the cycle bookkeeping, mask result rows, and
//! put the gateway's denial in place of the error its injected statement provoked.

use std::sync::Arc;

use bytes::Bytes;
use portcullis_masking::Counts;
use portcullis_pgwire::{
    Backend, FieldDescription, Frame, FrameReader, FrameWriter, Severity, parse_backend,
    parse_row_description, tag,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::PgError;
use crate::mask::{self, BinaryCopy, Refused};
use crate::relay::state::{Finished, RowsPlan, Stats, is_marker};
use crate::relay::{End, FLUSH_AT, Relay};
use crate::respond;

/// Relays until either side goes away or the server breaks the protocol.
/// `notices` are NoticeResponses of the gateway's own (a statement held for review), sent
/// between the server's messages; the protocol allows a notice at any point.
pub(crate) async fn run<R, W>(
    relay: &Relay<'_>,
    upstream: &mut FrameReader<R>,
    client: &mut FrameWriter<W>,
    notices: &mut tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<End, PgError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut fatal_relayed = false;
    let mut result = Current::default();
    // The client stopped reading after its Terminate: the server's last answers are read
    // (and audited) but go nowhere.
    let mut unread = false;
    // Whether a failed write to the client ends the relay: not after the client's Terminate,
    // when the server still finishes what was sent before it.
    let gone = |relay: &Relay<'_>| !relay.terminated.load(std::sync::atomic::Ordering::SeqCst);
    // A bounded statement of a simple Query went over its bound: the rest of that Query's
    // answers, up to its ReadyForQuery, are not shown (they are rolled back; the refusal
    // takes their place).
    let mut hiding = false;
    loop {
        // Both branches are cancel-safe: the frame reader keeps partial input buffered.
        let next = tokio::select! {
            biased;
            Some(notice) = notices.recv() => {
                if !unread {
                    client.push_bytes(notice);
                    unread = client.flush().await.is_err();
                    if unread && gone(relay) {
                        return Ok(End::ClientGone);
                    }
                }
                continue;
            }
            next = upstream.next_frame() => next,
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(End::UpstreamGone { fatal_relayed }),
            Err(e) => {
                return match PgError::from_upstream(e) {
                    PgError::UpstreamGone => Ok(End::UpstreamGone { fatal_relayed }),
                    other => Err(other),
                };
            }
        };
        let tag = frame.tag();
        // Rows never belong to the gateway's own BEGIN/COMMIT/ROLLBACK: the hot path skips
        // the lookup.
        let theirs =
            tag != tag::DATA_ROW && tag != tag::COPY_DATA && relay.tracker().front_hides(tag);
        let (out, finished) = inspect(relay, frame, &mut fatal_relayed, &mut result)?;
        let mut hide = hiding || theirs;
        if let Some(done) = &finished
            && done.exceeded.is_some()
        {
            // Its CommandComplete gives way to the refusal.
            hide = true;
            hiding |= done.simple;
        }
        if tag == tag::READY_FOR_QUERY {
            hiding = false;
        }
        // The client direction may wait for a bounded statement's end (an error may end it
        // before it ran).
        let bounded = finished
            .as_ref()
            .is_some_and(|d| d.admitted.as_ref().is_some_and(|a| a.row_limit.is_some()));
        if bounded
            || tag == tag::ERROR_RESPONSE
            || relay.draining.load(std::sync::atomic::Ordering::SeqCst)
        {
            relay.answered.notify_waiters();
        }
        if let Some(out) = out.filter(|_| !unread && !hide) {
            Stats::add(&relay.stats.bytes_to_client, out.len() as u64);
            client.push_bytes(out);
        }
        if let Some(mut done) = finished {
            // Boxed, so that an idle session does not carry this state (see the frontend).
            let reporting = Box::pin(async {
                let kept = std::mem::take(&mut done.kept);
                relay
                    .recorder
                    .ran(&done, done.columns.as_deref(), kept)
                    .await;
                relay.enforcer.result(done).await;
            });
            reporting.await;
        }
        if !unread
            && (!upstream.has_complete_frame() || client.buffered() >= FLUSH_AT)
            && client.flush().await.is_err()
        {
            unread = true;
            if gone(relay) {
                return Ok(End::ClientGone);
            }
        }
    }
}

/// The result now streaming: what it returned so far and how its rows are masked.
#[derive(Default)]
struct Current {
    rows: u64,
    bytes: u64,
    masked: Counts,
    /// The RowDescription of a simple-query statement.
    fields: Option<Arc<[FieldDescription]>>,
    /// Decided at the first row (`None` until then).
    plan: Option<RowsPlan>,
    /// Set by a binary CopyOutResponse: the tuple-by-tuple masking state.
    binary_copy: Option<BinaryCopy>,
    /// The first rows as sent to the client, for the recording.
    kept: Vec<serde_json::Value>,
    /// The statement's row bound, read at its first row (`None` until then).
    limit: Option<Option<u64>>,
}

impl Current {
    /// Ends the result: hands over the statement's figures and resets for the next one.
    fn finish(
        &mut self,
        relay: &Relay<'_>,
        tagged: Option<u64>,
        sqlstate: Option<String>,
    ) -> Option<Finished> {
        let done = std::mem::take(self);
        // A CommandComplete tag counts rows affected as well as returned.
        let rows = tagged.unwrap_or(done.rows);
        let mut tracker = relay.tracker();
        let columns = done.fields.or_else(|| tracker.front_columns());
        let mut finished = tracker.finish(rows, done.bytes, sqlstate)?;
        finished.masked = done.masked;
        finished.columns = columns;
        finished.kept = done.kept;
        Some(finished)
    }

    /// Whether the row just counted is beyond the statement's bound.
    fn over_limit(&mut self, relay: &Relay<'_>) -> bool {
        let limit = *self
            .limit
            .get_or_insert_with(|| relay.tracker().front_row_limit());
        limit.is_some_and(|max| self.rows > max)
    }

    fn plan(&mut self, relay: &Relay<'_>) -> &RowsPlan {
        self.plan.get_or_insert_with(|| {
            relay
                .tracker()
                .rows_plan(self.fields.as_deref(), || relay.enforcer.fallback_masker())
        })
    }

    /// Masks an ErrorResponse or NoticeResponse with the masker of the statement it belongs
    /// to (or the session's fallback), counting what it masked with the statement's values.
    fn report(&mut self, relay: &Relay<'_>, frame: &Frame) -> Result<Option<Bytes>, PgError> {
        let Some(masker) = statement_masker(relay) else {
            return Ok(None);
        };
        let lineage = relay.tracker().front_lineage();
        let strict = lineage.is_some_and(|l| mask::reads_sensitive(&masker, &l));
        mask::mask_report(&masker, frame, strict, &mut self.masked)
            .map_err(PgError::UpstreamProtocol)
    }
}

/// What to send the client for one server message (`None`: nothing), and the statement
/// whose result it completed, if any.
fn inspect(
    relay: &Relay<'_>,
    frame: Frame,
    fatal: &mut bool,
    cur: &mut Current,
) -> Result<(Option<Bytes>, Option<Finished>), PgError> {
    match frame.tag() {
        // The hot path: rows go through untouched unless the statement is masked.
        tag::DATA_ROW => {
            cur.rows += 1;
            cur.bytes += frame.wire_len() as u64;
            if cur.over_limit(relay) {
                // Rows a write RETURNs beyond its bound: it is refused at its end.
                return Ok((None, None));
            }
            let out = match cur.plan(relay) {
                RowsPlan::Clear => None,
                RowsPlan::Masked(plan) => {
                    let plan = plan.clone();
                    plan.mask_row(&frame, &mut cur.masked)
                        .map_err(PgError::UpstreamProtocol)?
                }
            };
            let out = out.unwrap_or_else(|| frame.as_bytes().clone());
            if cur.kept.len() < relay.recorder.keeps_rows() {
                cur.kept.push(recorded_row(&out));
            }
            return Ok((Some(out), None));
        }
        tag::COPY_DATA => return Ok((copy_data(relay, frame, cur)?, None)),
        tag::COPY_DONE => {
            if let Some(copy) = cur.binary_copy.take() {
                copy.finish().map_err(unmaskable)?;
            }
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::ROW_DESCRIPTION => {
            row_description(relay, &frame, cur)?;
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::NO_DATA => {
            if !relay.tracker().front_is_simple() {
                relay.tracker().described(None);
            }
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::EMPTY_QUERY_RESPONSE | tag::PORTAL_SUSPENDED => {
            relay.tracker().command_complete();
            let done = cur.finish(relay, None, None);
            return Ok((Some(frame.as_bytes().clone()), done));
        }
        tag::BIND_COMPLETE => {
            relay.tracker().bind_complete();
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::PARAMETER_DESCRIPTION | tag::COPY_BOTH_RESPONSE | tag::FUNCTION_CALL_RESPONSE => {
            return Ok((Some(frame.as_bytes().clone()), None));
        }
        tag::NOTICE_RESPONSE => {
            let out = cur.report(relay, &frame)?;
            return Ok((Some(out.unwrap_or_else(|| frame.as_bytes().clone())), None));
        }
        tag::NOTIFICATION_RESPONSE => {
            return Ok((Some(notification(relay, &frame)?), None));
        }
        _ => {}
    }
    let message = parse_backend(&frame).map_err(PgError::UpstreamProtocol)?;
    let mut finished = None;
    match message {
        Backend::ParseComplete => relay.tracker().parse_complete(),
        Backend::CloseComplete => relay.tracker().close_complete(),
        Backend::CommandComplete { tag } => {
            let tagged = counted(&tag);
            Stats::add(&relay.stats.rows, tagged.unwrap_or(cur.rows));
            relay.tracker().command_complete();
            finished = cur.finish(relay, tagged, None);
        }
        Backend::ErrorResponse(fields) => {
            if matches!(fields.severity(), Some(Severity::Fatal | Severity::Panic)) {
                *fatal = true;
                relay
                    .stats
                    .upstream_fatal
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let mut masked = None;
            if !is_marker(&fields) {
                masked = cur.report(relay, &frame)?;
                let sqlstate = fields
                    .code()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
                finished = cur.finish(relay, None, sqlstate);
            }
            if let Some(denial) = relay.tracker().error(&fields) {
                relay.enforcer.session.told(&denial);
                return Ok((Some(respond::denial(&denial)), finished));
            }
            if let Some(masked) = masked {
                return Ok((Some(masked), finished));
            }
        }
        Backend::ReadyForQuery(status) => {
            relay.tracker().ready(status);
            relay.answered.notify_waiters();
        }
        Backend::CopyInResponse { .. } => relay.tracker().copy_in(),
        Backend::CopyOutResponse { format } => {
            cur.binary_copy = (format == 1).then(BinaryCopy::default);
        }
        Backend::ParameterStatus { name, value } => {
            relay.tracker().parameter_status(&name, &value)?;
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

/// The masker for what the statement at the front of the response stream makes the server
/// say besides rows; the session's fallback when the gateway decided no running statement.
fn statement_masker(relay: &Relay<'_>) -> Option<portcullis_masking::Masker> {
    let front = relay.tracker().front_masker();
    match front {
        Some(masker) => masker,
        None => relay.enforcer.fallback_masker(),
    }
}

/// A NOTIFY's channel and payload, masked with the session's fallback: it comes from
/// another session, so no statement of this one owns it.
fn notification(relay: &Relay<'_>, frame: &Frame) -> Result<Bytes, PgError> {
    let Some(masker) = relay.enforcer.fallback_masker() else {
        return Ok(frame.as_bytes().clone());
    };
    let mut counts = Counts::default();
    let out =
        mask::mask_notification(&masker, frame, &mut counts).map_err(PgError::UpstreamProtocol)?;
    Ok(out.unwrap_or_else(|| frame.as_bytes().clone()))
}

/// A RowDescription describes the running simple-query statement, or answers a Describe.
fn row_description(relay: &Relay<'_>, frame: &Frame, cur: &mut Current) -> Result<(), PgError> {
    let simple = relay.tracker().front_is_simple();
    // A simple statement's description is only read when its rows will be masked or
    // recorded; a Describe's is kept, since any later execution of that statement may be.
    if simple && !relay.recorder.active() && !relay.tracker().front_masked() {
        return Ok(());
    }
    let fields: Arc<[FieldDescription]> = parse_row_description(frame)
        .map_err(PgError::UpstreamProtocol)?
        .into();
    if simple {
        cur.fields = Some(fields);
        cur.plan = None;
    } else {
        relay.tracker().described(Some(fields));
    }
    Ok(())
}

/// COPY TO STDOUT data of a masked statement is masked row by row: text and CSV as text,
/// binary tuple by tuple ([`BinaryCopy`]; a value it cannot mask in place ends the session
/// rather than pass in the clear). `None`: nothing to send yet (a binary tuple is still
/// incomplete).
fn copy_data(relay: &Relay<'_>, frame: Frame, cur: &mut Current) -> Result<Option<Bytes>, PgError> {
    cur.bytes += frame.wire_len() as u64;
    let plan = match cur.plan(relay) {
        RowsPlan::Clear => return Ok(Some(frame.as_bytes().clone())),
        RowsPlan::Masked(plan) => plan.clone(),
    };
    let masked = match cur.binary_copy.as_mut() {
        Some(copy) => {
            let out = copy
                .push_with(
                    plan.masker(),
                    &|n| plan.copy_whole(n),
                    &frame.body(),
                    &mut cur.masked,
                )
                .map_err(unmaskable)?;
            if out.is_empty() {
                return Ok(None);
            }
            (out[..] != frame.body()[..]).then_some(out)
        }
        None => plan.mask_copy_text(&frame.body(), &mut cur.masked),
    };
    match masked {
        None => Ok(Some(frame.as_bytes().clone())),
        Some(masked) => Frame::new(tag::COPY_DATA, &masked)
            .map(|f| Some(f.as_bytes().clone()))
            .map_err(PgError::UpstreamProtocol),
    }
}

fn unmaskable(refused: Refused) -> PgError {
    PgError::Unmaskable(match refused {
        Refused::Sensitive => "a binary COPY value that is not text",
        Refused::Malformed => "binary COPY output that cannot be read",
    })
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

/// A DataRow as the client received it, as recorded values.
fn recorded_row(raw: &Bytes) -> serde_json::Value {
    let cells = raw
        .get(5..)
        .and_then(|body| Frame::new(tag::DATA_ROW, body).ok())
        .and_then(|f| portcullis_pgwire::parse_data_row(&f).ok())
        .map(|values| {
            values
                .iter()
                .map(|v| crate::record::cell(v.as_deref()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    serde_json::Value::Array(cells)
}
