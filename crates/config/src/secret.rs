//! Secret sources: where a credential comes from, never the credential in the config itself
//! unless the operator insists (`{ value = "..." }`, which `config check` warns about).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// A reference to a secret value. Resolving it reads the environment or a file; the value is
/// held in a [`SecretString`], whose `Debug` redacts and which has no `Display`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretRef {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file, without a trailing newline.
    File(PathBuf),
    /// A literal. Works, but puts the secret in the config file.
    Value(SecretString),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the secret. Errors name the source, never the value.
    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        let (value, origin) = match self {
            SecretRef::Env(name) => (
                std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?,
                format!("env {name}"),
            ),
            SecretRef::File(path) => {
                let v = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                (
                    v.trim_end_matches(['\n', '\r']).to_string(),
                    path.display().to_string(),
                )
            }
            SecretRef::Value(v) => return Ok(v.clone()),
        };
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(SecretString::from(value))
    }

    /// Makes a `file` source absolute against the config file's folder.
    pub(crate) fn anchor(&mut self, base: &std::path::Path) {
        if let SecretRef::File(p) = self
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }
}
