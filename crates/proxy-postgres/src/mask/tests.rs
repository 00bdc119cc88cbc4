use portcullis_masking::{Counts, Entity, Masker, ProfileSpec};
use portcullis_pgwire::{FieldDescription, Frame, encode_data_row, parse_data_row};

use super::ResultPlan;

fn field(name: &str, type_oid: u32, format: i16) -> FieldDescription {
    FieldDescription {
        name: name.into(),
        table_oid: 0,
        column: 0,
        type_oid,
        type_size: -1,
        type_modifier: -1,
        format,
    }
}

fn row(values: &[Option<&[u8]>]) -> Frame {
    let raw = encode_data_row(values.iter().copied()).expect("encode");
    Frame::new(raw[0], &raw[5..]).expect("frame")
}

fn masked(plan: &ResultPlan, values: &[Option<&[u8]>]) -> (Vec<Option<Vec<u8>>>, Counts) {
    let mut counts = Counts::default();
    let frame = row(values);
    let out = match plan.mask_row(&frame, &mut counts).expect("mask") {
        Some(raw) => Frame::new(raw[0], &raw[5..]).expect("frame"),
        None => frame,
    };
    let values = parse_data_row(&out)
        .expect("parse")
        .into_iter()
        .map(|v| v.map(|b| b.to_vec()))
        .collect();
    (values, counts)
}

fn masker() -> Masker {
    Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker")
}

#[test]
fn text_is_masked_in_place_and_other_types_become_null() {
    let fields = [
        field("id", 23, 0),
        field("contact", 25, 0),
        field("password_hash", 1043, 0),
        field("balance", 1700, 0),
        field("seen_from", 869, 0),
        field("note", 25, 0),
    ];
    let plan = ResultPlan::new(masker(), &fields, None);
    let (out, counts) = masked(
        &plan,
        &[
            Some(b"7"),
            Some(b"write to ada@example.com"),
            Some(b"$2b$12$abcdefghijklmnopqrstuv"),
            Some(b"4111111111111111"),
            Some(b"10.1.2.3"),
            None,
        ],
    );
    assert_eq!(out[0].as_deref(), Some(&b"7"[..]));
    assert_eq!(out[1].as_deref(), Some(&b"write to [EMAIL]"[..]));
    let secret = String::from_utf8(out[2].clone().expect("replaced")).expect("utf8");
    assert!(
        secret.starts_with('[') && !secret.contains("abcdef"),
        "{secret}"
    );
    assert_eq!(
        out[3], None,
        "a card number in a numeric column becomes NULL"
    );
    assert_eq!(out[4], None, "an inet column is masked whole, as NULL");
    assert_eq!(out[5], None);
    assert_eq!(counts.get(Entity::Email), 1);
    assert_eq!(counts.get(Entity::CreditCard), 1);
    assert!(counts.total() >= 4, "{counts:?}");
}

#[test]
fn clean_rows_are_not_rebuilt() {
    let plan = ResultPlan::new(masker(), &[field("name", 25, 0), field("n", 20, 1)], None);
    let mut counts = Counts::default();
    let frame = row(&[Some(b"Ada Lovelace"), Some(&42i64.to_be_bytes())]);
    assert!(plan.mask_row(&frame, &mut counts).expect("mask").is_none());
    assert!(counts.is_empty());
}

#[test]
fn binary_formats_keep_their_types() {
    // A statement description (formats unknown) with the Bind asking for binary.
    let fields = [
        field("doc", 3802, 0),
        field("tags", 1009, 0),
        field("n", 20, 0),
    ];
    let plan = ResultPlan::new(masker(), &fields, Some(&[1]));
    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(br#"{"email": "ada@example.com", "n": 1}"#);
    let mut arr = Vec::new();
    for v in [1i32, 0, 25, 2, 1] {
        arr.extend_from_slice(&v.to_be_bytes());
    }
    for e in [&b"ada@example.com"[..], b"plain"] {
        arr.extend_from_slice(&(e.len() as i32).to_be_bytes());
        arr.extend_from_slice(e);
    }
    let card = 4111111111111111i64.to_be_bytes();
    let (out, _) = masked(&plan, &[Some(&jsonb), Some(&arr), Some(&card)]);
    let doc = out[0].as_ref().expect("jsonb");
    assert_eq!(doc[0], 1, "the jsonb version byte stays");
    let json: serde_json::Value = serde_json::from_slice(&doc[1..]).expect("valid JSON");
    assert_eq!(json["n"], 1);
    assert!(!json.to_string().contains("ada@"), "{json}");
    let arr_out = out[1].as_ref().expect("array");
    assert!(!String::from_utf8_lossy(arr_out).contains("ada@"));
    assert!(String::from_utf8_lossy(arr_out).contains("plain"));
    assert_eq!(out[2], None, "a card number in binary int8 becomes NULL");
}

#[test]
fn values_of_unknown_shape_never_pass_in_the_clear() {
    let plan = ResultPlan::blind(masker());
    let (out, counts) = masked(
        &plan,
        &[
            Some(b"ada@example.com"),
            Some(b"harmless"),
            Some(&[0xff, 0xfe]),
        ],
    );
    assert_eq!(out[0], None);
    assert_eq!(out[1].as_deref(), Some(&b"harmless"[..]));
    assert_eq!(out[2].as_deref(), Some(&[0xff, 0xfe][..]));
    assert_eq!(counts.get(Entity::Email), 1);
    // A card number as a binary bigint or numeric of a result never described.
    let bigint = 4_111_111_111_111_111i64.to_be_bytes();
    let mut numeric = Vec::new();
    for part in [4i16, 3, 0, 0, 4111, 1111, 1111, 1111] {
        numeric.extend_from_slice(&part.to_be_bytes());
    }
    let (out, _) = masked(
        &plan,
        &[Some(&bigint), Some(&numeric), Some(&7i64.to_be_bytes())],
    );
    assert_eq!(out[0], None, "binary bigint card");
    assert_eq!(out[1], None, "binary numeric card");
    assert!(out[2].is_some(), "a harmless number passes");
    let latin1 = ResultPlan::new(masker(), &[field("c", 25, 0)], None);
    let (out, _) = masked(&latin1, &[Some(b"caf\xe9 ada@example.com")]);
    assert_eq!(
        out[0], None,
        "text that is not UTF-8 is replaced whole when sensitive"
    );
}

#[test]
fn copy_rows_keep_their_shape() {
    let plan = ResultPlan::blind(masker());
    let mut counts = Counts::default();
    let out = plan
        .mask_copy_text(b"1\tada@example.com\t\\N\n", &mut counts)
        .expect("masked");
    assert_eq!(out, b"1\t[EMAIL]\t\\N\n");
    assert!(plan.mask_copy_text(b"2\tnothing\n", &mut counts).is_none());
}
