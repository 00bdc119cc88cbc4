//! Token validations per second on one core: warm (verified-token cache hit) and cold (full
//! signature check), RS256 and ES256. Baseline: `jsonwebtoken::decode` alone.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_identity::{IdentitySettings, IssuerSettings, KeySource, Validator};
use serde_json::json;

use crate::keys::{Key, jwks};
use crate::{rate, row};

const ISS: &str = "https://bench.invalid";

fn validator(keys: &[&Key], cache_capacity: usize) -> anyhow::Result<Validator> {
    let mut s = IssuerSettings::new(ISS, vec!["portcullis".into()]);
    s.keys = KeySource::Static(jwks(keys)?);
    Ok(Validator::new(IdentitySettings {
        issuers: vec![s],
        static_groups: vec![],
        max_token_bytes: 16 * 1024,
        cache_capacity,
    })?)
}

fn token(key: &Key, now: i64, n: usize) -> anyhow::Result<String> {
    key.sign(&json!({
        "iss": ISS, "sub": format!("agent-{n}"), "aud": "portcullis", "iat": now,
        "exp": now + 600, "jti": format!("jti-{n}"), "groups": ["agents", "analysts"],
        "client_id": "autogen-analyst"
    }))
}

pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    for key in [Key::rsa()?, Key::ec()?] {
        let alg = key.alg();
        let tokens: Vec<String> = (0..64)
            .map(|n| token(&key, now, n))
            .collect::<anyhow::Result<_>>()?;
        let dk = DecodingKey::from_jwk(&key.jwk()?)?;
        let mut v = Validation::new(alg.parse::<Algorithm>()?);
        v.set_audience(&["portcullis"]);
        v.set_issuer(&[ISS]);
        let mut i = 0;
        let raw = rate(|| {
            i = (i + 1) % tokens.len();
            let ok = jsonwebtoken::decode::<serde_json::Value>(&tokens[i], &dk, &v).is_ok();
            u64::from(ok)
        });

        // Cold: a cache of one entry and a rotating set of tokens, so every call verifies.
        let cold_v = validator(&[&key], 1)?;
        let mut i = 0;
        let cold = rate(|| {
            i = (i + 1) % tokens.len();
            u64::from(rt.block_on(cold_v.validate_at(&tokens[i], now)).is_ok())
        });
        row(
            &format!("token validation, cold {alg} (1 core)"),
            cold,
            "jsonwebtoken::decode",
            raw,
        );

        let warm_v = validator(&[&key], 100_000)?;
        let mut i = 0;
        let warm = rate(|| {
            i = (i + 1) % tokens.len();
            u64::from(rt.block_on(warm_v.validate_at(&tokens[i], now)).is_ok())
        });
        row(
            &format!("token validation, warm {alg} (1 core)"),
            warm,
            "jsonwebtoken::decode",
            raw,
        );
    }
    Ok(())
}
