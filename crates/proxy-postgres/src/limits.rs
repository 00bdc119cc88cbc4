//! The door's limits (`[postgres]` in `portcullis.toml`; the defaults are justified in
//! `portcullis-config`'s `PostgresConfig`): sessions per principal and per connection,
//! counted here and refused at start-up; the idle timeouts, watched around the relay's read
//! of the client's next message ([`watch`]); the pipeline depth, up to which the relay reads
//! ahead of the server's answers ([`crate::relay::frontend`]). The server-connection
//! budget is the pool's ([`crate::pool`]); the mid-message deadline is the codec's
//! ([`portcullis_pgwire::Limits::message_timeout`]). Each limit that ends or refuses a
//! session is an [`Exceeded`], which [`crate::respond`] turns into its ErrorResponse.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_identity::Principal;
use portcullis_pgwire::TransactionStatus;
use tokio::time::Instant;

use crate::error::PgError;
use crate::relay::Relay;

/// The limits, as the binary hands them over.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Sessions one principal (issuer and subject) may have open at once, across connections.
    pub max_sessions_per_principal: usize,
    /// Sessions one connection may have open at once.
    pub max_sessions_per_connection: usize,
    /// Server connections one connection may have open at once (in use and idle).
    pub max_server_connections: usize,
    /// How long a session waits for a server connection when all are taken.
    pub server_connection_wait: Duration,
    /// How long a client has to finish a message it has begun.
    pub message_timeout: Duration,
    /// Silence outside a transaction, with nothing running, that ends a session.
    pub idle_session_timeout: Duration,
    /// The same inside a transaction block.
    pub idle_in_transaction_timeout: Duration,
    /// Answers owed (response cycles and extended messages in flight) beyond which the
    /// door reads no more of the client until the server's answers come back.
    pub max_pipeline_depth: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions_per_principal: 100,
            max_sessions_per_connection: 500,
            max_server_connections: 50,
            server_connection_wait: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            idle_session_timeout: Duration::from_secs(3600),
            idle_in_transaction_timeout: Duration::from_secs(600),
            max_pipeline_depth: 10_000,
        }
    }
}

/// A limit a session ran into, with the configured value the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    SessionsPerPrincipal(usize),
    SessionsPerConnection(usize),
    /// All server connections stayed taken for the whole wait.
    ServerConnections {
        limit: usize,
        waited: Duration,
    },
    /// The client began a message and did not finish it in time.
    ClientStalled(Duration),
    IdleSession(Duration),
    IdleInTransaction(Duration),
}

impl Exceeded {
    /// The reason code (`code: ...` in the DETAIL, the audit's `ended` or `reason_code`).
    pub fn code(self) -> portcullis_pipeline::Code {
        use portcullis_pipeline::Code;
        match self {
            Exceeded::SessionsPerPrincipal(_) => Code::SessionLimitPrincipal,
            Exceeded::SessionsPerConnection(_) => Code::SessionLimitConnection,
            Exceeded::ServerConnections { .. } => Code::ServerConnectionsExhausted,
            Exceeded::ClientStalled(_) => Code::ClientStalled,
            Exceeded::IdleSession(_) => Code::IdleTimeout,
            Exceeded::IdleInTransaction(_) => Code::IdleInTransactionTimeout,
        }
    }
}

/// Open sessions by principal and by connection. Entries that drop to zero are removed, so
/// the maps hold only the identities and connections that have a session open.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// By (issuer, subject).
    principals: HashMap<(String, String), usize>,
    connections: HashMap<String, usize>,
}

/// A session's place in the counts, given back when it is dropped (however the session ends).
#[derive(Debug)]
pub(crate) struct SessionSlot {
    sessions: Arc<Sessions>,
    principal: (String, String),
    connection: String,
}

impl Sessions {
    /// Counts a new session of `principal` on `connection`, unless either is at its limit.
    pub(crate) fn admit(
        self: &Arc<Self>,
        principal: &Principal,
        connection: &str,
        limits: &SessionLimits,
    ) -> Result<SessionSlot, Exceeded> {
        let key = (principal.issuer.clone(), principal.subject.clone());
        let mut c = self.lock();
        let by_principal = c.principals.get(&key).copied().unwrap_or(0);
        if by_principal >= limits.max_sessions_per_principal {
            return Err(Exceeded::SessionsPerPrincipal(
                limits.max_sessions_per_principal,
            ));
        }
        let by_connection = c.connections.get(connection).copied().unwrap_or(0);
        if by_connection >= limits.max_sessions_per_connection {
            return Err(Exceeded::SessionsPerConnection(
                limits.max_sessions_per_connection,
            ));
        }
        *c.principals.entry(key.clone()).or_default() += 1;
        *c.connections.entry(connection.to_owned()).or_default() += 1;
        Ok(SessionSlot {
            sessions: self.clone(),
            principal: key,
            connection: connection.to_owned(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent under a panic elsewhere: every change is one statement.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut c = self.sessions.lock();
        release(&mut c.principals, &self.principal);
        release(&mut c.connections, &self.connection);
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// What the relay's tracker says about the session, for the idle timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quiet {
    /// The server owes answers (something is running, or the client has not sent Sync).
    pub(crate) in_flight: bool,
    pub(crate) status: TransactionStatus,
    /// When the last answer ended with nothing left in flight.
    pub(crate) since: Instant,
}

/// When a session in state `q` ends for idling, and why; `None` while something is in
/// flight. `read_since`: when the relay began waiting for the client's next message, so
/// that a message that changed nothing in flight still counts as the client's activity.
pub(crate) fn idle_deadline(
    q: Quiet,
    read_since: Instant,
    limits: &SessionLimits,
) -> Option<(Instant, Exceeded)> {
    if q.in_flight {
        return None;
    }
    let since = q.since.max(read_since);
    let (after, exceeded) = match q.status {
        TransactionStatus::Idle => (
            limits.idle_session_timeout,
            Exceeded::IdleSession(limits.idle_session_timeout),
        ),
        TransactionStatus::InTransaction | TransactionStatus::Failed => (
            limits.idle_in_transaction_timeout,
            Exceeded::IdleInTransaction(limits.idle_in_transaction_timeout),
        ),
    };
    Some((since.checked_add(after)?, exceeded))
}

/// Waits for `read` (the relay's read of the client's next message) unless the session stays
/// idle past its timeout. `read` is
/// polled to its end or dropped with the session, never restarted, so the codec's
/// mid-message deadline keeps its clock.
pub(crate) async fn watch<F: Future>(relay: &Relay<'_>, read: F) -> Result<F::Output, PgError> {
    let limits = relay.limits;
    let read_since = Instant::now();
    // While something is in flight, look again this often: the deadline, counted from the
    // answer that ended it, is then never found already passed.
    let recheck = limits
        .idle_session_timeout
        .min(limits.idle_in_transaction_timeout);
    tokio::pin!(read);
    loop {
        let quiet = relay.tracker().quiet();
        let deadline = idle_deadline(quiet, read_since, limits);
        let wake = deadline.map_or_else(|| Instant::now() + recheck, |(at, _)| at);
        tokio::select! {
            // A message already buffered is taken without arming the timer.
            biased;
            out = &mut read => return Ok(out),
            () = tokio::time::sleep_until(wake) => {
                if let Some((at, exceeded)) = deadline
                    && at <= Instant::now()
                {
                    return Err(PgError::Limit(exceeded));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
