//! Short values as they come out of table columns: a name, a status word, a date, an amount,
//! a short note, and in the dense set a sensitive value among them.

use super::{Rng, make};

/// Makers of values that are one sensitive value each, as a column holds them.
const SENSITIVE: &[fn(&mut Rng) -> String] = &[
    make::email,
    make::phone,
    make::ipv4,
    make::card,
    make::ssn,
    make::iban,
    make::mac,
    make::nino,
    make::ipv6,
];

/// Harmless pieces a value is built from.
fn piece(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => make::date(rng),
        1 => make::amount(rng),
        2 => rng.range(1, 999_999).to_string(),
        3 => make::name(rng),
        4 => make::order_number(rng),
        5 => rng.pick(make::CITIES).to_owned(),
        _ => make::word(rng),
    }
}

/// One value of about `len` bytes.
pub(super) fn value(rng: &mut Rng, len: usize, dense: bool) -> String {
    // Up to 40 bytes a dense value is the sensitive value itself, as in an `email` column;
    // longer values are notes that mention one every ~300 bytes.
    let secret = if dense && (len <= 40 || rng.below(300) < len) {
        let make = SENSITIVE[rng.below(SENSITIVE.len())];
        Some(make(rng))
    } else {
        None
    };
    if let (Some(s), true) = (&secret, len <= 40) {
        return s.clone();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut size = secret.as_ref().map_or(0, |s| s.len() + 1);
    while size < len {
        let p = piece(rng);
        size += p.len() + 1;
        parts.push(p);
    }
    if let Some(s) = secret {
        let at = rng.below(parts.len() + 1);
        parts.insert(at, s);
    }
    // A comma keeps digit groups of neighbouring pieces apart: `234 567 8901` would be a
    // phone number.
    parts.join(", ")
}
