//! Secrets found by their context rather than their format: values assigned to password-,
//! token- or key-like names (`GENERIC_SECRET`), HTTP `Bearer`/`Basic` credentials, and
//! passwords inside connection strings (`CONNECTION_STRING_PASSWORD`). Only the value is
//! masked; the key name stays readable.

use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::checks::{before, char_classes, contains_ci, entropy, is_placeholder, window};
use super::{CONTEXT, Locate, NEAR, Recognizer};
use crate::Entity;

pub(super) const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        entity: Entity::GenericSecret,
        pattern: r#"(?i:password|passwd|passphrase|pass|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]*["']?[ \t]*(?:=>|=|:)[ \t]*(?:"(?:[^"\\\r\n]|\\.)+"|'[^'\r\n]+'|[^\s"',;<>]+)"#,
        check: assignment,
        reach: NEAR,
        locate: Locate::Prefix(GENERIC_KEYS),
    },
    Recognizer {
        entity: Entity::GenericSecret,
        pattern: r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/-]{16,}=*",
        check: bearer,
        reach: NEAR,
        locate: Locate::Prefix(&["bearer"]),
    },
    Recognizer {
        entity: Entity::GenericSecret,
        pattern: r"(?i:basic)[ \t]+[A-Za-z0-9+/]{6,}={0,2}",
        check: basic,
        reach: NEAR,
        locate: Locate::Prefix(&["basic"]),
    },
    Recognizer {
        entity: Entity::ConnectionStringPassword,
        // The password runs to the last `@` before whitespace or the path, so an unescaped `@`
        // inside it is masked too.
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/?#@"'<>\[\]]*:[^\s/?#"'<>]+@"#,
        check: url_password,
        reach: NEAR,
        locate: Locate::Scheme,
    },
    Recognizer {
        entity: Entity::ConnectionStringPassword,
        pattern: r#"(?i:password|pwd)[ \t]*=[ \t]*(?:'(?:[^'\\\r\n]|\\.)+'|"[^"\r\n]+"|\{[^}\r\n]+\}|[^\s;'"&]+)"#,
        check: dsn_password,
        reach: CONTEXT,
        locate: Locate::Prefix(&["password", "pwd"]),
    },
];

/// What every generic assignment starts with (its pattern's key alternatives, ASCII case
/// ignored): the engine runs the pattern only where one of these is.
const GENERIC_KEYS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "api",
    "access",
    "auth",
    "private",
    "credential",
];

/// Key names, longest first so `password` is not taken for `pass` + `word`.
const KEYWORDS: &[&str] = &[
    "passphrase",
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "accesskey",
    "auth_key",
    "auth-key",
    "authkey",
    "private_key",
    "private-key",
    "privatekey",
    "credentials",
    "credential",
];

/// Whether a name starting at `start` begins at an identifier boundary: not inside a word
/// (`bypass`), except at a camelCase hump (`dbPassword`).
fn name_starts_word(text: &str, start: usize) -> bool {
    match before(text, start) {
        Some(b) if b.is_ascii_alphabetic() => {
            b.is_ascii_lowercase() && text.as_bytes()[start].is_ascii_uppercase()
        }
        _ => true,
    }
}

/// The value part of `key<quote?><ws>(=|:|=>)<ws>value` within `r`, without its quotes.
fn value_after_separator(text: &str, r: &Range<usize>) -> Option<(Range<usize>, bool)> {
    let m = &text.as_bytes()[r.clone()];
    let sep = m.iter().position(|&b| b == b'=' || b == b':')?;
    let mut i = sep + 1;
    while i < m.len() && matches!(m[i], b'>' | b' ' | b'\t') {
        i += 1;
    }
    // Quoted only if the match also ends with the matching closer (a bare value may start
    // with `{`).
    let closer = match m.get(i) {
        Some(b'"') => Some(b'"'),
        Some(b'\'') => Some(b'\''),
        Some(b'{') => Some(b'}'),
        _ => None,
    };
    let quoted = m.len() >= i + 2 && closer.is_some() && m.last().copied() == closer;
    let (from, to) = if quoted {
        (i + 1, m.len() - 1)
    } else {
        (i, m.len())
    };
    (from < to).then_some((r.start + from..r.start + to, quoted))
}

fn assignment(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let key_len =
        text[r.clone()].find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))?;
    let key = text[r.start..r.start + key_len].to_ascii_lowercase();
    let keyword = KEYWORDS.iter().find(|k| key.starts_with(*k))?;
    // The name must end at the keyword or continue as a new part (`token_type`, `pwdHash`),
    // not as a longer word (`passenger`, `tokens`, `secretary`).
    let rest = &text[r.start + keyword.len()..r.start + key_len];
    if rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return None;
    }
    // Short keywords must also start a name part (`bypass`); long ones may be glued
    // (`PGPASSWORD`, `mysecret`).
    if matches!(*keyword, "pass" | "pwd") && !name_starts_word(text, r.start) {
        return None;
    }
    let (mut span, quoted) = value_after_separator(text, &r)?;
    // In `key=value` form a bare value ends at `&` (URL query strings); after `:` it may
    // contain one (`passwd: Tr0ub4dor&3`).
    let equals = text[r.start + key_len..span.start].contains('=');
    if let Some(amp) = text[span.clone()].find('&').filter(|_| equals && !quoted) {
        span.end = span.start + amp;
    }
    let value = &text[span.clone()];
    let code_like = !quoted && value.contains(['(', ')', '[', ']']);
    if is_placeholder(value) || code_like {
        return None;
    }
    let password_like = keyword.starts_with("pass") || *keyword == "pwd";
    let ok = if password_like {
        let path_like = *keyword == "pwd" && value.starts_with(['/', '~']);
        value.chars().count() >= 3 && !path_like
    } else {
        high_entropy(value, 8)
    };
    ok.then_some(span)
}

/// At least `min` bytes, two character classes, and entropy close to what random text of
/// that length reaches: `min(3.5, log2(len) - 0.5)` bits per byte, so an 8-byte token needs
/// 2.5 and a long one 3.5 (a slug like `my-k8s-secret-name` has 3.4).
fn high_entropy(value: &str, min: usize) -> bool {
    let threshold = ((value.len() as f64).log2() - 0.5).min(3.5);
    value.len() >= min && char_classes(value) >= 2 && entropy(value) >= threshold
}

/// The token after the scheme word and its whitespace.
fn after_scheme(text: &str, r: &Range<usize>) -> Range<usize> {
    let m = &text[r.clone()];
    let ws = m.find([' ', '\t']).unwrap_or(0);
    let skip = m[ws..]
        .find(|c| c != ' ' && c != '\t')
        .map_or(ws, |i| ws + i);
    r.start + skip..r.end
}

fn bearer(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let value = after_scheme(text, &r);
    (name_starts_word(text, r.start) && high_entropy(&text[value.clone()], 16)).then_some(value)
}

/// `Basic <base64>` counts only when the payload decodes to printable `user:password`.
fn basic(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let value = after_scheme(text, &r);
    let decoded = STANDARD.decode(&text[value.clone()]).ok()?;
    let creds = String::from_utf8(decoded).ok()?;
    let ok = name_starts_word(text, r.start)
        && !creds.chars().any(char::is_control)
        && creds.split_once(':').is_some_and(|(_, pw)| !pw.is_empty());
    ok.then_some(value)
}

/// `scheme://user:PASSWORD@`: the password is between the first `:` of the userinfo and the
/// final `@` of the match.
fn url_password(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let m = &text[r.clone()];
    let authority = m.find("://")? + 3;
    let colon = authority + m[authority..].find(':')?;
    let span = r.start + colon + 1..r.end - 1;
    (!span.is_empty() && !is_placeholder(&text[span.clone()])).then_some(span)
}

/// Keys that mark a libpq or ADO.NET connection string, or a URL.
const MARKERS: &[&str] = &[
    "host=",
    "hostaddr=",
    "server=",
    "data source=",
    "dbname=",
    "database=",
    "user id=",
    "uid=",
    "user=",
    "port=",
    "sslmode=",
    "initial catalog=",
    "://",
];

/// [`MARKERS`] as one automaton (ASCII case ignored), built on first use: a `password=`
/// searches 512 bytes around it.
static MARKER_SEARCH: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(MARKERS)
        .ok()
});

/// `password=` in a libpq or ADO.NET string, recognised by another connection key nearby.
fn dsn_password(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    if before(text, r.start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let (span, _) = value_after_separator(text, &r)?;
    if is_placeholder(&text[span.clone()]) {
        return None;
    }
    let around = window(text, &r, CONTEXT);
    let near = match &*MARKER_SEARCH {
        Some(markers) => markers.is_match(around),
        None => contains_ci(around, MARKERS),
    };
    near.then_some(span)
}
