//! Escaping every string that comes from an event, for HTML and for Markdown tables.
//!
//! Event strings are attacker-influenced: an agent chooses its SQL, comments included, and a
//! reviewer their comment. In HTML every character with a meaning (`& < > " '`) becomes an
//! entity, in text and attributes alike. In Markdown, the characters CommonMark or GFM
//! tables give a meaning are backslash-escaped, which also keeps raw HTML (`<script>`) from
//! reaching a renderer that would pass it through. In both, control characters (a line
//! break would end a Markdown table row) become a space or U+FFFD.

use std::fmt::Write as _;

/// `s` as HTML text or attribute value.
pub(super) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => push_visible(&mut out, c),
        }
    }
    out
}

/// `s` as the text of a Markdown table cell (GitHub-flavoured Markdown).
pub(super) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => push_visible(&mut out, c),
        }
    }
    if out.is_empty() {
        out.push(' ');
    }
    out
}

/// Control characters become a space (tab, line breaks) or U+FFFD (the rest).
fn push_visible(out: &mut String, c: char) {
    match c {
        '\t' | '\n' | '\r' => out.push(' '),
        // Bidirectional overrides could make a command read differently than it runs.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            let _ = write!(out, "{{U+{:04X}}}", u32::from(c));
        }
        c if c.is_control() => out.push('\u{fffd}'),
        c => out.push(c),
    }
}

/// The first `max` characters of `s`, with `…` when cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_controls() {
        assert_eq!(
            html("SELECT 1 /* </td><script>alert('x')</script> & \"q\" */\n\0"),
            "SELECT 1 /* &lt;/td&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot; */ \u{fffd}"
        );
    }

    #[test]
    fn md_escapes_table_and_html_syntax() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
        assert_eq!(md("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(md("[x](javascript:y)"), "\\[x\\](javascript:y)");
        assert_eq!(md(""), " ");
    }

    #[test]
    fn bidi_overrides_are_shown_not_applied() {
        assert_eq!(html("a\u{202e}b"), "a{U+202E}b");
        assert_eq!(md("a\u{2066}b"), "a{U+2066}b");
    }

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("", 0), "");
    }
}
