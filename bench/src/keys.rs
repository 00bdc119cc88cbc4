//! Signing keys and tokens for the benchmark, made in-process with aws-lc-rs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::{Value, json};

pub enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

impl Key {
    pub fn rsa() -> anyhow::Result<Key> {
        Ok(Key::Rsa(RsaKeyPair::generate(KeySize::Rsa2048)?))
    }

    pub fn ec() -> anyhow::Result<Key> {
        Ok(Key::Ec(EcdsaKeyPair::generate(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
        )?))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }

    pub fn jwk(&self) -> anyhow::Result<Jwk> {
        let v = match self {
            Key::Rsa(p) => {
                let c = PublicKeyComponents::<Vec<u8>>::from(p.public_key());
                json!({"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Key::Ec(p) => {
                let pt = p.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "alg": "ES256",
                       "x": b64(&pt[1..33]), "y": b64(&pt[33..])})
            }
        };
        Ok(serde_json::from_value(v)?)
    }

    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let kid = match self {
            Key::Rsa(_) => "rsa",
            Key::Ec(_) => "ec",
        };
        let header = json!({"alg": self.alg(), "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Key::Rsa(p) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)?;
                sig
            }
            Key::Ec(p) => p.sign(&rng, input.as_bytes())?.as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

pub fn jwks(keys: &[&Key]) -> anyhow::Result<JwkSet> {
    Ok(JwkSet {
        keys: keys
            .iter()
            .map(|k| k.jwk())
            .collect::<anyhow::Result<_>>()?,
    })
}
