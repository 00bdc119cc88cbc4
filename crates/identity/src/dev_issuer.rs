//! The embedded dev issuer (DESIGN.md §3): one ES256 key on disk, a discovery document, a
//! JWKS, and short-lived tokens minted with it.
//!
//! Its tokens are validated by the same [`crate::Validator`] as any IdP's, through
//! [`DevIssuer::issuer_settings`]; nothing here bypasses validation.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::canonical::canonical;
use crate::error::IdentityError;
use crate::settings::{IssuerSettings, KeySource};

const KEY_FILE: &str = "dev-issuer-key.pem";
const PEM_LABEL: &str = "PRIVATE KEY";
/// Claims the issuer sets itself; a mint request may not supply them as extra claims.
const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "groups",
    "act",
    KIND_CLAIM,
];
const KIND_CLAIM: &str = "portcullis_kind";

/// What to put in a minted token.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    pub subject: String,
    /// Defaults to the subject.
    pub client_id: Option<String>,
    pub groups: Vec<String>,
    pub audience: String,
    pub ttl: Duration,
    /// Sets `portcullis_kind: "human"`.
    pub human: bool,
    /// Adds `act: {sub}` (RFC 8693): the token is used by this actor on the subject's behalf.
    pub actor: Option<String>,
    pub extra_claims: Map<String, Value>,
}

/// The embedded issuer and its signing key. Debug output never shows the key.
pub struct DevIssuer {
    issuer: String,
    kid: String,
    /// Public point coordinates, base64url.
    x: String,
    y: String,
    signing: EncodingKey,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish()
    }
}

impl DevIssuer {
    /// Loads `state_dir/dev-issuer-key.pem`, or creates it (mode 0600, directories as needed).
    pub fn load_or_create(state_dir: &Path, issuer_url: &str) -> Result<Self, IdentityError> {
        let path = state_dir.join(KEY_FILE);
        let pkcs8 = if path.exists() {
            read_key(&path)?
        } else {
            create_key(state_dir, &path)?
        };
        Self::from_pkcs8(&pkcs8, issuer_url.trim_end_matches('/'), &path)
    }

    fn from_pkcs8(pkcs8: &[u8], issuer: &str, path: &Path) -> Result<Self, IdentityError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|e| {
                IdentityError::KeyFormat {
                    path: path.to_owned(),
                    problem: e.to_string(),
                }
            })?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                let problem = "unexpected public key encoding".to_owned();
                return Err(IdentityError::KeyFormat {
                    path: path.to_owned(),
                    problem,
                });
            }
        };
        let hash = digest::digest(&digest::SHA256, point);
        let kid: String = hash.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            issuer: issuer.to_owned(),
            kid,
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
            signing: EncodingKey::from_ec_der(pkcs8),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key set, as served at `{issuer}/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: self.x.clone(),
                y: self.y.clone(),
            }),
        };
        JwkSet { keys: vec![jwk] }
    }

    /// A minimal OpenID Provider Metadata document, as served at
    /// `{issuer}/.well-known/openid-configuration`. Tokens are minted out of band (CLI), so
    /// no authorization or token endpoint is advertised.
    pub fn discovery_document(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "groups", "act",
                KIND_CLAIM
            ],
        })
    }

    /// Settings that make a [`crate::Validator`] trust this issuer with its static key.
    pub fn issuer_settings(&self, audiences: Vec<String>) -> IssuerSettings {
        let mut s = IssuerSettings::new(self.issuer.clone(), audiences);
        s.algorithms = vec![Algorithm::ES256];
        s.kind_claim = Some(KIND_CLAIM.to_owned());
        s.keys = KeySource::Static(self.jwks());
        s
    }

    /// Signs a token for `req`, issued at `now_unix`.
    pub fn mint(&self, req: &MintRequest, now_unix: i64) -> Result<String, IdentityError> {
        let bad = |m: &str| Err(IdentityError::InvalidMintRequest(m.to_owned()));
        if req.subject.is_empty() {
            return bad("the subject is empty");
        }
        if req.audience.is_empty() {
            return bad("the audience is empty");
        }
        let ttl = i64::try_from(req.ttl.as_secs()).unwrap_or(i64::MAX);
        if ttl == 0 {
            return bad("the lifetime is shorter than one second");
        }
        if let Some(name) = req
            .extra_claims
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return Err(IdentityError::ReservedClaim(name.clone()));
        }
        let mut claims = req.extra_claims.clone();
        let mut set = |k: &str, v: Value| claims.insert(k.to_owned(), v);
        set("iss", json!(self.issuer));
        set("sub", json!(req.subject));
        set("aud", json!(req.audience));
        set("iat", json!(now_unix));
        set("nbf", json!(now_unix));
        set("exp", json!(now_unix.saturating_add(ttl)));
        set("jti", json!(uuid::Uuid::new_v4().to_string()));
        set(
            "client_id",
            json!(req.client_id.as_deref().unwrap_or(&req.subject)),
        );
        set("groups", json!(req.groups));
        if req.human {
            set(KIND_CLAIM, json!("human"));
        }
        if let Some(actor) = &req.actor {
            set("act", json!({ "sub": actor }));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(IdentityError::Signing)?;
        // ECDSA signing picks `s` or `n - s` at random; the issuer hands out only the low-S
        // form, the one the validator works on, so a minted token is already canonical.
        Ok(canonical(&token).into_owned())
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, IdentityError> {
    let io = |source| IdentityError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "dev issuer key file is readable by others; chmod 600 it");
    }
    let text = fs::read_to_string(path).map_err(io)?;
    pem_decode(&text).ok_or_else(|| IdentityError::KeyFormat {
        path: path.to_owned(),
        problem: "not a PEM 'PRIVATE KEY'".into(),
    })
}

fn create_key(dir: &Path, path: &Path) -> Result<Vec<u8>, IdentityError> {
    let io = |p: &Path| {
        let p: PathBuf = p.to_owned();
        move |source| IdentityError::KeyFile { path: p, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| IdentityError::KeyGeneration)?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| IdentityError::KeyGeneration)?;
    // `create_new` with mode 0600: the key is never briefly world-readable, and two processes
    // racing to create it cannot overwrite each other's key.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(pem_encode(pkcs8.as_ref()).as_bytes())
        .map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    tracing::info!(path = %path.display(), "created dev issuer key");
    Ok(pkcs8.as_ref().to_vec())
}

/// RFC 7468 textual encoding, 64 characters a line.
fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = text.split_once(&begin)?.1.split_once(&end)?.0;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests;
