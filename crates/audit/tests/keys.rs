//! The signing key file, public key text, and identities copied into events.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

use portcullis_audit::{AuditError, KEY_FILE, PublicKey, SigningKey, Who};
use portcullis_identity::{Actor, Principal, PrincipalKind};

#[test]
fn key_is_created_once_with_owner_only_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("new/state");
    let first = SigningKey::load_or_create(&state).unwrap();
    let again = SigningKey::load_or_create(&state).unwrap();
    assert_eq!(first.public_key(), again.public_key());
    let path = state.join(KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Debug shows the public key only.
    let debug = format!("{first:?}");
    assert!(debug.contains(&first.public_key().to_string()), "{debug}");
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
}

#[test]
fn corrupt_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
    let err = SigningKey::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, AuditError::KeyInvalid { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(KEY_FILE)).unwrap(),
        b"not a key"
    );
}

#[test]
fn public_key_text_round_trips() {
    let key = SigningKey::generate().unwrap().public_key();
    let text = key.to_string();
    assert!(text.starts_with("ed25519:"));
    assert_eq!(text.len(), "ed25519:".len() + 44);
    assert_eq!(PublicKey::parse(&text).unwrap(), key);
    assert_eq!(PublicKey::parse(&format!(" {text}\n")).unwrap(), key);
    for bad in ["", "AAAA", "ed25519:!!!", "ed25519:AAAA", "rsa:AAAA"] {
        assert!(PublicKey::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn who_copies_the_principal() {
    let principal = Principal {
        subject: "agent-7".to_owned(),
        issuer: "https://idp.example".to_owned(),
        client_id: Some("autogen".to_owned()),
        groups: vec!["analysts".to_owned()],
        kind: PrincipalKind::Machine,
        delegation: vec![Actor {
            subject: "alice".to_owned(),
            client_id: None,
            issuer: None,
        }],
        token_id: Some("jti-1".to_owned()),
        expires_at: 2_000_000_000,
        valid_until: 2_000_000_000,
        issued_at: None,
    };
    let who = Who::from(&principal);
    assert_eq!(who.subject, "agent-7");
    assert_eq!(who.kind, "machine");
    assert_eq!(who.delegation, ["alice"]);
    assert_eq!(who.token_id.as_deref(), Some("jti-1"));
    let json = serde_json::to_value(&who).unwrap();
    assert_eq!(json["client_id"], "autogen");
    let minimal = serde_json::to_value(Who::default()).unwrap();
    assert!(minimal.get("groups").is_none() && minimal.get("token_id").is_none());
}
