//! The stored record and the checkpoint message: the formats that hashes and signatures
//! cover. Changing anything here breaks every existing chain; bump the version instead.

use aws_lc_rs::digest::{Context, SHA256, digest};
use serde::Deserialize;

#[cfg(test)]
use crate::canonical::to_canonical;
use crate::canonical::write_string;
use crate::event::Event;

/// The record format version, the `v` field of every body.
pub const RECORD_VERSION: u64 = 1;

/// The `prev` of a node's first event.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The domain-separation line that starts every checkpoint message.
pub const CHECKPOINT_DOMAIN: &str = "portcullis-audit-checkpoint/v1";

/// Where an event sits in its node's chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position<'a> {
    pub seq: i64,
    pub ts_ms: i64,
    pub prev: &'a str,
}

/// An event encoded ahead of its chain position, in the recording task, so that the single
/// writer only finishes it. The body begins with everything but the position
/// (`{"event":..,"node":..,"prev":` — the keys sort that way), so the recorder also hashes
/// that head: the writer appends the position and hashes only those last bytes.
pub(crate) struct EncodedEvent {
    kind: String,
    /// The body up to and including `"prev":`.
    head: String,
    /// SHA-256 over `head`.
    digest: Context,
}

impl std::fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedEvent")
            .field("kind", &self.kind)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl EncodedEvent {
    /// `event` as a record of `node`'s chain.
    pub(crate) fn new(event: &Event, node: &str) -> Result<Self, serde_json::Error> {
        let json = crate::encode::event(event);
        let mut head = String::with_capacity(json.len() + node.len() + 200);
        head.push_str(r#"{"event":"#);
        head.push_str(&json);
        head.push_str(r#","node":"#);
        write_string(node, &mut head);
        head.push_str(r#","prev":"#);
        let mut digest = Context::new(&SHA256);
        digest.update(head.as_bytes());
        Ok(Self {
            kind: event.kind.clone(),
            head,
            digest,
        })
    }

    /// The event's kind, and its canonical body at `pos` in the chain it was encoded for and
    /// that body's hash: the same bytes as `to_canonical({"v":1,"node":..,"seq":..,"ts_ms":..,
    /// "prev":..,"event":..})`, written with the keys already in sorted order (checked by a
    /// test).
    pub(crate) fn seal(self, pos: Position<'_>) -> (String, String, String) {
        use std::fmt::Write as _;
        let EncodedEvent {
            kind,
            mut head,
            mut digest,
        } = self;
        let start = head.len();
        write_string(pos.prev, &mut head);
        // Writing into a String cannot fail.
        let _ = write!(
            head,
            r#","seq":{},"ts_ms":{},"v":{RECORD_VERSION}}}"#,
            pos.seq, pos.ts_ms
        );
        digest.update(&head.as_bytes()[start..]);
        let hash = hex::encode(digest.finish());
        (kind, head, hash)
    }
}

/// Lowercase hex SHA-256 of `body`'s bytes.
pub(crate) fn hash(body: &str) -> String {
    hex::encode(digest(&SHA256, body.as_bytes()))
}

/// The fields of a stored body that verification compares with the row's columns.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub v: u64,
    pub node: String,
    pub seq: i64,
    pub ts_ms: i64,
    pub prev: String,
    pub event: HeaderEvent,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HeaderEvent {
    pub kind: String,
}

/// Parses the header of a stored body.
pub(crate) fn parse_header(body: &str) -> Result<Header, serde_json::Error> {
    serde_json::from_str(body)
}

/// The bytes a checkpoint signs. Node names cannot contain control characters (checked when
/// the Auditor starts), so the newline-separated fields are unambiguous.
pub(crate) fn checkpoint_message(node: &str, seq: i64, hash: &str, ts_ms: i64) -> String {
    format!("{CHECKPOINT_DOMAIN}\n{node}\n{seq}\n{hash}\n{ts_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encode_matches_the_canonical_form_of_the_record() {
        let event = Event {
            kind: "decision".to_owned(),
            command: Some("SELECT \"x\"\n".to_owned()),
            data: Some(json!({"z": 1, "a": [1.5, null]})),
            ..Event::default()
        };
        let node = "gw \"1\"";
        let pos = Position {
            seq: 42,
            ts_ms: -3,
            prev: GENESIS_PREV,
        };
        let encoded = EncodedEvent::new(&event, node).unwrap();
        let expect = to_canonical(&json!({
            "v": RECORD_VERSION, "node": node, "seq": pos.seq, "ts_ms": pos.ts_ms,
            "prev": pos.prev, "event": serde_json::to_value(&event).unwrap(),
        }));
        let (kind, body, hash) = encoded.seal(pos);
        assert_eq!(kind, "decision");
        assert_eq!(body, expect);
        assert_eq!(
            hash,
            super::hash(&expect),
            "the split hash is the body's hash"
        );
    }
}
