//! The Ed25519 key that signs checkpoints, and its public half for offline verification.
//!
//! The private key lives in `state_dir/audit-signing-key.pk8` (PKCS#8 v2, DER), readable by
//! its owner only. The public key travels as text: `ed25519:<standard base64 of 32 bytes>`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::AuditError;

/// The key file's name inside the state directory.
pub const KEY_FILE: &str = "audit-signing-key.pk8";

const PREFIX: &str = "ed25519:";

/// The checkpoint signing key. Its `Debug` shows only the public key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key().to_string())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key from `state_dir`, or creates it (mode 0600) when there is none.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, AuditError> {
        let path = state_dir.join(KEY_FILE);
        let io_err = |source| AuditError::KeyIo {
            path: path.display().to_string(),
            source,
        };
        match fs::read(&path) {
            Ok(der) => Self::from_pkcs8(&der, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(state_dir).map_err(io_err)?;
                create(&path).map_err(io_err)?;
                // Read back whatever is now in place: another process may have won the race.
                let der = fs::read(&path).map_err(io_err)?;
                Self::from_pkcs8(&der, &path)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A fresh key held only in memory (for tests and throw-away setups).
    pub fn generate() -> Result<Self, AuditError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| AuditError::KeyGeneration)?;
        Ok(Self { pair })
    }

    fn from_pkcs8(der: &[u8], path: &Path) -> Result<Self, AuditError> {
        warn_if_readable_by_others(path);
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| AuditError::KeyInvalid {
            path: path.display().to_string(),
        })?;
        Ok(Self { pair })
    }

    /// The public half, for `audit verify --pubkey`.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// Signs `message`; the result is standard base64 of the 64-byte signature.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(message).as_ref())
    }
}

/// Generates a key and places it at `path` without ever overwriting an existing file: the
/// key is written and synced under a temporary name, then hard-linked into place, which
/// fails if another process got there first (and then that process's key is used).
fn create(path: &Path) -> std::io::Result<()> {
    let pair = Ed25519KeyPair::generate().map_err(|_| std::io::Error::other("keygen failed"))?;
    let der = pair
        .to_pkcs8()
        .map_err(|_| std::io::Error::other("PKCS#8 encoding failed"))?;
    let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(der.as_ref())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    // The temporary name is removed whatever happened; the key, if placed, stays linked.
    let _ = fs::remove_file(&tmp);
    linked
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "the audit signing key is accessible to other users; it should be mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// An Ed25519 public key that verifies checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses `ed25519:<standard base64 of the 32 key bytes>`.
    pub fn parse(s: &str) -> Result<Self, AuditError> {
        let b64 = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(AuditError::InvalidPublicKey(
                "missing the \"ed25519:\" prefix",
            ))?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| AuditError::InvalidPublicKey("not valid base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuditError::InvalidPublicKey("not 32 bytes long"))?;
        Ok(Self(bytes))
    }

    /// Whether `signature` (standard base64) is this key's signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(sig) = STANDARD.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &sig)
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(self.0))
    }
}
