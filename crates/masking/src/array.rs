//! Masking inside PostgreSQL array literals in text format (`{a,"b c",NULL,{d}}`, optionally
//! with dimension decoration `[1:2]={…}`), keeping the literal valid.
//!
//! Elements are decoded (quotes and backslash escapes), scanned as text, and a changed element
//! is written back double-quoted with `"` and `\` escaped. Untouched elements are copied
//! verbatim. See <https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO>.

use std::borrow::Cow;
use std::ops::Range;

use crate::{Counts, Masker};

/// The input is not an array literal.
#[derive(Debug)]
pub(crate) struct Invalid;

/// The masked literal and its counts, `None` when nothing changed.
pub(crate) fn rewrite(m: &Masker, src: &str) -> Result<Option<(String, Counts)>, Invalid> {
    let b = src.as_bytes();
    let mut pos = skip_ws(b, 0);
    if b.get(pos) == Some(&b'[') {
        // Dimension decoration: `[lo:hi][lo:hi]=`.
        let eq = b.iter().position(|&c| c == b'=').ok_or(Invalid)?;
        if !b[pos..eq].iter().all(|c| b"[]:-0123456789 ".contains(c)) {
            return Err(Invalid);
        }
        pos = skip_ws(b, eq + 1);
    }
    if b.get(pos) != Some(&b'{') {
        return Err(Invalid);
    }
    let mut depth = 1usize;
    pos += 1;
    let mut counts = Counts::default();
    let mut out = String::new();
    let mut copied = 0;
    // Whether a `}` may close the current level here (right after `{`, not after `,`).
    let mut may_close = true;
    loop {
        pos = skip_ws(b, pos);
        match *b.get(pos).ok_or(Invalid)? {
            b'{' => {
                depth += 1;
                pos += 1;
                may_close = true;
                continue;
            }
            b'}' if may_close => {}
            b'}' | b',' => return Err(Invalid),
            _ => {
                let (range, text) = element(src, pos)?;
                pos = range.end;
                if let Some(text) = text
                    && let Cow::Owned(masked) = m.mask_text(&text, &mut counts)
                {
                    out.push_str(&src[copied..range.start]);
                    push_quoted(&mut out, &masked);
                    copied = range.end;
                }
            }
        }
        // After an element or an opened level: `,` continues, `}` closes levels.
        loop {
            pos = skip_ws(b, pos);
            match *b.get(pos).ok_or(Invalid)? {
                b',' => {
                    pos += 1;
                    may_close = false;
                    break;
                }
                b'}' => {
                    pos += 1;
                    depth -= 1;
                    if depth == 0 {
                        return finish(src, skip_ws(b, pos), out, copied, counts);
                    }
                }
                _ => return Err(Invalid),
            }
        }
    }
}

fn finish(
    src: &str,
    end: usize,
    mut out: String,
    copied: usize,
    counts: Counts,
) -> Result<Option<(String, Counts)>, Invalid> {
    if end != src.len() {
        return Err(Invalid);
    }
    if copied == 0 {
        return Ok(None);
    }
    out.push_str(&src[copied..]);
    Ok(Some((out, counts)))
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// One element at `pos`: its byte range and decoded text, or `None` text for `NULL`.
fn element(src: &str, pos: usize) -> Result<(Range<usize>, Option<String>), Invalid> {
    let b = src.as_bytes();
    let mut text = String::new();
    let mut i = pos;
    let mut run = pos;
    if b[pos] == b'"' {
        i += 1;
        run = i;
        loop {
            match *b.get(i).ok_or(Invalid)? {
                b'"' => break,
                b'\\' => {
                    text.push_str(&src[run..i]);
                    run = i + 1;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        text.push_str(src.get(run..i).ok_or(Invalid)?);
        return Ok((pos..i + 1, Some(text)));
    }
    let mut escaped = false;
    loop {
        match *b.get(i).ok_or(Invalid)? {
            b',' | b'}' => break,
            b'{' | b'"' => return Err(Invalid),
            b'\\' => {
                escaped = true;
                text.push_str(&src[run..i]);
                run = i + 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    text.push_str(src.get(run..i).ok_or(Invalid)?);
    // Unquoted elements lose trailing whitespace (leading was skipped before).
    let end = pos + src[pos..i].trim_ascii_end().len();
    text.truncate(text.trim_ascii_end().len());
    let is_null = !escaped && text.eq_ignore_ascii_case("NULL");
    Ok((pos..end, (!is_null).then_some(text)))
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
