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
    let plan = ResultPlan::new(masker(), &fields, None, None);
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
    let plan = ResultPlan::new(
        masker(),
        &[field("name", 25, 0), field("n", 20, 1)],
        None,
        None,
    );
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
    let plan = ResultPlan::new(masker(), &fields, Some(&[1]), None);
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
    let plan = ResultPlan::blind(masker(), None);
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
    let latin1 = ResultPlan::new(masker(), &[field("c", 25, 0)], None, None);
    let (out, _) = masked(&latin1, &[Some(b"caf\xe9 ada@example.com")]);
    assert_eq!(
        out[0], None,
        "text that is not UTF-8 is replaced whole when sensitive"
    );
}

#[test]
fn copy_rows_keep_their_shape() {
    let plan = ResultPlan::blind(masker(), None);
    let mut counts = Counts::default();
    let out = plan
        .mask_copy_text(b"1\tada@example.com\t\\N\n", &mut counts)
        .expect("masked");
    assert_eq!(out, b"1\t[EMAIL]\t\\N\n");
    assert!(plan.mask_copy_text(b"2\tnothing\n", &mut counts).is_none());
}

/// A binary array of one dimension of `oid` elements.
fn binary_array(oid: u32, elements: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for x in [1i32, 0, oid as i32, elements.len() as i32, 1] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    for e in elements {
        b.extend_from_slice(&(e.len() as i32).to_be_bytes());
        b.extend_from_slice(e);
    }
    b
}

/// A binary range `[lower, upper)`.
fn binary_range(lower: &[u8], upper: &[u8]) -> Vec<u8> {
    let mut b = vec![0x02];
    for bound in [lower, upper] {
        b.extend_from_slice(&(bound.len() as i32).to_be_bytes());
        b.extend_from_slice(bound);
    }
    b
}

#[test]
fn structured_values_are_replaced_whole_so_they_still_parse() {
    // Text format: a replacement inside `{10.0.0.1/32}` or `[4111…,4111…]` would not parse
    // as cidr[] or int8range, so a value holding anything sensitive becomes NULL.
    let fields = [
        field("nets", 651, 0),
        field("span", 3926, 0),
        field("ids", 1016, 0),
        field("many", 4536, 0),
    ];
    let plan = ResultPlan::new(masker(), &fields, None, None);
    let (out, counts) = masked(
        &plan,
        &[
            Some(b"{10.0.0.1/32}"),
            Some(b"[4111111111111111,4111111111111112)"),
            Some(b"{1,2,3}"),
            Some(b"{[1,5)}"),
        ],
    );
    assert_eq!(out[0], None, "cidr[] with an address");
    assert_eq!(out[1], None, "int8range with a card number");
    assert_eq!(out[2].as_deref(), Some(&b"{1,2,3}"[..]));
    assert_eq!(out[3].as_deref(), Some(&b"{[1,5)}"[..]));
    assert!(counts.total() >= 2);
}

#[test]
fn binary_parts_of_arrays_ranges_and_records_are_read() {
    let card = 4_111_111_111_111_111i64.to_be_bytes();
    let seven = 7i64.to_be_bytes();
    let ip = [2u8, 32, 1, 4, 10, 1, 2, 3];
    let ids = binary_array(20, &[&seven, &card]);
    let nets = binary_array(869, &[&ip]);
    let span = binary_range(&card, &seven);
    // A record: count, then per field its type oid, length and bytes.
    let mut record = 2i32.to_be_bytes().to_vec();
    for (oid, v) in [(23u32, &7i32.to_be_bytes()[..]), (20, &card[..])] {
        record.extend_from_slice(&oid.to_be_bytes());
        record.extend_from_slice(&(v.len() as i32).to_be_bytes());
        record.extend_from_slice(v);
    }
    let clean_ids = binary_array(20, &[&seven, &seven]);
    let clean_span = binary_range(&seven, &seven);
    // Described (known structured types, a record) and never described (blind) alike.
    let fields = [
        field("ids", 1016, 1),
        field("nets", 1041, 1),
        field("span", 3926, 1),
        field("r", 2249, 1),
        field("ok_ids", 1016, 1),
        field("ok_span", 3926, 1),
    ];
    let values: [&[u8]; 6] = [&ids, &nets, &span, &record, &clean_ids, &clean_span];
    let values: Vec<Option<&[u8]>> = values.iter().map(|v| Some(*v)).collect();
    for plan in [
        ResultPlan::new(masker(), &fields, None, None),
        ResultPlan::blind(masker(), None),
    ] {
        let (out, _) = masked(&plan, &values);
        assert_eq!(out[0], None, "bigint[] holding a card");
        assert_eq!(out[2], None, "int8range bound holding a card");
        assert_eq!(out[3], None, "record field holding a card");
        assert_eq!(out[4].as_deref(), Some(&clean_ids[..]));
        assert_eq!(out[5].as_deref(), Some(&clean_span[..]));
    }
    // An inet[] element is read as inet where the type is known.
    let (out, _) = masked(&ResultPlan::new(masker(), &fields, None, None), &values);
    assert_eq!(out[1], None, "inet[] holding an address");
}
