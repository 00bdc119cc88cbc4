//! Whether a constant pattern keeps some rows out: `LIKE '%'`, `~ ''` or `SIMILAR TO '%'`
//! match every string and restrict nothing.
//!
//! Deciding exactly which regular expressions match every string needs a regex engine, so
//! the reading is conservative: a pattern restricts only when it has a character that every
//! match must contain. Patterns the reading cannot follow (alternation, groups, embedded
//! options, escapes) are taken to match everything (fail closed).

/// The pattern languages of PostgreSQL (manual §9.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern {
    /// LIKE and ILIKE: `%` and `_` are wildcards, `\` escapes; the whole string must match.
    Like,
    /// SIMILAR TO: LIKE's wildcards plus regular-expression operators; the whole string.
    Similar,
    /// POSIX regular expressions (`~`, `~*`): a match anywhere in the string.
    Regex,
}

impl Pattern {
    /// The language of a pattern operator (`~~` is LIKE, `~` a regular expression).
    pub(super) fn of_operator(op: &str) -> Option<Self> {
        match op.trim_start_matches('!') {
            "~~" | "~~*" => Some(Self::Like),
            "~" | "~*" => Some(Self::Regex),
            _ => None,
        }
    }
}

/// Whether `pattern` keeps some strings out.
pub(super) fn restricts(kind: Pattern, pattern: &str) -> bool {
    match kind {
        Pattern::Like => like_restricts(pattern),
        Pattern::Similar => required_literal(pattern, SIMILAR_SPECIAL),
        Pattern::Regex => !pattern.starts_with("***") && required_literal(pattern, REGEX_SPECIAL),
    }
}

/// A LIKE pattern restricts when it has any character besides `%` (an `_` keeps out the
/// empty string only, so it does not count).
fn like_restricts(pattern: &str) -> bool {
    pattern.chars().any(|c| c != '%' && c != '_')
}

const SIMILAR_SPECIAL: &[char] = &[
    '%', '_', '|', '*', '+', '?', '{', '}', '(', ')', '[', ']', '\\',
];

const REGEX_SPECIAL: &[char] = &[
    '.', '[', ']', '(', ')', '{', '}', '*', '+', '?', '|', '^', '$', '\\',
];

/// Whether the pattern has an ordinary character, outside brackets, that no quantifier
/// makes optional, with no alternation anywhere (`a|` matches everything) and no group
/// (which a quantifier after it could make optional, or which may set options).
fn required_literal(pattern: &str, special: &[char]) -> bool {
    if pattern.contains(['|', '(']) {
        return false;
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut in_bracket = false;
    for (i, c) in chars.iter().enumerate() {
        match c {
            '[' if !in_bracket => in_bracket = true,
            ']' if in_bracket => in_bracket = false,
            _ if in_bracket || special.contains(c) => {}
            _ => {
                let optional = matches!(chars.get(i + 1), Some('?' | '*' | '{'));
                let escaped = i > 0 && chars.get(i - 1) == Some(&'\\');
                if !optional && !escaped {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{Pattern, restricts};

    #[test]
    fn patterns_that_match_everything_restrict_nothing() {
        for like in ["%", "%%", "", "_%", "%_%"] {
            assert!(!restricts(Pattern::Like, like), "LIKE {like:?}");
        }
        for regex in [
            "", ".*", "^", "$", "x?", "a*", "a|b", "(?x) #", "***=", "\\y", "[a-z]",
        ] {
            assert!(!restricts(Pattern::Regex, regex), "~ {regex:?}");
        }
        for similar in ["%", "%%", "(a|%)", "x*", "_%"] {
            assert!(
                !restricts(Pattern::Similar, similar),
                "SIMILAR TO {similar:?}"
            );
        }
    }

    #[test]
    fn patterns_with_a_required_character_restrict() {
        for like in ["a%", "%a%", "\\%", "abc"] {
            assert!(restricts(Pattern::Like, like), "LIKE {like:?}");
        }
        for regex in ["^abc", "abc", "@example\\.com$", "^a.*"] {
            assert!(restricts(Pattern::Regex, regex), "~ {regex:?}");
        }
        for similar in ["abc%", "%x%"] {
            assert!(
                restricts(Pattern::Similar, similar),
                "SIMILAR TO {similar:?}"
            );
        }
    }
}
