//! The canonical form against real signatures: the twin `(r, n - s)` of an ES256 or ES384
//! signature verifies on its own, and both strings have one canonical form.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::keys::VerifyKey;
use crate::test_support::{TestKey, install_provider};

/// The token with `s` replaced by `n - s`: the other valid string of the same token.
pub(crate) fn twin(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let half = sig.len() / 2;
    let n: &[u8] = if half == 32 { &P256_N } else { &P384_N };
    let neg = negate(&sig[half..], n);
    sig[half..].copy_from_slice(&neg);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig))
}

/// Whether the token's signature is in low-S form already.
fn is_low(token: &str) -> bool {
    matches!(canonical(token), Cow::Borrowed(_))
}

fn verifies(key: &TestKey, token: &str, alg: Algorithm) -> bool {
    let (input, sig) = token.rsplit_once('.').unwrap();
    VerifyKey::from_jwk(&key.jwk())
        .unwrap()
        .verify(input, sig, alg)
}

#[test]
fn both_strings_verify_and_share_one_canonical_form() {
    install_provider();
    for (key, alg) in [
        (TestKey::ec("p256"), Algorithm::ES256),
        (TestKey::ec384("p384"), Algorithm::ES384),
    ] {
        let (mut low, mut high) = (0, 0);
        // Signatures are randomized: 16 of them are all one form once in 32768 runs.
        for i in 0..16 {
            let t = key.sign(&json!({"sub": "a", "i": i}));
            let other = twin(&t);
            assert_ne!(t, other);
            assert!(
                verifies(&key, &t, alg) && verifies(&key, &other, alg),
                "{alg:?}"
            );
            let c = canonical(&t);
            assert_eq!(c, canonical(&other), "{alg:?}");
            assert!(*c == t || *c == other);
            assert!(is_low(&c), "the canonical form is its own canonical form");
            assert_ne!(
                is_low(&t),
                is_low(&other),
                "exactly one of the two is low-S"
            );
            if is_low(&t) { low += 1 } else { high += 1 }
        }
        assert!(low > 0 && high > 0, "{alg:?}: {low} low-S, {high} high-S");
    }
}

#[test]
fn other_tokens_are_left_as_they_are() {
    install_provider();
    let rsa = TestKey::rsa(0).sign(&json!({"sub": "a"}));
    let ec = TestKey::ec("p256");
    let t = ec.sign(&json!({"sub": "a"}));
    let (input, sig) = t.rsplit_once('.').unwrap();
    // An ES256 signature under a header that says otherwise keeps its bytes.
    let es384_header = format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES384"}"#),
        input.split_once('.').unwrap().1
    );
    let zero_s = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode([[1u8; 32], [0; 32]].concat())
    );
    let s_is_n = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode([[1u8; 32], P256_N].concat())
    );
    for token in [
        rsa.as_str(),
        &es384_header,
        &zero_s,
        &s_is_n,
        "",
        "a.b",
        "e30.e30.!!",
        &format!("{input}.{}", &sig[..85]),
    ] {
        assert!(
            matches!(canonical(token), Cow::Borrowed(b) if b == token),
            "{token}"
        );
    }
}
