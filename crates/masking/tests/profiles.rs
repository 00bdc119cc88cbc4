//! Profiles, their combination, column plans, entity labels and counters.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use portcullis_masking::{
    ColumnMatch, ColumnPlan, ColumnRule, Counts, Entity, Masker, ProfileSpec, Strategy,
};

fn builtin() -> Masker {
    Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker builds")
}

fn whole(entity: Entity) -> ColumnPlan {
    ColumnPlan::Whole {
        entity,
        strategy: Strategy::Redact,
    }
}

#[test]
fn builtin_column_plans() {
    let m = builtin();
    let cases = [
        ("password", "text", whole(Entity::GenericSecret)),
        (
            "User_PASSWORD_hash",
            "varchar",
            whole(Entity::GenericSecret),
        ),
        ("pwd", "text", whole(Entity::GenericSecret)),
        ("access_token", "text", whole(Entity::GenericSecret)),
        ("token_count", "int4", ColumnPlan::Pass),
        ("SSN", "text", whole(Entity::UsSsn)),
        ("social_security_number", "text", whole(Entity::UsSsn)),
        ("card_number", "text", whole(Entity::CreditCard)),
        ("pan", "text", whole(Entity::CreditCard)),
        ("company", "text", ColumnPlan::Pass),
        ("Email", "text", whole(Entity::Email)),
        ("billing_email", "text", whole(Entity::Email)),
        ("email_verified", "bool", ColumnPlan::Pass),
        ("phone_number", "text", whole(Entity::Phone)),
        ("dob", "date", whole(Entity::DateOfBirth)),
        ("passport_no", "text", whole(Entity::UsPassport)),
        ("national_insurance_number", "text", whole(Entity::UkNino)),
        ("iban", "text", whole(Entity::Iban)),
        ("private_key", "text", whole(Entity::PrivateKey)),
        ("client_addr", "inet", whole(Entity::Ipv4)),
        ("net", "pg_catalog.cidr", whole(Entity::Ipv4)),
        ("hw", "macaddr8", whole(Entity::MacAddress)),
        ("hws", "_macaddr", whole(Entity::MacAddress)),
        ("doc", "jsonb", ColumnPlan::Json),
        ("doc", "json", ColumnPlan::Json),
        ("docs", "jsonb[]", ColumnPlan::Array),
        ("tags", "_text", ColumnPlan::Array),
        ("tags", "text[]", ColumnPlan::Array),
        ("name", "character varying(64)", ColumnPlan::Pass),
        ("id", "int8", ColumnPlan::Pass),
    ];
    // Twice: computed, then remembered by the masker (the same name with another type, as
    // `doc`, is another entry).
    for pass in ["computed", "remembered"] {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(name, ty, want)| {
                let got = m.column(name, ty);
                (got != *want).then(|| format!("{pass}: {name} {ty}: want {want:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn profiles_combine_with_the_strictest_strategy() {
    let emails = ProfileSpec {
        entities: vec![Entity::Email],
        columns: vec![ColumnRule {
            matcher: ColumnMatch::Name("contact".into()),
            entity: Entity::Email,
        }],
        default_strategy: Strategy::Partial { keep: 4 },
        strategies: vec![],
    };
    let cards = ProfileSpec {
        entities: vec![Entity::CreditCard, Entity::Email],
        columns: vec![ColumnRule {
            matcher: ColumnMatch::Type("money".into()),
            entity: Entity::CreditCard,
        }],
        default_strategy: Strategy::Partial { keep: 2 },
        strategies: vec![(Entity::CreditCard, Strategy::Hmac)],
    };
    let unrelated = ProfileSpec {
        entities: vec![Entity::Ipv4],
        columns: vec![],
        default_strategy: Strategy::Null,
        strategies: vec![],
    };
    let m = Masker::new(&[&emails, &cards, &unrelated], Some(b"k")).expect("masker builds");
    // Email: Partial{4} vs Partial{2}: fewer kept characters is stricter. The Null default of
    // a profile that does not concern emails does not apply.
    assert_eq!(m.strategy(Entity::Email), Strategy::Partial { keep: 2 });
    assert_eq!(m.strategy(Entity::CreditCard), Strategy::Hmac);
    assert_eq!(m.strategy(Entity::Ipv4), Strategy::Null);
    assert_eq!(
        m.strategy(Entity::Phone),
        Strategy::Redact,
        "nobody's entity is redacted"
    );
    // Union of column rules and of recognizers; phone numbers are not recognized.
    assert!(matches!(
        m.column("Contact", "text"),
        ColumnPlan::Whole {
            entity: Entity::Email,
            ..
        }
    ));
    assert!(matches!(
        m.column("price", "money"),
        ColumnPlan::Whole {
            entity: Entity::CreditCard,
            ..
        }
    ));
    let mut counts = Counts::default();
    let out = m.mask_text("a@example.com 10.0.0.1 +44 20 7946 0958", &mut counts);
    assert_eq!(out, "***********om [IPV4] +44 20 7946 0958");
    assert_eq!(counts.total(), 2);

    let strict = ProfileSpec {
        strategies: vec![(Entity::Email, Strategy::Null)],
        ..emails.clone()
    };
    let m = Masker::new(&[&emails, &strict], None).expect("masker builds");
    assert_eq!(m.strategy(Entity::Email), Strategy::Null);
}

#[test]
fn no_entities_no_findings() {
    let empty = ProfileSpec {
        entities: vec![],
        columns: vec![],
        default_strategy: Strategy::Redact,
        strategies: vec![],
    };
    let m = Masker::new(&[&empty], None).expect("masker builds");
    assert!(m.find("alice@example.com 4111111111111111").is_empty());
    assert_eq!(m.column("password", "text"), ColumnPlan::Pass);
    let m = Masker::new(&[], None).expect("no profiles is fine");
    assert!(m.find("alice@example.com").is_empty());
}

#[test]
fn entity_labels_round_trip() {
    for entity in Entity::ALL {
        assert_eq!(entity.as_str().parse::<Entity>().ok(), Some(entity));
        assert_eq!(
            entity.as_str().to_lowercase().parse::<Entity>().ok(),
            Some(entity)
        );
        assert_eq!(entity.to_string(), entity.as_str());
    }
    assert!("CREDIT-CARD".parse::<Entity>().is_err());
    assert_eq!(Entity::COUNT, Entity::ALL.len());
}

#[test]
fn counts() {
    let mut a = Counts::default();
    assert!(a.is_empty());
    a.add(Entity::Email, 2);
    a.add(Entity::Ipv4, 1);
    let mut b = Counts::default();
    b.add(Entity::Email, 1);
    b.add(Entity::Jwt, u32::MAX);
    b.merge(&a);
    assert_eq!(
        b.iter().collect::<Vec<_>>(),
        vec![
            (Entity::Jwt, u32::MAX),
            (Entity::Email, 3),
            (Entity::Ipv4, 1)
        ]
    );
    b.add(Entity::Jwt, 5);
    assert_eq!(b.get(Entity::Jwt), u32::MAX, "saturates");
    assert_eq!(a.total(), 3);
    assert!(!a.is_empty());
}

#[test]
fn find_and_contains_sensitive() {
    let m = builtin();
    // Split so secret scanners do not flag this file.
    let text = &format!(
        "ip 10.0.0.1 key {}_{}",
        "sk_test", "4eC39HqLyjWDarjtT1zdp7dc"
    );
    let found: Vec<(Entity, &str)> = m
        .find(text)
        .iter()
        .map(|f| (f.entity, &text[f.range.clone()]))
        .collect();
    assert_eq!(
        found,
        vec![(Entity::Ipv4, "10.0.0.1"), (Entity::StripeKey, &text[16..])]
    );
    assert_eq!(
        m.contains_sensitive(text),
        Some(Entity::StripeKey),
        "highest priority"
    );
    assert_eq!(
        m.contains_sensitive("4111111111111111"),
        Some(Entity::CreditCard)
    );
    assert_eq!(m.contains_sensitive("42"), None);
    let mut counts = Counts::default();
    let replaced = m.mask_whole(Entity::CreditCard, b"4111111111111111", &mut counts);
    assert_eq!(replaced.as_bytes(), Some(&b"[CREDIT_CARD]"[..]));
    assert_eq!(counts.get(Entity::CreditCard), 1);
}

#[test]
fn pass_values_that_are_not_utf8_are_left_alone() {
    let m = builtin();
    let mut counts = Counts::default();
    let binary = [0xff, 0xfe, b'a', b'@', b'b', b'.', b'c', b'o', b'm'];
    assert_eq!(
        m.mask_value(&ColumnPlan::Pass, &binary, &mut counts),
        portcullis_masking::Masked::Unchanged(&binary)
    );
    assert!(counts.is_empty());
}

#[test]
fn masker_is_shareable() {
    fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<Masker>();
}
