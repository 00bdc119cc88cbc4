//! Splitting and decoding a compact JWS ([RFC 7515 §7.1]) before any key is involved.
//!
//! Everything here reads attacker-controlled bytes, so it only decodes and classifies; the one
//! value used before the signature check is `iss`, and only to pick the issuer's keys.
//!
//! [RFC 7515 §7.1]: https://www.rfc-editor.org/rfc/rfc7515#section-7.1

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::reason::{Reason, Rejection};

/// A token that is well formed, whose header passed the issuer-independent checks, and whose
/// claims have the right types. Nothing in it is trusted yet.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `base64url(header) '.' base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'t str,
    /// Still base64url-encoded, as `jsonwebtoken::crypto::verify` takes it.
    pub signature: &'t str,
    pub claims: Claims,
}

/// Runs the checks from `token_malformed` to `claims_invalid`. `allowed` is the union of every
/// issuer's allow-list: the issuer is not known yet, so its own list is checked later.
pub(crate) fn parse<'t>(token: &'t str, allowed: &[Algorithm]) -> Result<Parsed<'t>, Rejection> {
    let parts = split(token)?;
    let header = json_object(&parts.header)
        .ok_or_else(|| Rejection::new(Reason::HeaderInvalid, "the header is not a JSON object"))?;
    let (alg, kid) = check_header(&header, allowed)?;
    let claims = json_object(&parts.payload)
        .ok_or_else(|| Rejection::new(Reason::ClaimsInvalid, "the payload is not a JSON object"))
        .and_then(|map| {
            Claims::from_map(map).map_err(|d| Rejection::new(Reason::ClaimsInvalid, d))
        })?;
    Ok(Parsed {
        alg,
        kid,
        signing_input: parts.signing_input,
        signature: parts.signature,
        claims,
    })
}

struct Parts<'t> {
    header: Vec<u8>,
    payload: Vec<u8>,
    signing_input: &'t str,
    signature: &'t str,
}

/// Exactly three unpadded base64url parts. The signature may be empty so that an unsigned
/// token is reported as `alg_none` rather than as malformed.
fn split(token: &str) -> Result<Parts<'_>, Rejection> {
    let malformed = |d: &str| Rejection::new(Reason::TokenMalformed, d);
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(malformed("a token has exactly three dot-separated parts"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(malformed("the header or payload part is empty"));
    }
    // The engine refuses padding, characters outside the URL-safe alphabet and non-canonical
    // trailing bits, which is the strictness RFC 7515 asks for.
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed("a part is not unpadded base64url"))
    };
    let header = decode(h)?;
    let payload = decode(p)?;
    decode(s)?;
    Ok(Parts {
        header,
        payload,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn check_header(
    header: &Map<String, Value>,
    allowed: &[Algorithm],
) -> Result<(Algorithm, Option<String>), Rejection> {
    let Some(Value::String(alg)) = header.get("alg") else {
        return Err(Rejection::new(
            Reason::HeaderInvalid,
            "the header has no string 'alg'",
        ));
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            return Err(Rejection::new(
                Reason::HeaderInvalid,
                "'kid' is not a string",
            ));
        }
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(Rejection::new(
            Reason::AlgNone,
            "unsigned tokens are never accepted",
        ));
    }
    // Unknown names are reported without echoing them: the detail never repeats token bytes.
    let alg = Algorithm::from_str(alg)
        .map_err(|_| Rejection::new(Reason::AlgNotAllowed, "the algorithm is not supported"))?;
    // HMAC can never be in `allowed` (refused at set-up); checking the family as well keeps
    // the rule local: no HMAC key is ever built, so a public key cannot become a secret.
    if alg.family() == AlgorithmFamily::Hmac || !allowed.contains(&alg) {
        return Err(Rejection::new(
            Reason::AlgNotAllowed,
            format!("{alg:?} is not allowed by any configured issuer"),
        ));
    }
    if header.contains_key("crit") {
        return Err(Rejection::new(
            Reason::CritUnsupported,
            "the header has a 'crit' parameter and no extension is supported",
        ));
    }
    Ok((alg, kid))
}
