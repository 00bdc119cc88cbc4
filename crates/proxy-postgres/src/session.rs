//! One client session from accept to close: start-up, admission (token, connection name,
//! `connect` decision, the door's session limits), then the session opened on the engine
//! (which audits it, records it and watches its identity), the upstream login and the relay,
//! and its close.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_identity::Principal;
use portcullis_pgwire::TransactionStatus;
use portcullis_pipeline::session::{Close, Open, Recording};
use portcullis_pipeline::{Code, Origin, Refusal};
use portcullis_policy::Target;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cancel;
use crate::door::{Door, TargetRt};
use crate::error::{ErrorKind, PgError};
use crate::live;
use crate::relay::state::{Stats, Tracker};
use crate::respond;
use crate::startup::{self, ClientConn, Greeting, Requested};

/// How long a client may take from connecting to sending its token, as PostgreSQL's own
/// `authentication_timeout`.
const ADMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// An authenticated client allowed to connect to its target.
struct Admitted {
    principal: Arc<Principal>,
    target: Arc<TargetRt>,
    req: Requested,
    /// No write action can ever be allowed to its principal on this connection.
    read_only: bool,
    /// Its place in the session counts, for as long as the session lives.
    _slot: crate::limits::SessionSlot,
}

/// Runs one session to its end. Never panics and never returns an error: every failure is
/// told to the client (where it can be), logged and, once the session is open, audited.
/// Set for the gateway's own in-memory sessions (the exec API): the caller's token crossed the
/// network inside the API's own transport, so the door's TLS rule does not apply; the agent's
/// run and tool call go into every audit event of the session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Local {
    pub(crate) run_id: Option<String>,
    pub(crate) tool_call_id: Option<String>,
    /// Where the session's decisions are noted, for an answer that names its audit events.
    pub(crate) receipts: Option<portcullis_pipeline::Receipts>,
}

pub(crate) async fn run<S>(
    door: Arc<Door>,
    stream: S,
    peer: SocketAddr,
    shutdown: CancellationToken,
    local: Option<Local>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let session_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::info_span!("postgres", session = %session_id, %peer);
    let is_local = local.is_some();
    let local = local.unwrap_or_default();
    let origin = Origin {
        source_ip: Some(peer.ip().to_canonical()),
        protocol: "postgres",
        session_id: Some(session_id),
        run_id: local.run_id,
        tool_call_id: local.tool_call_id,
        receipts: local.receipts,
    };
    async move {
        let mut conn = ClientConn::new(stream, door.limits);
        let admitted = tokio::select! {
            r = tokio::time::timeout(ADMIT_TIMEOUT, Box::pin(admit(&door, &mut conn, peer, &origin, is_local))) => {
                r.unwrap_or_else(|_| Err(PgError::ClientIo(std::io::ErrorKind::TimedOut.into())))
            }
            () = shutdown.cancelled() => Err(PgError::Shutdown),
        };
        match admitted {
            // Boxed, as the other once-per-session calls below (see `live::run`).
            Ok(Some(a)) => {
                let session = Box::pin(connected(&door, conn, a, &origin, &shutdown));
                session.await
            }
            Ok(None) => conn.close().await,
            Err(e) => {
                log(&e);
                if !matches!(e, PgError::ClientIo(_)) {
                    told(&origin, &e);
                    conn.send_fatal(&e).await;
                }
                conn.close().await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Notes what the client is told about a session-ending error, typed, for a caller inside
/// the gateway (the exec API).
pub(crate) fn told(origin: &Origin, e: &PgError) {
    if let (Some(r), Some(refusal)) = (&origin.receipts, respond::refusal(e)) {
        r.refused(&refusal);
    }
}

fn log(e: &PgError) {
    match e.kind() {
        ErrorKind::Upstream | ErrorKind::Internal => {
            tracing::warn!(error = %e, "postgres session failed")
        }
        ErrorKind::Client | ErrorKind::PolicyDenied => {
            tracing::info!(error = %e, "postgres session refused")
        }
    }
}

/// Start-up through the `connect` decision. `None`: nothing more to do (a cancel request,
/// or a client that left).
async fn admit<S: AsyncRead + AsyncWrite + Unpin>(
    door: &Door,
    conn: &mut ClientConn<S>,
    peer: SocketAddr,
    origin: &Origin,
    local: bool,
) -> Result<Option<Admitted>, PgError> {
    let startup = match startup::greet(conn, &door.acceptor).await? {
        Greeting::Gone => return Ok(None),
        Greeting::Cancel { pid, secret } => {
            forward_cancel(door, pid, &secret).await;
            return Ok(None);
        }
        Greeting::Startup(s) => s,
    };
    let req = startup::requested(&startup)?;
    // The token must not cross a network in plaintext; loopback has no network to sniff.
    let loopback = peer.ip().to_canonical().is_loopback();
    if !(local || conn.is_tls() || loopback && door.settings.allow_plaintext_loopback) {
        return Err(PgError::TlsRequired);
    }
    let Some(token) = startup::ask_password(conn, &req).await? else {
        return Ok(None);
    };
    let principal = door
        .engine
        .authenticate(token.expose_secret(), origin)
        .await
        .map_err(refused)?;
    drop(token);
    // Only now, so that a caller without a valid token cannot probe connection names.
    let target = door
        .targets
        .get(&req.database)
        .cloned()
        .ok_or_else(|| PgError::UnknownDatabase(req.database.clone()))?;
    door.engine
        .connect(&principal, &target.target.info, origin)
        .await
        .map_err(|r| match r.code {
            Code::AuditUnavailable => PgError::AuditUnavailable,
            _ => PgError::ConnectDenied(Box::new(r)),
        })?;
    let read_only = may_not_write(door, &principal, &target);
    let slot = count_session(door, &principal, &target, origin).await?;
    Ok(Some(Admitted {
        principal,
        target,
        req,
        read_only,
        _slot: slot,
    }))
}

/// Counts the session against the door's limits, before anything opens upstream; a session
/// beyond them is refused and leaves a `session.refused` event.
async fn count_session(
    door: &Door,
    principal: &Principal,
    target: &TargetRt,
    origin: &Origin,
) -> Result<crate::limits::SessionSlot, PgError> {
    let connection = &target.target.info.name;
    let exceeded = match door
        .sessions
        .admit(principal, connection, &door.settings.limits)
    {
        Ok(slot) => return Ok(slot),
        Err(exceeded) => exceeded,
    };
    let e = PgError::Limit(exceeded);
    door.engine
        .refused(
            principal,
            connection,
            origin,
            exceeded.code(),
            respond::summary(&e),
        )
        .await;
    Err(e)
}

fn refused(r: Refusal) -> PgError {
    match r.code {
        Code::AuditUnavailable => PgError::AuditUnavailable,
        _ => PgError::Token(Box::new(r)),
    }
}

/// The actions that can change data or the session's privileges.
const WRITE_ACTIONS: &[&str] = &[
    "sql.insert",
    "sql.update",
    "sql.delete",
    "sql.merge",
    "sql.copy_from",
    "sql.ddl",
    "sql.admin",
];

/// Whether no permit policy can admit the principal to any write action on the target (see
/// `PolicyEngine::may_permit`): such a session runs in the server with
/// `default_transaction_read_only = on`, so a write the classifier does not see (inside a
/// function, a trigger, a rule) still fails there. Undoing it takes `sql.admin`, which the
/// principal may not run, and a report of it turned off ends the session. Decided at connect:
/// a policy reload applies to the sessions that start after it.
fn may_not_write(door: &Door, principal: &Principal, target: &TargetRt) -> bool {
    let policy = door.engine.pipeline().policy();
    let on = Target::Connection(&target.target.info);
    !WRITE_ACTIONS
        .iter()
        .any(|action| policy.may_permit(principal, action, &on))
}

/// The start-up parameters sent to the server: the client's allowed ones, and for a session
/// that may not write, `default_transaction_read_only = on` (a start-up setting, so `RESET`
/// and the pool's `DISCARD ALL` come back to it, and pooled connections are kept apart by it).
fn forwarded(a: &Admitted) -> Vec<(String, String)> {
    let mut forward = a.req.forward.clone();
    if a.read_only {
        forward.push(("default_transaction_read_only".into(), "on".into()));
    }
    forward
}

async fn forward_cancel(door: &Door, pid: i32, secret: &[u8]) {
    match door.cancels.lookup(pid, secret) {
        Some(target) => {
            target
                .received
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            target.held.notify_waiters();
            if let Err(e) = cancel::send(&target).await {
                tracing::warn!(error = %e, "forwarding a cancel request failed");
            }
        }
        None => tracing::info!("cancel request for an unknown key ignored"),
    }
}

/// The open session: open it on the engine, log in upstream, relay, close it.
async fn connected<S: AsyncRead + AsyncWrite + Unpin>(
    door: &Door,
    mut conn: ClientConn<S>,
    a: Admitted,
    origin: &Origin,
    shutdown: &CancellationToken,
) {
    let mut data = serde_json::Map::new();
    data.insert("client_user".into(), a.req.user.clone().into());
    data.insert("read_only".into(), a.read_only.into());
    let open = Open {
        principal: a.principal.clone(),
        connection: a.target.target.info.clone(),
        origin: origin.clone(),
        masking: a.target.target.masking.clone(),
        data,
        recording: Recording::Timeline,
    };
    let opening = Box::pin(door.engine.open(open));
    let session = match opening.await {
        Ok(s) => s,
        Err(r) => {
            let e = match r.code {
                Code::RecordingUnavailable => PgError::RecordingUnavailable,
                _ => PgError::AuditUnavailable,
            };
            told(origin, &e);
            let refusing = Box::pin(async move {
                conn.send_fatal(&e).await;
                conn.close().await;
            });
            refusing.await;
            return;
        }
    };
    let mut tracker = Tracker::new();
    if a.read_only {
        tracker.read_only();
    }
    let tracker = Mutex::new(tracker);
    let forward = forwarded(&a);
    let live = live::Live {
        session: &session,
        target: &a.target,
        forward: &forward,
    };
    let living = Box::pin(live::run(door, conn, &live, shutdown, &tracker));
    let (ended, error) = living.await;
    let in_transaction = tracker
        .lock()
        .is_ok_and(|t| t.status() != TransactionStatus::Idle);
    if let Some(e) = &error {
        log(e);
        if let Some(r) = respond::refusal(e) {
            session.told(&r);
        }
    }
    let summary = error.as_ref().map(respond::summary);
    let statements = Stats::get(&session.tally.commands);
    let mut extra = serde_json::Map::new();
    extra.insert("in_transaction".into(), in_transaction.into());
    let closing = Box::pin(session.close(Close {
        ended,
        error: summary.as_deref(),
        extra,
    }));
    closing.await;
    tracing::info!(ended = ?ended, statements, "postgres session closed");
}
