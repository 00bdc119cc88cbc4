//! Client to server: classify, decide, then forward, replace or drop each message.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::encode_frontend;
use portcullis_pgwire::{
    Bind, Frame, FrameReader, FrameWriter, Frontend, ObjectKind, Parse, parse_frontend, tag,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cache::Classified;
use crate::encoding::{ClientEncoding, Unreadable};
use crate::enforce::{Checked, Denial, Mode, Named};
use crate::error::PgError;
use crate::relay::state::{MAX_STATEMENTS, Role, SqlEncoding, Stats, Verdict};
use crate::relay::{End, FLUSH_AT, MARKER, Relay};
use portcullis_pipeline::session::Exact;
use portcullis_pipeline::{Code, Refusal};

/// Relays until the client terminates or leaves, or breaks the protocol.
pub(crate) async fn run<R, W>(
    relay: &Relay<'_>,
    client: &mut FrameReader<R>,
    upstream: &mut FrameWriter<W>,
) -> Result<End, PgError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // After a denied Parse or Bind, the server discards everything up to Sync; so does the
    // gateway, so that nothing after the denial is decided or forwarded in vain.
    let mut discarding = false;
    let mut inbox = Inbox {
        reader: client,
        held: None,
    };
    loop {
        drain(relay, upstream).await?;
        let next = match inbox.held.take() {
            Some(read) => read,
            None => crate::limits::watch(relay, inbox.reader.next_frame()).await?,
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(End::ClientGone),
            Err(e) => {
                return match PgError::from_client(e) {
                    PgError::ClientIo(_) => Ok(End::ClientGone),
                    other => Err(other),
                };
            }
        };
        Stats::add(&relay.stats.bytes_from_client, frame.wire_len() as u64);
        let message = parse_frontend(&frame).map_err(PgError::Protocol)?;
        // Boxed: a message's handling is the largest state of this loop, which otherwise
        // every idle session would carry while it waits for its next message.
        let stepping = Box::pin(step(
            relay,
            &mut discarding,
            &frame,
            message,
            upstream,
            &mut inbox,
        ));
        let end = stepping.await?;
        if end.is_some() || !inbox.reader.has_complete_frame() || upstream.buffered() >= FLUSH_AT {
            upstream.flush().await.map_err(|_| PgError::UpstreamGone)?;
        }
        if let Some(end) = end {
            if end == End::ClientTerminate && relay.tracker().in_flight() {
                return finish(relay, frame, upstream).await;
            }
            return Ok(end);
        }
    }
}

/// The client's Terminate while the server still has work of the session's. PostgreSQL
/// reads a Terminate only after the messages before it: the statements already sent run to
/// their end (a write pipelined before Terminate is not lost), their answers go to the
/// client while it reads them, then the server closes. So the Terminate is forwarded and
/// the relay goes on until the server closes the connection (which ends the session as the
/// client's Terminate); shutdown, revocation and expiry still end it sooner.
async fn finish<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    terminate: Frame,
    upstream: &mut FrameWriter<W>,
) -> Result<End, PgError> {
    relay
        .terminated
        .store(true, std::sync::atomic::Ordering::SeqCst);
    upstream.push(&terminate);
    upstream.flush().await.map_err(|_| PgError::UpstreamGone)?;
    std::future::pending().await
}

/// Reads no further ahead of the server than the session's pipeline bound: while more
/// answers are owed, what is queued goes out and the client waits, as it would on a server
/// whose output it does not read. Memory stays bounded and no depth is refused.
async fn drain<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    upstream: &mut FrameWriter<W>,
) -> Result<(), PgError> {
    use std::sync::atomic::Ordering;
    if relay.tracker().queued() <= relay.limits.max_pipeline_depth {
        return Ok(());
    }
    // Set before looking again, so that no answer that lowers the count goes unsignalled.
    relay.draining.store(true, Ordering::SeqCst);
    let drained = loop {
        let answered = relay.answered.notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        if relay.tracker().queued() <= relay.limits.max_pipeline_depth {
            break Ok(());
        }
        if upstream.flush().await.is_err() {
            break Err(PgError::UpstreamGone);
        }
        answered.await;
    };
    relay.draining.store(false, Ordering::SeqCst);
    drained
}

/// The client's reader, and the one message read ahead while the gateway waited for a
/// bounded statement's verdict (handled next, as if just read).
struct Inbox<'c, R> {
    reader: &'c mut FrameReader<R>,
    held: Option<Result<Option<Frame>, portcullis_pgwire::WireError>>,
}

async fn step<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    discarding: &mut bool,
    frame: &Frame,
    message: Frontend,
    up: &mut FrameWriter<W>,
    inbox: &mut Inbox<'_, R>,
) -> Result<Option<End>, PgError> {
    if *discarding && !matches!(message, Frontend::Sync | Frontend::Terminate) {
        return Ok(None);
    }
    match message {
        Frontend::Query { sql } => query(relay, frame, &sql, up, inbox).await?,
        Frontend::Parse(p) => *discarding = parse(relay, frame, p, up).await?,
        Frontend::Bind(b) => *discarding = bind(relay, frame, b, up).await?,
        Frontend::Execute { portal, max_rows } => {
            *discarding = execute(relay, frame, &portal, max_rows, up, inbox).await?;
        }
        Frontend::Describe { kind, name } => {
            relay
                .tracker()
                .describe(kind == ObjectKind::Statement, &name);
            up.push(frame);
        }
        // Answers nothing and opens nothing: it only makes the server send what it has.
        Frontend::Flush => up.push(frame),
        Frontend::Close { kind, name } => {
            relay.tracker().close(kind == ObjectKind::Statement, &name);
            up.push(frame);
        }
        Frontend::Sync => {
            *discarding = false;
            relay.tracker().sync();
            up.push(frame);
        }
        // Not forwarded: the session's end decides whether the server connection is
        // reset for the next session or terminated.
        Frontend::Terminate => return Ok(Some(End::ClientTerminate)),
        Frontend::FunctionCall { oid, .. } => function_call(relay, oid, up).await?,
        // COPY was decided at the statement that started it; outside a COPY the server
        // ignores these, as the protocol says.
        Frontend::CopyData(_) => up.push(frame),
        Frontend::CopyDone | Frontend::CopyFail { .. } => {
            relay.tracker().copy_end();
            up.push(frame);
        }
        Frontend::Password(_) => return Err(PgError::Unexpected('p')),
    }
    Ok(None)
}

fn count(relay: &Relay<'_>, checked: &Checked) {
    Stats::add(&relay.stats.commands, checked.decided);
    if checked.denial.is_some() {
        Stats::add(&relay.stats.denied, 1);
    }
}

/// Decides a message's statements. A CancelRequest that arrives meanwhile cancels them: the
/// server has nothing of this message running yet, so it would ignore the cancel and run
/// the statement in full (a `pg_sleep(20)` canceled 50 ms after it was sent).
async fn decide(relay: &Relay<'_>, classified: &Classified, mode: Mode<'_>) -> Checked {
    use std::sync::atomic::Ordering;
    let received = relay.enforcer.holder.received;
    let before = received.load(Ordering::SeqCst);
    let mut checked = relay
        .enforcer
        .check(
            classified,
            |named| match named {
                Named::Prepared(name) => relay.tracker().statement(name.as_bytes()),
                Named::Cursor(name) => relay.tracker().cursor(name.as_bytes()),
            },
            mode,
        )
        .await;
    if checked.denial.is_none() && received.load(Ordering::SeqCst) != before {
        let (action, command) = classified
            .classification
            .statements
            .first()
            .map_or((portcullis_sql::ids::ADMIN, UNREAD), |s| {
                (s.action, s.normalized.as_str())
            });
        let canceled = Refusal::new(
            Code::QueryCanceled,
            "canceling statement due to user request",
            "the client canceled this statement before it reached the server",
        );
        checked.denial = Some(relay.enforcer.refuse(action, command, canceled).await);
    }
    count(relay, &checked);
    checked
}

async fn query<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    frame: &Frame,
    sql: &Bytes,
    up: &mut FrameWriter<W>,
    inbox: &mut Inbox<'_, R>,
) -> Result<(), PgError> {
    let (text, classified) = match read_sql(relay, sql, up).await? {
        Ok(read) => read,
        Err(denial) => {
            relay.tracker().simple(Some(denial), None, Vec::new());
            up.push_bytes(injected(Injected::Query)?);
            return Ok(());
        }
    };
    let exact = Exact {
        text: &text,
        params: &[],
    };
    let checked = decide(relay, &classified, Mode::Now(exact)).await;
    let bounded = checked.admitted.iter().any(|a| a.row_limit.is_some());
    match checked.denial {
        None if bounded => {
            bounded_query(relay, frame, &classified, checked.admitted, up, inbox).await?;
        }
        None => {
            relay.neighbours.before(&classified).await;
            relay
                .tracker()
                .simple(None, Some(&classified), checked.admitted);
            up.push(frame);
        }
        Some(denial) => {
            record_denial(relay, &classified, &denial).await;
            relay.tracker().simple(Some(denial), None, Vec::new());
            up.push_bytes(injected(Injected::Query)?);
        }
    }
    Ok(())
}

/// Where a simple Query with bounded statements runs, so that no change of theirs can
/// commit before the server's count is checked: in the client's transaction block (open
/// before the Query, or opened by a BEGIN in it before the first bounded statement), or in
/// the gateway's own block (`Ok(true)`). Refused (`Err`: the statement in the way) is what
/// would commit them first or end the gateway's block under them: a COMMIT (or BEGIN) after
/// the first bounded statement, a COMMIT or ROLLBACK before it that leaves no block open,
/// any transaction end in a Query the gateway wraps, and a Query inside an unfinished
/// extended-protocol sequence or COPY.
pub(crate) fn placement(
    statements: &[portcullis_sql::Statement],
    admitted: &[Arc<crate::enforce::Admitted>],
    status: portcullis_pgwire::TransactionStatus,
    mid_sequence: bool,
) -> Result<bool, usize> {
    use portcullis_pgwire::TransactionStatus as Status;
    use portcullis_sql::TransactionOp as Op;
    let first = admitted
        .iter()
        .position(|a| a.row_limit.is_some())
        .unwrap_or(0);
    if mid_sequence {
        return Err(first);
    }
    let op = |s: &portcullis_sql::Statement| s.transaction;
    let ends = |s: &portcullis_sql::Statement| matches!(op(s), Some(Op::Commit | Op::Rollback));
    if let Some(i) = statements
        .iter()
        .skip(first)
        .position(|s| matches!(op(s), Some(Op::Commit | Op::Begin)))
    {
        return Err(first + i);
    }
    let before = statements.get(..first).unwrap_or_default();
    // The last BEGIN and the last end of a block before the first bounded statement.
    let opened = before.iter().rposition(|s| op(s) == Some(Op::Begin));
    let ended = before.iter().rposition(ends);
    let in_own_block = match (opened, ended) {
        (Some(b), Some(e)) => b > e,
        (Some(_), None) => true,
        (None, _) => false,
    };
    match (status, ended) {
        // A failed block runs nothing: the server refuses it all (25P02).
        (Status::Failed, _) => Ok(false),
        _ if in_own_block => Ok(false),
        (Status::InTransaction, None) => Ok(false),
        (_, Some(e)) => Err(e),
        // Outside any block: the gateway's own, which nothing in the Query may end.
        (Status::Idle, None) => match statements.iter().position(ends) {
            Some(i) => Err(i),
            None => Ok(true),
        },
    }
}

/// The audited refusal of a Query whose bounded statements cannot run where their change
/// could be undone; `at` is the statement in the way.
async fn misplaced(relay: &Relay<'_>, classified: &Classified, at: usize) -> Denial {
    let denial = refusal(
        Code::RowLimitUnenforceable,
        "portcullis: a statement with a row limit must run where the gateway can undo it if it changes too many rows".into(),
        "send COMMIT in its own Query after a statement with a row limit (not in the same string), and send such a statement after the extended-protocol sequence before it was synced",
    );
    let statement = classified.classification.statements.get(at);
    let (action, command) = statement.map_or((portcullis_sql::ids::ADMIN, UNREAD), |s| {
        (s.action, s.normalized.as_str())
    });
    let denial = relay.enforcer.refuse(action, command, denial).await;
    record_denial(relay, classified, &denial).await;
    Stats::add(&relay.stats.denied, 1);
    denial
}

/// Runs a simple Query whose statements carry a row bound so that none of its changes can
/// commit before the server's count is checked. Once the server has answered everything
/// before it (the transaction status is then exact):
///
/// - in a transaction block, it runs as it is; if a statement goes over its bound, the rest
///   of the Query's answers are not shown and the injected marker fails the block (the
///   client can only roll it back), its error replaced by the refusal;
/// - outside one, it runs inside the gateway's own BEGIN, which the gateway then COMMITs,
///   or ROLLs BACK (after the marker) when a bound was exceeded; the client sees the
///   answers as if no block had been opened;
/// - in a failed block, it is forwarded as it is: the server refuses it (25P02).
///
/// While it runs, COPY data the client streams to it is forwarded; any other message is
/// read ahead and handled after the verdict.
async fn bounded_query<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    frame: &Frame,
    classified: &Arc<Classified>,
    admitted: Vec<Arc<crate::enforce::Admitted>>,
    up: &mut FrameWriter<W>,
    inbox: &mut Inbox<'_, R>,
) -> Result<(), PgError> {
    use portcullis_pgwire::TransactionStatus as Status;
    let mid_sequence = relay.tracker().mid_sequence();
    if !mid_sequence {
        settle(relay, up).await?;
    }
    let status = relay.tracker().status();
    let statements = &classified.classification.statements;
    let wrapped = match placement(statements, &admitted, status, mid_sequence) {
        Ok(wrapped) => wrapped,
        Err(at) => {
            let denial = misplaced(relay, classified, at).await;
            relay.tracker().simple(Some(denial), None, Vec::new());
            up.push_bytes(injected(Injected::Query)?);
            return Ok(());
        }
    };
    relay.neighbours.before(classified).await;
    if status == Status::Failed {
        relay.tracker().simple(None, Some(classified), admitted);
        up.push(frame);
        return Ok(());
    }
    if wrapped {
        relay.tracker().internal(Role::Begin);
        up.push_bytes(statement("BEGIN")?);
        let opened = verdict(relay, up, inbox).await?;
        if opened.status != Status::InTransaction {
            return Err(PgError::RowLimit(
                "the server did not open the transaction a row-limited write runs in",
            ));
        }
    }
    {
        let mut t = relay.tracker();
        t.simple(None, Some(classified), admitted);
        t.bounded(wrapped);
    }
    up.push(frame);
    let ran = verdict(relay, up, inbox).await?;
    // The Query itself may have ended its block (a ROLLBACK after the bounded statements).
    let open = ran.status != Status::Idle;
    if let Some(denial) = ran.exceeded {
        Stats::add(&relay.stats.denied, 1);
        record_denial(relay, classified, &denial).await;
        {
            let mut t = relay.tracker();
            t.simple(Some(denial), None, Vec::new());
            if wrapped && open {
                t.hide_ready();
            }
        }
        up.push_bytes(injected(Injected::Query)?);
        if wrapped && open {
            relay.tracker().internal(Role::End);
            up.push_bytes(statement("ROLLBACK")?);
        }
    } else if wrapped && open {
        let end = if ran.status == Status::InTransaction {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        relay.tracker().internal(Role::End);
        up.push_bytes(statement(end)?);
    }
    Ok(())
}

/// An Execute: a bounded portal runs alone (see [`bounded_query`]): it must fetch all its
/// rows in one Execute, then nothing after it is sent until its count is checked. Over
/// the bound, its CommandComplete is not shown and the injected Parse fails the implicit
/// transaction (or the block) before anything can commit; the rest of the cycle is
/// dropped as after any denial. Returns whether it was refused.
async fn execute<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    frame: &Frame,
    portal: &Bytes,
    max_rows: i32,
    up: &mut FrameWriter<W>,
    inbox: &mut Inbox<'_, R>,
) -> Result<bool, PgError> {
    // One lock on the common path: an unbounded portal is tracked and forwarded at once.
    let limit = {
        let mut t = relay.tracker();
        let limit = t.portal_row_limit(portal);
        if limit.is_none() {
            t.execute(portal);
        }
        limit
    };
    let Some(limit) = limit else {
        up.push(frame);
        return Ok(false);
    };
    if max_rows != 0 {
        let denial = refusal(
            Code::RowLimitUnenforceable,
            format!(
                "portcullis: policy {} limits the rows this statement changes, so it must run whole, not {max_rows} rows at a time",
                limit.policy
            ),
            "execute it with no row count (Execute with max_rows 0)",
        );
        let denial = relay
            .enforcer
            .refuse(
                portcullis_sql::ids::ADMIN,
                "/* Execute of a bounded portal with a row count */",
                denial,
            )
            .await;
        Stats::add(&relay.stats.denied, 1);
        return deny_extended(relay, denial, up);
    }
    {
        let mut t = relay.tracker();
        t.execute(portal);
        t.await_execute();
    }
    up.push(frame);
    up.push_bytes(flush_message());
    let ran = verdict(relay, up, inbox).await?;
    match ran.exceeded {
        None => Ok(false),
        Some(denial) => {
            Stats::add(&relay.stats.denied, 1);
            deny_extended(relay, denial, up)
        }
    }
}

/// Waits until the server has answered everything sent so far.
async fn settle<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    up: &mut FrameWriter<W>,
) -> Result<(), PgError> {
    up.flush().await.map_err(|_| PgError::UpstreamGone)?;
    loop {
        let answered = relay.answered.notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        if !relay.tracker().in_flight() {
            return Ok(());
        }
        answered.await;
    }
}

/// Sends what is queued and waits for the verdict on the bounded statement (or the
/// gateway's BEGIN) just forwarded. Meanwhile the client's COPY data goes to the server (a
/// COPY FROM STDIN needs it to finish); the first other message is held for later, and the
/// client is read no further. A Sync sent while a COPY FROM STDIN of the extended protocol
/// starts is set aside: the server ignores it if it entered copy-in mode, so it is dropped
/// then, and handled as read otherwise (the COPY failed before it began).
async fn verdict<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    up: &mut FrameWriter<W>,
    inbox: &mut Inbox<'_, R>,
) -> Result<Verdict, PgError> {
    up.flush().await.map_err(|_| PgError::UpstreamGone)?;
    let mut aside: Option<Frame> = None;
    loop {
        let answered = relay.answered.notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        if let Some(verdict) = relay.tracker().verdict() {
            if let Some(sync) = aside.filter(|_| !verdict.copied) {
                // It comes before anything read after it.
                debug_assert!(inbox.held.is_none());
                inbox.held = Some(Ok(Some(sync)));
            }
            return Ok(verdict);
        }
        if inbox.held.is_some() {
            answered.await;
            continue;
        }
        let read = tokio::select! {
            () = &mut answered => continue,
            read = crate::limits::watch(relay, inbox.reader.next_frame()) => read?,
        };
        let kind = match &read {
            Ok(Some(f)) => f.tag(),
            _ => 0,
        };
        match read {
            Ok(Some(f)) if matches!(kind, tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL) => {
                Stats::add(&relay.stats.bytes_from_client, f.wire_len() as u64);
                if kind != tag::COPY_DATA {
                    relay.tracker().copy_end();
                }
                up.push(&f);
                if kind != tag::COPY_DATA {
                    // The Flush sent after the Execute came during copy-in mode, which
                    // ignores it: the server must be asked again for the COPY's answer.
                    up.push_bytes(flush_message());
                }
                up.flush().await.map_err(|_| PgError::UpstreamGone)?;
            }
            Ok(Some(f)) if kind == tag::SYNC && aside.is_none() && relay.tracker().copying_in() => {
                aside = Some(f);
            }
            other => inbox.held = Some(other),
        }
    }
}

/// A Flush: the server sends what it has (its answers to an extended-protocol message wait
/// for a Sync or a Flush otherwise).
fn flush_message() -> Bytes {
    let mut buf = BytesMut::with_capacity(5);
    encode_frontend::flush(&mut buf);
    buf.freeze()
}

/// A statement of the gateway's own, as a simple Query.
fn statement(sql: &str) -> Result<Bytes, PgError> {
    let mut buf = BytesMut::with_capacity(16);
    encode_frontend::query(&mut buf, sql).map_err(|e| PgError::Setup(e.to_string()))?;
    Ok(buf.freeze())
}

/// Returns whether the Parse was denied (and the rest of the cycle is to be dropped).
async fn parse<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    frame: &Frame,
    p: Parse,
    up: &mut FrameWriter<W>,
) -> Result<bool, PgError> {
    let classified = match read_sql(relay, &p.query, up).await? {
        Ok((_, classified)) => classified,
        Err(denial) => return deny_extended(relay, denial, up),
    };
    let checked = decide(relay, &classified, Mode::Defer).await;
    let mut denial = checked.denial;
    let full = {
        let t = relay.tracker();
        t.statement_count() >= MAX_STATEMENTS && t.statement(&p.name).is_none()
    };
    if denial.is_none() && full {
        denial = Some(too_many_statements());
    }
    match denial {
        None => {
            // A Parse holds one statement (the server refuses more), so one admission.
            let admitted = checked.admitted.into_iter().next();
            relay.neighbours.before(&classified).await;
            relay.tracker().parse(&p.name, &classified, admitted);
            up.push(frame);
            Ok(false)
        }
        Some(denial) => {
            record_denial(relay, &classified, &denial).await;
            deny_extended(relay, denial, up)
        }
    }
}

/// The SQL of a Query or Parse as the server will read it, classified; or the gateway's
/// (audited) refusal. The server converts each message from the client_encoding in effect
/// when it reads the message, so while a statement that may change client_encoding is still
/// running, this waits for the server's answer (which reports the new value) before it reads
/// anything; what is already queued goes out first, so the server can answer. Statements
/// that would make the server read SQL in a way the gateway cannot follow (an unsafe
/// encoding, `standard_conforming_strings` off) are refused here, before
/// policy.
async fn read_sql<'s, W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    sql: &'s [u8],
    up: &mut FrameWriter<W>,
) -> Result<Result<(Cow<'s, str>, Arc<Classified>), Denial>, PgError> {
    let read = loop {
        let answered = relay.answered.notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        let state = relay.tracker().sql_encoding();
        match state {
            SqlEncoding::Ready { encoding, server } => break encoding.decode(sql, server),
            SqlEncoding::Unknowable => {
                let denial = refusal(
                    Code::ClientEncodingPipelined,
                    "portcullis: this statement follows, in the same pipeline, one that may change client_encoding to a value the gateway cannot know yet"
                        .into(),
                    "send Sync after a statement that changes client_encoding, then continue",
                );
                return Ok(Err(relay
                    .enforcer
                    .refuse("sql.admin", UNREAD, denial)
                    .await));
            }
            SqlEncoding::Wait => {
                up.flush().await.map_err(|_| PgError::UpstreamGone)?;
                answered.await;
            }
        }
    };
    let text = match read {
        Ok(text) => text,
        Err(unreadable) => {
            let hint = match unreadable {
                Unreadable::Invalid(_) => {
                    "send text that is valid in the session's client_encoding (UTF8 is best)"
                }
                _ => "use client_encoding UTF8, or only ASCII in this encoding",
            };
            let denial = Refusal::new(unreadable.code(), unreadable.message(), hint);
            return Ok(Err(relay
                .enforcer
                .refuse("sql.admin", UNREAD, denial)
                .await));
        }
    };
    let classified = relay.cache.classify(&text);
    if let Some((statement, denial)) = unfollowable(&classified) {
        let denial = relay
            .enforcer
            .refuse(statement.action, &statement.normalized, denial)
            .await;
        record_denial(relay, &classified, &denial).await;
        return Ok(Err(denial));
    }
    Ok(Ok((text, classified)))
}

/// What the audit says a statement was when its text could not be read.
const UNREAD: &str = "/* a statement the gateway could not read */";

/// The first statement that would change how the server reads SQL in a way the door cannot
/// follow, with its refusal (before policy): a client_encoding the gateway cannot follow or
/// that PostgreSQL does not know (it would refuse it too, but nothing is left to chance), or
/// `standard_conforming_strings` off.
fn unfollowable(classified: &Classified) -> Option<(&portcullis_sql::Statement, Denial)> {
    classified.classification.statements.iter().find_map(|s| {
        if s.conforming_strings_off {
            let denial = refusal(
                Code::StandardConformingStringsOff,
                "portcullis: standard_conforming_strings cannot be turned off through the gateway".into(),
                "keep standard_conforming_strings on and write backslash escapes as E'...' strings",
            );
            return Some((s, denial));
        }
        let Some(portcullis_sql::SettingChange::Value(name)) = &s.client_encoding else {
            return None;
        };
        let known = ClientEncoding::lookup(name).is_some_and(ClientEncoding::is_safe);
        (!known).then(|| {
            let denial = refusal(
                Code::ClientEncodingForbidden,
                format!("portcullis: client_encoding {name:?} is not supported"),
                "use client_encoding UTF8 or another encoding that is not client-only (SJIS, BIG5, GBK, UHC, GB18030 and JOHAB can hide quotes and backslashes inside characters)",
            );
            (s, denial)
        })
    })
}

fn refusal(code: Code, message: String, hint: &str) -> Denial {
    Refusal::new(code, message, hint)
}

/// A Bind of a named statement is an execution of it, and decided again; the unnamed
/// statement was decided at its Parse.
async fn bind<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    frame: &Frame,
    b: Bind,
    up: &mut FrameWriter<W>,
) -> Result<bool, PgError> {
    let known = relay.tracker().statement(&b.statement);
    if b.statement.is_empty() {
        let admitted = relay.tracker().unnamed_admitted();
        // Decided at its Parse; held here if that decision asked for approval, now that the
        // parameters are known.
        if let (Some(need), Some(c)) = (admitted.as_ref().and_then(|a| a.review.clone()), &known) {
            let text = c.text();
            let params = bound(&b);
            let exact = Exact {
                text: &text,
                params: &params,
            };
            if let Err(denial) = relay.enforcer.hold(&need, &exact).await {
                Stats::add(&relay.stats.denied, 1);
                record_denial(relay, c, &denial).await;
                return deny_extended(relay, denial, up);
            }
        }
        relay.tracker().bind(&b, known, admitted);
        up.push(frame);
        return Ok(false);
    }
    // A name the gateway does not know may still exist on the server: decide it as an
    // opaque `sql.admin` statement rather than let it run undecided.
    let classified = known.unwrap_or_else(|| Classified::opaque("unknown prepared statement"));
    let text = classified.text();
    let params = bound(&b);
    let exact = Exact {
        text: &text,
        params: &params,
    };
    let checked = decide(relay, &classified, Mode::Now(exact)).await;
    match checked.denial {
        None => {
            let admitted = checked.admitted.into_iter().next();
            relay.tracker().bind(&b, Some(classified), admitted);
            up.push(frame);
            Ok(false)
        }
        Some(denial) => {
            record_denial(relay, &classified, &denial).await;
            deny_extended(relay, denial, up)
        }
    }
}

/// A Bind's parameters as a review binds them (`None`: NULL).
fn bound(b: &Bind) -> Vec<Option<&[u8]>> {
    b.params.iter().map(|p| p.as_deref()).collect()
}

async fn record_denial(relay: &Relay<'_>, classified: &Classified, denial: &Denial) {
    relay
        .recorder
        .denied(classified, denial, relay.enforcer.redact_literals)
        .await;
}

fn deny_extended<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    denial: Denial,
    up: &mut FrameWriter<W>,
) -> Result<bool, PgError> {
    relay.tracker().deny_extended(denial);
    up.push_bytes(injected(Injected::Parse)?);
    Ok(true)
}

async fn function_call<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    oid: u32,
    up: &mut FrameWriter<W>,
) -> Result<(), PgError> {
    let denial = relay.enforcer.function_call(oid).await;
    Stats::add(&relay.stats.commands, 1);
    Stats::add(&relay.stats.denied, 1);
    relay.tracker().simple(Some(denial), None, Vec::new());
    up.push_bytes(injected(Injected::Query)?);
    Ok(())
}

fn too_many_statements() -> Denial {
    Refusal::new(
        Code::PreparedStatementsLimit,
        format!("portcullis: more than {MAX_STATEMENTS} prepared statements in one session"),
        "close or deallocate prepared statements that are no longer used",
    )
}

enum Injected {
    Query,
    Parse,
}

/// The message that makes the server fail where the denied one stood (see the module docs
/// of [`crate::relay`]).
fn injected(kind: Injected) -> Result<Bytes, PgError> {
    let mut buf = BytesMut::with_capacity(32);
    match kind {
        Injected::Query => encode_frontend::query(&mut buf, MARKER),
        Injected::Parse => encode_frontend::parse_unnamed(&mut buf, MARKER),
    }
    .map_err(|e| PgError::Setup(e.to_string()))?;
    Ok(buf.freeze())
}
