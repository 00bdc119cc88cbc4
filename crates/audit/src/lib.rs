//! The tamper-evident audit trail (DESIGN.md §8).
//!
//! Every event goes into its node's hash chain through an [`Auditor`], which returns only
//! once the event is durably committed, so callers can fail closed (DESIGN.md §2,
//! invariant 2). [`verify`] checks the chains offline; [`export_jsonl`] writes them out.
//!
//! # Record format
//!
//! Each event is stored as the canonical JSON (below) of
//!
//! ```text
//! {"event":{..},"node":"<node>","prev":"<hex>","seq":<n>,"ts_ms":<unix ms>,"v":1}
//! ```
//!
//! where `event` is the [`Event`] with empty fields left out, `seq` counts from 1 per node
//! without gaps, and `prev` is the previous event's hash (64 zeros for `seq` 1). An event's
//! hash is the lowercase hex SHA-256 of exactly these bytes. The store keeps the body and
//! copies `node`, `seq`, `ts_ms`, `event.kind`, `prev` and the hash into columns;
//! verification checks that they agree.
//!
//! # Canonical JSON
//!
//! Hashes must not depend on how a JSON library orders map keys, so the encoder is written
//! out here instead of trusting `serde_json` (whose `preserve_order` feature any crate in the
//! build could switch on):
//!
//! - object keys sorted by their UTF-8 bytes, at every depth;
//! - no whitespace: `{"a":1,"b":[true,null]}`;
//! - strings escape `"` and `\`, use `\b \f \n \r \t` for those control characters and
//!   `\u00xx` (lowercase hex) for the other characters below U+0020; everything else is
//!   literal UTF-8 (identical to `serde_json`'s string output);
//! - numbers as `serde_json` prints them (integers in decimal).
//!
//! # Checkpoints
//!
//! Every `checkpoint_every_events` events, every `checkpoint_every` with new events, and at
//! shutdown, the Auditor signs its chain's tail with Ed25519. The signed message is the
//! UTF-8 text
//!
//! ```text
//! portcullis-audit-checkpoint/v1\n<node>\n<seq>\n<hash>\n<ts_ms>
//! ```
//!
//! (no trailing newline; `<hash>` is the hex hash of event `<seq>`, `<ts_ms>` the checkpoint
//! time). The signature is stored as standard base64, beside the public key as
//! `ed25519:<base64 of 32 bytes>`. The signing key is PKCS#8 in
//! `state_dir/audit-signing-key.pk8`, mode 0600.
//!
//! A chain alone proves nothing against someone who can rewrite the database: they can
//! recompute every hash. The checkpoints, whose key does not live in the database, are what
//! pin the chain; events after the last checkpoint are only as safe as the database.

mod auditor;
mod canonical;
mod encode;
mod error;
mod event;
mod export;
mod journal;
mod keys;
mod ocsf;
mod pages;
mod record;
mod report;
mod sessions;
#[cfg(test)]
mod testkit;
mod utc;
mod verify;
mod writer;

pub use auditor::{AuditSettings, Auditor, Receipt};
pub use canonical::to_canonical;
pub use error::AuditError;
pub use event::{Event, Who};
pub use export::export_jsonl;
pub use journal::recover as recover_journal;
pub use keys::{KEY_FILE, PublicKey, SigningKey};
pub use ocsf::{OCSF_PRODUCT, OCSF_VERSION, export_ocsf, to_ocsf};
pub use record::{CHECKPOINT_DOMAIN, GENESIS_PREV, RECORD_VERSION};
pub use report::{
    COMMAND_CHARS, Commands, Connection, Count, Day, Denial, Identity, Report, ReviewDecision,
    SessionTotals, build_report,
};
pub use sessions::{SessionFilter, SessionSummary, session, sessions};
pub use verify::{Break, NodeReport, VerifyReport, verify};
