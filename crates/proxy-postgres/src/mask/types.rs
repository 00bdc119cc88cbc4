//! What the door knows about PostgreSQL types for masking: which built-in type an OID is, and
//! how to read the binary formats whose values can hold something sensitive (integers,
//! numeric, network addresses, jsonb, text arrays).
//!
//! Reference: the `*send`/`*recv` functions of PostgreSQL's `src/backend/utils/adt/`.

use std::fmt::Write;

/// How a column's values are masked, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// text, varchar, bpchar, name, unknown: the value is text in both formats.
    Text,
    Json,
    /// Binary jsonb is a version byte (1) and the JSON text.
    Jsonb,
    /// Arrays of text-like types.
    TextArray,
    Int,
    Numeric,
    /// inet, cidr.
    Inet,
    /// macaddr, macaddr8.
    Mac,
    /// Built-in arrays of numbers, addresses or JSON, ranges and multiranges of numbers:
    /// values whose text is structured, so a replacement inside it would not parse as the
    /// type; one holding anything sensitive is replaced whole (NULL), in either format.
    Structured,
    /// Types that cannot hold a sensitive string: bool, floats, dates and times, uuid, oids,
    /// bytea (raw bytes, not scanned).
    Inert,
    /// Anything else (enums, domains, extension types such as citext, composites, other
    /// arrays): text format is scanned as text, binary format replaced whole when its bytes
    /// read as sensitive text.
    Other,
}

/// The kind and type name (for the masking profile's type rules) of a type OID.
pub(crate) fn kind(oid: u32) -> (Kind, &'static str) {
    match oid {
        25 => (Kind::Text, "text"),
        1043 => (Kind::Text, "varchar"),
        1042 => (Kind::Text, "bpchar"),
        19 => (Kind::Text, "name"),
        705 => (Kind::Text, "unknown"),
        114 => (Kind::Json, "json"),
        3802 => (Kind::Jsonb, "jsonb"),
        1009 => (Kind::TextArray, "_text"),
        1015 => (Kind::TextArray, "_varchar"),
        1014 => (Kind::TextArray, "_bpchar"),
        1003 => (Kind::TextArray, "_name"),
        21 => (Kind::Int, "int2"),
        23 => (Kind::Int, "int4"),
        20 => (Kind::Int, "int8"),
        1700 => (Kind::Numeric, "numeric"),
        869 => (Kind::Inet, "inet"),
        650 => (Kind::Inet, "cidr"),
        829 => (Kind::Mac, "macaddr"),
        774 => (Kind::Mac, "macaddr8"),
        1005 => (Kind::Structured, "_int2"),
        1007 => (Kind::Structured, "_int4"),
        1016 => (Kind::Structured, "_int8"),
        1231 => (Kind::Structured, "_numeric"),
        1041 => (Kind::Structured, "_inet"),
        651 => (Kind::Structured, "_cidr"),
        1040 => (Kind::Structured, "_macaddr"),
        775 => (Kind::Structured, "_macaddr8"),
        199 => (Kind::Structured, "_json"),
        3807 => (Kind::Structured, "_jsonb"),
        3904 => (Kind::Structured, "int4range"),
        3926 => (Kind::Structured, "int8range"),
        3906 => (Kind::Structured, "numrange"),
        4451 => (Kind::Structured, "int4multirange"),
        4536 => (Kind::Structured, "int8multirange"),
        4532 => (Kind::Structured, "nummultirange"),
        16 => (Kind::Inert, "bool"),
        17 => (Kind::Inert, "bytea"),
        18 => (Kind::Inert, "char"),
        26 => (Kind::Inert, "oid"),
        700 => (Kind::Inert, "float4"),
        701 => (Kind::Inert, "float8"),
        1082 => (Kind::Inert, "date"),
        1083 => (Kind::Inert, "time"),
        1114 => (Kind::Inert, "timestamp"),
        1184 => (Kind::Inert, "timestamptz"),
        1186 => (Kind::Inert, "interval"),
        1266 => (Kind::Inert, "timetz"),
        2950 => (Kind::Inert, "uuid"),
        _ => (Kind::Other, ""),
    }
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Binary jsonb: this version byte, then the document as JSON text.
pub(crate) const JSONB_VERSION: u8 = 1;

/// A binary jsonb value holding `json`.
pub(crate) fn jsonb_encode(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 1);
    out.push(JSONB_VERSION);
    out.extend_from_slice(json);
    out
}

/// How deep [`sensitive_reading`] follows values inside values (an array of records of
/// ranges is three).
const MAX_DEPTH: usize = 4;

/// The first sensitive entity that binary `value` of type `oid` (`None`: not known) shows.
/// A type the door knows is read as that type; any other is read every way its bytes allow:
/// as text (lossily), as a big-endian integer when its length is one, as a binary numeric,
/// and, where they parse, as an array, a range, a multirange or a record, whose parts are
/// read the same way (by their element or field type, which those formats carry).
pub(crate) fn sensitive_reading(
    masker: &portcullis_masking::Masker,
    oid: Option<u32>,
    value: &[u8],
) -> Option<portcullis_masking::Entity> {
    reading(masker, oid, value, 0)
}

fn reading(
    masker: &portcullis_masking::Masker,
    oid: Option<u32>,
    value: &[u8],
    depth: usize,
) -> Option<portcullis_masking::Entity> {
    let found = |text: Option<String>| text.and_then(|t| masker.contains_sensitive(&t));
    let lossy = || Some(String::from_utf8_lossy(value).into_owned());
    match oid.map(|oid| kind(oid).0) {
        Some(Kind::Inert) => None,
        Some(Kind::Text | Kind::Json | Kind::Jsonb) => found(lossy()),
        Some(Kind::Int) => found(int_text(value)),
        Some(Kind::Numeric) => found(numeric_text(value)),
        Some(Kind::Inet) => found(inet_text(value)),
        Some(Kind::Mac) => found(mac_text(value)),
        Some(Kind::TextArray | Kind::Structured | Kind::Other) | None => found(lossy())
            .or_else(|| number_reading(masker, value))
            .or_else(|| {
                (depth < MAX_DEPTH)
                    .then(|| parts(masker, value, depth + 1))
                    .flatten()
            }),
    }
}

/// The parts of `value` under each structured reading that parses.
fn parts(
    masker: &portcullis_masking::Masker,
    value: &[u8],
    depth: usize,
) -> Option<portcullis_masking::Entity> {
    let array = || {
        let a = array_elements(value)?;
        let element = be_i32(a.header, 8).map(|oid| oid as u32);
        a.elements
            .iter()
            .flatten()
            .find_map(|e| reading(masker, element, e, depth))
    };
    let range = || {
        range_bounds(value)?
            .iter()
            .find_map(|b| reading(masker, None, b, depth))
    };
    let multirange = || {
        let ranges = counted(value, |b, at| {
            let len = usize::try_from(be_i32(b, at)?).ok()?;
            Some((at + 4 + len, b.get(at + 4..at + 4 + len)?))
        })?;
        ranges.iter().find_map(|r| reading(masker, None, r, depth))
    };
    let record = || {
        let fields = counted(value, |b, at| {
            let oid = be_i32(b, at)? as u32;
            match be_i32(b, at + 4)? {
                -1 => Some((at + 8, (oid, None))),
                len => {
                    let len = usize::try_from(len).ok()?;
                    Some((at + 8 + len, (oid, Some(b.get(at + 8..at + 8 + len)?))))
                }
            }
        })?;
        fields
            .iter()
            .find_map(|&(oid, f)| reading(masker, Some(oid), f?, depth))
    };
    array().or_else(range).or_else(multirange).or_else(record)
}

/// A count (a leading `Int32`) of items each read by `item` (from an offset to the next
/// offset and the item), which must use `b` exactly.
fn counted<'a, T>(
    b: &'a [u8],
    item: impl Fn(&'a [u8], usize) -> Option<(usize, T)>,
) -> Option<Vec<T>> {
    let count = usize::try_from(be_i32(b, 0)?).ok()?;
    // Every item takes at least four bytes: a count larger than that is not this format.
    if count > b.len() / 4 {
        return None;
    }
    let mut items = Vec::with_capacity(count);
    let mut at = 4;
    for _ in 0..count {
        let (next, it) = item(b, at)?;
        items.push(it);
        at = next;
    }
    (at == b.len()).then_some(items)
}

/// The bounds of a binary range (flags, then each finite bound as `Int32` length and bytes);
/// `None` when `b` is not one.
fn range_bounds(b: &[u8]) -> Option<Vec<&[u8]>> {
    const EMPTY: u8 = 0x01;
    const LOWER_INFINITE: u8 = 0x08;
    const UPPER_INFINITE: u8 = 0x10;
    let (&flags, _) = b.split_first()?;
    let mut at = 1;
    let mut bounds = Vec::new();
    if flags & EMPTY == 0 {
        for infinite in [LOWER_INFINITE, UPPER_INFINITE] {
            if flags & infinite == 0 {
                let len = usize::try_from(be_i32(b, at)?).ok()?;
                bounds.push(b.get(at + 4..at + 4 + len)?);
                at += 4 + len;
            }
        }
    }
    (at == b.len()).then_some(bounds)
}

/// The first sensitive entity `value` shows read as a big-endian integer or a binary numeric.
pub(crate) fn number_reading(
    masker: &portcullis_masking::Masker,
    value: &[u8],
) -> Option<portcullis_masking::Entity> {
    [int_text(value), numeric_text(value)]
        .iter()
        .flatten()
        .find_map(|r| masker.contains_sensitive(r))
}

/// A binary int2/int4/int8 as decimal text.
pub(crate) fn int_text(b: &[u8]) -> Option<String> {
    match b.len() {
        2 => Some(i16::from_be_bytes(b.try_into().ok()?).to_string()),
        4 => Some(i32::from_be_bytes(b.try_into().ok()?).to_string()),
        8 => Some(i64::from_be_bytes(b.try_into().ok()?).to_string()),
        _ => None,
    }
}

/// A binary numeric as decimal text (digits in base 10000, `weight` groups before the
/// point). NaN and infinities have no digits to find and come back as `None`.
pub(crate) fn numeric_text(b: &[u8]) -> Option<String> {
    let ndigits = usize::try_from(be_i16(b, 0)?).ok()?;
    let weight = i32::from(be_i16(b, 2)?);
    let sign = be_i16(b, 4)? as u16;
    let dscale = usize::try_from(be_i16(b, 6)?).ok()?;
    if b.len() != 8 + 2 * ndigits || !matches!(sign, 0x0000 | 0x4000) {
        return None;
    }
    let digit = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < ndigits)
            .and_then(|i| be_i16(b, 8 + 2 * i))
            .unwrap_or(0)
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    }
    for i in 0..=weight {
        let _ = if i == 0 {
            write!(s, "{}", digit(i))
        } else {
            write!(s, "{:04}", digit(i))
        };
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

/// A binary macaddr/macaddr8 as text.
pub(crate) fn mac_text(b: &[u8]) -> Option<String> {
    matches!(b.len(), 6 | 8).then(|| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// A binary inet/cidr (family, bits, is_cidr, length, address) as text.
pub(crate) fn inet_text(b: &[u8]) -> Option<String> {
    let (family, n) = (*b.first()?, usize::from(*b.get(3)?));
    let addr = b.get(4..4 + n)?;
    match (family, addr.len()) {
        (2, 4) => Some(std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string()),
        (3, 16) => {
            let octets: [u8; 16] = addr.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(octets).to_string())
        }
        _ => None,
    }
}

/// A binary array split into its header (dimensions and element type, kept as is) and its
/// elements (`None` for NULL).
pub(crate) struct BinaryArray<'a> {
    pub(crate) header: &'a [u8],
    pub(crate) elements: Vec<Option<&'a [u8]>>,
}

/// Splits a binary array of any number of dimensions; `None` when it is not well formed.
pub(crate) fn array_elements(b: &[u8]) -> Option<BinaryArray<'_>> {
    let ndim = usize::try_from(be_i32(b, 0)?).ok()?;
    if ndim > 6 {
        return None;
    }
    let header = 12 + 8 * ndim;
    let mut at = header;
    let mut elements = Vec::new();
    while at < b.len() {
        let len = be_i32(b, at)?;
        at += 4;
        if len == -1 {
            elements.push(None);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        elements.push(Some(b.get(at..at.checked_add(len)?)?));
        at += len;
    }
    Some(BinaryArray {
        header: b.get(..header)?,
        elements,
    })
}

/// Re-encodes a binary array from its header and elements.
pub(crate) fn array_encode(header: &[u8], elements: &[Option<Vec<u8>>]) -> Option<Vec<u8>> {
    let mut out = header.to_vec();
    for e in elements {
        match e {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&i32::try_from(v.len()).ok()?.to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: &[i16], weight: i16, sign: u16, dscale: i16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(ndigits.len() as i16).to_be_bytes());
        b.extend_from_slice(&weight.to_be_bytes());
        b.extend_from_slice(&sign.to_be_bytes());
        b.extend_from_slice(&dscale.to_be_bytes());
        for d in ndigits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn binary_numbers_read_as_their_decimal_text() {
        // 4111111111111111 = 4111 1111 1111 1111 in base 10000.
        let card = numeric(&[4111, 1111, 1111, 1111], 3, 0, 0);
        assert_eq!(numeric_text(&card).as_deref(), Some("4111111111111111"));
        assert_eq!(
            numeric_text(&numeric(&[12, 3400], 0, 0x4000, 2)).as_deref(),
            Some("-12.34")
        );
        assert_eq!(
            numeric_text(&numeric(&[5], -1, 0, 4)).as_deref(),
            Some("0.0005")
        );
        assert_eq!(numeric_text(&numeric(&[], 0, 0xC000, 0)), None);
        assert_eq!(numeric_text(&[0, 5]), None);
        assert_eq!(int_text(&42i32.to_be_bytes()).as_deref(), Some("42"));
        assert_eq!(int_text(&[1, 2, 3]), None);
    }

    #[test]
    fn binary_network_addresses_and_arrays() {
        assert_eq!(
            inet_text(&[2, 32, 0, 4, 10, 0, 0, 7]).as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(inet_text(&[2, 32, 0, 4, 10]), None);
        assert_eq!(
            mac_text(&[0x08, 0, 0x2b, 1, 2, 3]).as_deref(),
            Some("08:00:2b:01:02:03")
        );
        let mut arr = Vec::new();
        for v in [1i32, 1, 25, 2, 1] {
            arr.extend_from_slice(&v.to_be_bytes());
        }
        arr.extend_from_slice(&3i32.to_be_bytes());
        arr.extend_from_slice(b"abc");
        arr.extend_from_slice(&(-1i32).to_be_bytes());
        let BinaryArray { header, elements } = array_elements(&arr).expect("array");
        assert_eq!(elements, vec![Some(&b"abc"[..]), None]);
        let owned: Vec<Option<Vec<u8>>> = elements.iter().map(|e| e.map(<[u8]>::to_vec)).collect();
        assert_eq!(array_encode(header, &owned).as_deref(), Some(&arr[..]));
        assert!(array_elements(&arr[..arr.len() - 6]).is_none());
    }
}
