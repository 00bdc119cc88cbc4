//! Validators and context helpers shared by the recognizers.

use std::ops::Range;

/// The byte just before `pos`, if any.
pub(super) fn before(text: &str, pos: usize) -> Option<u8> {
    pos.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i).copied())
}

/// The byte at `pos` (just after a range ending there), if any.
pub(super) fn after(text: &str, pos: usize) -> Option<u8> {
    text.as_bytes().get(pos).copied()
}

/// ASCII letter, digit or underscore: a byte of a word, as `\b` takes it.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `pos` is preceded by a digit and one of `seps`, or followed by one of `seps` and a
/// digit: the candidate is a piece of a longer number (`1.2.3.4.5`, `123-45-6789-0`).
pub(super) fn glued_to_number(text: &str, range: &Range<usize>, seps: &[u8]) -> bool {
    let b = text.as_bytes();
    let pre = range.start >= 2
        && seps.contains(&b[range.start - 1])
        && b[range.start - 2].is_ascii_digit();
    let post = range.end + 1 < b.len()
        && seps.contains(&b[range.end])
        && b[range.end + 1].is_ascii_digit();
    pre || post
}

/// Luhn (mod 10) over ASCII digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let twice = v * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 7064 mod 97-10 as used by IBANs: first four characters moved to the end, letters as
/// 10..=35, the number mod 97 must be 1. `chars` are ASCII upper-case letters and digits.
pub(super) fn iban_mod97(chars: &[u8]) -> bool {
    let (head, tail) = chars.split_at(4.min(chars.len()));
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
pub(super) fn entropy(s: &str) -> f64 {
    let mut freq = [0u32; 256];
    for &b in s.as_bytes() {
        freq[usize::from(b)] += 1;
    }
    let len = s.len() as f64;
    freq.iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum()
}

/// How many of {lower case, upper case, digit} occur in `s`.
pub(super) fn char_classes(s: &str) -> usize {
    let b = s.as_bytes();
    [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
    ]
    .into_iter()
    .filter(|&x| x)
    .count()
}

/// Values that stand for a secret rather than being one: templates and references
/// (`${DB_PASS}`, `{{ secret }}`, `<password>`, `%(pw)s`), already-masked values (`****`,
/// `[REDACTED]`), a repeated single character, and type names or null-ish words found where
/// code declares a field (`password: String`).
pub(super) fn is_placeholder(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "null",
        "none",
        "nil",
        "true",
        "false",
        "undefined",
        "empty",
        "required",
        "optional",
        "redacted",
        "hidden",
        "masked",
        "secret",
        "n/a",
        "str",
        "string",
        "text",
        "int",
        "bool",
        "bytes",
        "varchar",
        "char",
        "option",
        "self",
        "this",
        "os",
        "env",
        // Well-known stand-ins for a password in samples and defaults.
        "changeme",
        "change_me",
        "changeit",
        "placeholder",
        "example",
        "your_password",
        "yourpassword",
    ];
    let Some(first) = value.chars().next() else {
        return true;
    };
    reference(value)
        || value.chars().all(|c| c == first)
        || WORDS.iter().any(|w| value.eq_ignore_ascii_case(w))
}

/// Whether the whole value refers to a value kept elsewhere rather than being one: a shell or
/// template variable (`$DB_PASS`, `${DB_PASS}`, `$(cat f)`, `{{ pass }}`, `%(db_password)s`,
/// `%s`, `%DB_PASS%`), or a described slot (`<password>`, `[secret]`, `(hidden)`). A value
/// that only starts like one (`$ecr3tP4ss`, `%41bc`, `{abc`) is a value.
fn reference(value: &str) -> bool {
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let wrapped = |open: &str, close: &str| {
        value.len() >= open.len() + close.len() && value.starts_with(open) && value.ends_with(close)
    };
    // `$DB_PASS`, not `$ecr3tP4ss`: an environment variable's name has no lower case. A
    // lower-case `$password` is masked too; a variable masked is the safe mistake.
    let upper = |s: &str| ident(s) && !s.bytes().any(|b| b.is_ascii_lowercase());
    if let Some(rest) = value.strip_prefix('$') {
        return upper(rest) || wrapped("${", "}") || wrapped("$(", ")");
    }
    if let Some(rest) = value.strip_prefix('%') {
        let python = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .is_some_and(|(name, conv)| ident(name) && conv.len() == 1);
        let windows = rest.strip_suffix('%').is_some_and(ident);
        return python || windows || matches!(rest, "s" | "d" | "v");
    }
    wrapped("{", "}") || wrapped("<", ">") || wrapped("[", "]") || wrapped("(", ")")
}

/// Whether one of `needles` (ASCII, lower case) occurs in `hay` ignoring ASCII case.
pub(super) fn contains_ci(hay: &[u8], needles: &[&str]) -> bool {
    needles.iter().any(|n| {
        let n = n.as_bytes();
        hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    })
}

/// The byte range `[start - radius, end + radius]` clamped to the text, for context searches.
/// Byte slices are fine here: only ASCII needles are searched in them.
pub(super) fn window<'t>(text: &'t str, range: &Range<usize>, radius: usize) -> &'t [u8] {
    let b = text.as_bytes();
    &b[range.start.saturating_sub(radius)..range.end.saturating_add(radius).min(b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_mod97() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"79927398713"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB83WEST12345698765432"));
    }

    #[test]
    fn entropy_and_placeholders() {
        assert!(entropy("aaaaaaaa") < 0.01);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(is_placeholder("${DB_PASSWORD}"));
        assert!(is_placeholder("********"));
        assert!(is_placeholder("String"));
        assert!(!is_placeholder("hunter2"));
        assert_eq!(char_classes("aB3"), 3);
    }
}
