//! Strategies: the text each produces, HMAC determinism, Null, and the replacement invariants.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use portcullis_masking::{
    ColumnPlan, Counts, Entity, Error, Masked, Masker, ProfileSpec, Strategy,
};

fn masker(strategy: Strategy, key: Option<&[u8]>) -> Masker {
    let mut profile = ProfileSpec::builtin_default();
    profile.default_strategy = strategy;
    Masker::new(&[&profile], key).expect("masker builds")
}

fn text(m: &Masker, input: &str) -> String {
    m.mask_text(input, &mut Counts::default()).into_owned()
}

fn whole(m: &Masker, entity: Entity, value: &str) -> Masked<'static> {
    let plan = ColumnPlan::Whole {
        entity,
        strategy: m.strategy(entity),
    };
    match m.mask_value(&plan, value.as_bytes(), &mut Counts::default()) {
        Masked::Unchanged(b) => Masked::Replaced(b.to_vec()),
        Masked::Replaced(b) => Masked::Replaced(b),
        Masked::Null => Masked::Null,
    }
}

#[test]
fn redact_uses_the_label() {
    let m = masker(Strategy::Redact, None);
    assert_eq!(text(&m, "mail alice@example.com now"), "mail [EMAIL] now");
    assert_eq!(text(&m, "card 4111 1111 1111 1111"), "card [CREDIT_CARD]");
    assert_eq!(
        text(&m, "postgres://u:pw@db/x"),
        "postgres://u:[CONNECTION_STRING_PASSWORD]@db/x"
    );
}

#[test]
fn partial_keeps_the_tail() {
    let m = masker(Strategy::Partial { keep: 4 }, None);
    assert_eq!(text(&m, "4111111111111111"), "************1111");
    assert_eq!(
        whole(&m, Entity::UsSsn, "078-05-1120"),
        Masked::Replaced(b"*******1120".to_vec())
    );
    // A value no longer than `keep` is masked entirely: it is never shown whole.
    assert_eq!(
        whole(&m, Entity::GenericSecret, "abc"),
        Masked::Replaced(b"***".to_vec())
    );
    assert_eq!(
        whole(&m, Entity::GenericSecret, "abcd"),
        Masked::Replaced(b"****".to_vec())
    );
    // Characters are counted, not bytes; unsafe kept characters become `*`.
    assert_eq!(
        whole(&m, Entity::GenericSecret, "ééééx\"\t\\"),
        Masked::Replaced("****x***".as_bytes().to_vec())
    );
    let m0 = masker(Strategy::Partial { keep: 0 }, None);
    assert_eq!(text(&m0, "a@example.com"), "*************");
}

#[test]
fn hmac_is_deterministic_and_keyed() {
    let a = masker(Strategy::Hmac, Some(b"key-a"));
    let b = masker(Strategy::Hmac, Some(b"key-b"));
    let first = text(&a, "alice@example.com");
    assert!(
        first.starts_with("[EMAIL:")
            && first.ends_with(']')
            && first.len() == "[EMAIL:]".len() + 16
    );
    let hex = &first[7..23];
    assert!(
        hex.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "{first}"
    );
    assert_eq!(first, text(&a, "alice@example.com"));
    assert_ne!(first, text(&a, "bob@example.com"));
    assert_ne!(first, text(&b, "alice@example.com"));
    // The same value gives the same token whatever its entity: joins still work.
    let as_column = whole(&a, Entity::GenericSecret, "alice@example.com");
    assert_eq!(
        as_column,
        Masked::Replaced(format!("[GENERIC_SECRET:{hex}]").into_bytes())
    );
    // HMAC-SHA256("key-a", "alice@example.com"), first 8 bytes (checked with Python hmac).
    assert_eq!(hex, "ed7d52e34e51cbf9");
}

#[test]
fn hmac_needs_a_key() {
    let mut profile = ProfileSpec::builtin_default();
    profile.strategies.push((Entity::Email, Strategy::Hmac));
    let err = Masker::new(&[&profile], None).expect_err("no key");
    assert!(
        matches!(
            err,
            Error::HmacKeyMissing {
                entity: Entity::Email
            }
        ),
        "{err}"
    );
    assert!(
        Masker::new(&[&profile], Some(b"")).is_err(),
        "an empty key is no key"
    );
    assert!(Masker::new(&[&profile], Some(b"k")).is_ok());
}

#[test]
fn null_nulls_whole_values_and_redacts_in_text() {
    let m = masker(Strategy::Null, None);
    let mut counts = Counts::default();
    let plan = m.column("email", "text");
    assert_eq!(
        plan,
        ColumnPlan::Whole {
            entity: Entity::Email,
            strategy: Strategy::Null
        }
    );
    assert_eq!(
        m.mask_value(&plan, b"alice@example.com", &mut counts),
        Masked::Null
    );
    assert_eq!(counts.get(Entity::Email), 1);
    assert_eq!(text(&m, "to alice@example.com"), "to [EMAIL]");
}

#[test]
fn replacements_are_safe_and_never_the_value() {
    let values = [
        "alice@example.com",
        "4111 1111 1111 1111",
        "a\tb\nc\\d\"e'f",
        "x",
        "",
        "ü\u{2028}ü",
        concat!(
            "-----BEGIN PRIV",
            "ATE KEY-----\nAAAA\n-----END PRIV",
            "ATE KEY-----"
        ),
    ];
    let strategies = [
        Strategy::Redact,
        Strategy::Hmac,
        Strategy::Partial { keep: 4 },
        Strategy::Partial { keep: 100 },
    ];
    for strategy in strategies {
        let m = masker(strategy, Some(b"k"));
        for value in values {
            for entity in Entity::ALL {
                let Masked::Replaced(out) = whole(&m, entity, value) else {
                    panic!("{strategy:?} nulls")
                };
                let out = String::from_utf8(out).expect("utf-8");
                assert!(
                    !out.contains(['\t', '\n', '\r', '\\', '"', '\'']),
                    "{strategy:?} {value:?} -> {out:?}"
                );
                assert!(
                    value.chars().count() < 2 || !out.contains(value),
                    "{strategy:?} {value:?} -> {out:?}"
                );
            }
        }
    }
}
