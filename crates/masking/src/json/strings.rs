//! JSON string literals: decoding validated content (escapes, surrogate pairs) and encoding
//! masked text back into a literal.

use std::borrow::Cow;

/// The value of validated string content.
pub(super) fn decode(content: &str, escaped: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(content);
    }
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = &rest[i + 1..];
        let (c, used) = match esc.as_bytes().first() {
            Some(b'b') => ('\u{8}', 1),
            Some(b'f') => ('\u{c}', 1),
            Some(b'n') => ('\n', 1),
            Some(b'r') => ('\r', 1),
            Some(b't') => ('\t', 1),
            Some(b'u') => unicode_escape(esc),
            Some(&c) => (char::from(c), 1),
            None => break,
        };
        out.push(c);
        rest = esc.get(used..).unwrap_or_default();
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes `uXXXX` (and a following low surrogate); lone surrogates become U+FFFD.
fn unicode_escape(esc: &str) -> (char, usize) {
    let hex = |s: Option<&str>| s.and_then(|h| u32::from_str_radix(h, 16).ok());
    let Some(hi) = hex(esc.get(1..5)) else {
        return ('\u{fffd}', 1);
    };
    if (0xd800..0xdc00).contains(&hi)
        && esc.get(5..7) == Some("\\u")
        && let Some(lo) = hex(esc.get(7..11)).filter(|lo| (0xdc00..0xe000).contains(lo))
    {
        let c = char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
        return (c.unwrap_or('\u{fffd}'), 11);
    }
    (char::from_u32(hi).unwrap_or('\u{fffd}'), 5)
}

/// `s` as a JSON string literal.
pub(super) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
