//! The verified-token cache seen through the validator: hits, revocation on hits, expiry,
//! bounds, and the warm-path cost.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::tests::{ISS, NOW, claims, fixture, fixture_with, reason, set};
use crate::canonical::tests::twin;
use crate::reason::Reason;
use crate::revocation::Revocation;
use crate::settings::{IdentitySettings, IssuerSettings, KeySource};
use crate::test_support::{TestKey, b64, jwks};
use crate::validator::Validator;

#[tokio::test]
async fn cache_hit_and_revocation_on_hit() {
    let f = fixture();
    let t = f.rsa.sign(&claims());
    let p1 = f.v.validate_at(&t, NOW).await.unwrap();
    let p2 = f.v.validate_at(&t, NOW + 1).await.unwrap();
    assert!(Arc::ptr_eq(&p1, &p2), "second validation is a cache hit");
    assert_eq!(f.v.cached_tokens(), 1);
    let mut feed = f.v.revocations().subscribe();
    assert!(f.v.revocations().add(Revocation::TokenId("j-1".into())));
    assert_eq!(reason(&f.v, &t).await, Reason::RevokedToken);
    assert_eq!(
        feed.recv().await.unwrap(),
        Revocation::TokenId("j-1".into())
    );
}

/// `s` and `n - s` (ECDSA malleability): two strings, one cache entry, one verdict.
#[tokio::test]
async fn an_ecdsa_token_and_its_twin_are_one_entry() {
    let f = fixture();
    let p384 = TestKey::ec384("ec-384");
    let mut s = IssuerSettings::new(ISS, vec!["portcullis".into()]);
    s.algorithms = vec![jsonwebtoken::Algorithm::ES384];
    s.keys = KeySource::Static(jwks(&[&p384]));
    let v384 = Validator::new(IdentitySettings {
        issuers: vec![s],
        ..IdentitySettings::default()
    })
    .unwrap();
    for (v, key) in [(&f.v, &f.ec), (&v384, &p384)] {
        let t = key.sign(&claims());
        let other = twin(&t);
        assert_ne!(t, other);
        let p1 = v.validate_at(&t, NOW).await.unwrap();
        let p2 = v.validate_at(&other, NOW + 1).await.unwrap();
        assert!(
            Arc::ptr_eq(&p1, &p2),
            "{}: the twin is a cache hit",
            key.alg()
        );
        assert_eq!(v.cached_tokens(), 1, "{}", key.alg());

        // Refused alike: expired, signature over other claims, revoked.
        let expired = key.sign(&set(claims(), "exp", json!(NOW - 60)));
        let (h, sig) = (t.split('.').next().unwrap(), t.rsplit('.').next().unwrap());
        let admin = set(claims(), "sub", json!("admin")).to_string();
        let forged = format!("{h}.{}.{sig}", b64(admin.as_bytes()));
        for (bad, want) in [
            (expired, Reason::Expired),
            (forged, Reason::SignatureInvalid),
        ] {
            assert_eq!(reason(v, &bad).await, want);
            assert_eq!(reason(v, &twin(&bad)).await, want);
        }
        v.revocations().add(Revocation::TokenId("j-1".into()));
        assert_eq!(reason(v, &t).await, Reason::RevokedToken);
        assert_eq!(reason(v, &other).await, Reason::RevokedToken);
        assert_eq!(v.cached_tokens(), 1, "{}", key.alg());
    }
}

#[tokio::test]
async fn cache_is_never_served_past_exp() {
    let f = fixture();
    let t = f.rsa.sign(&set(claims(), "exp", json!(NOW + 10)));
    let p1 = f.v.validate_at(&t, NOW).await.unwrap();
    // At exp the cache misses; full validation still accepts within leeway but does not cache.
    let p2 = f.v.validate_at(&t, NOW + 10).await.unwrap();
    assert!(!Arc::ptr_eq(&p1, &p2));
    assert_eq!(reason_at(&f.v, &t, NOW + 40).await, Reason::Expired);
}

async fn reason_at(v: &Validator, t: &str, now: i64) -> Reason {
    v.validate_at(t, now).await.unwrap_err().reason
}

#[tokio::test]
async fn cache_is_bounded() {
    let f = fixture_with(2);
    for i in 0..5 {
        let t = f.rsa.sign(&set(claims(), "jti", json!(format!("j{i}"))));
        f.v.validate_at(&t, NOW).await.unwrap();
        assert!(f.v.cached_tokens() <= 2);
    }
    let f = fixture_with(0);
    f.v.validate_at(&f.rsa.sign(&claims()), NOW).await.unwrap();
    assert_eq!(f.v.cached_tokens(), 0);
}

/// The lead benchmarks properly; this only guards against an accidental slow path (run with
/// `cargo test --release -p portcullis-identity -- --ignored warm`).
#[tokio::test]
#[ignore = "timing; meaningful in release builds only"]
async fn warm_validation_is_fast() {
    let f = fixture();
    let t = f.rsa.sign(&claims());
    f.v.validate_at(&t, NOW).await.unwrap();
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        f.v.validate_at(&t, NOW).await.unwrap();
    }
    let per = start.elapsed() / n;
    println!("warm validation: {per:?} each");
    assert!(per.as_micros() < 20, "{per:?}");
}
