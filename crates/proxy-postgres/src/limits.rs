//! The door's limits (`[postgres]` in `portcullis.toml`; the defaults are justified in
//! `portcullis-config`'s `PostgresConfig`): sessions per principal and per connection,
//! counted here and refused at start-up. The server-connection budget is the pool's
//! ([`crate::pool`]). Each limit that ends or refuses a session is an [`Exceeded`], which
//! [`crate::respond`] turns into its ErrorResponse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_identity::Principal;

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
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions_per_principal: 100,
            max_sessions_per_connection: 500,
            max_server_connections: 50,
            server_connection_wait: Duration::from_secs(10),
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
}

impl Exceeded {
    /// The reason code (`code: ...` in the DETAIL, the audit's `ended` or `reason_code`).
    pub fn code(self) -> &'static str {
        match self {
            Exceeded::SessionsPerPrincipal(_) => "session_limit_principal",
            Exceeded::SessionsPerConnection(_) => "session_limit_connection",
            Exceeded::ServerConnections { .. } => "server_connections_exhausted",
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

#[cfg(test)]
mod tests;
