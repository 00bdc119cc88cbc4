//! The live session after admission: the gateway's login to the server, the greeting to
//! the client, the relay, and how it ends (who is told what, what still runs upstream).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::{FrameWriter, TransactionStatus, encode_backend};
use portcullis_pipeline::session::{Ended, Lapse, Session};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::cancel::{self, CancelTarget};
use crate::door::{Door, TargetRt};
use crate::enforce::{CatalogRef, Enforcer};
use crate::error::{ErrorKind, PgError};
use crate::hold::Holder;
use crate::record::Recorder;
use crate::relay::Neighbours;
use crate::relay::state::Tracker;
use crate::relay::{End, Relay, backend, frontend};
use crate::respond;
use crate::startup::ClientConn;
use crate::upstream::{self, Upstream};

/// The engine's session, its target and what it forwards.
pub(crate) struct Live<'a> {
    pub(crate) session: &'a Session,
    pub(crate) target: &'a Arc<TargetRt>,
    pub(crate) forward: &'a [(String, String)],
}

/// Logs in upstream, greets the client and relays until the session ends.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    door: &Door,
    mut conn: ClientConn<S>,
    a: &Live<'_>,
    shutdown: &CancellationToken,
    tracker: &Mutex<Tracker>,
) -> (Ended, Option<PgError>) {
    let stats = &a.session.tally;
    // Each call that runs once per session is boxed in a statement of its own (a temporary
    // would keep its room in this state until the end of the statement that awaits it): an
    // async fn's state holds its callees' inline, so each level would otherwise carry the
    // largest state of every level under it for the session's whole life (the session's task
    // was 77 KB).
    let connecting = Box::pin(a.target.connect(a.forward, door.limits));
    let mut upstream = match connecting.await {
        Ok(u) => u,
        Err(e) => {
            let failing = Box::pin(login_failed(conn, e));
            return failing.await;
        }
    };
    // Read the connection's catalog now if a read is due, on this session's own connection.
    let loading = Box::pin(a.target.catalog.load_on(&mut upstream));
    loading.await;
    let cancel = CancelTarget {
        conn: a.target.conn.clone(),
        pid: upstream.pid,
        secret: upstream.secret.clone(),
        held: Arc::new(tokio::sync::Notify::new()),
        received: Arc::default(),
    };
    let greeted = tracker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .greeted(&upstream.params);
    if let Err(e) = greeted {
        let refusing = Box::pin(async move {
            crate::pool::terminate(upstream).await;
            conn.send_fatal(&e).await;
            conn.close().await;
            e
        });
        let e = refusing.await;
        return (Ended::Error, Some(e));
    }
    let key = door.cancels.register(cancel.clone());
    let hello = hello(
        &upstream,
        key.pid,
        key.secret,
        a.session.origin().session_id.as_deref(),
    );
    if conn.send(hello).await.is_err() {
        return (Ended::ClientGone, None);
    }
    let (notices, notices_rx) = tokio::sync::mpsc::channel(16);
    let recorder = Recorder {
        recording: a.session.recording(),
        rows: door.settings.record_rows,
    };
    let relay = Relay {
        recorder,
        enforcer: Enforcer {
            session: a.session,
            redact_literals: door.settings.redact_literals,
            holder: Holder {
                notices: &notices,
                canceled: &cancel.held,
                received: &cancel.received,
            },
            catalog: Some(CatalogRef {
                target: a.target,
                limits: door.limits,
            }),
            schema_changed: std::sync::atomic::AtomicBool::new(false),
        },
        cache: &door.cache,
        neighbours: Neighbours {
            targets: &door.targets,
            upstream: &a.target.target.upstream,
        },
        limits: &door.settings.limits,
        tracker,
        stats,
        answered: tokio::sync::Notify::new(),
        draining: std::sync::atomic::AtomicBool::new(false),
        terminated: std::sync::atomic::AtomicBool::new(false),
    };
    let relaying = Box::pin(relay_until_end(
        &relay, conn, upstream, shutdown, &cancel, notices_rx, a,
    ));
    relaying.await
}

async fn login_failed<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: ClientConn<S>,
    e: PgError,
) -> (Ended, Option<PgError>) {
    conn.send_fatal(&e).await;
    conn.close().await;
    let ended = match &e {
        PgError::Limit(l) => Ended::Limit(l.code()),
        _ => Ended::UpstreamError,
    };
    (ended, Some(e))
}

async fn relay_until_end<S: AsyncRead + AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    conn: ClientConn<S>,
    upstream: Upstream,
    shutdown: &CancellationToken,
    cancel: &CancelTarget,
    mut notices: tokio::sync::mpsc::Receiver<Bytes>,
    a: &Live<'_>,
) -> (Ended, Option<PgError>) {
    let Some((mut cr, mut cw)) = conn.into_halves() else {
        let terminating = Box::pin(crate::pool::terminate(upstream));
        terminating.await;
        return (Ended::ClientGone, None);
    };
    let Upstream {
        reader: mut ur,
        writer: mut uw,
        params,
        pid,
        secret,
        slot,
        ..
    } = upstream;
    // The two directions live as long as the session: boxed, the session's state is what
    // they hold while idle (about 2 KB), not twice that in the select's own copies.
    let result = tokio::select! {
        r = Box::pin(frontend::run(relay, &mut cr, &mut uw)) => r,
        r = Box::pin(backend::run(relay, &mut ur, &mut cw, &mut notices)) => r,
        () = shutdown.cancelled() => Err(PgError::Shutdown),
        lapse = a.session.lapsed() => match lapse {
            Lapse::Revoked(reason) => Err(PgError::Revoked(reason)),
            Lapse::Expired => Err(PgError::TokenExpired),
        },
    };
    let upstream_closed = matches!(result, Ok(End::UpstreamGone { .. }));
    let (ended, error) = outcome(result, relay);
    if let Some(e) = error
        .as_ref()
        .filter(|e| !matches!(e, PgError::ClientIo(_)))
    {
        cw.push_bytes(respond::fatal(e));
    }
    let grace = Duration::from_secs(5);
    // Whatever is still queued for the client (a partly written message included) goes out
    // before the connection closes; the server is told the session is over.
    let _ = tokio::time::timeout(grace, cw.flush()).await;
    let _ = tokio::time::timeout(grace, cw.shutdown()).await;
    // A session that ended cleanly, with nothing open on the server, leaves its connection
    // to the next one (reset first); any other end closes it.
    let reusable = ended == Ended::ClientTerminate && error.is_none() && {
        let t = relay.tracker();
        t.status() == TransactionStatus::Idle && !t.in_flight()
    };
    if reusable && a.target.pool.enabled() {
        let up = Upstream {
            reader: ur,
            writer: uw,
            params,
            pid,
            secret,
            notices: Vec::new(),
            slot,
        };
        let giving = Box::pin(a.target.pool.give_back(a.forward, up));
        giving.await;
    } else {
        // A server that closed (after the client's Terminate, too) only needs its socket shut.
        let ended = if upstream_closed {
            Ended::UpstreamGone
        } else {
            ended
        };
        let stopping = Box::pin(stop_upstream(relay, &mut uw, ended, cancel));
        stopping.await;
    }
    (ended, error)
}

fn ended_by(e: &PgError) -> Ended {
    match (e, e.kind()) {
        (PgError::Shutdown, _) => Ended::Shutdown,
        (PgError::Revoked(_), _) => Ended::Revoked,
        (PgError::TokenExpired, _) => Ended::TokenExpired,
        (PgError::ClientIo(_), _) => Ended::ClientGone,
        (PgError::Limit(l), _) => Ended::Limit(l.code()),
        (_, ErrorKind::Upstream) => Ended::UpstreamGone,
        _ => Ended::Error,
    }
}

/// What the client sees once the server has accepted the gateway: AuthenticationOk, the
/// server's parameters, the gateway's own cancel key, start-up notices, ReadyForQuery.
fn hello(upstream: &Upstream, pid: i32, secret: i32, session_id: Option<&str>) -> Bytes {
    let mut hello = BytesMut::new();
    encode_backend::authentication_ok(&mut hello);
    // The gateway's session id, so a client can find its session's audit and recording.
    if let Some(id) = session_id {
        let _ =
            encode_backend::parameter_status(&mut hello, crate::startup::SESSION_ID_PARAMETER, id);
    }
    for (k, v) in &upstream.params {
        // A value that cannot be encoded is not relayed rather than failing the session.
        let _ = encode_backend::parameter_status(&mut hello, k, v);
    }
    encode_backend::backend_key_data(&mut hello, pid, secret);
    for notice in &upstream.notices {
        hello.extend_from_slice(notice.as_bytes());
    }
    encode_backend::ready_for_query(&mut hello, TransactionStatus::Idle);
    hello.freeze()
}

/// How the relay's result reads for the audit, and what (if anything) the client is told.
fn outcome(result: Result<End, PgError>, relay: &Relay<'_>) -> (Ended, Option<PgError>) {
    let stats = relay.stats;
    let terminated = relay.terminated.load(std::sync::atomic::Ordering::SeqCst);
    let (ended, error) = match result {
        Ok(End::ClientTerminate) => (Ended::ClientTerminate, None),
        // The client's Terminate was forwarded; the server closed once it had read it.
        Ok(End::UpstreamGone { .. }) if terminated => (Ended::ClientTerminate, None),
        Ok(End::ClientGone) => (Ended::ClientGone, None),
        // The server said why it is closing; the client has that message already.
        Ok(End::UpstreamGone {
            fatal_relayed: true,
        }) => (Ended::UpstreamGone, None),
        Ok(End::UpstreamGone {
            fatal_relayed: false,
        }) => (Ended::UpstreamGone, Some(PgError::UpstreamGone)),
        Err(e) => (ended_by(&e), Some(e)),
    };
    // A client that hangs up after the server's FATAL reached it left because the server
    // went away, whichever direction noticed first.
    let server_quit = stats
        .upstream_fatal
        .load(std::sync::atomic::Ordering::Relaxed);
    match ended {
        Ended::ClientGone if server_quit => (Ended::UpstreamGone, None),
        _ => (ended, error),
    }
}

/// Ends the server session: cancel what still runs, then Terminate and close.
async fn stop_upstream<W: AsyncWrite + Unpin>(
    relay: &Relay<'_>,
    uw: &mut FrameWriter<W>,
    ended: Ended,
    cancel: &CancelTarget,
) {
    let grace = Duration::from_secs(5);
    if ended == Ended::UpstreamGone {
        let _ = tokio::time::timeout(grace, uw.shutdown()).await;
        return;
    }
    // A server busy with a query reads nothing, Terminate included, until the query ends:
    // cancel it first, so a client that left does not leave a query running.
    if relay.tracker().in_flight() {
        let cancelled = tokio::time::timeout(grace, cancel::send(cancel)).await;
        if !matches!(cancelled, Ok(Ok(()))) {
            tracing::warn!("could not cancel the query of a session that ended");
        }
    }
    upstream::goodbye(uw).await;
}
