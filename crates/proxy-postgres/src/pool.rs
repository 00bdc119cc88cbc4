//! Idle server connections kept for the next session, as pgbouncer's session mode keeps
//! them: a session that ends cleanly (the client sent Terminate, no transaction open,
//! nothing in flight) gives its connection back after `DISCARD ALL` has reset everything the
//! session could have left behind (settings, prepared statements, cursors, temp tables,
//! LISTEN, advisory locks, SET ROLE / SESSION AUTHORIZATION). The next session on the same
//! target with the same forwarded start-up parameters skips the TCP, TLS and login round
//! trips and PostgreSQL's backend start.
//!
//! Every server connection is logged in with the target's configured role, the same for
//! every principal, so a reset connection carries nothing of the principal that used it.
//!
//! The pool also keeps the target's budget of server connections (`max_server_connections`):
//! every open one, in use or idle, holds a [`Slot`]. A session that finds the budget spent
//! closes an idle connection opened with other start-up parameters to make room, or waits
//! (`server_connection_wait`) for a slot or a connection given back, then gives up with
//! `server_connections_exhausted`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use portcullis_pgwire::{Backend, TransactionStatus, encode_frontend, parse_backend};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::PgError;
use crate::limits::Exceeded;
use crate::upstream::Upstream;

/// How long the reset may take before the connection is closed instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// The forwarded start-up parameters a connection was opened with: only a session asking
/// for the same ones may take it.
type Key = Vec<(String, String)>;

/// One target's idle connections, at most `size` in all (whatever their keys, so clients
/// varying their start-up parameters cannot make the gateway hold more server backends).
pub(crate) struct Pool {
    /// 0 turns pooling off.
    size: usize,
    idle_timeout: Duration,
    /// Oldest first.
    idle: Mutex<Vec<Idle>>,
    /// One permit per server connection the target may have open.
    budget: Arc<Semaphore>,
    max_open: usize,
    /// How long a session waits for a slot.
    wait: Duration,
    /// Woken when a connection is given back, for the sessions waiting for a slot.
    returned: Notify,
}

/// One server connection's place in its target's budget, held by the [`Upstream`] for as
/// long as the connection is open (in use, or idle in the pool).
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

struct Idle {
    since: Instant,
    key: Key,
    up: Upstream,
}

impl Pool {
    /// At most `max_open` server connections (at least one), of which at most `size` idle;
    /// a session waits up to `wait` for one.
    pub(crate) fn new(
        size: usize,
        idle_timeout: Duration,
        max_open: usize,
        wait: Duration,
    ) -> Self {
        let max_open = max_open.max(1);
        Self {
            size,
            idle_timeout,
            idle: Mutex::new(Vec::new()),
            budget: Arc::new(Semaphore::new(max_open)),
            max_open,
            wait,
            returned: Notify::new(),
        }
    }

    /// A server connection for a session forwarding `forward`: an idle one opened with the
    /// same parameters, or one `open` logs in with a slot of the budget. While the budget is
    /// spent, an idle connection of other parameters is closed to make room; failing that,
    /// the session waits for a slot or a connection given back, up to the configured wait.
    pub(crate) async fn connect<F, Fut>(
        &self,
        forward: &[(String, String)],
        open: F,
    ) -> Result<Upstream, PgError>
    where
        F: FnOnce(Slot) -> Fut,
        Fut: std::future::Future<Output = Result<Upstream, PgError>>,
    {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // Listen before looking, so a connection given back in between is not missed.
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(up) = self.take(forward).await {
                return Ok(up);
            }
            if let Ok(permit) = self.budget.clone().try_acquire_owned() {
                return open(Slot { _permit: permit }).await;
            }
            if self.close_oldest().await {
                continue;
            }
            tokio::select! {
                permit = self.budget.clone().acquire_owned() => {
                    let permit = permit.map_err(|_| PgError::Shutdown)?;
                    return open(Slot { _permit: permit }).await;
                }
                () = &mut returned => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(PgError::Limit(Exceeded::ServerConnections {
                        limit: self.max_open,
                        waited: self.wait,
                    }));
                }
            }
        }
    }

    /// Closes the oldest idle connection, whatever its parameters; whether there was one.
    async fn close_oldest(&self) -> bool {
        let oldest = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            (!idle.is_empty()).then(|| idle.remove(0).up)
        };
        match oldest {
            Some(up) => {
                terminate(up).await;
                true
            }
            None => false,
        }
    }

    /// Closes every idle connection, waiting until the server has been told.
    pub(crate) async fn close_idle(&self) {
        let idle: Vec<Idle> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.drain(..).collect()
        };
        for i in idle {
            terminate(i.up).await;
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.size > 0
    }

    /// A live idle connection opened with `forward`, if there is one (the newest).
    pub(crate) async fn take(&self, forward: &[(String, String)]) -> Option<Upstream> {
        loop {
            let (found, expired) = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let expired = self.expire(&mut idle);
                let found = idle
                    .iter()
                    .rposition(|i| i.key == forward)
                    .map(|at| idle.remove(at).up);
                (found, expired)
            };
            for old in expired {
                terminate(old).await;
            }
            if let Some(up) = alive(found?).await {
                return Some(up);
            }
        }
    }

    /// Resets `up` and keeps it, or closes it when it cannot be reset; the oldest idle
    /// connection makes room when the pool is full.
    pub(crate) async fn give_back(&self, forward: &[(String, String)], up: Upstream) {
        if !self.enabled() {
            return terminate(up).await;
        }
        let Some(up) = reset(up).await else {
            return;
        };
        let closing = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut closing = self.expire(&mut idle);
            idle.push(Idle {
                since: Instant::now(),
                key: forward.to_vec(),
                up,
            });
            if idle.len() > self.size {
                closing.push(idle.remove(0).up);
            }
            closing
        };
        self.returned.notify_waiters();
        for old in closing {
            terminate(old).await;
        }
    }

    /// Takes out the connections idle for longer than the timeout (they are at the front).
    fn expire(&self, idle: &mut Vec<Idle>) -> Vec<Upstream> {
        let fresh = idle
            .iter()
            .position(|i| i.since.elapsed() < self.idle_timeout)
            .unwrap_or(idle.len());
        idle.drain(..fresh).map(|i| i.up).collect()
    }
}

/// The connection, unless the server has closed it or said something while it was idle
/// (a FATAL before closing, say): an idle server sends nothing.
async fn alive(mut up: Upstream) -> Option<Upstream> {
    match tokio::time::timeout(Duration::ZERO, up.reader.next_frame()).await {
        // Nothing to read: idle, as it should be.
        Err(_) => Some(up),
        Ok(_) => None,
    }
}

/// `DISCARD ALL`, read through its ReadyForQuery; `None` when anything but a clean, idle
/// answer comes back (the connection is dropped then).
async fn reset(mut up: Upstream) -> Option<Upstream> {
    let mut buf = BytesMut::new();
    encode_frontend::query(&mut buf, "DISCARD ALL").ok()?;
    up.writer.push_bytes(buf.freeze());
    let answer = async {
        up.writer.flush().await.ok()?;
        let mut ok = false;
        loop {
            let frame = up.reader.next_frame().await.ok()??;
            match parse_backend(&frame).ok()? {
                Backend::CommandComplete { .. } => ok = true,
                // DISCARD ALL puts reported settings back to their start-up values.
                Backend::ParameterStatus { name, value } => {
                    match up.params.iter_mut().find(|(k, _)| *k == name) {
                        Some(slot) => slot.1 = value,
                        None => up.params.push((name, value)),
                    }
                }
                Backend::ReadyForQuery(TransactionStatus::Idle) if ok => return Some(()),
                Backend::NoticeResponse(_) => {}
                _ => return None,
            }
        }
    };
    match tokio::time::timeout(RESET_TIMEOUT, answer).await {
        Ok(Some(())) => {
            up.notices.clear();
            Some(up)
        }
        _ => None,
    }
}

/// Tells the server the session is over and closes the connection.
pub(crate) async fn terminate(mut up: Upstream) {
    crate::upstream::goodbye(&mut up.writer).await;
}
