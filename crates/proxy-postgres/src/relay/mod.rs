//! The relay after start-up: every message is read whole, understood, and then forwarded,
//! replaced or dropped; there is no opaque byte copy.
//!
//! Each direction is its own loop ([`frontend::run`]: client to server, [`backend::run`]:
//! server to client), so a direction blocked on a slow reader never stops the other one from
//! draining (PostgreSQL itself stops reading when its output is full, and a single loop would
//! deadlock with it). Each loop reads one message, queues it on the other side's writer, and
//! flushes when no further complete message is already buffered or the queue passes
//! [`FLUSH_AT`]: pipelined messages go out in one write, and the gateway never buffers more
//! than about one message plus [`FLUSH_AT`] per direction, so a slow reader slows the writer
//! (backpressure) instead of growing memory.
//!
//! # Denials
//!
//! The gateway never answers a statement itself, which would put its answer out of order
//! with the server's. It replaces the denied message with one that fails in the server's
//! parser: `Query("PORTCULLIS_DENIED")` for a simple Query or a FunctionCall, and
//! `Parse("", "PORTCULLIS_DENIED")` for a Parse or Bind. The server then raises a syntax
//! error at exactly that point of the response stream, aborts a transaction block (so the
//! next statement gets 25P02, as after any error) or the extended-protocol implicit
//! transaction, and discards messages until Sync, exactly as for a real error. The gateway
//! drops the client's messages up to that Sync itself too, and replaces the marker's error
//! with its own ErrorResponse (42501, naming the policy, with a hint). The cycle bookkeeping
//! is in [`state`].

pub(crate) mod backend;
pub(crate) mod frontend;
pub(crate) mod state;

use std::sync::Mutex;

use crate::cache::StatementCache;
use crate::enforce::Enforcer;
use state::{Stats, Tracker};

/// The statement injected in place of a denied one. It is not valid SQL in any position,
/// so the server's parser rejects it with SQLSTATE 42601 quoting this token.
pub(crate) const MARKER: &str = "PORTCULLIS_DENIED";

/// Flush a direction's queue once it holds this much, even if more messages are buffered.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// How a relay loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client sent Terminate (not forwarded: the connection may be pooled).
    ClientTerminate,
    /// The client closed the connection without Terminate.
    ClientGone,
    /// The server closed the connection; `fatal_relayed` when it said why first.
    UpstreamGone { fatal_relayed: bool },
}

/// What both directions share.
pub(crate) struct Relay<'a> {
    pub(crate) enforcer: Enforcer<'a>,
    pub(crate) recorder: crate::record::Recorder<'a>,
    pub(crate) cache: &'a StatementCache,
    /// The door's targets on the same server, whose idle pooled connections a database-wide
    /// statement needs closed.
    pub(crate) neighbours: Neighbours<'a>,
    /// The session limits the client loop watches ([`crate::limits::watch`]).
    pub(crate) limits: &'a crate::limits::SessionLimits,
    pub(crate) tracker: &'a Mutex<Tracker>,
    pub(crate) stats: &'a Stats,
    /// Woken at every ReadyForQuery, for SQL waiting to learn the encoding it will be read
    /// in ([`state::SqlEncoding::Wait`]), and at every server message while `draining`.
    pub(crate) answered: tokio::sync::Notify,
    /// The client direction waits for the server's answers to bring the pipeline under its
    /// bound ([`frontend`]'s `drain`).
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// The client sent Terminate: the server's remaining answers are relayed while the
    /// client still reads them, and a client that stopped reading no longer ends the session
    /// before the server has finished ([`frontend`]'s `finish`).
    pub(crate) terminated: std::sync::atomic::AtomicBool,
}

/// The targets of the door on one server.
#[derive(Clone, Copy)]
pub(crate) struct Neighbours<'a> {
    pub(crate) targets:
        &'a std::collections::HashMap<String, std::sync::Arc<crate::door::TargetRt>>,
    /// `host:port` of the session's server.
    pub(crate) upstream: &'a str,
}

impl Neighbours<'_> {
    /// Before a statement that the server refuses while other sessions use the database
    /// involved (DROP DATABASE, a CREATE's template, a RENAME): the idle server connections
    /// this door keeps on that server are closed, so they are not those other sessions.
    pub(crate) async fn before(&self, classified: &crate::cache::Classified) {
        let database_wide = classified
            .classification
            .statements
            .iter()
            .any(|s| s.database_wide);
        if !database_wide {
            return;
        }
        for target in self.targets.values() {
            if target.target.upstream == self.upstream {
                target.pool.close_idle().await;
            }
        }
    }
}

impl Relay<'_> {
    /// The shared state. A panic elsewhere cannot poison it into a panic here: the data is
    /// still consistent enough to finish the session.
    pub(crate) fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
