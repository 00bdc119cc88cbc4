//! Audit errors. None of them carries secret material: key errors name the file, never its
//! contents.

use std::sync::Arc;

use portcullis_store::StoreError;

/// An error from recording, verifying or exporting the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A store operation outside the write path (start-up, verify, export) failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The batch holding this event could not be committed; the event is not in the audit
    /// trail and the caller must fail closed. Shared by every waiter of the batch.
    #[error("audit write failed: {0}")]
    WriteFailed(#[source] Arc<StoreError>),

    /// The journal (`durability = "crash"`) could not be written; the event is not in the
    /// audit trail and the caller must fail closed.
    #[error("audit journal write failed: {0}")]
    Journal(#[source] Arc<std::io::Error>),

    /// Another process (a gateway with the same state directory and node) holds the journal.
    #[error(
        "the audit journal {dir} is in use by another gateway (same state_dir and [audit] node?)"
    )]
    JournalBusy { dir: String },

    /// The audit writer is not running (shut down, or its task ended).
    #[error("the audit writer has stopped")]
    Stopped,

    /// The writer's thread or its runtime could not be started.
    #[error("cannot start the audit writer's thread: {0}")]
    Thread(#[source] std::io::Error),

    /// An event could not be encoded as JSON.
    #[error("cannot encode audit event: {0}")]
    Encode(#[from] serde_json::Error),

    /// The node name cannot be used in a chain.
    #[error("invalid audit node name {0:?}: use 1 to 128 printable characters")]
    InvalidNode(String),

    /// The signing key file could not be read or written.
    #[error("audit signing key {path}: {source}")]
    KeyIo {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The signing key file exists but holds no usable Ed25519 PKCS#8 key.
    #[error("audit signing key {path}: not an Ed25519 PKCS#8 key")]
    KeyInvalid { path: String },

    /// Generating a new signing key failed.
    #[error("cannot generate an audit signing key")]
    KeyGeneration,

    /// A public key string could not be parsed.
    #[error("invalid audit public key: {0} (expected \"ed25519:<base64 of 32 bytes>\")")]
    InvalidPublicKey(&'static str),

    /// Writing the export failed.
    #[error("writing the audit export failed: {0}")]
    Io(#[from] std::io::Error),

    /// A stored record cannot be exported as one line.
    #[error("event {node}/{seq} cannot be exported: {problem} (run `portcullis audit verify`)")]
    Export {
        node: String,
        seq: i64,
        problem: &'static str,
    },
}
