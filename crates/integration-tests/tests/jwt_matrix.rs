//! The JWT attack matrix against a real OpenID provider (oidc-provider) and the real gateway
//! binary: every way a bearer token can be wrong gets its own reason code, in a 401
//! `application/problem+json` that never echoes the token.
//!
//! Needs `target/<profile>/portcullis` (`cargo build -p portcullis`) and `node`.
//!
//! Stateless cases share one IdP, one unconfigured second IdP and one gateway; cases that
//! change the IdP (key rotation, IdP down) get their own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use std::time::Duration;

use portcullis_integration_tests::gateway::IssuerSpec;
use portcullis_integration_tests::idp::CLIENT_SECRET;
use portcullis_integration_tests::{Gateway, GatewayBuilder, Idp, Reply, jwt, now_unix};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

struct Shared {
    idp: Idp,
    /// A real provider the gateway is not configured to trust.
    stranger: Idp,
    gw: Gateway,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

async fn shared() -> &'static Shared {
    SHARED
        .get_or_try_init(|| async {
            let idp = Idp::start().await?;
            let stranger = Idp::start().await?;
            let gw = GatewayBuilder::new()
                .issuer_spec(IssuerSpec::new(idp.issuer()))
                .start()
                .await?;
            anyhow::Ok(Shared { idp, stranger, gw })
        })
        .await
        .unwrap_or_else(|e| panic!("shared fixture failed to start: {e:#}"))
}

async fn own_fixture() -> (Idp, Gateway) {
    let idp = Idp::start().await.expect("start idp");
    let gw = GatewayBuilder::new()
        .issuer(idp.issuer())
        .start()
        .await
        .unwrap_or_else(|e| panic!("gateway failed to start: {e:#}"));
    (idp, gw)
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        now_unix(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Claims a well-behaved token of `iss` would carry; tests override one thing at a time.
fn claims(iss: &str) -> Value {
    let now = now_unix();
    json!({
        "iss": iss,
        "sub": "forged-agent",
        "client_id": "forged-agent",
        "aud": "portcullis",
        "iat": now,
        "exp": now + 300,
        "jti": unique("jti"),
        "groups": ["agents"],
    })
}

fn with(mut base: Value, patch: Value) -> Value {
    if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// The token, and pieces of it long enough to be recognizable, must not be in the body.
fn assert_no_token_echo(case: &str, token: &str, r: &Reply) {
    assert!(
        !r.body.contains(token),
        "[{case}] response body echoes the token: {}",
        r.summary()
    );
    for seg in token.split('.') {
        if seg.len() >= 24 {
            assert!(
                !r.body.contains(seg),
                "[{case}] response body echoes a token segment: {}",
                r.summary()
            );
        }
    }
}

async fn expect_rejected(gw: &Gateway, case: &str, token: &str, code: &str) -> Value {
    let r = gw
        .whoami(token)
        .await
        .unwrap_or_else(|e| panic!("[{case}] request failed: {e:#}"));
    assert_no_token_echo(case, token, &r);
    let got = r.problem_code();
    assert!(
        r.status == 401 && got.as_deref() == Some(code),
        "[{case}] expected 401 {code}, got {} code {got:?}: {}",
        r.status,
        r.summary()
    );
    assert!(
        r.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/problem+json")),
        "[{case}] expected application/problem+json, got {:?}",
        r.content_type
    );
    let v = r.json().unwrap();
    assert_eq!(
        v["type"],
        format!("urn:portcullis:problem:{code}"),
        "[{case}] {v}"
    );
    assert_eq!(v["status"], 401, "[{case}] {v}");
    assert!(
        v["title"].as_str().is_some_and(|s| !s.is_empty()),
        "[{case}] no title: {v}"
    );
    assert!(v["detail"].is_string(), "[{case}] no detail: {v}");
    v
}

async fn expect_accepted(gw: &Gateway, case: &str, token: &str) -> Value {
    let r = gw
        .whoami(token)
        .await
        .unwrap_or_else(|e| panic!("[{case}] request failed: {e:#}"));
    assert_no_token_echo(case, token, &r);
    assert!(
        r.status == 200,
        "[{case}] expected 200, got {} code {:?}: {}",
        r.status,
        r.problem_code(),
        r.summary()
    );
    r.json()
        .unwrap_or_else(|e| panic!("[{case}] whoami body: {e:#}"))
}

fn groups_of(v: &Value) -> Vec<String> {
    v["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ accepted

#[tokio::test]
async fn valid_rs256_from_real_client_credentials_grant() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    assert_eq!(jwt::header(&token).unwrap()["alg"], "RS256");
    let c = jwt::claims(&token).unwrap();
    let v = expect_accepted(&s.gw, "valid RS256", &token).await;
    assert_eq!(v["subject"], "agent-1", "{v}");
    assert_eq!(v["issuer"], s.idp.issuer(), "{v}");
    assert_eq!(v["client_id"], "agent-1", "{v}");
    assert!(groups_of(&v).contains(&"agents".to_string()), "{v}");
    assert_eq!(v["kind"], "machine", "{v}");
    assert_eq!(v["token_id"], c["jti"], "{v}");
    assert_eq!(v["expires_at"], c["exp"], "{v}");
}

#[tokio::test]
async fn valid_es256_from_real_client_credentials_grant() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    assert_eq!(jwt::header(&token).unwrap()["alg"], "ES256");
    let v = expect_accepted(&s.gw, "valid ES256", &token).await;
    assert_eq!(v["subject"], "agent-2", "{v}");
    assert_eq!(v["client_id"], "agent-2", "{v}");
    assert!(groups_of(&v).contains(&"agents".to_string()), "{v}");

    // And a token the test signs with the same ES256 key.
    let forged = s
        .idp
        .sign(json!({}), claims(s.idp.issuer()), "es")
        .await
        .unwrap();
    let v = expect_accepted(&s.gw, "valid ES256 (test-signed)", &forged).await;
    assert_eq!(v["subject"], "forged-agent", "{v}");
}

/// ECDSA malleability: `(r, n - s)` verifies whenever `(r, s)` does. The gateway takes both
/// strings as the same token (one cache entry, one principal, one verdict) rather than refusing
/// high-S signatures, which the real provider emits about half the time.
#[tokio::test]
async fn es256_with_s_or_n_minus_s_is_one_token() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    let twin = jwt::with_negated_s(&token).unwrap();
    assert_ne!(token, twin);
    let a = expect_accepted(&s.gw, "ES256 as issued", &token).await;
    let b = expect_accepted(&s.gw, "ES256 with n - s", &twin).await;
    assert_eq!(a, b);

    let now = now_unix();
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now - 4000, "exp": now - 3600}),
    );
    let expired = s.idp.sign(json!({}), c, "es").await.unwrap();
    let twin = jwt::with_negated_s(&expired).unwrap();
    expect_rejected(&s.gw, "expired ES256", &expired, "expired").await;
    expect_rejected(&s.gw, "expired ES256 with n - s", &twin, "expired").await;

    // The dev issuer hands out the low-S form only.
    for _ in 0..4 {
        let minted = s.gw.mint("dev-agent", &["agents"], "5m").unwrap();
        assert!(
            jwt::is_low_s(&minted).unwrap(),
            "high-S from the dev issuer"
        );
    }
}

#[tokio::test]
async fn skew_inside_leeway_is_accepted() {
    let s = shared().await;
    let now = now_unix();
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now - 310, "exp": now - 10}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_accepted(&s.gw, "exp 10 s ago, leeway 30 s", &token).await;
}

#[tokio::test]
async fn dev_issuer_token_from_cli_mint_validates() {
    let s = shared().await;
    let token =
        s.gw.mint("dev-agent", &["agents", "ops"], "15m")
            .unwrap_or_else(|e| panic!("[dev issuer] {e:#}"));
    let v = expect_accepted(&s.gw, "dev issuer", &token).await;
    assert_eq!(v["subject"], "dev-agent", "{v}");
    let groups = groups_of(&v);
    assert!(
        groups.contains(&"agents".to_string()) && groups.contains(&"ops".to_string()),
        "{v}"
    );
    let c = jwt::claims(&token).unwrap();
    assert_eq!(v["issuer"], c["iss"], "{v}");
    let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap_or(0);
    assert!(
        lifetime <= 15 * 60,
        "minted lifetime {lifetime}s > 15m: {c}"
    );
}

// ------------------------------------------------------------------ time

#[tokio::test]
async fn expired() {
    let s = shared().await;
    let now = now_unix();
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now - 4000, "exp": now - 3600}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "expired", &token, "expired").await;
}

#[tokio::test]
async fn not_yet_valid() {
    let s = shared().await;
    let c = with(claims(s.idp.issuer()), json!({"nbf": now_unix() + 600}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "nbf in the future", &token, "not_yet_valid").await;
}

#[tokio::test]
async fn iat_in_future() {
    let s = shared().await;
    let now = now_unix();
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now + 600, "exp": now + 900}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "iat 10 min in the future", &token, "iat_in_future").await;
}

#[tokio::test]
async fn lifetime_too_long() {
    let s = shared().await;
    let now = now_unix();
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now, "exp": now + 7200}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "exp - iat = 2h > 1h", &token, "lifetime_too_long").await;
}

// ------------------------------------------------------------------ issuer and audience

#[tokio::test]
async fn wrong_issuer() {
    let s = shared().await;
    let c = with(
        claims(s.idp.issuer()),
        json!({"iss": format!("{}/not-the-issuer", s.idp.issuer())}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "wrong iss", &token, "issuer_unknown").await;
}

#[tokio::test]
async fn issuer_not_configured_real_second_idp() {
    let s = shared().await;
    let token = s
        .stranger
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    assert_eq!(jwt::claims(&token).unwrap()["iss"], s.stranger.issuer());
    expect_rejected(&s.gw, "unconfigured issuer", &token, "issuer_unknown").await;
}

#[tokio::test]
async fn wrong_audience() {
    let s = shared().await;
    let c = with(claims(s.idp.issuer()), json!({"aud": "someone-else"}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "wrong aud", &token, "aud_mismatch").await;

    let c = with(claims(s.idp.issuer()), json!({"aud": ["a", "b"]}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "wrong aud (array)", &token, "aud_mismatch").await;
}

#[tokio::test]
async fn missing_audience() {
    let s = shared().await;
    let c = with(claims(s.idp.issuer()), json!({"aud": null}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "missing aud", &token, "aud_missing").await;
}

// ------------------------------------------------------------------ algorithms and keys

#[tokio::test]
async fn alg_none() {
    let s = shared().await;
    let token = s
        .idp
        .sign(json!({"alg": "none"}), claims(s.idp.issuer()), "rs")
        .await
        .unwrap();
    expect_rejected(&s.gw, "alg none", &token, "alg_none").await;
}

#[tokio::test]
async fn hs256_keyed_with_rsa_public_key() {
    let s = shared().await;
    // The attacker downloads the public key...
    let public = s.idp.public_jwks().await.unwrap();
    assert!(public["pem"]["rs"].as_str().unwrap().contains("PUBLIC KEY"));
    // ...and uses its PEM as the HMAC secret, with the RSA key's kid.
    let token = s
        .idp
        .sign(json!({"alg": "HS256"}), claims(s.idp.issuer()), "rs")
        .await
        .unwrap();
    assert_eq!(
        jwt::header(&token).unwrap()["kid"],
        s.idp.kid("rs").await.unwrap()
    );
    expect_rejected(
        &s.gw,
        "HS256 with RSA public key",
        &token,
        "alg_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn unknown_kid() {
    let s = shared().await;
    let token = s
        .idp
        .sign(
            json!({"kid": unique("no-such-kid")}),
            claims(s.idp.issuer()),
            "rs",
        )
        .await
        .unwrap();
    expect_rejected(&s.gw, "unknown kid", &token, "kid_unknown").await;
}

#[tokio::test]
async fn unknown_crit_header() {
    let s = shared().await;
    let token = s
        .idp
        .sign(
            json!({"crit": ["x-portcullis-unknown"], "x-portcullis-unknown": true}),
            claims(s.idp.issuer()),
            "rs",
        )
        .await
        .unwrap();
    expect_rejected(&s.gw, "unknown crit", &token, "crit_unsupported").await;
}

// ------------------------------------------------------------------ tampering and shape

#[tokio::test]
async fn tampered_payload() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let c = with(jwt::claims(&token).unwrap(), json!({"groups": ["admins"]}));
    let tampered = jwt::with_claims(&token, &c).unwrap();
    expect_rejected(&s.gw, "tampered payload", &tampered, "signature_invalid").await;
}

#[tokio::test]
async fn tampered_signature() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let tampered = jwt::with_flipped_signature(&token).unwrap();
    expect_rejected(
        &s.gw,
        "tampered signature (RS256)",
        &tampered,
        "signature_invalid",
    )
    .await;

    let es = s
        .idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    let tampered = jwt::with_flipped_signature(&es).unwrap();
    expect_rejected(
        &s.gw,
        "tampered signature (ES256)",
        &tampered,
        "signature_invalid",
    )
    .await;
}

#[tokio::test]
async fn truncated_token() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let cut = jwt::truncated_in_payload(&token).unwrap();
    expect_rejected(&s.gw, "truncated in payload", &cut, "token_malformed").await;
}

#[tokio::test]
async fn token_too_large() {
    let s = shared().await;
    let c = with(
        claims(s.idp.issuer()),
        json!({"pad": "x".repeat(17 * 1024)}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    assert!(token.len() > 16 * 1024);
    expect_rejected(&s.gw, "token > 16 KiB", &token, "token_too_large").await;
}

#[tokio::test]
async fn header_not_json() {
    let s = shared().await;
    let token = s
        .idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let bad = jwt::with_raw_header(&token, b"{not json").unwrap();
    expect_rejected(&s.gw, "header not JSON", &bad, "header_invalid").await;
}

// ------------------------------------------------------------------ revocation

#[tokio::test]
async fn revoked_subject() {
    let s = shared().await;
    let c = with(claims(s.idp.issuer()), json!({"sub": "revoked-agent"}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "revoked subject", &token, "revoked_subject").await;
}

#[tokio::test]
async fn revoked_token_id() {
    let s = shared().await;
    let c = with(claims(s.idp.issuer()), json!({"jti": "revoked-jti"}));
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "revoked jti", &token, "revoked_token").await;
}

// ------------------------------------------------------------------ no token at all

#[tokio::test]
async fn missing_bearer_is_a_problem_401() {
    let s = shared().await;
    let r = s.gw.get("/v1/whoami", None).await.unwrap();
    assert_eq!(r.status, 401, "[no Authorization] {}", r.summary());
    assert!(
        r.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/problem+json")),
        "[no Authorization] {}",
        r.summary()
    );
    assert_eq!(
        r.problem_code().as_deref(),
        Some("token_missing"),
        "[no Authorization] {}",
        r.summary()
    );
    let basic = portcullis_integration_tests::http::get_with_authorization(
        &format!("{}/v1/whoami", s.gw.url()),
        "Basic Zm9vOmJhcg==",
    )
    .await
    .unwrap();
    assert_eq!(basic.status, 401, "[Basic auth] {}", basic.summary());
    assert_eq!(
        basic.problem_code().as_deref(),
        Some("token_missing"),
        "[Basic auth] {}",
        basic.summary()
    );
}

// ------------------------------------------------------------------ audit of rejections

#[tokio::test]
async fn rejections_reach_the_audit_with_their_reason_code() {
    let s = shared().await;
    let now = now_unix();
    let jti = unique("audited");
    let c = with(
        claims(s.idp.issuer()),
        json!({"iat": now - 4000, "exp": now - 3600, "jti": jti}),
    );
    let token = s.idp.sign(json!({}), c, "rs").await.unwrap();
    expect_rejected(&s.gw, "expired (audited)", &token, "expired").await;

    // Written before the 401 was sent: visible at once.
    let out = s.gw.cli(["audit", "export", "--format", "jsonl"]).unwrap();
    assert!(
        out.status.success(),
        "audit export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rejected: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"]["kind"] == "token.rejected")
        .collect();
    assert!(
        rejected
            .iter()
            .any(|r| r["event"]["reason_code"] == "expired"),
        "no token.rejected/expired in the export:\n{text}"
    );
    assert!(
        !text.contains(&token),
        "the audit export contains a raw token"
    );
    let sig = jwt::segments(&token).unwrap()[2];
    assert!(
        !text.contains(sig),
        "the audit export contains a token signature"
    );
}

// ------------------------------------------------------------------ key rotation

#[tokio::test]
async fn key_rotation_refetches_and_forgets_old_keys() {
    let (idp, gw) = own_fixture().await;
    let before = idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    expect_accepted(&gw, "before rotation", &before).await;
    let old_kid = jwt::header(&before).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();

    let rotated = idp.rotate().await.unwrap();
    // Past jwks_refetch_min_interval (1 s) since any earlier fetch.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let after = idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let new_kid = jwt::header(&after).unwrap()["kid"].clone();
    assert_ne!(new_kid, old_kid.as_str(), "{rotated}");
    let v = expect_accepted(&gw, "new key after rotation (refetch)", &after).await;
    assert_eq!(v["subject"], "agent-1");

    let es_after = idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    expect_accepted(&gw, "new ES256 key after rotation", &es_after).await;

    // A token signed now by the rotated-out key, with its old kid.
    let old = idp
        .sign(json!({}), claims(idp.issuer()), "old-rs")
        .await
        .unwrap();
    assert_eq!(jwt::header(&old).unwrap()["kid"], old_kid.as_str());
    expect_rejected(&gw, "rotated-out key", &old, "kid_unknown").await;
    // The token minted before the rotation carries that kid too.
    expect_rejected(&gw, "pre-rotation token", &before, "kid_unknown").await;
}

// ------------------------------------------------------------------ IdP down

#[tokio::test]
async fn idp_down_cached_keys_still_work_unknown_kid_fails_closed() {
    let (mut idp, gw) = own_fixture().await;
    let issuer = idp.issuer().to_string();
    let primed = idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    expect_accepted(&gw, "before IdP kill", &primed).await;
    let es_primed = idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    expect_accepted(&gw, "before IdP kill (ES256)", &es_primed).await;

    let known = idp.sign(json!({}), claims(&issuer), "rs").await.unwrap();
    let unknown = idp
        .sign(
            json!({"kid": unique("kid-after-kill")}),
            claims(&issuer),
            "rs",
        )
        .await
        .unwrap();
    idp.kill();
    assert!(
        portcullis_integration_tests::http::get(&format!("{issuer}/jwks"), None)
            .await
            .is_err(),
        "the IdP still answers after kill"
    );

    expect_accepted(&gw, "known kid, IdP down", &known).await;
    // Past the refetch interval, so the gateway really tries (and fails) to refetch.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = std::time::Instant::now();
    expect_rejected(&gw, "unknown kid, IdP down", &unknown, "kid_unknown").await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fail-closed took {:?}",
        started.elapsed()
    );
    // A failed refetch does not throw away the cached keys.
    expect_accepted(&gw, "known kid after failed refetch", &known).await;
}
