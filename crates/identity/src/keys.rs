//! Verification keys taken from a JWK set, and the choice of keys for one token.
//!
//! Only public signature keys are kept: symmetric (`oct`) keys are dropped on load, so no
//! token can ever be checked with an HMAC built from key material ([RFC 8725 §3.1]).
//!
//! [RFC 8725 §3.1]: https://www.rfc-editor.org/rfc/rfc8725#section-3.1

use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// The key families we can verify with, with the curve where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// One usable public key.
#[derive(Debug, Clone)]
pub(crate) struct VerifyKey {
    kid: Option<String>,
    /// The JWK's own `alg`, which then must equal the header's.
    alg: Option<Algorithm>,
    shape: Shape,
    key: DecodingKey,
    /// Kept to notice withdrawn keys when the set is refreshed.
    jwk: Jwk,
}

impl VerifyKey {
    /// `None` for keys we must not or cannot use for signatures.
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let c = &jwk.common;
        if matches!(
            c.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return None;
        }
        if let Some(ops) = &c.key_operations
            && !ops.contains(&KeyOperations::Verify)
        {
            return None;
        }
        // A JWK `alg` we cannot verify with (RSA-OAEP, unknown, HS*) marks the key unusable.
        let alg = match c.key_algorithm {
            None => None,
            Some(ka) => match Algorithm::from_str(&ka.to_string()) {
                Ok(a) if a.family() != AlgorithmFamily::Hmac => Some(a),
                _ => return None,
            },
        };
        let shape = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Shape::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Shape::P256,
                EllipticCurve::P384 => Shape::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Shape::Ed25519
            }
            AlgorithmParameters::OctetKeyPair(_) | AlgorithmParameters::OctetKey(_) => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: c.key_id.clone(),
            alg,
            shape,
            key,
            jwk: jwk.clone(),
        })
    }

    /// Whether this key can check a signature made with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let shape_ok = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.shape == Shape::Rsa,
            Algorithm::ES256 => self.shape == Shape::P256,
            Algorithm::ES384 => self.shape == Shape::P384,
            Algorithm::EdDSA => self.shape == Shape::Ed25519,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => false,
        };
        shape_ok && self.alg.is_none_or(|a| a == alg)
    }

    /// Checks `signature` (base64url) over `signing_input` with this key.
    pub fn verify(&self, signing_input: &str, signature: &str, alg: Algorithm) -> bool {
        self.fits(alg)
            && jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &self.key, alg)
                .unwrap_or(false)
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// The result of looking for keys for one token.
#[derive(Debug)]
pub(crate) enum Selection {
    Found(Vec<VerifyKey>),
    /// A key has the token's `kid` but cannot verify its `alg`: refetching will not help.
    KidWrongAlg,
    NotFound,
}

/// One issuer's current keys.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub keys: Vec<VerifyKey>,
    /// Whether keys were ever loaded (distinguishes `jwks_unavailable` from `kid_unknown`).
    pub loaded: bool,
}

impl KeySet {
    pub fn from_jwks<'a>(jwks: impl IntoIterator<Item = &'a Jwk>) -> Self {
        Self {
            keys: jwks.into_iter().filter_map(VerifyKey::from_jwk).collect(),
            loaded: true,
        }
    }

    /// With a `kid`, the keys that carry it; without, every key whose type fits `alg`.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Selection {
        let candidates: Vec<&VerifyKey> = match kid {
            Some(kid) => self.keys.iter().filter(|k| k.kid() == Some(kid)).collect(),
            None => self.keys.iter().collect(),
        };
        let fitting: Vec<VerifyKey> = candidates
            .iter()
            .filter(|k| k.fits(alg))
            .map(|k| (*k).clone())
            .collect();
        match (fitting.is_empty(), candidates.is_empty() || kid.is_none()) {
            (false, _) => Selection::Found(fitting),
            (true, true) => Selection::NotFound,
            (true, false) => Selection::KidWrongAlg,
        }
    }

    /// Whether some key of `self` is absent from `next` (a key was withdrawn).
    pub fn loses_keys_in(&self, next: &KeySet) -> bool {
        self.keys
            .iter()
            .any(|k| !next.keys.iter().any(|n| n.jwk == k.jwk))
    }
}
