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

/// The token cut in the middle of its payload segment.
pub fn truncated_in_payload(token: &str) -> Result<String> {
    let [h, p, _] = segments(token)?;
    Ok(format!("{h}.{}", &p[..p.len() / 2]))
}
