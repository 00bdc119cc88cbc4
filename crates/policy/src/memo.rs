//! Memoized decisions and entity stores.
//!
//! A decision is a pure function of the compiled policies and the request, and Cedar's
//! evaluation (building the entity store and context, then evaluating the slice) costs tens of
//! microseconds, while agents repeat the same command shapes many times a second. So the engine
//! remembers recent decisions, keyed by the exact request: an entry is used only when every
//! input equals the stored one, so a hash collision can cost a lookup, never a wrong decision.
//!
//! Two inputs are left out of the key when no policy can observe them, which compile time
//! decides from the policy texts (see [`Observed`]): the time, and the source address. Cedar has
//! no dynamic attribute access, so a policy that never names `now` cannot read the time, and one
//! that never names `unix` can read at most the hour and weekday. The check is textual and
//! therefore conservative: a name in a comment or string keeps the input in the key.
//!
//! The entity store of a request (principal, target, action) is remembered the same way, since
//! building it (with Cedar's transitive closure) is the largest part of an evaluation and a
//! session repeats it for every command.
//!
//! The tables are sharded to keep lock hold times and contention small, and bounded: a full shard
//! is cleared, which costs only re-evaluation.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use cedar_policy::Entities;

use portcullis_identity::Principal;
use serde_json::Value;

use crate::decision::Decision;
use crate::request::{ConnectionInfo, Request, Target};

const SHARDS: usize = 16;
const PER_SHARD: usize = 512;

/// Which request inputs some policy may read, beyond principal, action, target and facts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Observed {
    /// Some policy names `now`: the hour and weekday matter.
    pub(crate) time: bool,
    /// Some policy names `unix`: the exact second matters.
    pub(crate) unix: bool,
    /// Some policy names `source_ip`.
    pub(crate) source_ip: bool,
}

impl Observed {
    /// Scans policy texts; a policy without text is assumed to read everything.
    pub(crate) fn scan<'a>(texts: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut seen = Observed::default();
        for text in texts {
            let text = text.unwrap_or("now unix source_ip");
            seen.time |= text.contains("now");
            seen.unix |= text.contains("unix");
            seen.source_ip |= text.contains("source_ip");
        }
        seen.time |= seen.unix;
        seen
    }

    /// The part of the request time that some policy may observe.
    fn time_key(self, now_unix: i64) -> i64 {
        if self.unix {
            now_unix
        } else if self.time {
            // The hour since the epoch fixes both the hour of day and the weekday.
            now_unix.div_euclid(3_600)
        } else {
            0
        }
    }
}

/// The inputs the request's entity store depends on.
struct StoreKey {
    action: String,
    principal: Principal,
    /// `None` for the gateway.
    connection: Option<ConnectionInfo>,
}

impl StoreKey {
    fn of(req: &Request<'_>) -> Self {
        StoreKey {
            action: req.action.to_owned(),
            principal: req.principal.clone(),
            connection: match &req.target {
                Target::Connection(c) => Some((*c).clone()),
                Target::Gateway => None,
            },
        }
    }

    fn matches(&self, req: &Request<'_>) -> bool {
        let target = match (&self.connection, &req.target) {
            (Some(mine), Target::Connection(theirs)) => mine == *theirs,
            (None, Target::Gateway) => true,
            _ => false,
        };
        target && self.action == req.action && self.principal == *req.principal
    }
}

/// The inputs a decision depends on: those of the store, plus the context's.
struct DecisionKey {
    store: StoreKey,
    facts: Value,
    time: i64,
    source_ip: Option<IpAddr>,
}

impl DecisionKey {
    fn matches(&self, req: &Request<'_>, observed: Observed) -> bool {
        self.time == observed.time_key(req.now_unix)
            && self.source_ip == observed.source_ip.then_some(req.source_ip).flatten()
            && self.store.matches(req)
            && self.facts == *req.facts
    }
}

/// One shard: entries by hash, several when hashes collide.
type Shard<K, V> = HashMap<u64, Vec<(K, V)>>;

/// A bounded, sharded map from request hashes to values. Every entry keeps its full key, which
/// a lookup compares, so colliding hashes cost time but never return another request's value.
struct Table<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
}

impl<K, V: Clone> Table<K, V> {
    fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn get(&self, hash: u64, matches: impl Fn(&K) -> bool) -> Option<V> {
        // A poisoned shard is treated as empty: the memo is never needed for correctness.
        let shard = self.shard(hash).lock().ok()?;
        let (_, value) = shard.get(&hash)?.iter().find(|(key, _)| matches(key))?;
        Some(value.clone())
    }

    fn insert(&self, hash: u64, key: K, value: V) {
        let Ok(mut shard) = self.shard(hash).lock() else {
            return;
        };
        if shard.len() >= PER_SHARD {
            shard.clear();
        }
        shard.entry(hash).or_default().push((key, value));
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        // The map uses the low bits of the hash; the shard is picked by the high ones.
        &self.shards[(hash >> 60) as usize % SHARDS]
    }
}

/// The two hashes of a request: of its store inputs, and of all its decision inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashes {
    store: u64,
    decision: u64,
}

/// Recent decisions and entity stores.
pub(crate) struct Memo {
    hasher: RandomState,
    observed: Observed,
    decisions: Table<DecisionKey, Decision>,
    stores: Table<StoreKey, Arc<Entities>>,
}

impl Memo {
    pub(crate) fn new(observed: Observed) -> Self {
        Memo {
            hasher: RandomState::new(),
            observed,
            decisions: Table::new(),
            stores: Table::new(),
        }
    }

    /// Which inputs beyond principal, action, target and facts some policy may read.
    pub(crate) fn observed(&self) -> Observed {
        self.observed
    }

    pub(crate) fn hashes(&self, req: &Request<'_>) -> Hashes {
        let mut h = self.hasher.build_hasher();
        req.action.hash(&mut h);
        hash_principal(req.principal, &mut h);
        match &req.target {
            Target::Connection(c) => {
                c.name.hash(&mut h);
                c.kind.hash(&mut h);
                c.labels.hash(&mut h);
            }
            Target::Gateway => 0u8.hash(&mut h),
        }
        let store = h.finish();
        hash_value(req.facts, &mut h);
        self.observed.time_key(req.now_unix).hash(&mut h);
        if self.observed.source_ip {
            req.source_ip.hash(&mut h);
        }
        Hashes {
            store,
            decision: h.finish(),
        }
    }

    pub(crate) fn decision(&self, hashes: Hashes, req: &Request<'_>) -> Option<Decision> {
        self.decisions
            .get(hashes.decision, |k| k.matches(req, self.observed))
    }

    pub(crate) fn remember_decision(&self, hashes: Hashes, req: &Request<'_>, d: &Decision) {
        let key = DecisionKey {
            store: StoreKey::of(req),
            facts: req.facts.clone(),
            time: self.observed.time_key(req.now_unix),
            source_ip: self.observed.source_ip.then_some(req.source_ip).flatten(),
        };
        self.decisions.insert(hashes.decision, key, d.clone());
    }

    pub(crate) fn store(&self, hashes: Hashes, req: &Request<'_>) -> Option<Arc<Entities>> {
        self.stores.get(hashes.store, |k| k.matches(req))
    }

    pub(crate) fn remember_store(&self, hashes: Hashes, req: &Request<'_>, s: &Arc<Entities>) {
        self.stores
            .insert(hashes.store, StoreKey::of(req), Arc::clone(s));
    }
}

fn hash_principal(p: &Principal, h: &mut impl Hasher) {
    p.subject.hash(h);
    p.issuer.hash(h);
    p.client_id.hash(h);
    p.groups.hash(h);
    (p.kind as u8).hash(h);
    for actor in &p.delegation {
        actor.subject.hash(h);
    }
    p.token_id.hash(h);
    p.expires_at.hash(h);
}

/// Hashes a JSON value consistently with its `==`: objects by sorted key, so that key order
/// never matters.
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => b.hash(h),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.hash(h),
            (None, Some(f)) => f.to_bits().hash(h),
            (None, None) => n.to_string().hash(h),
        },
        Value::String(s) => s.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            items.iter().for_each(|i| hash_value(i, h));
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.len().hash(h);
            for k in keys {
                k.hash(h);
                hash_value(&map[k], h);
            }
        }
    }
}

/// Identifies a compiled engine for [`SessionMemo`]: unique per process, never reused.
pub(crate) fn next_engine_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The most decisions one session remembers; a full memo is cleared.
const PER_SESSION: usize = 128;

/// The decisions of one session: its principal, its target and its source address are fixed
/// for its life, so a statement it repeats is looked up by action, facts and (when a policy
/// reads it) the time alone: the principal is neither hashed nor compared, and no shard of
/// the engine's shared memo is locked. The memo belongs to the engine that filled it: asked
/// through another engine (a reload), it starts empty.
///
/// Whoever holds one must only ever ask with one principal, target and source address.
#[derive(Debug, Default)]
pub struct SessionMemo {
    engine: u64,
    hasher: RandomState,
    entries: HashMap<u64, Vec<SessionEntry>>,
    len: usize,
}

#[derive(Debug)]
struct SessionEntry {
    action: String,
    facts: Value,
    time: i64,
    decision: Decision,
}

impl SessionMemo {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many decisions it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash(&self, action: &str, facts: &Value, time: i64) -> u64 {
        let mut h = self.hasher.build_hasher();
        action.hash(&mut h);
        hash_value(facts, &mut h);
        time.hash(&mut h);
        h.finish()
    }

    /// The remembered decision of `engine` for this request, after forgetting every decision
    /// of another engine.
    pub(crate) fn get(
        &mut self,
        engine: u64,
        observed: Observed,
        req: &Request<'_>,
    ) -> (u64, Option<Decision>) {
        if self.engine != engine {
            self.entries.clear();
            self.len = 0;
            self.engine = engine;
        }
        let time = observed.time_key(req.now_unix);
        let hash = self.hash(req.action, req.facts, time);
        let found = self.entries.get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.time == time && e.action == req.action && e.facts == *req.facts)
                .map(|e| e.decision.clone())
        });
        (hash, found)
    }

    pub(crate) fn put(&mut self, hash: u64, observed: Observed, req: &Request<'_>, d: &Decision) {
        if self.len >= PER_SESSION {
            self.entries.clear();
            self.len = 0;
        }
        self.len += 1;
        self.entries.entry(hash).or_default().push(SessionEntry {
            action: req.action.to_owned(),
            facts: req.facts.clone(),
            time: observed.time_key(req.now_unix),
            decision: d.clone(),
        });
    }
}
