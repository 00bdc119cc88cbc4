//! The canonical form of a token: what everything that keys on a token string keys on.
//!
//! An ECDSA signature `(r, s)` verifies exactly when `(r, n - s)` does (`n` is the curve's
//! group order, [SEC 1 §4.1.4]), so anyone holding an ES256 or ES384 token can write a second,
//! equally valid string for it. Identity providers emit either form (about half of their
//! signatures are "high-S"), so refusing one would refuse legitimate tokens. Instead the
//! validator works on the canonical form, in which `s` is the smaller of the two ("low-S",
//! as Bitcoin's BIP 62 and Ethereum's EIP-2 define it): both strings of a token are verified,
//! cached and reported as one. Keying the cache on the canonical string rather than on the
//! verified header and claims keeps a cache hit free of parsing and of the signature check.
//!
//! The other algorithms have no such twin: RSA signatures are integers below the modulus
//! that only the key holder can produce, and the EdDSA verifier refuses `S >= L`. The base64url
//! decoder refuses non-canonical encodings, so the text itself has one form per value.
//!
//! [SEC 1 §4.1.4]: https://www.secg.org/sec1-v2.pdf

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The order of P-256 (secp256r1), big-endian ([SEC 2 §2.4.2]).
///
/// [SEC 2 §2.4.2]: https://www.secg.org/sec2-v2.pdf
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The order of P-384 (secp384r1), big-endian ([SEC 2 §2.5.1]).
///
/// [SEC 2 §2.5.1]: https://www.secg.org/sec2-v2.pdf
const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// `token` with an ES256 or ES384 signature brought to low-S. Any other token, malformed
/// ones included, is returned as it is: the validator refuses those for their own reason.
///
/// The algorithm is read from the token's own header, the way [`crate::token`] reads it, so
/// the form chosen is a function of the signed bytes and the signature alone.
pub(crate) fn canonical(token: &str) -> Cow<'_, str> {
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return Cow::Borrowed(token);
    };
    // 86 and 128 characters are the unpadded base64url of 64 and 96 bytes: every other token
    // (RSA, most malformed ones) leaves here without decoding anything.
    let order: &[u8] = match (signature.len(), header_alg(signing_input).as_deref()) {
        (86, Some("ES256")) => &P256_N,
        (128, Some("ES384")) => &P384_N,
        _ => return Cow::Borrowed(token),
    };
    let Ok(mut sig) = URL_SAFE_NO_PAD.decode(signature) else {
        return Cow::Borrowed(token);
    };
    // `r || s`, each as long as the order.
    if sig.len() != 2 * order.len() || !lower(&mut sig[order.len()..], order) {
        return Cow::Borrowed(token);
    }
    Cow::Owned(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&sig)))
}

/// The header's `alg`, when the header is a base64url JSON object with a string `alg`.
fn header_alg(signing_input: &str) -> Option<String> {
    let (header, _) = signing_input.split_once('.')?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(mut map) => match map.remove("alg")? {
            Value::String(alg) => Some(alg),
            _ => None,
        },
        _ => None,
    }
}

/// Replaces `s` (big-endian, as long as `n`) by `n - s` when that is smaller, and says
/// whether it did. An `s` outside `1..n` is left alone: such a signature never verifies.
fn lower(s: &mut [u8], n: &[u8]) -> bool {
    if s.iter().all(|&b| b == 0) || &*s >= n {
        return false;
    }
    let twin = negate(s, n);
    // `n` is odd, so `s` and `n - s` are never equal.
    if twin.as_slice() > &*s {
        return false;
    }
    s.copy_from_slice(&twin);
    true
}

/// `n - s` for `s < n`, both big-endian and of the same length.
fn negate(s: &[u8], n: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; n.len()];
    let mut borrow = 0u8;
    for i in (0..n.len()).rev() {
        let (d, b1) = n[i].overflowing_sub(s[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        out[i] = d;
        borrow = u8::from(b1 || b2);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
