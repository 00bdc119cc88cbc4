//! The recognizers: one regular expression and one validator each, grouped by family.
//!
//! A recognizer's pattern finds candidates; its `check` looks at the candidate in its text (so
//! it can inspect context around it) and returns the byte range to mask, or `None` to reject.
//! The range may be narrower than the match (only the value of `password=…`) or a trimmed
//! version of it (an IBAN followed by more letters). Patterns use only ASCII classes and ASCII
//! word boundaries (`(?-u:\b)`) so the lazy DFA never has to give up on non-ASCII text, and
//! they must match only at character boundaries (they are compiled in UTF-8 mode).
//!
//! The streaming masker derives where a stream may be cut from the patterns themselves
//! (`stream/frontier.rs`) and waits for each match's `reach` of context; only a pattern whose
//! match can run to the end of the text (`\z`, the PEM block) needs handling there by hand.
//!
//! - `keys`: PEM private keys, JWTs, cloud and SaaS API keys of known formats.
//! - `secrets`: generic secrets in assignment context and connection-string passwords.
//! - `payment`: card numbers and IBANs.
//! - `government`: US SSN, UK NINO and US passport numbers.
//! - `contact`: e-mail addresses and telephone numbers.
//! - `network`: IPv4, IPv6 and MAC addresses.
//! - `checks`: the shared validators (Luhn, mod-97, entropy, placeholders, context).

mod checks;
pub(crate) use checks::is_word;
mod contact;
mod government;
mod keys;
mod network;
mod payment;
mod secrets;

use std::ops::Range;

use crate::Entity;

pub(crate) use keys::{PEM, PEM_BEGIN, PEM_END};

/// A validator: given the whole text and a candidate match, the range to mask or `None`.
pub(crate) type Check = fn(&str, Range<usize>) -> Option<Range<usize>>;

/// One pattern of one entity. An entity may have several (national and international phone
/// numbers, URL and key/value connection strings).
pub(crate) struct Recognizer {
    pub(crate) entity: Entity,
    pub(crate) pattern: &'static str,
    pub(crate) check: Check,
    /// How many bytes past the end of a match `check` may read: [`NEAR`] for the neighbour
    /// tests (`after`, `glued_to_number`), [`CONTEXT`] for a search for related keys around
    /// the match. The streaming masker holds a match back until that much text after it has
    /// arrived, so a validator never sees less context than it would in the whole text.
    pub(crate) reach: usize,
    /// Where its matches can be, so that the engine runs the pattern there only
    /// (`locate.rs`). A promise about the pattern: the engine's tests hold it against a search
    /// of the whole text.
    pub(crate) locate: Locate,
}

/// How the engine finds the places where a recognizer's pattern can match.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Locate {
    /// Every match starts with one of these literals (ASCII case ignored).
    Prefix(&'static [&'static str]),
    /// Every match lies inside one maximal run of bytes of the class, and such a run holds
    /// what the class requires ([`Class::admits`]).
    Run(Class),
    /// Every match is a URL scheme of 2 to 31 bytes (a letter, then letters, digits, `+`,
    /// `.` or `-`) directly followed by `://`, and what follows.
    Scheme,
}

/// A class of bytes that every match of some recognizers is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `[0-9 -]`, at least 9 digits: card numbers (13) and dashed or spaced SSNs (9).
    Dashed,
    /// `[0-9 .()+-]`, at least 9 digits, or 8 after a `+`: telephone numbers.
    Phone,
    /// `[0-9.]`, at least 4 digits and 3 dots: IPv4 addresses.
    Dotted,
    /// `[A-Z0-9 ]`, at least 2 capitals, 2 digits and 9 bytes: IBANs and UK NINOs.
    Upper,
    /// `[0-9A-Fa-f:.]`, a `::` or at least 6 colons, and 4 hex digits: IPv6 addresses.
    HexColon,
    /// `[0-9A-Fa-f:.-]`, a digit and at least 5 colons, 5 dashes or 2 dots: MAC addresses.
    Mac,
    /// `[A-Za-z0-9._%+'@-]`, an `@` and a dot: e-mail addresses.
    Email,
}

impl Class {
    pub(crate) const ALL: [Class; 7] = [
        Class::Dashed,
        Class::Phone,
        Class::Dotted,
        Class::Upper,
        Class::HexColon,
        Class::Mac,
        Class::Email,
    ];

    /// Whether `b` can be part of a match of this class.
    pub(crate) const fn holds(self, b: u8) -> bool {
        match self {
            Class::Dashed => matches!(b, b'0'..=b'9' | b' ' | b'-'),
            Class::Phone => matches!(b, b'0'..=b'9' | b' ' | b'.' | b'(' | b')' | b'+' | b'-'),
            Class::Dotted => matches!(b, b'0'..=b'9' | b'.'),
            Class::Upper => matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b' '),
            Class::HexColon => matches!(b, b'0'..=b'9' | b'A'..=b'F' | b'a'..=b'f' | b':' | b'.'),
            Class::Mac => {
                matches!(b, b'0'..=b'9' | b'A'..=b'F' | b'a'..=b'f' | b':' | b'.' | b'-')
            }
            Class::Email => matches!(
                b,
                b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'.' | b'_' | b'%' | b'+' | b'\'' | b'@' | b'-'
            ),
        }
    }

    /// Whether matches of this class start only at certain bytes ([`Class::starts_at`], given
    /// a byte and whether a word byte, as `\b` takes it, comes before it). Telephone numbers, cards, SSNs
    /// and IPv4 addresses start with `+`, `(` or a digit at a word boundary; IBANs and NINOs
    /// with a capital at one, MACs with a hex digit at one. IPv6 addresses start anywhere in
    /// a hex run, and e-mail addresses at any word boundary (`.` can open a local part).
    pub(crate) fn starts_somewhere(self) -> bool {
        !matches!(self, Class::HexColon | Class::Email)
    }

    /// [`Class::starts_somewhere`]: whether a match can start at byte `b`.
    #[inline]
    pub(crate) fn starts_at(self, b: u8, after_word: bool) -> bool {
        match self {
            Class::Dashed | Class::Phone | Class::Dotted => {
                matches!(b, b'+' | b'(') || b.is_ascii_digit() && !after_word
            }
            Class::Upper => b.is_ascii_uppercase() && !after_word,
            Class::Mac => b.is_ascii_hexdigit() && !after_word,
            Class::HexColon | Class::Email => true,
        }
    }

    /// Whether a run of this class, with this census, can hold a finding: what every match
    /// needs, and what the validators need (digit groups of the shapes telephone numbers and
    /// SSNs take; an address `Ipv6Addr` parses; a MAC with a digit).
    pub(crate) fn admits(self, run: &[u8], c: &Census) -> bool {
        match self {
            // Cards and SSNs have a group of four digits or more; telephone numbers, bar
            // `+`, one of two (the shortest group a pattern takes).
            Class::Dashed => c.longest >= 4 && (c.digits >= 13 || c.digits >= 9 && ssn_shaped(run)),
            Class::Phone => {
                c.digits >= 8 && c.plus > 0 || c.longest >= 2 && c.digits >= 9 && phone_shaped(run)
            }
            Class::Dotted => c.dots >= 3 && c.digits >= 4 && quad_shaped(run),
            Class::Upper => c.len >= 9 && c.digits >= 2 && c.upper >= 2,
            // Eight groups, or fewer with `::`; six colons with a dotted quad at the end; the
            // validator wants four hex digits.
            Class::HexColon => c.hex >= 4 && (c.double_colon || c.colons >= 6),
            Class::Mac => c.digits > 0 && (c.colons >= 5 || c.dashes >= 5 || c.dots >= 2),
            Class::Email => c.at > 0 && c.dots > 0,
        }
    }
}

/// The maximal runs of digits in `run`, as ranges of it.
fn digit_groups(run: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at + run.get(at..)?.iter().position(u8::is_ascii_digit)?;
        let len = run[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        at = start + len;
        Some(start..at)
    })
}

/// Whether `run` has three digit groups of these lengths in a row, each at most `gap` bytes
/// after the last.
fn groups_in_row(run: &[u8], lens: [usize; 3], gap: usize) -> bool {
    // The two groups before the current one.
    let (mut a, mut b): (Option<Range<usize>>, Option<Range<usize>>) = (None, None);
    for c in digit_groups(run) {
        if let (Some(a), Some(b)) = (&a, &b)
            && [a.len(), b.len(), c.len()] == lens
            && b.start - a.end <= gap
            && c.start - b.end <= gap
        {
            return true;
        }
        a = b.take();
        b = Some(c);
    }
    false
}

/// Four digit groups joined by single dots, and no more: the validator takes no address with
/// a dotted number before or after it (`1.2.3.4.5`), so a run of `1.1.1.1.1…` holds none.
fn quad_shaped(run: &[u8]) -> bool {
    let mut joined = 0;
    let mut last_end = 0;
    for g in digit_groups(run) {
        let continues = joined > 0 && g.start == last_end + 1 && run[last_end] == b'.';
        if !continues {
            if joined == 4 {
                return true;
            }
            joined = 0;
        }
        joined += 1;
        last_end = g.end;
    }
    joined == 4
}

/// Three digit groups of 3, 2 and 4 digits, each pair apart by one byte: an SSN's shape
/// (its pattern's groups are bounded by word boundaries, so they are whole groups).
fn ssn_shaped(run: &[u8]) -> bool {
    groups_in_row(run, [3, 2, 4], 1)
}

/// A North American number's groups (3, 3 and 4 digits in a row, `(415) 555-0132`), or a
/// national number's:
/// a group that starts with `0` and at least 9 digits from it on (what `national` takes).
fn phone_shaped(run: &[u8]) -> bool {
    let north_american = groups_in_row(run, [3, 3, 4], 2);
    // The digits from the first group that starts with `0` on.
    let mut from_zero = None;
    for g in digit_groups(run) {
        if from_zero.is_none() && run[g.start] == b'0' {
            from_zero = Some(0);
        }
        if let Some(digits) = &mut from_zero {
            *digits += g.len();
        }
    }
    let national = from_zero.is_some_and(|digits| digits >= 9);
    north_american || national
}

/// What a run is made of, counted once.
#[derive(Debug, Default)]
pub(crate) struct Census {
    pub(crate) len: usize,
    pub(crate) digits: usize,
    pub(crate) upper: usize,
    /// Hex digits, either case.
    pub(crate) hex: usize,
    /// The longest run of digits.
    pub(crate) longest: usize,
    pub(crate) colons: usize,
    pub(crate) double_colon: bool,
    pub(crate) dashes: usize,
    pub(crate) dots: usize,
    pub(crate) plus: usize,
    pub(crate) at: usize,
}

impl Census {
    pub(crate) fn of(run: &[u8]) -> Census {
        // Per kind of byte (see `KIND`): how many.
        let mut n = [0usize; 10];
        let mut double_colon = false;
        let mut last = 0;
        let (mut streak, mut longest) = (0, 0);
        for &b in run {
            let kind = KIND[usize::from(b)];
            n[usize::from(kind)] += 1;
            double_colon |= b == b':' && last == b':';
            streak = if kind == 1 { streak + 1 } else { 0 };
            longest = longest.max(streak);
            last = b;
        }
        let [
            _,
            digits,
            upper_hex,
            upper,
            lower_hex,
            colons,
            dashes,
            dots,
            plus,
            at,
        ] = n;
        Census {
            len: run.len(),
            digits,
            upper: upper + upper_hex,
            hex: digits + upper_hex + lower_hex,
            longest,
            colons,
            double_colon,
            dashes,
            dots,
            plus,
            at,
        }
    }
}

/// The kind of each byte for [`Census::of`]: 1 digit, 2 `A-F`, 3 other capital, 4 `a-f`,
/// 5 `:`, 6 `-`, 7 `.`, 8 `+`, 9 `@`, 0 anything else.
const KIND: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'0'..=b'9' => 1,
            b'A'..=b'F' => 2,
            b'G'..=b'Z' => 3,
            b'a'..=b'f' => 4,
            b':' => 5,
            b'-' => 6,
            b'.' => 7,
            b'+' => 8,
            b'@' => 9,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// The reach of validators that look only at the two bytes after a match.
pub(crate) const NEAR: usize = 2;

/// The radius of the context searched around a match for related keys (connection-string
/// markers near a `password=`). Validators read at most this far before a match too, apart
/// from the whitespace that the IPv4 version test skips backwards.
pub(crate) const CONTEXT: usize = 256;

/// An ASCII word boundary, usable by the lazy DFA on any text.
macro_rules! wb {
    () => {
        r"(?-u:\b)"
    };
}
pub(crate) use wb;

/// Every recognizer, in no particular order (priority is the entity's rank).
pub(crate) fn all() -> impl Iterator<Item = &'static Recognizer> {
    [
        keys::RECOGNIZERS,
        secrets::RECOGNIZERS,
        payment::RECOGNIZERS,
        government::RECOGNIZERS,
        contact::RECOGNIZERS,
        network::RECOGNIZERS,
    ]
    .into_iter()
    .flatten()
}

/// Literal anchors of the recognizers that can match text with fewer than two ASCII digits and
/// none of `@`, `:` or `=` (see `gate.rs`). Matched ignoring ASCII case.
pub(crate) const ANCHORS: &[&str] = &[
    "-----BEGIN",
    "eyJ",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "A3T",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "xapp-",
    "hooks.slack.com",
    "k_live_",
    "k_test_",
    "whsec_",
    "sk-",
    "AIza",
    "bearer",
    "basic",
];
