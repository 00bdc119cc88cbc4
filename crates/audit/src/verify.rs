//! Offline verification of every node's chain and checkpoints (`portcullis audit verify`).
//!
//! Events are read a page at a time, so memory stays bounded however long the chain is;
//! only the checkpoints (one per `checkpoint_every_events` events) are held at once.

use std::collections::VecDeque;

use portcullis_store::{AuditRow, CheckpointRow, Store};
use serde::Serialize;

use crate::error::AuditError;
use crate::keys::PublicKey;
use crate::record::{self, GENESIS_PREV, RECORD_VERSION};

const PAGE: i64 = 1000;

/// The outcome of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// True when no node has a break.
    pub ok: bool,
    pub nodes: Vec<NodeReport>,
}

/// One node's chain.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub node: String,
    /// Events stored for the node (all of them, also past a break).
    pub events: u64,
    pub checkpoints: u64,
    /// The highest stored seq (0 when there are no events).
    pub last_seq: i64,
    /// The highest seq covered by a valid checkpoint checked before any break: events
    /// after it are chained but not yet signed, so a forgery there would go unnoticed.
    pub signed_seq: i64,
    /// The first problem found, in chain order.
    pub first_break: Option<Break>,
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    pub seq: i64,
    pub problem: String,
}

/// Verifies every node's chain and checkpoints. With `pubkey`, every checkpoint must be
/// signed by it; without, by the key stored beside it, which must be the same for all of a
/// node's checkpoints (so an attacker cannot mix in checkpoints of their own key).
pub async fn verify(
    store: &dyn Store,
    pubkey: Option<&PublicKey>,
) -> Result<VerifyReport, AuditError> {
    let mut nodes = Vec::new();
    for node in store.audit_nodes().await? {
        nodes.push(verify_node(store, &node, pubkey).await?);
    }
    let ok = nodes.iter().all(|n| n.first_break.is_none());
    Ok(VerifyReport { ok, nodes })
}

async fn verify_node(
    store: &dyn Store,
    node: &str,
    pubkey: Option<&PublicKey>,
) -> Result<NodeReport, AuditError> {
    let checkpoints = store.checkpoints(node).await?;
    let mut walk = Walk::new(node, pubkey, &checkpoints);
    let mut after = 0;
    loop {
        let page = store.audit_page(node, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            walk.event(row);
        }
    }
    walk.finish();
    Ok(NodeReport {
        node: node.to_owned(),
        events: walk.events,
        checkpoints: checkpoints.len() as u64,
        last_seq: walk.last_seq,
        signed_seq: walk.signed_seq,
        first_break: walk.first_break,
    })
}

/// The state of a walk along one chain.
struct Walk<'a> {
    node: &'a str,
    key: KeyRule,
    /// Checkpoints not yet reached, in seq order.
    pending: VecDeque<&'a CheckpointRow>,
    events: u64,
    last_seq: i64,
    signed_seq: i64,
    /// The seq and hash the next event must follow.
    prev_seq: i64,
    prev_hash: String,
    first_break: Option<Break>,
}

enum KeyRule {
    Given(PublicKey),
    /// The first checkpoint's stored key, once seen.
    Stored(Option<String>),
}

impl<'a> Walk<'a> {
    fn new(node: &'a str, pubkey: Option<&PublicKey>, checkpoints: &'a [CheckpointRow]) -> Self {
        Self {
            node,
            key: pubkey.map_or(KeyRule::Stored(None), |k| KeyRule::Given(*k)),
            pending: checkpoints.iter().collect(),
            events: 0,
            last_seq: 0,
            signed_seq: 0,
            prev_seq: 0,
            prev_hash: GENESIS_PREV.to_owned(),
            first_break: None,
        }
    }

    fn fail(&mut self, seq: i64, problem: String) {
        if self.first_break.is_none() {
            self.first_break = Some(Break { seq, problem });
        }
    }

    fn event(&mut self, row: &AuditRow) {
        self.events += 1;
        self.last_seq = row.seq;
        if self.first_break.is_some() {
            return;
        }
        if let Err(problem) = self.check_event(row) {
            // A gap is reported at the first missing seq, anything else at this event.
            let seq = row.seq.min(self.prev_seq + 1);
            return self.fail(seq, problem);
        }
        // Checkpoints are consumed at their event's seq, so one still waiting with a lower
        // seq names a position no event can have (zero or negative).
        if let Some(seq) = self
            .pending
            .front()
            .map(|cp| cp.seq)
            .filter(|s| *s < row.seq)
        {
            return self.fail(seq, format!("checkpoint at seq {seq} refers to no event"));
        }
        self.prev_seq = row.seq;
        self.prev_hash.clone_from(&row.hash);
        while let Some(cp) = self.pending.front().filter(|cp| cp.seq == row.seq).copied() {
            self.pending.pop_front();
            if let Err(problem) = self.check_checkpoint(cp, &row.hash) {
                return self.fail(cp.seq, problem);
            }
            self.signed_seq = cp.seq;
        }
    }

    /// Checks one event against its own hash, its columns and its predecessor.
    fn check_event(&self, row: &AuditRow) -> Result<(), String> {
        let expected = self.prev_seq + 1;
        if row.seq != expected {
            return Err(format!("gap: event {expected} missing"));
        }
        if record::hash(&row.body) != row.hash {
            return Err("hash mismatch: event changed".to_owned());
        }
        let header = record::parse_header(&row.body)
            .map_err(|e| format!("body is not a valid audit record: {e}"))?;
        if header.v != RECORD_VERSION {
            return Err(format!("unknown record version {}", header.v));
        }
        let mismatch = [
            ("node", header.node != self.node),
            ("seq", header.seq != row.seq),
            ("ts_ms", header.ts_ms != row.ts_ms),
            ("kind", header.event.kind != row.kind),
            ("prev", header.prev != row.prev_hash),
        ];
        if let Some((field, _)) = mismatch.iter().find(|(_, differs)| *differs) {
            return Err(format!(
                "body does not match the stored row: {field} differs"
            ));
        }
        if row.prev_hash != self.prev_hash {
            return Err(format!(
                "prev_hash does not link to event {}",
                self.prev_seq
            ));
        }
        Ok(())
    }

    fn check_checkpoint(&mut self, cp: &CheckpointRow, event_hash: &str) -> Result<(), String> {
        let seq = cp.seq;
        if cp.hash != event_hash {
            return Err(format!("checkpoint at seq {seq} signs a different hash"));
        }
        let key = match &mut self.key {
            KeyRule::Given(key) => *key,
            KeyRule::Stored(first) => {
                let stored = first.get_or_insert_with(|| cp.public_key.clone());
                if *stored != cp.public_key {
                    return Err(format!(
                        "checkpoint at seq {seq} is signed by a different key than earlier ones"
                    ));
                }
                PublicKey::parse(&cp.public_key)
                    .map_err(|e| format!("checkpoint at seq {seq} has an unusable key: {e}"))?
            }
        };
        let message = record::checkpoint_message(self.node, seq, &cp.hash, cp.ts_ms);
        if !key.verifies(message.as_bytes(), &cp.signature) {
            return Err("checkpoint signature invalid".to_owned());
        }
        Ok(())
    }

    /// Checkpoints left after the last event vouch for events that are gone.
    fn finish(&mut self) {
        if let Some(cp) = self.pending.front() {
            let seq = cp.seq;
            self.fail(
                seq,
                "checkpoint beyond end of chain (events truncated)".to_owned(),
            );
        }
    }
}
