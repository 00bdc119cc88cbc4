//! Pipeline tests with static keys: every reason, principal mapping, cache and revocation.

use std::collections::HashSet;

use aws_lc_rs::hmac;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};

use super::*;
use crate::principal::PrincipalKind;
use crate::revocation::Revocation;
use crate::settings::{IssuerSettings, KeySource};
use crate::test_support::{TestKey, b64, install_provider, jwks};

pub(super) const NOW: i64 = 1_800_000_000;
pub(super) const ISS: &str = "https://idp.example.com";
const ES_ONLY: &str = "https://es-only.example.com";

pub(super) struct Fixture {
    pub v: Validator,
    pub rsa: TestKey,
    pub ec: TestKey,
}

pub(super) fn fixture_with(capacity: usize) -> Fixture {
    install_provider();
    let (rsa, ec) = (TestKey::rsa(0), TestKey::ec("ec-1"));
    let mut main = IssuerSettings::new(ISS, vec!["portcullis".into()]);
    main.keys = KeySource::Static(jwks(&[&rsa, &ec]));
    main.kind_claim = Some("kind".into());
    let mut es_only = IssuerSettings::new(ES_ONLY, vec!["portcullis".into()]);
    es_only.algorithms = vec![Algorithm::ES256];
    es_only.keys = KeySource::Static(jwks(&[&ec]));
    let settings = IdentitySettings {
        issuers: vec![main, es_only],
        static_groups: vec![StaticGroups {
            subject: Some("agent-1".into()),
            client_id: None,
            groups: vec!["static-g".into(), "a".into()],
        }],
        max_token_bytes: 4096,
        cache_capacity: capacity,
    };
    Fixture {
        v: Validator::new(settings).unwrap(),
        rsa,
        ec,
    }
}

pub(super) fn fixture() -> Fixture {
    fixture_with(1000)
}

pub(super) fn claims() -> Value {
    json!({"iss": ISS, "sub": "agent-1", "aud": "portcullis", "iat": NOW, "exp": NOW + 600,
           "jti": "j-1", "azp": "ci-bot", "groups": "b a,b"})
}

pub(super) fn set(mut v: Value, k: &str, val: Value) -> Value {
    v[k] = val;
    v
}

fn unset(mut v: Value, k: &str) -> Value {
    v.as_object_mut().unwrap().remove(k);
    v
}

/// A token with a raw (possibly non-JSON) payload, signed by `key`.
fn raw(key: &TestKey, header: &Value, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.as_bytes())
    );
    format!("{input}.{}", b64(&key.sign_bytes(input.as_bytes())))
}

pub(super) async fn reason(v: &Validator, token: &str) -> Reason {
    match v.validate_at(token, NOW).await {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(r) => {
            assert!(!r.detail.contains(token), "detail leaks the token");
            r.reason
        }
    }
}

/// The HS256-with-the-RSA-public-key confusion attack.
fn hs256_with_public_key(rsa: &TestKey) -> String {
    let header = json!({"alg": "HS256", "kid": rsa.kid()});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &rsa.public_bytes());
    format!(
        "{input}.{}",
        b64(hmac::sign(&key, input.as_bytes()).as_ref())
    )
}

fn cases(f: &Fixture) -> Vec<(Reason, String)> {
    let (rsa, c) = (&f.rsa, claims());
    let hdr = json!({"alg": "RS256", "kid": "rsa-0"});
    let good = rsa.sign(&c);
    let (h, s) = (
        good.split('.').next().unwrap(),
        good.rsplit('.').next().unwrap(),
    );
    let tampered = format!(
        "{h}.{}.{s}",
        b64(set(c.clone(), "sub", json!("admin")).to_string().as_bytes())
    );
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(c.to_string().as_bytes())
    );
    let sign = |v: Value| rsa.sign(&v);
    vec![
        (Reason::TokenTooLarge, "a".repeat(5000)),
        (Reason::TokenMalformed, "abc.def".into()),
        (Reason::TokenMalformed, "a.b.c.d".into()),
        (Reason::TokenMalformed, "e30.e30.a b".into()),
        (Reason::TokenMalformed, "e30=.e30.abcd".into()),
        (Reason::HeaderInvalid, raw(rsa, &json!([1]), &c.to_string())),
        (
            Reason::HeaderInvalid,
            raw(rsa, &json!({"typ": "JWT"}), &c.to_string()),
        ),
        (
            Reason::HeaderInvalid,
            raw(rsa, &json!({"alg": "RS256", "kid": 7}), &c.to_string()),
        ),
        (Reason::AlgNone, none),
        (Reason::AlgNotAllowed, hs256_with_public_key(rsa)),
        (
            Reason::AlgNotAllowed,
            raw(
                rsa,
                &json!({"alg": "RS384", "kid": "rsa-0"}),
                &c.to_string(),
            ),
        ),
        (
            Reason::AlgNotAllowed,
            raw(rsa, &json!({"alg": "XX1"}), &c.to_string()),
        ),
        (
            Reason::AlgNotAllowed,
            sign(set(c.clone(), "iss", json!(ES_ONLY))),
        ),
        (
            Reason::CritUnsupported,
            raw(
                rsa,
                &json!({"alg": "RS256", "kid": "rsa-0", "crit": ["exp"]}),
                &c.to_string(),
            ),
        ),
        (Reason::ClaimsInvalid, raw(rsa, &hdr, "[1,2]")),
        (
            Reason::ClaimsInvalid,
            sign(set(c.clone(), "exp", json!("soon"))),
        ),
        (
            Reason::ClaimsInvalid,
            sign(set(c.clone(), "aud", json!([1]))),
        ),
        (
            Reason::ClaimsInvalid,
            sign(set(c.clone(), "act", json!({"client_id": "no-sub"}))),
        ),
        (
            Reason::ClaimsInvalid,
            sign(set(c.clone(), "groups", json!(5))),
        ),
        (
            Reason::IssuerUnknown,
            sign(set(c.clone(), "iss", json!("https://evil.example.com"))),
        ),
        (
            Reason::IssuerUnknown,
            sign(set(c.clone(), "iss", json!(format!("{ISS}/")))),
        ),
        (Reason::IssuerUnknown, sign(unset(c.clone(), "iss"))),
        (
            Reason::KidUnknown,
            raw(rsa, &json!({"alg": "RS256", "kid": "nope"}), &c.to_string()),
        ),
        (Reason::SignatureInvalid, tampered),
        (
            Reason::SignatureInvalid,
            raw(&TestKey::rsa(1), &hdr, &c.to_string()),
        ),
        (
            Reason::SignatureInvalid,
            raw(
                rsa,
                &json!({"alg": "ES256", "kid": "rsa-0"}),
                &c.to_string(),
            ),
        ),
        (Reason::ExpMissing, sign(unset(c.clone(), "exp"))),
        (
            Reason::Expired,
            sign(set(c.clone(), "exp", json!(NOW - 30))),
        ),
        (
            Reason::NotYetValid,
            sign(set(c.clone(), "nbf", json!(NOW + 31))),
        ),
        (
            Reason::IatInFuture,
            sign(set(c.clone(), "iat", json!(NOW + 31))),
        ),
        (Reason::AudMissing, sign(unset(c.clone(), "aud"))),
        (Reason::AudMissing, sign(set(c.clone(), "aud", json!([])))),
        (
            Reason::AudMismatch,
            sign(set(c.clone(), "aud", json!(["other", "x"]))),
        ),
        (
            Reason::LifetimeTooLong,
            sign(set(c.clone(), "exp", json!(NOW + 3601))),
        ),
        (
            Reason::LifetimeTooLong,
            sign(set(unset(c.clone(), "iat"), "exp", json!(NOW + 3601))),
        ),
        (Reason::SubMissing, sign(unset(c.clone(), "sub"))),
        (Reason::SubMissing, sign(set(c.clone(), "sub", json!("")))),
        (
            Reason::RevokedSubject,
            sign(set(c.clone(), "sub", json!("fired"))),
        ),
        (
            Reason::RevokedSubject,
            sign(set(c.clone(), "act", json!({"sub": "rogue-agent"}))),
        ),
        (
            Reason::RevokedClient,
            sign(set(c.clone(), "client_id", json!("leaked-client"))),
        ),
        (
            Reason::RevokedToken,
            sign(set(c.clone(), "jti", json!("stolen-jti"))),
        ),
    ]
}

#[tokio::test]
async fn every_reason_is_reachable_and_reported() {
    let f = fixture();
    let r = f.v.revocations();
    r.add(Revocation::Subject("fired".into()));
    r.add(Revocation::Subject("rogue-agent".into()));
    r.add(Revocation::ClientId("leaked-client".into()));
    r.add(Revocation::TokenId("stolen-jti".into()));
    let mut seen: HashSet<Reason> = HashSet::new();
    for (i, (want, token)) in cases(&f).into_iter().enumerate() {
        assert_eq!(reason(&f.v, &token).await, want, "case {i}");
        seen.insert(want);
    }
    // `jwks_unavailable` needs an unreachable IdP: covered in issuer/tests.rs.
    seen.insert(Reason::JwksUnavailable);
    assert_eq!(seen, Reason::ALL.iter().copied().collect());
}

#[tokio::test]
async fn rejection_names_issuer_and_subject_only_when_known() {
    let f = fixture();
    let forged = raw(
        &TestKey::rsa(1),
        &json!({"alg": "RS256", "kid": "rsa-0"}),
        &claims().to_string(),
    );
    let r = f.v.validate_at(&forged, NOW).await.unwrap_err();
    assert_eq!(
        (r.issuer.as_deref(), r.subject.as_deref()),
        (Some(ISS), None)
    );
    let expired = f.rsa.sign(&set(claims(), "exp", json!(NOW - 100)));
    let r = f.v.validate_at(&expired, NOW).await.unwrap_err();
    assert_eq!(
        (r.issuer.as_deref(), r.subject.as_deref()),
        (Some(ISS), Some("agent-1"))
    );
}

#[tokio::test]
async fn principal_from_claims() {
    let f = fixture();
    let c = set(
        claims(),
        "act",
        json!({"sub": "agent-b", "client_id": "cb", "act": {"sub": "agent-c", "iss": "https://x"}}),
    );
    let p =
        f.v.validate_at(&f.ec.sign(&set(c, "kind", json!("human"))), NOW)
            .await
            .unwrap();
    assert_eq!(p.subject, "agent-1");
    assert_eq!(p.issuer, ISS);
    assert_eq!(p.client_id.as_deref(), Some("ci-bot"));
    assert_eq!(p.groups, ["a", "b", "static-g"]);
    assert_eq!(p.kind, PrincipalKind::Human);
    assert_eq!(p.token_id.as_deref(), Some("j-1"));
    assert_eq!((p.expires_at, p.issued_at), (NOW + 600, Some(NOW)));
    assert_eq!(p.valid_until, NOW + 600 + 30, "exp plus the default leeway");
    let chain: Vec<_> = p
        .delegation
        .iter()
        .map(|a| {
            (
                a.subject.as_str(),
                a.client_id.as_deref(),
                a.issuer.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("agent-b", Some("cb"), None),
            ("agent-c", None, Some("https://x"))
        ]
    );

    let c = set(
        set(claims(), "client_id", json!("explicit")),
        "groups",
        json!(["z", "z"]),
    );
    let p = f.v.validate_at(&f.rsa.sign(&c), NOW).await.unwrap();
    assert_eq!(p.client_id.as_deref(), Some("explicit"));
    assert_eq!(p.groups, ["a", "static-g", "z"]);
    assert_eq!(p.kind, PrincipalKind::Machine);
}

#[tokio::test]
async fn leeway_and_kid_less_tokens() {
    let f = fixture();
    let c = set(
        set(claims(), "exp", json!(NOW - 29)),
        "iat",
        json!(NOW - 100),
    );
    assert!(f.v.validate_at(&f.rsa.sign(&c), NOW).await.is_ok());
    let c = set(claims(), "nbf", json!(NOW + 29));
    assert!(f.v.validate_at(&f.rsa.sign(&c), NOW).await.is_ok());
    // No kid: every key whose type fits the alg is tried.
    let t = raw(
        &f.ec,
        &json!({"alg": "ES256"}),
        &set(claims(), "jti", json!("k2")).to_string(),
    );
    assert!(f.v.validate_at(&t, NOW).await.is_ok());
}

#[tokio::test]
async fn authority_ends_at_exp_plus_the_issuers_leeway() {
    let f = fixture();
    let mut short = IssuerSettings::new(ISS, vec!["portcullis".into()]);
    short.keys = KeySource::Static(jwks(&[&f.rsa]));
    short.leeway = std::time::Duration::from_secs(3);
    let short = Validator::new(IdentitySettings {
        issuers: vec![short],
        ..Default::default()
    })
    .unwrap();
    let t = f.rsa.sign(&set(claims(), "exp", json!(NOW + 10)));
    for (v, leeway) in [(&f.v, 30), (&short, 3)] {
        let p = v.validate_at(&t, NOW).await.unwrap();
        assert_eq!((p.expires_at, p.valid_until), (NOW + 10, NOW + 10 + leeway));
        // Accepted up to `valid_until` and refused from it: the instant a door that holds a
        // session open ends it.
        assert!(v.validate_at(&t, p.valid_until - 1).await.is_ok());
        let r = v.validate_at(&t, p.valid_until).await.unwrap_err();
        assert_eq!(r.reason, Reason::Expired);
    }
}

#[tokio::test]
async fn whitespace_at_the_ends_is_dropped_and_inside_is_malformed() {
    let f = fixture();
    let t = f.rsa.sign(&claims());
    let p = f.v.validate_at(&t, NOW).await.unwrap();
    for padded in [
        format!(" {t}"),
        format!("{t}\n"),
        format!("\t{t} \r\n"),
        format!("{t}\x0c"),
    ] {
        let q = f.v.validate_at(&padded, NOW).await.unwrap();
        assert!(Arc::ptr_eq(&p, &q), "{padded:?} is the same token");
    }
    let (head, tail) = t.split_at(t.len() / 2);
    for bad in [
        format!("{head} {tail}"),
        format!("{head}\n{tail}"),
        // Only ASCII whitespace is dropped.
        format!("\u{a0}{t}"),
        " \r\n".to_owned(),
    ] {
        assert_eq!(reason(&f.v, &bad).await, Reason::TokenMalformed, "{bad:?}");
    }
    // The size limit applies to the input as given, whitespace included.
    let padded = format!("{t}{}", " ".repeat(4097 - t.len()));
    assert_eq!(reason(&f.v, &padded).await, Reason::TokenTooLarge);
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped() {
    install_provider();
    let ec = TestKey::ec("enc-key");
    let mut enc = ec.jwk_json();
    enc["use"] = json!("enc");
    let wrong_alg = TestKey::ec("es384-labelled");
    let mut labelled = wrong_alg.jwk_json();
    labelled["alg"] = json!("ES384");
    let keys: JwkSet = serde_json::from_value(json!({"keys": [enc, labelled]})).unwrap();
    let mut s = IssuerSettings::new(ISS, vec!["portcullis".into()]);
    s.keys = KeySource::Static(keys);
    let v = Validator::new(IdentitySettings {
        issuers: vec![s],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(reason(&v, &ec.sign(&claims())).await, Reason::KidUnknown);
    assert_eq!(
        reason(&v, &wrong_alg.sign(&claims())).await,
        Reason::SignatureInvalid
    );
}

#[test]
fn new_refuses_bad_settings() {
    let s = |iss: &str| IssuerSettings::new(iss, vec!["a".into()]);
    let new = |issuers| {
        Validator::new(IdentitySettings {
            issuers,
            ..Default::default()
        })
    };
    assert!(matches!(
        new(vec![s("https://a"), s("https://a")]),
        Err(IdentityError::DuplicateIssuer(_))
    ));
    assert!(new(vec![s("http://idp.example.com")]).is_err());
    let mut hs = s("https://a");
    hs.algorithms.push(Algorithm::HS256);
    assert!(new(vec![hs]).is_err());
    let v = new(vec![s("https://b"), s("http://127.0.0.1:1")]).unwrap();
    assert_eq!(v.issuers(), ["https://b", "http://127.0.0.1:1"]);
    let groups = vec![StaticGroups {
        subject: None,
        client_id: None,
        groups: vec![],
    }];
    let bad = Validator::new(IdentitySettings {
        static_groups: groups,
        ..Default::default()
    });
    assert!(matches!(
        bad,
        Err(IdentityError::EmptyStaticGroups { index: 0 })
    ));
}
