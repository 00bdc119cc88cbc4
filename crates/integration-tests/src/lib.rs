//! Test harness: starts real gateways and real peers on 127.0.0.1:0.
//!
//! - [`idp::Idp`]: a real OpenID provider (`oidc-provider`, Node) from `tests/idp/`, with test
//!   endpoints to sign forged tokens and rotate keys.
//! - [`gateway::Gateway`]: the `portcullis` binary with a generated `portcullis.toml`, a policy
//!   folder and a state folder in a temp dir.
//! - [`jwt`]: small helpers to take tokens apart and tamper with them.
//!
//! Every child process is killed when its handle drops, and a watchdog kills it if the test
//! process dies without dropping it (a shared fixture in a `static`, a SIGKILLed test run).

pub mod clients;
pub mod gateway;
pub mod http;
pub mod idp;
pub mod jwt;
pub mod postgres;
mod proc;
pub mod rawpg;

use std::path::PathBuf;

pub use gateway::{Gateway, GatewayBuilder};
pub use http::Reply;
pub use idp::Idp;

/// The workspace root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// A TOML file of this crate's tests (`crates/integration-tests/tests/<name>`) as JSON, read
/// with Python's `tomllib` (this crate has no TOML parser).
pub fn test_toml<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    use anyhow::Context as _;
    let path = repo_root()
        .join("crates/integration-tests/tests")
        .join(name);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib\n\
             print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(&path)
        .output()
        .with_context(|| format!("python3 (tomllib) to read {}", path.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "reading {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
