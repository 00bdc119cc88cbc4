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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use portcullis_pgwire::{Backend, TransactionStatus, encode_frontend, parse_backend};

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
}

struct Idle {
    since: Instant,
    key: Key,
    up: Upstream,
}

impl Pool {
    pub(crate) fn new(size: usize, idle_timeout: Duration) -> Self {
        Self {
            size,
            idle_timeout,
            idle: Mutex::new(Vec::new()),
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
