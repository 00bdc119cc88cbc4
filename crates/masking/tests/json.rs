//! JSON masking: key rules, scanned strings and numbers, validity and key order.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use portcullis_masking::{ColumnPlan, Counts, Entity, Masked, Masker, ProfileSpec, Strategy};

fn masker(strategies: Vec<(Entity, Strategy)>) -> Masker {
    let mut profile = ProfileSpec::builtin_default();
    profile.strategies = strategies;
    Masker::new(&[&profile], Some(b"k")).expect("masker builds")
}

/// Masks `input`, checks the output is valid JSON, returns it with the counts.
fn mask(m: &Masker, input: &str) -> (String, Counts) {
    let mut counts = Counts::default();
    let out = match m.mask_json(input, &mut counts) {
        Masked::Unchanged(b) => String::from_utf8(b.to_vec()).expect("utf-8"),
        Masked::Replaced(b) => String::from_utf8(b).expect("utf-8"),
        Masked::Null => panic!("a document never becomes NULL"),
    };
    if serde_json::from_str::<serde_json::Value>(input).is_ok() {
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "invalid output {out}"
        );
    }
    (out, counts)
}

#[test]
fn strings_are_scanned_and_structure_is_kept() {
    let m = masker(vec![]);
    let input = r#"{ "zeta": "mail alice@example.com", "alpha": [1, "10.0.0.1", {"note": "ok"}], "n": null }"#;
    let (out, counts) = mask(&m, input);
    assert_eq!(
        out,
        r#"{ "zeta": "mail [EMAIL]", "alpha": [1, "[IPV4]", {"note": "ok"}], "n": null }"#
    );
    assert_eq!(counts.total(), 2);
    let (same, counts) = mask(&m, r#"{"b": 1, "a": [true, false, null, -1.5e3, "x"]}"#);
    assert_eq!(same, r#"{"b": 1, "a": [true, false, null, -1.5e3, "x"]}"#);
    assert!(counts.is_empty());
}

#[test]
fn key_rules_replace_members_whole() {
    let m = masker(vec![]);
    let input = r#"{"user":{"Email":"a@b.co","password":"hunter2","ssn":123456789,"pan":{"x":1},"cvv":true,"phone":null},"id":7}"#;
    let (out, counts) = mask(&m, input);
    assert_eq!(
        out,
        r#"{"user":{"Email":"[EMAIL]","password":"[GENERIC_SECRET]","ssn":"[US_SSN]","pan":"[CREDIT_CARD]","cvv":"[CREDIT_CARD]","phone":null},"id":7}"#
    );
    assert_eq!(counts.get(Entity::CreditCard), 2);
    assert_eq!(counts.total(), 5);
}

#[test]
fn key_rules_follow_the_strategy() {
    let m = masker(vec![
        (Entity::Email, Strategy::Null),
        (Entity::GenericSecret, Strategy::Partial { keep: 2 }),
        (Entity::UsSsn, Strategy::Hmac),
        (Entity::CreditCard, Strategy::Partial { keep: 4 }),
    ]);
    let (out, _) = mask(
        &m,
        r#"{"email":"a@b.co","password":"hunter2","ssn":"078-05-1120","pan":[4111,1111]}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid");
    assert_eq!(v["email"], serde_json::Value::Null);
    assert_eq!(v["password"], "*****r2");
    assert!(
        v["ssn"]
            .as_str()
            .is_some_and(|s| s.starts_with("[US_SSN:") && s.len() == 25),
        "{out}"
    );
    // Partial needs a string or a number; a container is redacted.
    assert_eq!(v["pan"], "[CREDIT_CARD]");
}

#[test]
fn numbers_holding_values_become_strings_or_null() {
    let m = masker(vec![]);
    let (out, counts) = mask(
        &m,
        r#"{"ref": 4111111111111111, "qty": 4111111111111112, "f": 1.5}"#,
    );
    assert_eq!(
        out,
        r#"{"ref": "[CREDIT_CARD]", "qty": 4111111111111112, "f": 1.5}"#
    );
    assert_eq!(counts.get(Entity::CreditCard), 1);
    let m = masker(vec![(Entity::CreditCard, Strategy::Null)]);
    let (out, _) = mask(&m, "[4111111111111111]");
    assert_eq!(out, "[null]");
}

#[test]
fn keys_are_scanned_and_order_is_kept() {
    let m = masker(vec![]);
    let (out, _) = mask(
        &m,
        r#"{"z": 1, "bob@example.com": {"y": 2, "a": 3}, "b": 4}"#,
    );
    assert_eq!(out, r#"{"z": 1, "[EMAIL]": {"y": 2, "a": 3}, "b": 4}"#);
}

#[test]
fn escapes_are_decoded_and_reencoded() {
    let m = masker(vec![]);
    let input = r#"["caf\u00e9 \"a@example.com\"\n\ud83d\ude00 \/ 10.0.0.1\\"]"#;
    let (out, _) = mask(&m, input);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid");
    assert_eq!(v[0], "café \"[EMAIL]\"\n😀 / [IPV4]\\");
    // An escaped sensitive value is still found, and untouched escapes stay as they were.
    let (out, _) = mask(&m, r#"{"a":"x\u0040example.com","b":"\u00e9"}"#);
    assert_eq!(out, r#"{"a":"[EMAIL]","b":"\u00e9"}"#);
}

#[test]
fn invalid_json_is_masked_as_text() {
    let m = masker(vec![]);
    for input in [
        r#"{"a": "x@example.com""#,
        "{'a': 'x@example.com'}",
        r#"["x@example.com",]"#,
        "x@example.com",
        r#"{"a":1} x@example.com"#,
    ] {
        let (out, counts) = mask(&m, input);
        assert!(
            out.contains("[EMAIL]") && counts.get(Entity::Email) == 1,
            "{input} -> {out}"
        );
    }
    let (out, counts) = mask(&m, "");
    assert!(out.is_empty() && counts.is_empty());
}

#[test]
fn jsonb_columns_use_mask_json() {
    let m = masker(vec![]);
    let plan = m.column("payload", "jsonb");
    assert_eq!(plan, ColumnPlan::Json);
    let mut counts = Counts::default();
    let out = m.mask_value(&plan, br#"{"card": "4111-1111-1111-1111"}"#, &mut counts);
    assert_eq!(out.as_bytes(), Some(&br#"{"card": "[CREDIT_CARD]"}"#[..]));
}

#[test]
fn deep_nesting_does_not_recurse() {
    let m = masker(vec![]);
    let depth = 100_000;
    let input = format!(
        "{}\"a@example.com\"{}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut counts = Counts::default();
    let out = m.mask_json(&input, &mut counts);
    let out = out.as_bytes().expect("bytes");
    assert_eq!(
        out.len(),
        input.len() - "a@example.com".len() + "[EMAIL]".len()
    );
    assert_eq!(counts.get(Entity::Email), 1);
}
