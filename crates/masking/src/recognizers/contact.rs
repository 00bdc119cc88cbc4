//! Contact data: e-mail addresses and telephone numbers.
//!
//! Phone numbers are the noisiest entity: every pattern demands separators or a `+`, so plain
//! digit runs (ids, amounts, epoch timestamps) never hit, and validators reject date layouts
//! and numbers glued to longer dotted or dashed runs.

use std::ops::Range;

use super::checks::{after, before, glued_to_number};
use super::{Class, Locate, NEAR, Recognizer, wb};
use crate::Entity;

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::Email,
        pattern: concat!(
            wb!(),
            r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}",
            wb!()
        ),
        check: email,
        reach: NEAR,
        locate: Locate::Run(Class::Email),
    },
    Recognizer {
        entity: Entity::Phone,
        pattern: r"\+[1-9](?:[ .-]?\(?[0-9]{1,5}\)?){1,7}",
        check: international,
        reach: NEAR,
        locate: Locate::Run(Class::Phone),
    },
    Recognizer {
        entity: Entity::Phone,
        pattern: concat!(
            r"(?:",
            wb!(),
            r"1[ .-])?(?:\([2-9][0-9]{2}\)[ .-]?|",
            wb!(),
            r"[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}",
            wb!()
        ),
        check: north_american,
        reach: GROUPED,
        locate: Locate::Run(Class::Phone),
    },
    Recognizer {
        entity: Entity::Phone,
        // Three or more groups of one separator kind, or a trunk prefix and one long group;
        // this keeps `03-05` of every date from being a candidate at all.
        pattern: concat!(
            r"(?:(?:\(0[0-9]{1,4}\) ?|",
            wb!(),
            r"0[0-9]{1,4} )[0-9]{2,4}(?: [0-9]{2,4}){1,3}|",
            wb!(),
            r"0[0-9]{1,4}-[0-9]{2,4}(?:-[0-9]{2,4}){1,3}|(?:\(0[0-9]{1,4}\) ?|",
            wb!(),
            r"0[0-9]{2,4}[ -])[0-9]{6,8})",
            wb!()
        ),
        check: national,
        reach: GROUPED,
        locate: Locate::Run(Class::Phone),
    },
];

/// Trims what cannot start a local part (`..`, a leading dot), checks label shapes and
/// lengths, and rejects file names such as `icon@2x.png`.
fn email(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    const FILE_EXTENSIONS: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "css", "js", "ts", "map", "json",
        "txt", "pdf",
    ];
    let m = &text[r.clone()];
    let at = m.find('@')?;
    let (local, domain) = (&m[..at], &m[at + 1..]);
    let from = local.rfind("..").map_or(0, |i| i + 2);
    let from = from + local[from..].len() - local[from..].trim_start_matches(['.', '\'']).len();
    let local = &local[from..];
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    let tld = domain.rsplit('.').next().unwrap_or_default();
    // `scheme://user@host` and `scheme://user:password@host` are URL userinfo, not an
    // address: a `://` earlier in the same token.
    let userinfo = in_url_authority(text, r.start + from);
    let ok = !local.is_empty()
        && !userinfo
        && !local.ends_with('.')
        && labels_ok
        && domain.len() <= 253
        && !FILE_EXTENSIONS.iter().any(|e| tld.eq_ignore_ascii_case(e));
    ok.then_some(r.start + from..r.end)
}

/// Whether `pos` lies in a URL's authority: `://` comes before it in the same token (no
/// whitespace, quote, `/` or `<>` between), within 256 bytes.
fn in_url_authority(text: &str, pos: usize) -> bool {
    let b = text.as_bytes();
    let floor = pos.saturating_sub(256);
    let mut i = pos;
    while i > floor {
        if b[i - 1] == b'/' {
            return i >= 3 && &b[i - 3..i] == b"://";
        }
        if b[i - 1].is_ascii_whitespace() || matches!(b[i - 1], b'"' | b'\'' | b'<' | b'>') {
            return false;
        }
        i -= 1;
    }
    false
}

/// Digit groups of a phone candidate: (end offset within the match, digits so far).
fn groups(m: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut digits = 0;
    for (i, &b) in m.iter().enumerate() {
        if b.is_ascii_digit() {
            digits += 1;
            if m.get(i + 1).is_none_or(|n| !n.is_ascii_digit()) {
                out.push((i + 1, digits));
            }
        }
    }
    out
}

/// `+CC …` with 8–15 digits. A greedy match that ran on into a following number is cut back
/// to the last group that keeps it within 15 digits.
fn international(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    if before(text, r.start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'+') {
        return None;
    }
    let m = &text.as_bytes()[r.clone()];
    let &(end, digits) = groups(m).iter().rev().find(|&&(_, d)| d <= 15)?;
    let mut end = end;
    // Keep a closing parenthesis that belongs to the last group.
    if m.get(end) == Some(&b')') {
        end += 1;
    }
    let kept = &m[..end];
    let balanced =
        kept.iter().filter(|&&b| b == b'(').count() == kept.iter().filter(|&&b| b == b')').count();
    let glued = end == m.len() && after(text, r.end).is_some_and(|b| b.is_ascii_alphabetic());
    (digits >= 8 && balanced && !glued).then_some(r.start..r.start + end)
}

fn north_american(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let starts_clean =
        before(text, r.start).is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'+'));
    (starts_clean && !glued_to_number(text, &r, b"-.") && !inside_longer_number(text, &r))
        .then_some(r)
}

/// Whether the candidate is some groups of a longer space-grouped number: next to it, one
/// space apart, a group of up to [`GROUP`] digits and hex or capital letters with a digit in
/// it, standing alone (a space, line or punctuation other than `.`, `-`, `:` on its far
/// side). These are the groups of an IBAN or card number that failed its own check
/// (`DE89 3704 «0044 0532 0130» 00`) or of a hex dump (`4ebe «0377 6356 8023» cc75`); a
/// number next to a word, a date or an address is not. Reads at most [`GROUPED`] bytes past
/// the candidate, its recognizers' reach.
fn inside_longer_number(text: &str, r: &Range<usize>) -> bool {
    let b = text.as_bytes();
    let in_group = |c: u8| c.is_ascii_digit() || c.is_ascii_uppercase() || matches!(c, b'a'..=b'f');
    let alone = |edge: Option<&u8>| {
        edge.is_none_or(|&c| !matches!(c, b'.' | b'-' | b':') && !c.is_ascii_alphanumeric())
    };
    let group = |g: &[u8]| (1..=GROUP).contains(&g.len()) && g.iter().any(u8::is_ascii_digit);
    let pre = r.start >= 2 && b[r.start - 1] == b' ' && {
        let end = r.start - 1;
        let start = (end.saturating_sub(GROUP + 1)..end)
            .rev()
            .take_while(|&i| in_group(b[i]))
            .last()
            .unwrap_or(end);
        group(&b[start..end]) && alone(start.checked_sub(1).map(|i| &b[i]))
    };
    let post = b.get(r.end) == Some(&b' ') && {
        let start = r.end + 1;
        let end = (start..b.len().min(start + GROUP + 1))
            .find(|&i| !in_group(b[i]))
            .unwrap_or(b.len().min(start + GROUP + 1));
        group(&b[start..end]) && alone(b.get(end))
    };
    pre || post
}

/// The longest group [`inside_longer_number`] takes for one.
const GROUP: usize = 8;

/// What it reads past a candidate: the space, a group and the byte after it.
const GROUPED: usize = GROUP + 2;

/// National trunk-prefix numbers: 9–12 digits, one separator kind, not a date.
fn national(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text.as_bytes()[r.clone()];
    let groups: Vec<&[u8]> = m
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let digits: usize = lens.iter().sum();
    let seps: Vec<u8> = m
        .iter()
        .copied()
        .filter(|b| matches!(b, b' ' | b'-'))
        .collect();
    let one_kind = seps.windows(2).all(|w| w[0] == w[1]);
    // `05-06-2024 …`: day, month, four-digit year.
    let date_like = lens.len() >= 3
        && lens[..3] == [2, 2, 4]
        && (groups[2].starts_with(b"19") || groups[2].starts_with(b"20"));
    let zip_plus4 = lens == [5, 4] && seps == [b'-'];
    // SSN layout, `00` international prefixes, and dashed pairs (`01-23-45-67-89`, a MAC or
    // hex dump more often than a phone number).
    let ssn_like = lens == [3, 2, 4];
    let dashed_pairs = seps.first() == Some(&b'-') && lens.iter().all(|&l| l == 2);
    let continued = matches!(after(text, r.end), Some(b'-' | b'.' | b':'))
        && text
            .as_bytes()
            .get(r.end + 1)
            .is_some_and(u8::is_ascii_alphanumeric);
    let ok = (9..=12).contains(&digits)
        && one_kind
        && !date_like
        && !zip_plus4
        && !ssn_like
        && !dashed_pairs
        && !continued
        && !m.starts_with(b"00")
        && !glued_to_number(text, &r, b"-.")
        && !inside_longer_number(text, &r)
        && before(text, r.start).is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'+'));
    ok.then_some(r)
}
