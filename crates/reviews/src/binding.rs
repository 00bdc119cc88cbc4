//! What a review is bound to (its binding hash) and what it is called (its id).

use sha2::{Digest, Sha256};

use crate::Requester;

/// Versioned, so that a future change of the encoding can never match an old binding.
const DOMAIN: &[u8] = b"portcullis.review.binding.v1\0";

/// The hash a review is bound to: SHA-256 (hex) over an unambiguous encoding of the
/// requester's issuer and subject, the connection name, the exact command text as it will
/// run, and the bound parameters (`None` = NULL). Any difference gives a different binding.
///
/// The encoding, for anyone recomputing it: the bytes `portcullis.review.binding.v1\0`;
/// then issuer, subject, connection and command, each as its length (u64, big-endian) and
/// its UTF-8 bytes; then the number of parameters (u64, big-endian); then each parameter as
/// `0x00` for NULL or `0x01`, its length (u64, big-endian) and its bytes. Lengths and tags
/// keep fields from bleeding into each other (`"ab" + "c"` is not `"a" + "bc"`, NULL is not
/// `''`). The client id is left out on purpose: the same identity repeating its command
/// through another client is still the same request.
pub fn binding(
    requester: &Requester,
    connection: &str,
    command: &str,
    parameters: &[Option<&[u8]>],
) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    for field in [
        requester.issuer.as_bytes(),
        requester.subject.as_bytes(),
        connection.as_bytes(),
        command.as_bytes(),
    ] {
        length_prefixed(&mut h, field);
    }
    h.update((parameters.len() as u64).to_be_bytes());
    for p in parameters {
        match p {
            None => h.update([0u8]),
            Some(bytes) => {
                h.update([1u8]);
                length_prefixed(&mut h, bytes);
            }
        }
    }
    hex::encode(h.finalize())
}

fn length_prefixed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// RFC 4648 base32 in lowercase: URL-safe, case-insensitive to read aloud, and shorter than
/// hex. Hand-written because it is a dozen lines and only ever encodes 16 bytes.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh review id: `rv_` and the 16 bytes of a UUIDv4 (122 random bits) in base32.
pub(crate) fn new_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(3 + 26);
    out.push_str("rv_");
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(issuer: &str, subject: &str) -> Requester {
        Requester {
            subject: subject.to_owned(),
            issuer: issuer.to_owned(),
            client_id: Some("c".to_owned()),
        }
    }

    #[test]
    fn binding_is_stable_and_changes_with_every_field() {
        let me = who("https://idp", "agent");
        let p: &[Option<&[u8]>] = &[Some(b"1"), None];
        let base = binding(&me, "prod", "DELETE FROM t WHERE id = $1", p);
        assert_eq!(base.len(), 64);
        assert_eq!(base, binding(&me, "prod", "DELETE FROM t WHERE id = $1", p));
        // Pinned (computed independently from the documented encoding), so that an
        // accidental change of the encoding, which would orphan every stored approval,
        // fails this test.
        assert_eq!(
            base,
            "c780f9d36b75160586c30ac7ea4acb04c43b14183df3616c224a1aba700e9a38"
        );
        assert_eq!(
            binding(&who("", ""), "", "", &[]),
            "0a6167fb11fb927a21c411d0925b3c31f55461b7fd46ea904d92a70f42b7daf6"
        );

        let variants = [
            binding(
                &who("https://other", "agent"),
                "prod",
                "DELETE FROM t WHERE id = $1",
                p,
            ),
            binding(
                &who("https://idp", "agent2"),
                "prod",
                "DELETE FROM t WHERE id = $1",
                p,
            ),
            binding(&me, "staging", "DELETE FROM t WHERE id = $1", p),
            binding(&me, "prod", "DELETE FROM t WHERE id = $2", p),
            binding(
                &me,
                "prod",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"2"), None],
            ),
            binding(
                &me,
                "prod",
                "DELETE FROM t WHERE id = $1",
                &[Some(b"1"), Some(b"")],
            ),
            binding(&me, "prod", "DELETE FROM t WHERE id = $1", &[Some(b"1")]),
            binding(&me, "prod", "DELETE FROM t WHERE id = $1", &[]),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v, &base, "variant {i}");
        }
        // The client id is not part of the binding.
        let other_client = Requester {
            client_id: None,
            ..me.clone()
        };
        assert_eq!(
            binding(&other_client, "prod", "DELETE FROM t WHERE id = $1", p),
            base
        );
    }

    #[test]
    fn fields_cannot_bleed_into_each_other() {
        let a = binding(&who("ab", "c"), "x", "y", &[]);
        let b = binding(&who("a", "bc"), "x", "y", &[]);
        assert_ne!(a, b);
        let c = binding(&who("i", "s"), "conn", "cmd", &[Some(b"ab"), Some(b"c")]);
        let d = binding(&who("i", "s"), "conn", "cmd", &[Some(b"a"), Some(b"bc")]);
        assert_ne!(c, d);
    }

    #[test]
    fn ids_are_short_url_safe_and_distinct() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 29, "{id}");
            assert!(id.starts_with("rv_"));
            assert!(id[3..].bytes().all(|b| BASE32.contains(&b)), "{id}");
        }
    }
}
