//! A tiny case-insensitive glob matcher for column and JSON key names: `*` matches any run of
//! characters (including none), `?` exactly one, everything else itself ignoring ASCII case.
//!
//! It runs for every JSON object key against every name rule, so it works on bytes without
//! allocating: the classic two-pointer algorithm with one backtrack point, advancing by whole
//! UTF-8 characters where a wildcard consumes input.

/// Whether `name` matches `pattern`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // The position of the last `*` seen and the name position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ni += char_len(n[ni]);
            }
            Some(c) if c.eq_ignore_ascii_case(&n[ni]) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` absorb one more character and retry from there.
                Some((sp, sn)) => {
                    let sn = sn + char_len(n[sn]);
                    star = Some((sp, sn));
                    pi = sp + 1;
                    ni = sn;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 character starting with `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        let cases = [
            ("*password*", "user_PASSWORD_hash", true),
            ("*password*", "passwd", false),
            ("pwd", "PWD", true),
            ("pwd", "pwd2", false),
            ("?sn", "ssn", true),
            ("?sn", "sn", false),
            ("*_token", "access_token", true),
            ("*_token", "token", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("e_mail", "E_Mail", true),
            ("??", "é", false),
            ("?", "é", true),
            ("*é*", "caféine", true),
            ("*?x", "éx", true),
            ("*?x", "x", false),
        ];
        let failures: Vec<_> = cases
            .iter()
            .filter(|(p, n, want)| matches(p, n) != *want)
            .collect();
        assert!(failures.is_empty(), "{failures:?}");
    }
}
