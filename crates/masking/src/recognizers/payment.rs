//! Payment data: card numbers (IIN ranges, grouping, Luhn) and IBANs (ISO 13616 country
//! lengths, mod 97).

use std::ops::Range;

use super::checks::{iban_mod97, luhn};
use super::{Class, Locate, NEAR, Recognizer, wb};
use crate::Entity;

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::CreditCard,
        pattern: concat!(wb!(), r"[0-9](?:[ -]?[0-9]){12,18}", wb!()),
        check: card,
        reach: NEAR,
        locate: Locate::Run(Class::Dashed),
    },
    Recognizer {
        entity: Entity::Iban,
        pattern: concat!(wb!(), r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", wb!()),
        check: iban,
        reach: NEAR,
        locate: Locate::Run(Class::Upper),
    },
];

/// The longest (then leftmost) run of whole digit groups in the candidate that is a valid card
/// number: the greedy candidate may have swallowed a neighbouring number
/// (`4111111111111111 12/29` gives `4111111111111111 12`).
fn card(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text.as_bytes()[r.clone()];
    // Group boundaries: (start, end) of each digit run within the match.
    let mut groups = Vec::new();
    let mut start = 0;
    for (i, b) in m.iter().enumerate() {
        if !b.is_ascii_digit() {
            groups.push((start, i));
            start = i + 1;
        }
    }
    groups.push((start, m.len()));
    for len in (1..=groups.len()).rev() {
        for window in groups.windows(len) {
            let (from, to) = (window[0].0, window[len - 1].1);
            if is_card(&m[from..to]) {
                return Some(r.start + from..r.start + to);
            }
        }
    }
    None
}

fn is_card(m: &[u8]) -> bool {
    let digits: Vec<u8> = m.iter().copied().filter(u8::is_ascii_digit).collect();
    (13..=19).contains(&digits.len())
        && grouping_ok(m)
        && issuer_length_ok(&digits)
        && luhn(&digits)
}

/// Bare digits, or one separator kind with groups of four (the last 1–4), or the 4-6-5 and
/// 4-6-4 layouts of Amex and Diners. Rejects lists of small numbers (`1 2 3 4 …`).
fn grouping_ok(m: &[u8]) -> bool {
    let Some(&sep) = m.iter().find(|b| !b.is_ascii_digit()) else {
        return true;
    };
    if m.iter().any(|&b| !b.is_ascii_digit() && b != sep) {
        return false;
    }
    let groups: Vec<usize> = m.split(|&b| b == sep).map(<[u8]>::len).collect();
    let (last, init) = groups.split_last().unwrap_or((&0, &[]));
    let fours = init.iter().all(|&g| g == 4) && (1..=4).contains(last);
    fours || groups == [4, 6, 5] || groups == [4, 6, 4]
}

/// Whether the number starts with a known issuer prefix and has a length that issuer uses.
fn issuer_length_ok(d: &[u8]) -> bool {
    let prefix = |n: usize| -> u32 {
        d.iter()
            .take(n)
            .fold(0, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let len = d.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        // Visa.
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard 2-series and Mir.
        2 => (2221..=2720).contains(&p4) && len == 16 || (2200..=2204).contains(&p4) && len >= 16,
        // Amex; Diners; JCB.
        3 => {
            matches!(p2, 34 | 37) && len == 15
                || ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && len >= 14
                || (3528..=3589).contains(&p4) && len >= 16
        }
        // Mastercard; Maestro 50, 56–59.
        5 => (51..=55).contains(&p2) && len == 16 || matches!(p2, 50 | 56..=59),
        // Discover, UnionPay, RuPay, Maestro 6x.
        6 => true,
        // UnionPay and RuPay 81/82.
        8 => matches!(p2, 81 | 82) && len >= 16,
        _ => false,
    }
}

/// Takes exactly the country's IBAN length from the candidate (which may run on into the next
/// word), requires spaces only between groups of four, and checks mod 97.
fn iban(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text.as_bytes()[r.clone()];
    let want = iban_length(&m[..2])?;
    let mut chars = Vec::with_capacity(want);
    let mut end = 0;
    for (i, &b) in m.iter().enumerate() {
        if chars.len() == want {
            break;
        }
        if b == b' ' {
            if !chars.len().is_multiple_of(4) {
                return None;
            }
        } else {
            chars.push(b);
        }
        end = i + 1;
    }
    // The IBAN must end where a group ends: at the end of the match or before a space.
    let ends_cleanly = m.get(end).is_none_or(|&b| b == b' ');
    (chars.len() == want && ends_cleanly && iban_mod97(&chars)).then_some(r.start..r.start + end)
}

/// IBAN lengths of the SWIFT IBAN registry.
fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}
