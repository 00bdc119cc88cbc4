//! Key discovery against a mock IdP on 127.0.0.1: lazy fetch, rotation, rate limit,
//! single flight, IdP outages and key withdrawal.

use std::time::Duration;

use serde_json::{Value, json};

use crate::test_support::{MockIdp, TestKey, install_provider};
use crate::{IdentitySettings, IssuerSettings, Reason, Validator};

const NOW: i64 = 1_800_000_000;

fn validator(issuer: &str, refetch: Duration) -> Validator {
    install_provider();
    let mut s = IssuerSettings::new(issuer, vec!["portcullis".into()]);
    s.jwks_refetch_min_interval = refetch;
    Validator::new(IdentitySettings {
        issuers: vec![s],
        ..Default::default()
    })
    .unwrap()
}

fn token(key: &TestKey, issuer: &str, jti: &str) -> String {
    key.sign(
        &json!({"iss": issuer, "sub": "svc", "aud": "portcullis", "iat": NOW,
                     "exp": NOW + 600, "jti": jti}),
    )
}

async fn reason(v: &Validator, t: &str) -> Reason {
    v.validate_at(t, NOW).await.unwrap_err().reason
}

#[tokio::test]
async fn lazy_fetch_then_rotation_refetches() {
    let (k0, k1) = (TestKey::rsa(0), TestKey::ec("new-ec"));
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::ZERO);
    assert_eq!(idp.jwks_hits(), 0, "Validator::new does no network I/O");
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 1);
    idp.set_keys(&[&k0, &k1]);
    let p = v
        .validate_at(&token(&k1, &idp.issuer, "b"), NOW)
        .await
        .unwrap();
    assert_eq!(p.issuer, idp.issuer);
    assert_eq!(idp.jwks_hits(), 2);
    // Known kids need no fetch.
    v.validate_at(&token(&k0, &idp.issuer, "c"), NOW)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let (k0, k1) = (TestKey::rsa(0), TestKey::ec("late"));
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::from_secs(1));
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
    idp.set_keys(&[&k0, &k1]);
    for i in 0..5 {
        let ghost = TestKey::ec(&format!("ghost-{i}"));
        assert_eq!(
            reason(&v, &token(&ghost, &idp.issuer, "g")).await,
            Reason::KidUnknown
        );
    }
    assert_eq!(
        reason(&v, &token(&k1, &idp.issuer, "b")).await,
        Reason::KidUnknown
    );
    assert_eq!(idp.jwks_hits(), 1, "no refetch inside the interval");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.validate_at(&token(&k1, &idp.issuer, "b"), NOW)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_fetch() {
    let (k0, k1) = (TestKey::rsa(0), TestKey::ec("rotated"));
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::ZERO);
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
    idp.set_keys(&[&k0, &k1]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (v, t) = (v.clone(), token(&k1, &idp.issuer, &format!("t{i}")));
        tasks.spawn(async move { v.validate_at(&t, NOW).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn idp_down_keeps_cached_keys_and_fails_closed() {
    let k0 = TestKey::rsa(0);
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::ZERO);
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
    idp.set_down(true);
    v.refresh_all().await;
    v.validate_at(&token(&k0, &idp.issuer, "b"), NOW)
        .await
        .unwrap();
    let stranger = TestKey::ec("stranger");
    assert_eq!(
        reason(&v, &token(&stranger, &idp.issuer, "c")).await,
        Reason::KidUnknown
    );
}

#[tokio::test]
async fn jwks_unavailable_when_never_fetched() {
    let k0 = TestKey::rsa(0);
    let idp = MockIdp::start(&[&k0]).await;
    idp.set_down(true);
    let v = validator(&idp.issuer, Duration::ZERO);
    assert_eq!(
        reason(&v, &token(&k0, &idp.issuer, "a")).await,
        Reason::JwksUnavailable
    );

    // Nothing listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let v = validator(&dead, Duration::ZERO);
    assert_eq!(
        reason(&v, &token(&k0, &dead, "a")).await,
        Reason::JwksUnavailable
    );
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let k0 = TestKey::rsa(0);
    let idp = MockIdp::start(&[&k0]).await;
    idp.set_discovery(
        json!({"issuer": "https://other.example.com", "jwks_uri": format!("{}/jwks", idp.issuer)}),
    );
    let v = validator(&idp.issuer, Duration::ZERO);
    assert_eq!(
        reason(&v, &token(&k0, &idp.issuer, "a")).await,
        Reason::JwksUnavailable
    );
    assert_eq!(idp.jwks_hits(), 0);
    // A jwks_uri on plain HTTP to a non-loopback host is refused too.
    idp.set_discovery(json!({"issuer": idp.issuer, "jwks_uri": "http://keys.example.com/jwks"}));
    assert_eq!(
        reason(&v, &token(&k0, &idp.issuer, "b")).await,
        Reason::JwksUnavailable
    );
}

#[tokio::test]
async fn junk_keys_are_skipped() {
    let k0 = TestKey::rsa(0);
    let idp = MockIdp::start(&[]).await;
    let keys: Vec<Value> = vec![
        json!({"kty": "oct", "kid": "rsa-0", "k": "c2VjcmV0"}),
        json!({"kty": "weird", "kid": "w"}),
        json!({"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}),
        k0.jwk_json(),
    ];
    idp.set_jwks_json(json!({"keys": keys}));
    let v = validator(&idp.issuer, Duration::ZERO);
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn withdrawn_key_clears_cache() {
    let (k0, k1) = (TestKey::rsa(0), TestKey::ec("next"));
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::ZERO);
    let t = token(&k0, &idp.issuer, "a");
    v.validate_at(&t, NOW).await.unwrap();
    assert_eq!(v.cached_tokens(), 1);
    idp.set_keys(&[&k1]);
    v.refresh_all().await;
    assert_eq!(v.cached_tokens(), 0);
    assert_eq!(reason(&v, &t).await, Reason::KidUnknown);
}

#[tokio::test]
async fn spawn_refresh_fetches_on_schedule() {
    let k0 = TestKey::rsa(0);
    let idp = MockIdp::start(&[&k0]).await;
    let v = validator(&idp.issuer, Duration::from_secs(3600));
    let handle = v.spawn_refresh(Duration::from_secs(1));
    for _ in 0..100 {
        if idp.jwks_hits() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(idp.jwks_hits() >= 1);
    // The first validation needs no fetch: the scheduled one already loaded the keys.
    v.validate_at(&token(&k0, &idp.issuer, "a"), NOW)
        .await
        .unwrap();
    assert_eq!(idp.jwks_hits(), 1);
    handle.abort();
}
