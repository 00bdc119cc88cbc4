//! Keeps connection passwords out of error text (DESIGN.md §2, invariant 3).
//!
//! sqlx does not normally echo the password back, but a driver or server message might
//! quote part of the URL, so every message that crosses the crate boundary is scrubbed of
//! the password in both its raw and percent-decoded forms.

/// The password in `url`'s userinfo, raw and percent-decoded (when they differ).
pub(crate) fn secrets_of(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    // The authority ends at the first '/', '?' or '#'; the userinfo ends at its last '@'.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    if password.is_empty() {
        return Vec::new();
    }
    let mut out = vec![password.to_owned()];
    let decoded = percent_decode(password);
    if decoded != password && !decoded.is_empty() {
        out.push(decoded);
    }
    out
}

/// `message` with every occurrence of each secret replaced by `***`.
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(message.to_owned(), |msg, s| msg.replace(s.as_str(), "***"))
}

/// The scheme to echo in an error: only when it looks like a scheme, since a malformed URL
/// might start with something else entirely.
pub(crate) fn short_scheme(scheme: &str) -> String {
    let looks_like_scheme = !scheme.is_empty()
        && scheme.len() <= 16
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if looks_like_scheme {
        scheme.to_owned()
    } else {
        "<unrecognized>".to_owned()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
