//! The stored record and the checkpoint message: the formats that hashes and signatures
//! cover. Changing anything here breaks every existing chain; bump the version instead.

use aws_lc_rs::digest::{SHA256, digest};
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
    pub node: &'a str,
    pub seq: i64,
    pub ts_ms: i64,
    pub prev: &'a str,
}

/// An event encoded ahead of its chain position. Encoding happens in the recording task,
/// so the single writer task only wraps and hashes.
#[derive(Debug)]
pub(crate) struct EncodedEvent {
    pub kind: String,
    /// The canonical JSON of the event.
    pub json: String,
}

impl EncodedEvent {
    pub(crate) fn new(event: &Event) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: event.kind.clone(),
            json: crate::encode::event(event),
        })
    }
}

/// The canonical body of `event` at `pos`: the same bytes as
/// `to_canonical({"v":1,"node":..,"seq":..,"ts_ms":..,"prev":..,"event":..})`, written
/// directly with the keys already in sorted order (checked by a test).
pub(crate) fn encode(pos: Position<'_>, event: &EncodedEvent) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(event.json.len() + 160);
    out.push_str(r#"{"event":"#);
    out.push_str(&event.json);
    out.push_str(r#","node":"#);
    write_string(pos.node, &mut out);
    out.push_str(r#","prev":"#);
    write_string(pos.prev, &mut out);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#","seq":{},"ts_ms":{},"v":{RECORD_VERSION}}}"#,
        pos.seq, pos.ts_ms
    );
    out
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
        let pos = Position {
            node: "gw \"1\"",
            seq: 42,
            ts_ms: -3,
            prev: GENESIS_PREV,
        };
        let encoded = EncodedEvent::new(&event).unwrap();
        let expect = to_canonical(&json!({
            "v": RECORD_VERSION, "node": pos.node, "seq": pos.seq, "ts_ms": pos.ts_ms,
            "prev": pos.prev, "event": serde_json::to_value(&event).unwrap(),
        }));
        assert_eq!(encode(pos, &encoded), expect);
        assert_eq!(encoded.kind, "decision");
    }
}
