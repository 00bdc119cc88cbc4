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
