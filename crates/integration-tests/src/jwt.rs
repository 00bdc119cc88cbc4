//! Taking compact JWS tokens apart and tampering with them.

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(s: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .with_context(|| format!("not base64url: {s}"))
}

/// The three segments of a compact JWS.
pub fn segments(token: &str) -> Result<[&str; 3]> {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => Err(anyhow!("not a three-segment JWS")),
    }
}

/// The decoded protected header.
pub fn header(token: &str) -> Result<Value> {
    let [h, _, _] = segments(token)?;
    serde_json::from_slice(&unb64(h)?).context("header is not JSON")
}

/// The decoded claims.
pub fn claims(token: &str) -> Result<Value> {
    let [_, p, _] = segments(token)?;
    serde_json::from_slice(&unb64(p)?).context("payload is not JSON")
}

/// The token with its payload replaced by `claims` (the signature no longer matches).
pub fn with_claims(token: &str, claims: &Value) -> Result<String> {
    let [h, _, s] = segments(token)?;
    Ok(format!("{h}.{}.{s}", b64(claims.to_string())))
}

/// The token with its header segment replaced by the base64url of `raw`.
pub fn with_raw_header(token: &str, raw: &[u8]) -> Result<String> {
    let [_, p, s] = segments(token)?;
    Ok(format!("{}.{p}.{s}", b64(raw)))
}

/// The token with one bit of its signature flipped (still valid base64url of the same length).
pub fn with_flipped_signature(token: &str) -> Result<String> {
    let [h, p, s] = segments(token)?;
    let mut sig = unb64(s)?;
    let mid = sig.len() / 2;
    let byte = sig.get_mut(mid).ok_or_else(|| anyhow!("empty signature"))?;
    *byte ^= 0x01;
    Ok(format!("{h}.{p}.{}", b64(sig)))
}

/// The order `n` of P-256, big-endian. An ES256 signature `(r, s)` verifies exactly when
/// `(r, n - s)` does (ECDSA malleability).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `n - s` of an ES256 signature's `s` (big-endian, 32 bytes, `s < n`).
fn p256_negate(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0u8;
    for i in (0..32).rev() {
        let (d, b1) = P256_N[i].overflowing_sub(s[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        out[i] = d;
        borrow = u8::from(b1 || b2);
    }
    out
}

/// The `r || s` of an ES256 token.
fn es256_signature(token: &str) -> Result<Vec<u8>> {
    let [_, _, s] = segments(token)?;
    let sig = unb64(s)?;
    if sig.len() != 64 {
        return Err(anyhow!("not an ES256 signature: {} bytes", sig.len()));
    }
    Ok(sig)
}

/// The ES256 token with its signature's `s` replaced by `n - s`: a second string, equally
/// valid, for the same token.
pub fn with_negated_s(token: &str) -> Result<String> {
    let [h, p, _] = segments(token)?;
    let mut sig = es256_signature(token)?;
    let neg = p256_negate(&sig[32..]);
    sig[32..].copy_from_slice(&neg);
    Ok(format!("{h}.{p}.{}", b64(sig)))
}

/// Whether an ES256 token's `s` is the smaller of `s` and `n - s` ("low-S").
pub fn is_low_s(token: &str) -> Result<bool> {
    let sig = es256_signature(token)?;
    Ok(sig[32..] <= *p256_negate(&sig[32..]))
}

/// The token cut in the middle of its payload segment.
pub fn truncated_in_payload(token: &str) -> Result<String> {
    let [h, p, _] = segments(token)?;
    Ok(format!("{h}.{}", &p[..p.len() / 2]))
}
