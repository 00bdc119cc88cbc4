//! Revocations by subject, client id or token id, effective at once (DESIGN.md §3).
//!
//! The validator checks this set on every validation, cache hits included, so adding an entry
//! refuses the very next request. Doors subscribe to close sessions that are already open.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::principal::Principal;
use crate::reason::Reason;

/// One revoked identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Revocation {
    Subject(String),
    ClientId(String),
    TokenId(String),
}

impl Revocation {
    /// Builds a revocation from its stored or posted form (`subject`, `client_id`,
    /// `token_id`); `None` for an unknown kind or an empty value.
    pub fn from_parts(kind: &str, value: &str) -> Option<Self> {
        if value.is_empty() {
            return None;
        }
        let value = value.to_string();
        match kind {
            "subject" => Some(Revocation::Subject(value)),
            "client_id" => Some(Revocation::ClientId(value)),
            "token_id" => Some(Revocation::TokenId(value)),
            _ => None,
        }
    }

    /// The kind, as `from_parts` and the JSON form spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Revocation::Subject(_) => "subject",
            Revocation::ClientId(_) => "client_id",
            Revocation::TokenId(_) => "token_id",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Revocation::Subject(v) | Revocation::ClientId(v) | Revocation::TokenId(v) => v,
        }
    }
}

#[derive(Default)]
struct Sets {
    subjects: HashSet<String>,
    clients: HashSet<String>,
    tokens: HashSet<String>,
    /// Insertion order, for `list`.
    order: Vec<Revocation>,
}

/// A thread-safe set of revocations with a live feed of additions.
pub struct Revocations {
    sets: RwLock<Sets>,
    /// Lets the hot path skip the lock while nothing is revoked, the common case.
    any: AtomicBool,
    /// Counts the revocations added, so a holder of a verdict can tell it is still current.
    epoch: AtomicU64,
    feed: broadcast::Sender<Revocation>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("count", &self.list().len())
            .finish()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    pub fn new() -> Self {
        // Subscribers that fall more than this far behind see `Lagged` and should re-read
        // `list()`; revocations are rare, so this is generous.
        let (feed, _) = broadcast::channel(1024);
        Self {
            sets: RwLock::new(Sets::default()),
            any: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            feed,
        }
    }

    /// Adds a revocation; returns whether it was new. New entries are announced to subscribers.
    pub fn add(&self, r: Revocation) -> bool {
        let added = {
            let mut sets = self.sets.write().unwrap_or_else(PoisonError::into_inner);
            let set = match &r {
                Revocation::Subject(_) => &mut sets.subjects,
                Revocation::ClientId(_) => &mut sets.clients,
                Revocation::TokenId(_) => &mut sets.tokens,
            };
            let value = match &r {
                Revocation::Subject(v) | Revocation::ClientId(v) | Revocation::TokenId(v) => v,
            };
            let added = set.insert(value.clone());
            if added {
                sets.order.push(r.clone());
                self.any.store(true, Ordering::Release);
                // Under the write lock: whoever reads the new epoch and then checks sees
                // this revocation.
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            added
        };
        if added {
            // No subscribers is not an error: nothing is open to close.
            let _ = self.feed.send(r);
        }
        added
    }

    /// Changes whenever a revocation is added: a principal checked at one epoch is still
    /// not revoked while the epoch stays the same.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// All revocations, oldest first.
    pub fn list(&self) -> Vec<Revocation> {
        self.sets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .clone()
    }

    /// The reason `p` is revoked, if it is. Actors in the delegation chain count too: a revoked
    /// agent must not keep acting on someone else's behalf.
    pub fn check(&self, p: &Principal) -> Option<Reason> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let sets = self.sets.read().unwrap_or_else(PoisonError::into_inner);
        let subject_revoked = sets.subjects.contains(&p.subject)
            || p.delegation
                .iter()
                .any(|a| sets.subjects.contains(&a.subject));
        if subject_revoked {
            return Some(Reason::RevokedSubject);
        }
        let client_revoked =
            |c: &Option<String>| c.as_ref().is_some_and(|c| sets.clients.contains(c));
        if client_revoked(&p.client_id) || p.delegation.iter().any(|a| client_revoked(&a.client_id))
        {
            return Some(Reason::RevokedClient);
        }
        if p.token_id.as_ref().is_some_and(|t| sets.tokens.contains(t)) {
            return Some(Reason::RevokedToken);
        }
        None
    }

    /// A feed of revocations added from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Actor, PrincipalKind};

    fn principal() -> Principal {
        Principal {
            subject: "alice".into(),
            issuer: "https://idp".into(),
            client_id: Some("cli".into()),
            groups: vec![],
            kind: PrincipalKind::Human,
            delegation: vec![Actor {
                subject: "agent-7".into(),
                client_id: None,
                issuer: None,
            }],
            token_id: Some("t1".into()),
            expires_at: 0,
            valid_until: 0,
            issued_at: None,
        }
    }

    #[test]
    fn add_check_list_subscribe() {
        let r = Revocations::new();
        let mut rx = r.subscribe();
        let p = principal();
        assert_eq!(r.check(&p), None);
        assert!(r.add(Revocation::TokenId("t1".into())));
        assert!(!r.add(Revocation::TokenId("t1".into())));
        assert_eq!(r.check(&p), Some(Reason::RevokedToken));
        assert!(r.add(Revocation::ClientId("cli".into())));
        assert_eq!(r.check(&p), Some(Reason::RevokedClient));
        assert!(r.add(Revocation::Subject("agent-7".into())));
        assert_eq!(r.check(&p), Some(Reason::RevokedSubject));
        assert_eq!(r.list().len(), 3);
        assert_eq!(rx.try_recv().ok(), Some(Revocation::TokenId("t1".into())));
        assert_eq!(rx.try_recv().ok(), Some(Revocation::ClientId("cli".into())));
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_string(&Revocation::ClientId("c".into())).unwrap();
        assert_eq!(json, r#"{"kind":"client_id","value":"c"}"#);
    }
}
