//! The `X-Portcullis-Signature` header: HMAC-SHA256 over `"<timestamp>.<body>"`.
//!
//! The timestamp is part of the signed message so that a receiver which rejects stale
//! timestamps also rejects replays of an old, validly signed request.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix naming the algorithm, so that a later algorithm can be added without ambiguity.
const PREFIX: &str = "sha256=";

/// The `X-Portcullis-Signature` value for `body` sent at `timestamp` (Unix seconds):
/// `sha256=` followed by the lower-case hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 64);
    out.push_str(PREFIX);
    if let Some(mac) = keyed(secret, timestamp, body) {
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    out
}

/// Whether `header` is the valid signature of `body` sent at `timestamp`, compared in constant
/// time. It does not check the timestamp's age: that policy belongs to the receiver.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(given) = hex::decode(hex_part) else {
        return false;
    };
    keyed(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(&given).is_ok())
}

/// The MAC over `"<timestamp>.<body>"`. HMAC accepts keys of any length, so this is `None`
/// never in practice; it is an `Option` only so that an impossible error fails closed (an empty
/// signature that verifies nothing) instead of panicking.
fn keyed(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
    const EXPECTED: &str =
        "sha256=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789";

    #[test]
    fn matches_openssl() {
        assert_eq!(
            signature(b"whsec_test", 1_700_000_000, br#"{"a":1}"#),
            EXPECTED
        );
    }

    #[test]
    fn verify_accepts_only_the_exact_message() {
        let body = br#"{"a":1}"#;
        assert!(verify(b"whsec_test", 1_700_000_000, body, EXPECTED));
        assert!(!verify(b"whsec_test", 1_700_000_001, body, EXPECTED));
        assert!(!verify(b"other", 1_700_000_000, body, EXPECTED));
        assert!(!verify(
            b"whsec_test",
            1_700_000_000,
            br#"{"a":2}"#,
            EXPECTED
        ));
        assert!(!verify(b"whsec_test", 1_700_000_000, body, &EXPECTED[7..]));
        assert!(!verify(b"whsec_test", 1_700_000_000, body, "sha256=zz"));
    }
}
