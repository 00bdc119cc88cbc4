//! Configuration: the `portcullis.toml` file format, strict parsing and semantic checks.
//!
//! This crate owns the external config format. It parses (unknown keys and wrong types are
//! errors naming the file, line and key), resolves relative paths against the config file's
//! folder, and lists semantic problems for `portcullis config check`. It knows nothing of
//! sockets or policy evaluation: the binary turns a [`Config`] into the runtime settings of
//! each crate once, at start and on reload.

mod approvals;
mod bounded;
pub mod check;
mod masking;
mod model;
mod secret;

use std::path::{Path, PathBuf};

pub use approvals::{ApprovalsConfig, RecordingConfig, WebhookConfig};
pub use check::{Problem, Severity};
pub use masking::{ColumnRuleConfig, DEFAULT_PROFILE, MaskingConfig, ProfileConfig};
pub use model::*;
pub use secrecy::{ExposeSecret, SecretString};
pub use secret::{SecretError, SecretRef};

/// Where the config file was found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    WorkingDir,
}

/// Errors that stop the config from loading at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file: pass --config FILE, set PORTCULLIS_CONFIG, or create ./portcullis.toml"
    )]
    NotFound,
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Finds the config file: `--config`, then `PORTCULLIS_CONFIG`, then `./portcullis.toml`.
pub fn locate(flag: Option<&Path>) -> Result<(PathBuf, Source), ConfigError> {
    if let Some(p) = flag {
        return Ok((p.to_path_buf(), Source::Flag));
    }
    if let Some(p) = std::env::var_os("PORTCULLIS_CONFIG").filter(|p| !p.is_empty()) {
        return Ok((PathBuf::from(p), Source::Env));
    }
    let local = PathBuf::from("portcullis.toml");
    if local.is_file() {
        return Ok((local, Source::WorkingDir));
    }
    Err(ConfigError::NotFound)
}

/// Reads and parses a config file, resolving relative paths against its folder.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses config text; `path` names the file in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: FileConfig = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Config::from_file(raw, path.to_path_buf(), base))
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
