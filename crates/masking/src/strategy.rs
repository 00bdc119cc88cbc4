//! Masking strategies and the text they produce.
//!
//! Every replacement is built from the entity label, `*`, lowercase hex and the kept tail of a
//! `Partial` value with tab, newline, carriage return, backslash, quotes and other control
//! characters turned into `*`. So a replacement never needs quoting or escaping in a COPY text
//! row or an array literal, and never contains the whole original value.

use std::collections::VecDeque;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Entity;

/// How a sensitive value is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `[EMAIL]`: the entity label in brackets.
    Redact,
    /// `*` for every character but the last `keep` (`************1111`). A value of `keep`
    /// characters or fewer is masked entirely, so the whole value is never revealed.
    Partial {
        /// How many trailing characters stay visible.
        keep: usize,
    },
    /// `[EMAIL:0123456789abcdef]`: the first 16 hex digits of HMAC-SHA256(key, value). The same
    /// value gives the same token under one key, whatever its entity, so joins and counts
    /// still work. Needs a key when the masker is built.
    Hmac,
    /// SQL NULL for a whole column value; inside text (where part of a string cannot be NULL)
    /// it behaves like [`Strategy::Redact`].
    Null,
}

impl Strategy {
    /// Orders strategies by how much they hide: Null > Redact > Hmac > Partial, and among
    /// partials the one keeping fewer characters. Used when profiles disagree.
    fn strictness(self) -> (u8, usize) {
        match self {
            Strategy::Null => (3, 0),
            Strategy::Redact => (2, 0),
            Strategy::Hmac => (1, 0),
            Strategy::Partial { keep } => (0, usize::MAX - keep),
        }
    }

    /// The stricter of two strategies.
    pub fn strictest(self, other: Strategy) -> Strategy {
        if other.strictness() > self.strictness() {
            other
        } else {
            self
        }
    }
}

/// Renders replacements; holds the HMAC key already expanded into its inner/outer state.
#[derive(Clone)]
pub(crate) struct Renderer {
    hmac: Option<Hmac<Sha256>>,
}

impl Renderer {
    /// A renderer; an empty key counts as no key.
    pub(crate) fn new(key: Option<&[u8]>) -> Renderer {
        let hmac = key
            .filter(|k| !k.is_empty())
            .and_then(|k| Hmac::<Sha256>::new_from_slice(k).ok());
        Renderer { hmac }
    }

    pub(crate) fn has_key(&self) -> bool {
        self.hmac.is_some()
    }

    /// Appends the replacement of `value` (text) to `out`.
    pub(crate) fn render(&self, strategy: Strategy, entity: Entity, value: &str, out: &mut String) {
        match strategy {
            Strategy::Partial { keep } => partial(value, keep, out),
            _ => self.render_bytes(strategy, entity, value.as_bytes(), out),
        }
    }

    /// Appends the replacement of `value` (any bytes) to `out`. `Partial` needs characters, so
    /// on bytes that are not UTF-8 it redacts.
    pub(crate) fn render_bytes(
        &self,
        strategy: Strategy,
        entity: Entity,
        value: &[u8],
        out: &mut String,
    ) {
        match strategy {
            Strategy::Redact | Strategy::Null => label(entity, out),
            Strategy::Partial { keep } => match std::str::from_utf8(value) {
                Ok(text) => partial(text, keep, out),
                Err(_) => label(entity, out),
            },
            Strategy::Hmac => match &self.hmac {
                Some(mac) => hmac_token(mac, entity, value, out),
                // Masker::new refuses Hmac without a key; redacting keeps this total anyway.
                None => label(entity, out),
            },
        }
    }
}

/// Renders one value that arrives in pieces (a run of a stream too long to hold), with the
/// same output as [`Renderer::render`] on the whole value: the label at once for `Redact` and
/// `Null`, the HMAC token at the end, and for `Partial` a `*` per character as soon as it is
/// known not to be among the last `keep`, which are held (and so are at most `keep`
/// characters).
pub(crate) struct RunRenderer {
    strategy: Strategy,
    entity: Entity,
    mac: Option<Hmac<Sha256>>,
    /// `Partial`: the characters that may still be among the last `keep`, and how many
    /// characters the value had so far.
    held: VecDeque<char>,
    seen: usize,
}

impl RunRenderer {
    pub(crate) fn begin(
        renderer: &Renderer,
        strategy: Strategy,
        entity: Entity,
        out: &mut String,
    ) -> RunRenderer {
        let mac = match strategy {
            Strategy::Hmac => renderer.hmac.clone(),
            _ => None,
        };
        // Without a key, Hmac redacts (as `render_bytes` does).
        if matches!(strategy, Strategy::Redact | Strategy::Null)
            || (strategy == Strategy::Hmac && mac.is_none())
        {
            label(entity, out);
        }
        RunRenderer {
            strategy,
            entity,
            mac,
            held: VecDeque::new(),
            seen: 0,
        }
    }

    /// Takes the next piece of the value.
    pub(crate) fn feed(&mut self, piece: &str, out: &mut String) {
        if let Some(mac) = &mut self.mac {
            mac.update(piece.as_bytes());
        }
        if let Strategy::Partial { keep } = self.strategy {
            for c in piece.chars() {
                self.seen += 1;
                self.held.push_back(c);
                if self.held.len() > keep {
                    self.held.pop_front();
                    out.push('*');
                }
            }
        }
    }

    /// Ends the value.
    pub(crate) fn finish(self, out: &mut String) {
        if let Some(mac) = self.mac {
            hmac_digest(mac, self.entity, out);
        }
        if let Strategy::Partial { keep } = self.strategy {
            // A value of `keep` characters or fewer is masked entirely.
            if self.seen <= keep {
                out.extend(std::iter::repeat_n('*', self.held.len()));
            } else {
                out.extend(
                    self.held
                        .iter()
                        .map(|&c| if safe_kept(c) { c } else { '*' }),
                );
            }
        }
    }
}

fn label(entity: Entity, out: &mut String) {
    out.push('[');
    out.push_str(entity.as_str());
    out.push(']');
}

fn partial(value: &str, keep: usize, out: &mut String) {
    let len = value.chars().count();
    let masked = if len <= keep { len } else { len - keep };
    out.extend(std::iter::repeat_n('*', masked));
    out.extend(
        value
            .chars()
            .skip(masked)
            .map(|c| if safe_kept(c) { c } else { '*' }),
    );
}

/// Whether a kept character may appear in a replacement: nothing that needs escaping in COPY
/// text, array literals or JSON strings.
fn safe_kept(c: char) -> bool {
    !(c.is_control() || matches!(c, '\\' | '"' | '\'' | '\u{2028}' | '\u{2029}'))
}

fn hmac_token(mac: &Hmac<Sha256>, entity: Entity, value: &[u8], out: &mut String) {
    let mut mac = mac.clone();
    mac.update(value);
    hmac_digest(mac, entity, out);
}

/// `[ENTITY:<16 hex digits>]` from a MAC that has taken the whole value.
fn hmac_digest(mac: Hmac<Sha256>, entity: Entity, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = mac.finalize().into_bytes();
    out.push('[');
    out.push_str(entity.as_str());
    out.push(':');
    for &byte in digest.iter().take(8) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out.push(']');
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material.
        f.debug_struct("Renderer")
            .field("hmac_key", &self.hmac.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
