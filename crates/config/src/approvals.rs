//! `[approvals]`: how long a held command waits, when pending reviews expire, and where
//! reviewers are notified (DESIGN.md §7).
//!
//! ```toml
//! [approvals]
//! hold = "30s"     # a native session holds the statement this long, then errs with the review id
//! ttl = "1h"       # pending reviews expire after this
//! [[approvals.webhooks]]
//! url = "https://hooks.example.com/portcullis"
//! secret = { env = "PORTCULLIS_WEBHOOK_SECRET" }  # signs X-Portcullis-Signature
//! format = "generic"                               # or "slack"
//! groups = ["dba"]                                 # only reviews for these groups; default all
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::SecretRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(30),
            ttl: Duration::from_secs(3600),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub secret: Option<SecretRef>,
    #[serde(default = "generic")]
    pub format: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

fn generic() -> String {
    "generic".into()
}

/// `[recording]`: every session is recorded as a JSONL timeline (DESIGN.md §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    pub enabled: bool,
    /// Where recordings go; relative paths are relative to `server.state_dir`.
    pub dir: std::path::PathBuf,
    /// Rows of each result kept in the recording (masked, as the client saw them); 0: none.
    pub rows: usize,
    /// Recordings reach the disk at least this often (a crash loses at most this much).
    #[serde(with = "humantime_serde")]
    pub flush: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "recordings".into(),
            rows: 10,
            flush: Duration::from_secs(1),
        }
    }
}
