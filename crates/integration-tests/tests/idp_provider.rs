//! The test IdP on its own: real client-credentials JWTs from oidc-provider, and the test
//! endpoints the JWT matrix relies on. Needs only `node` (and `npm` for the first install).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use portcullis_integration_tests::{Idp, idp::CLIENT_SECRET, jwt, now_unix};
use serde_json::{Value, json};

#[tokio::test]
async fn client_credentials_grant_mints_rs256_and_es256_jwts() {
    let idp = Idp::start().await.expect("start idp");

    let discovery = idp.discovery().await.unwrap();
    assert_eq!(discovery["issuer"], idp.issuer());
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert!(jwks_uri.starts_with(idp.issuer()), "{jwks_uri}");

    let token = idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    let header = jwt::header(&token).unwrap();
    let claims = jwt::claims(&token).unwrap();
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["kid"], idp.kid("rs").await.unwrap(), "{header}");
    assert_eq!(claims["iss"], idp.issuer(), "{claims}");
    assert_eq!(claims["sub"], "agent-1", "{claims}");
    assert_eq!(claims["client_id"], "agent-1", "{claims}");
    assert_eq!(claims["aud"], "portcullis", "{claims}");
    assert_eq!(claims["groups"], json!(["agents"]), "{claims}");
    assert!(claims["jti"].is_string(), "{claims}");
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - iat, 600, "{claims}");
    assert!((iat - now_unix()).abs() < 60, "{claims}");

    let es = idp
        .client_credentials("agent-2", CLIENT_SECRET)
        .await
        .unwrap();
    let header = jwt::header(&es).unwrap();
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"], idp.kid("es").await.unwrap(), "{header}");
    assert_eq!(jwt::claims(&es).unwrap()["sub"], "agent-2");

    let err = idp
        .client_credentials("agent-1", "wrong-secret")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("invalid_client"), "{err:#}");
}

#[tokio::test]
async fn test_endpoints_sign_forge_and_rotate() {
    let idp = Idp::start().await.expect("start idp");
    let rs_kid = idp.kid("rs").await.unwrap();

    let t = idp
        .sign(json!({}), json!({"sub": "x"}), "rs")
        .await
        .unwrap();
    assert_eq!(jwt::header(&t).unwrap()["kid"], rs_kid.as_str());
    assert_eq!(jwt::claims(&t).unwrap()["sub"], "x");

    let none = idp
        .sign(json!({"alg": "none"}), json!({"sub": "x"}), "rs")
        .await
        .unwrap();
    assert!(none.ends_with('.'), "{none}");
    assert_eq!(jwt::header(&none).unwrap()["alg"], "none");

    let hs = idp
        .sign(json!({"alg": "HS256"}), json!({"sub": "x"}), "rs")
        .await
        .unwrap();
    assert_eq!(jwt::header(&hs).unwrap()["alg"], "HS256");
    assert_eq!(
        jwt::unb64(jwt::segments(&hs).unwrap()[2]).unwrap().len(),
        32
    );

    let crit = idp
        .sign(
            json!({"crit": ["x-unknown"], "x-unknown": true}),
            json!({"sub": "x"}),
            "es",
        )
        .await
        .unwrap();
    assert_eq!(jwt::header(&crit).unwrap()["crit"], json!(["x-unknown"]));

    // No rotated-out key before a rotation.
    assert!(idp.sign(json!({}), json!({}), "old-rs").await.is_err());

    let rotated = idp.rotate().await.unwrap();
    let new_kid = idp.kid("rs").await.unwrap();
    assert_ne!(new_kid, rs_kid);
    assert!(
        rotated["old_kids"]
            .as_array()
            .unwrap()
            .contains(&Value::from(rs_kid.clone()))
    );
    let old = idp.sign(json!({}), json!({}), "old-rs").await.unwrap();
    assert_eq!(jwt::header(&old).unwrap()["kid"], rs_kid.as_str());

    // The provider itself now signs with the new key and publishes only the new keys.
    let fresh = idp
        .client_credentials("agent-1", CLIENT_SECRET)
        .await
        .unwrap();
    assert_eq!(jwt::header(&fresh).unwrap()["kid"], new_kid.as_str());
    let jwks_uri = idp.discovery().await.unwrap()["jwks_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let published = portcullis_integration_tests::http::get(&jwks_uri, None)
        .await
        .unwrap()
        .json()
        .unwrap();
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&new_kid.as_str()), "{published}");
    assert!(!kids.contains(&rs_kid.as_str()), "{published}");
    // Public keys only.
    assert!(
        published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
}
