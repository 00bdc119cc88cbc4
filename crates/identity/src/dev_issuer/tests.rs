//! Dev issuer: key persistence, published documents, and mint → validate round trips through
//! the ordinary validator.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::test_support::install_provider;
use crate::{IdentitySettings, PrincipalKind, Reason, Revocation, Validator};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "http://127.0.0.1:8080";

fn request() -> MintRequest {
    MintRequest {
        subject: "alice".into(),
        groups: vec!["ops".into(), "dev".into()],
        audience: "portcullis".into(),
        ttl: Duration::from_secs(900),
        ..MintRequest::default()
    }
}

#[test]
fn key_is_created_private_and_reloaded_with_the_same_kid() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nested/state");
    let first = DevIssuer::load_or_create(&state, ISSUER).unwrap();
    let mode = fs::metadata(state.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = fs::read_to_string(state.join(KEY_FILE)).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let again = DevIssuer::load_or_create(&state, &format!("{ISSUER}/")).unwrap();
    assert_eq!(first.jwks(), again.jwks());
    assert_eq!(again.issuer(), ISSUER);
    assert!(
        !format!("{again:?}").contains(&pem[28..60]),
        "Debug never shows the key"
    );
}

#[test]
fn corrupt_key_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(KEY_FILE),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        DevIssuer::load_or_create(dir.path(), ISSUER),
        Err(IdentityError::KeyFormat { .. })
    ));
    fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
    assert!(DevIssuer::load_or_create(dir.path(), ISSUER).is_err());
}

#[test]
fn published_documents() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), ISSUER).unwrap();
    let jwks = serde_json::to_value(dev.jwks()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        (key["alg"].as_str(), key["use"].as_str()),
        (Some("ES256"), Some("sig"))
    );
    let kid = key["kid"].as_str().unwrap();
    assert!(kid.len() == 16 && kid.chars().all(|c| c.is_ascii_hexdigit()));
    let doc = dev.discovery_document();
    assert_eq!(doc["issuer"], json!(ISSUER));
    assert_eq!(
        doc["jwks_uri"],
        json!(format!("{ISSUER}/.well-known/jwks.json"))
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
}

fn validator(dev: &DevIssuer) -> Validator {
    install_provider();
    let issuers = vec![dev.issuer_settings(vec!["portcullis".into()])];
    Validator::new(IdentitySettings {
        issuers,
        ..IdentitySettings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn mint_then_validate_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), ISSUER).unwrap();
    let v = validator(&dev);
    let token = dev.mint(&request(), NOW).unwrap();
    let p = v.validate_at(&token, NOW + 1).await.unwrap();
    assert_eq!((p.subject.as_str(), p.issuer.as_str()), ("alice", ISSUER));
    assert_eq!(p.client_id.as_deref(), Some("alice"));
    assert_eq!(p.groups, ["dev", "ops"]);
    assert_eq!(p.kind, PrincipalKind::Machine);
    assert_eq!((p.issued_at, p.expires_at), (Some(NOW), NOW + 900));
    assert!(p.token_id.is_some() && p.delegation.is_empty());

    let mut req = request();
    req.human = true;
    req.client_id = Some("cli".into());
    req.actor = Some("agent-9".into());
    req.extra_claims.insert("team".into(), json!("blue"));
    let p = v
        .validate_at(&dev.mint(&req, NOW).unwrap(), NOW)
        .await
        .unwrap();
    assert_eq!(p.kind, PrincipalKind::Human);
    assert_eq!(p.client_id.as_deref(), Some("cli"));
    assert_eq!(p.delegation[0].subject, "agent-9");

    // Same checks as any IdP: expiry, audience, revocation.
    assert_eq!(
        v.validate_at(&token, NOW + 2000).await.unwrap_err().reason,
        Reason::Expired
    );
    req.audience = "elsewhere".into();
    let other = dev.mint(&req, NOW).unwrap();
    assert_eq!(
        v.validate_at(&other, NOW).await.unwrap_err().reason,
        Reason::AudMismatch
    );
    v.revocations().add(Revocation::Subject("alice".into()));
    assert_eq!(
        v.validate_at(&token, NOW + 1).await.unwrap_err().reason,
        Reason::RevokedSubject
    );
}

#[tokio::test]
async fn minted_tokens_are_low_s_and_their_twins_are_the_same_token() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), ISSUER).unwrap();
    let v = validator(&dev);
    // Half of raw ECDSA signatures are high-S: 32 low-S in a row by chance is 1 in 2^32.
    for _ in 0..32 {
        let token = dev.mint(&request(), NOW).unwrap();
        assert_eq!(canonical(&token), token.as_str(), "minted high-S");
        let high = crate::canonical::tests::twin(&token);
        let (p, q) = (
            v.validate_at(&token, NOW).await.unwrap(),
            v.validate_at(&high, NOW).await.unwrap(),
        );
        assert!(std::sync::Arc::ptr_eq(&p, &q), "one cache entry");
    }
}

#[tokio::test]
async fn another_dev_key_is_not_trusted() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trusted = DevIssuer::load_or_create(a.path(), ISSUER).unwrap();
    let impostor = DevIssuer::load_or_create(b.path(), ISSUER).unwrap();
    let v = validator(&trusted);
    let forged = impostor.mint(&request(), NOW).unwrap();
    assert_eq!(
        v.validate_at(&forged, NOW).await.unwrap_err().reason,
        Reason::KidUnknown
    );
}

#[test]
fn mint_refuses_reserved_claims_and_empty_fields() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), ISSUER).unwrap();
    for name in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"] {
        let mut req = request();
        req.extra_claims.insert(name.into(), json!("x"));
        assert!(matches!(dev.mint(&req, NOW), Err(IdentityError::ReservedClaim(n)) if n == name));
    }
    let mut req = request();
    req.subject.clear();
    assert!(dev.mint(&req, NOW).is_err());
    let mut req = request();
    req.ttl = Duration::ZERO;
    assert!(dev.mint(&req, NOW).is_err());
}
