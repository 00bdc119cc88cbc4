use super::*;
use portcullis_masking::ProfileSpec;

fn masker() -> Masker {
    Masker::new(&[&ProfileSpec::builtin_default()], None).unwrap()
}

fn header() -> Vec<u8> {
    let mut b = SIGNATURE.to_vec();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b
}

fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = (fields.len() as i16).to_be_bytes().to_vec();
    for f in fields {
        match f {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
        }
    }
    b
}

fn trailer() -> Vec<u8> {
    (-1i16).to_be_bytes().to_vec()
}

/// Feeds `data` in pieces of `chunk` bytes and returns everything emitted.
fn run(data: &[u8], chunk: usize) -> Result<Vec<u8>, Refused> {
    let (m, mut copy, mut counts) = (masker(), BinaryCopy::default(), Counts::default());
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        out.extend(copy.push(&m, piece, &mut counts)?);
    }
    copy.finish()?;
    Ok(out)
}

#[test]
fn clean_data_passes_unchanged_however_it_is_split() {
    let id = 7i64.to_be_bytes();
    let mut data = header();
    data.extend(tuple(&[Some(&id), Some(b"Ada Lovelace"), None]));
    data.extend(trailer());
    for chunk in [1, 2, 3, 7, 19, data.len()] {
        assert_eq!(run(&data, chunk).unwrap(), data, "chunk {chunk}");
    }
}

#[test]
fn text_fields_are_masked_in_place_with_their_length() {
    let id = 1i32.to_be_bytes();
    let mut data = header();
    data.extend(tuple(&[Some(&id), Some(b"ada@example.com")]));
    data.extend(trailer());
    for chunk in [1, 5, data.len()] {
        let out = run(&data, chunk).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("ada@example.com"));
        // The masked stream still parses as binary COPY with the same shape.
        let reparsed = run(&out, out.len()).unwrap();
        assert_eq!(reparsed, out);
        assert!(out.ends_with(&trailer()));
    }
}

#[test]
fn a_sensitive_number_is_refused() {
    let card = 4_111_111_111_111_111i64.to_be_bytes();
    let mut data = header();
    data.extend(tuple(&[Some(&card)]));
    data.extend(trailer());
    assert_eq!(run(&data, data.len()), Err(Refused::Sensitive));
}

#[test]
fn broken_data_is_refused() {
    assert_eq!(run(b"not a copy stream at all", 4), Err(Refused::Malformed));
    let mut cut = header();
    cut.extend(tuple(&[Some(b"abc")]));
    cut.truncate(cut.len() - 1);
    assert_eq!(run(&cut, 3), Err(Refused::Malformed));
    let mut after = header();
    after.extend(trailer());
    after.extend(tuple(&[Some(b"x")]));
    assert_eq!(run(&after, after.len()), Err(Refused::Malformed));
}

fn jsonb_field(doc: &str) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(doc.as_bytes());
    v
}

#[test]
fn jsonb_fields_are_masked_as_json_in_place() {
    // Documents that hold nothing sensitive pass, where the control character of the version
    // byte once sent them to the number readings alone.
    let clean = jsonb_field(r#""text""#);
    let mut data = header();
    data.extend(tuple(&[
        Some(&clean),
        Some(&jsonb_field(r#"{"a": [1, null]}"#)),
    ]));
    data.extend(trailer());
    assert_eq!(run(&data, 3).unwrap(), data);

    let mut data = header();
    data.extend(tuple(&[Some(&jsonb_field(
        r#"{"note": "mail ada@example.com"}"#,
    ))]));
    data.extend(trailer());
    let out = run(&data, 4).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("ada@example.com"), "{text}");
    // Still a jsonb field: version byte, then valid JSON.
    let reparsed = run(&out, out.len()).unwrap();
    assert_eq!(reparsed, out);
    let field = &out[header().len() + 2 + 4..out.len() - 2];
    assert_eq!(field[0], 1);
    serde_json::from_slice::<serde_json::Value>(&field[1..]).unwrap();
}

#[test]
fn a_field_that_only_looks_like_jsonb_is_still_read_as_a_number() {
    // Eight bytes that are the version byte and a JSON string (`"abcde"`), and as a bigint a
    // card number (81…, 17 digits, Luhn-valid): the number reading refuses it. Binary COPY
    // names no types, so the door cannot tell this jsonb from a bigint. (psycopg's
    // `'"te\'xt"'::jsonb` is one: 81755721048814626.)
    let m = masker();
    let v = (b'a'..=b'z')
        .flat_map(|x| (b'a'..=b'z').map(move |y| [1, b'"', b'a', b'b', b'c', x, y, b'"']))
        .find(|v| {
            let n = i64::from_be_bytes(*v);
            m.contains_sensitive(&n.to_string()).is_some()
        })
        .expect("some such field reads as a card number");
    let doc = std::str::from_utf8(&v[1..]).unwrap();
    assert!(
        masker()
            .mask_json_document(doc, &mut Counts::default())
            .is_some(),
        "it does read as jsonb"
    );
    let mut data = header();
    data.extend(tuple(&[Some(&v)]));
    data.extend(trailer());
    assert_eq!(run(&data, data.len()), Err(Refused::Sensitive));
}
