//! Government identifiers: US social security numbers, UK National Insurance numbers and US
//! passport numbers. Bare nine-digit SSNs and passport numbers are only taken after a naming
//! keyword, since any nine-digit number would otherwise hit.

use std::ops::Range;

use super::checks::glued_to_number;
use super::{Class, Locate, NEAR, Recognizer, wb};
use crate::Entity;

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::UsSsn,
        pattern: concat!(
            wb!(),
            r"(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})",
            wb!()
        ),
        check: ssn,
        reach: NEAR,
        locate: Locate::Run(Class::Dashed),
    },
    Recognizer {
        entity: Entity::UsSsn,
        pattern: concat!(
            r#"(?i:ssn|ss#|social[ _-]?security)[ \t:=#.,"'_-]{0,4}"#,
            r#"(?:(?i:number|num|no)[ \t:=#.,"'_-]{0,4})?[0-9]{9}"#,
            wb!()
        ),
        check: |text, r| ssn(text, r.end - 9..r.end),
        reach: NEAR,
        locate: Locate::Prefix(&["ssn", "ss#", "social"]),
    },
    Recognizer {
        entity: Entity::UkNino,
        pattern: concat!(
            wb!(),
            r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
            wb!()
        ),
        check: nino,
        reach: NEAR,
        locate: Locate::Run(Class::Upper),
    },
    Recognizer {
        entity: Entity::UsPassport,
        pattern: concat!(
            r#"(?i:passport)[ \t:=#.,"'_-]{0,4}"#,
            r#"(?:(?i:number|num|no|nr|id)[ \t:=#.,"'_-]{0,4})?(?:[A-Z][0-9]{8}|[0-9]{9})"#,
            wb!()
        ),
        check: passport,
        reach: NEAR,
        locate: Locate::Prefix(&["passport"]),
    },
];

/// Area not 000, 666 or 900–999; group not 00; serial not 0000; not part of a longer
/// dashed number.
fn ssn(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let digits: Vec<u8> = text.as_bytes()[r.clone()]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    let [a, b, c, g1, g2, s1, s2, s3, s4] = digits[..] else {
        return None;
    };
    let area = u32::from(a) * 100 + u32::from(b) * 10 + u32::from(c);
    let ok = area != 0
        && area != 666
        && area < 900
        && (g1, g2) != (0, 0)
        && (s1, s2, s3, s4) != (0, 0, 0, 0)
        && !glued_to_number(text, &r, b"-.");
    ok.then_some(r)
}

/// Forbidden prefixes, and spaces either everywhere or nowhere.
fn nino(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text.as_bytes()[r.clone()];
    let spaces = m.iter().filter(|&&b| b == b' ').count();
    let prefix_ok = !matches!(
        &m[..2],
        b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
    );
    (prefix_ok && (spaces == 0 || spaces == 4)).then_some(r)
}

/// The nine characters after the keyword, not all the same digit.
fn passport(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let value = r.end - 9..r.end;
    let v = &text.as_bytes()[value.clone()];
    let all_same = v.iter().all(|&b| b == v[8]);
    (!all_same).then_some(value)
}
