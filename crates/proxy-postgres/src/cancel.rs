//! Query cancellation. Clients get the server's real backend pid (so that notifications,
//! `pg_backend_pid()`, `pg_stat_activity` and lock views agree with it) with the gateway's
//! own random secret in BackendKeyData; a CancelRequest carrying that pair is turned into a
//! CancelRequest with the server's key, sent on a new connection to that session's server
//! (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS>).
//! The server's secret never reaches the client, so a cancel always passes the gateway.
//! Pids of different servers may coincide; the pair is unique among live sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::encode_frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::PgError;
use crate::upstream::UpstreamConn;

/// Where a gateway key leads.
#[derive(Clone)]
pub(crate) struct CancelTarget {
    pub(crate) conn: Arc<UpstreamConn>,
    pub(crate) pid: i32,
    pub(crate) secret: Bytes,
    /// Wakes a statement held for review in this session: a cancel ends the hold (the review
    /// stays pending), as it would end a running query.
    pub(crate) held: Arc<tokio::sync::Notify>,
    /// Cancels received for this session. A cancel that arrives while the door is still
    /// deciding a statement (the server has nothing running to cancel, and would ignore it)
    /// refuses that statement instead (57014), so it is not lost.
    pub(crate) received: Arc<std::sync::atomic::AtomicU64>,
}

/// Live sessions by the key the gateway gave their clients.
#[derive(Default)]
pub(crate) struct CancelMap {
    inner: Mutex<HashMap<(i32, [u8; 4]), CancelTarget>>,
}

/// A registered key; dropping it unregisters the session.
pub(crate) struct CancelKey {
    map: Arc<CancelMap>,
    pub(crate) pid: i32,
    pub(crate) secret: i32,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        self.map
            .entries()
            .remove(&(self.pid, self.secret.to_be_bytes()));
    }
}

impl CancelMap {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, [u8; 4]), CancelTarget>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `target` its server's pid and a fresh random secret, unique as a pair.
    pub(crate) fn register(self: &Arc<Self>, target: CancelTarget) -> CancelKey {
        let mut entries = self.entries();
        let pid = target.pid;
        loop {
            let secret: i32 = rand::random();
            let key = (pid, secret.to_be_bytes());
            if let std::collections::hash_map::Entry::Vacant(slot) = entries.entry(key) {
                slot.insert(target);
                return CancelKey {
                    map: self.clone(),
                    pid,
                    secret,
                };
            }
        }
    }

    pub(crate) fn lookup(&self, pid: i32, secret: &[u8]) -> Option<CancelTarget> {
        let key: [u8; 4] = secret.try_into().ok()?;
        self.entries().get(&(pid, key)).cloned()
    }
}

/// Sends the server's CancelRequest. Like PostgreSQL, nothing is reported back: the client
/// learns the outcome from its query.
pub(crate) async fn send(target: &CancelTarget) -> Result<(), PgError> {
    let mut stream = target.conn.open().await?;
    let mut buf = BytesMut::new();
    encode_frontend::cancel_request(&mut buf, target.pid, &target.secret)
        .map_err(|e| PgError::UpstreamConnect(e.to_string()))?;
    let io = |e: std::io::Error| PgError::UpstreamConnect(e.to_string());
    stream.write_all(&buf).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    // The server closes the connection once it has handled the request; wait briefly so
    // the cancel is delivered before we drop the socket.
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
    Ok(())
}
