//! PostgreSQL array literals (text format) stay valid literals after masking.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use portcullis_masking::{ColumnPlan, Counts, Entity, Masker, ProfileSpec, Strategy};

fn mask(input: &str) -> (String, Counts) {
    let m = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker builds");
    let mut counts = Counts::default();
    let out = m.mask_value(&ColumnPlan::Array, input.as_bytes(), &mut counts);
    let out = String::from_utf8(out.as_bytes().expect("not null").to_vec()).expect("utf-8");
    (out, counts)
}

#[test]
fn elements_are_masked_and_quoted() {
    let cases = [
        (r#"{a@b.com,"x y"}"#, r#"{"[EMAIL]","x y"}"#),
        ("{}", "{}"),
        ("{plain,words}", "{plain,words}"),
        ("{NULL,a@example.com,null}", r#"{NULL,"[EMAIL]",null}"#),
        (r#"{"NULL","10.0.0.1"}"#, r#"{"NULL","[IPV4]"}"#),
        (
            "{{10.0.0.1,x},{y,10.0.0.2}}",
            r#"{{"[IPV4]",x},{y,"[IPV4]"}}"#,
        ),
        (
            r#"{"say \"hi\" to a@example.com","back\\slash"}"#,
            r#"{"say \"hi\" to [EMAIL]","back\\slash"}"#,
        ),
        (r#"{a\,b@example.com}"#, r#"{"a,[EMAIL]"}"#),
        ("[1:2]={a@example.com,b}", r#"[1:2]={"[EMAIL]",b}"#),
        ("{ a@example.com , b }", r#"{ "[EMAIL]" , b }"#),
        (
            r#"{"{\"e\":\"a@example.com\"}"}"#,
            r#"{"{\"e\":\"[EMAIL]\"}"}"#,
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(input, want)| {
            let (got, _) = mask(input);
            (got != *want).then(|| format!("{input}: want {want}, got {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn counts_every_element() {
    let (_, counts) = mask("{a@example.com,b@example.com,4111111111111111}");
    assert_eq!(counts.get(Entity::Email), 2);
    assert_eq!(counts.get(Entity::CreditCard), 1);
}

#[test]
fn invalid_literals_are_masked_as_text() {
    for input in [
        "a@example.com",
        "{a@example.com",
        "{a@example.com,}",
        "{,a@example.com}",
        "{a@example.com}}",
        r#"{"a@example.com}"#,
    ] {
        let (out, counts) = mask(input);
        assert!(
            !out.contains("a@example.com") && counts.total() == 1,
            "{input} -> {out}"
        );
    }
}

#[test]
fn null_strategy_redacts_inside_arrays() {
    let mut profile = ProfileSpec::builtin_default();
    profile.default_strategy = Strategy::Null;
    let m = Masker::new(&[&profile], None).expect("masker builds");
    let out = m.mask_value(
        &ColumnPlan::Array,
        b"{a@example.com}",
        &mut Counts::default(),
    );
    assert_eq!(out.as_bytes(), Some(&br#"{"[EMAIL]"}"#[..]));
}
