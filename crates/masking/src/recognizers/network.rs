//! Network addresses: IPv4 (octet range, version-string context), IPv6 (parsed by
//! [`std::net::Ipv6Addr`]) and MAC addresses (colon, dash and Cisco dotted forms).

use std::net::Ipv6Addr;
use std::ops::Range;

use super::checks::{after, before, glued_to_number};
use super::{Class, Locate, NEAR, Recognizer, wb};
use crate::Entity;

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::Ipv4,
        pattern: concat!(wb!(), r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}", wb!()),
        check: ipv4,
        reach: NEAR,
        locate: Locate::Run(Class::Dotted),
    },
    Recognizer {
        entity: Entity::Ipv6,
        pattern: r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}",
        check: ipv6,
        reach: NEAR,
        locate: Locate::Run(Class::HexColon),
    },
    Recognizer {
        entity: Entity::MacAddress,
        pattern: concat!(
            wb!(),
            r"(?:[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}(?:(?::[0-9A-Fa-f]{2}){2})?",
            r"|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}(?:(?:-[0-9A-Fa-f]{2}){2})?",
            r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})",
            wb!()
        ),
        check: mac,
        reach: NEAR,
        locate: Locate::Run(Class::Mac),
    },
];

/// Octets ≤ 255, not part of a longer dotted run, not a version (`1.2.3.4-beta`,
/// `1.2.3.4+build`, `version 1.2.3.4`).
fn ipv4(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let octets_ok = text[r.clone()]
        .split('.')
        .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
    let b = text.as_bytes();
    let suffix = matches!(after(text, r.end), Some(b'-' | b'+'))
        && b.get(r.end + 1).is_some_and(u8::is_ascii_alphabetic);
    let ok =
        octets_ok && !suffix && !glued_to_number(text, &r, b".") && !version_before(text, r.start);
    ok.then_some(r)
}

/// Whether the word before `pos` (skipping spaces, `:` and `=`) is a version keyword.
fn version_before(text: &str, pos: usize) -> bool {
    const WORDS: &[&str] = &[
        "version", "ver", "ver.", "release", "build", "firmware", "v",
    ];
    let head = text.as_bytes()[..pos].trim_ascii_end();
    let head = head
        .strip_suffix(b":")
        .or_else(|| head.strip_suffix(b"="))
        .unwrap_or(head);
    let head = head.trim_ascii_end();
    WORDS.iter().any(|w| {
        let w = w.as_bytes();
        head.len() >= w.len()
            && head[head.len() - w.len()..].eq_ignore_ascii_case(w)
            && head
                .len()
                .checked_sub(w.len() + 1)
                .is_none_or(|i| !head[i].is_ascii_alphabetic())
    })
}

/// Trims a single colon the candidate borrowed from its context, then parses.
fn ipv6(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text[r.clone()];
    let lead = usize::from(m.starts_with(':') && !m.starts_with("::"));
    let trail = usize::from(m.ends_with(':') && !m.ends_with("::"));
    let span = r.start + lead..r.end - trail;
    let cand = text.get(span.clone())?;
    let pre = before(text, span.start);
    let post = after(text, span.end);
    let glued = pre.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        || post.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        || glued_to_number(text, &span, b".")
        // The greedy candidate stopped at its group limit but the run goes on.
        || after(text, r.end) == Some(b':');
    let non_empty = cand.split(':').filter(|g| !g.is_empty()).count();
    let hex_digits = cand.bytes().filter(u8::is_ascii_hexdigit).count();
    let eui64 = cand.split(':').count() == 8 && cand.split(':').all(|g| g.len() == 2);
    let ok =
        !glued && non_empty >= 2 && hex_digits >= 4 && !eui64 && cand.parse::<Ipv6Addr>().is_ok();
    ok.then_some(span)
}

/// Contains a digit (dotted form: a digit and a letter), and is not a piece of a longer run
/// of groups.
fn mac(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text.as_bytes()[r.clone()];
    let has_digit = m.iter().any(u8::is_ascii_digit);
    let dotted = m.contains(&b'.');
    let letters_ok = !dotted || m.iter().any(u8::is_ascii_alphabetic);
    let b = text.as_bytes();
    let continues = |sep: Option<u8>, next: Option<&u8>| {
        sep.is_some_and(|s| matches!(s, b':' | b'-' | b'.'))
            && next.is_some_and(u8::is_ascii_hexdigit)
    };
    let runs_on = continues(after(text, r.end), b.get(r.end + 1))
        || continues(
            before(text, r.start),
            r.start.checked_sub(2).and_then(|i| b.get(i)),
        );
    (has_digit && letters_ok && !runs_on).then_some(r)
}
