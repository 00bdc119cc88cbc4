//! A streaming rewrite of JSON documents (RFC 8259) that masks values in place.
//!
//! The document is validated and walked once with an explicit stack (no recursion, so depth
//! is bounded only by memory); untouched bytes are copied verbatim, which keeps key order,
//! number spelling and whitespace without a DOM. Only changed strings are re-encoded.

use std::borrow::Cow;
use std::ops::Range;

use crate::{Counts, Entity, Masker, Strategy};

mod strings;

use strings::{decode, quoted};

/// The input is not JSON.
#[derive(Debug)]
pub(crate) struct Invalid;

type Rule = Option<(Entity, Strategy)>;

/// The masked document and its counts, `None` when nothing changed.
pub(crate) fn rewrite(m: &Masker, src: &str) -> Result<Option<(String, Counts)>, Invalid> {
    let mut w = Rewriter {
        m,
        src,
        b: src.as_bytes(),
        pos: 0,
        out: String::new(),
        copied: 0,
        changed: false,
        counts: Counts::default(),
        suppress: 0,
    };
    w.run()?;
    if !w.changed {
        return Ok(None);
    }
    w.out.push_str(&src[w.copied..]);
    Ok(Some((w.out, w.counts)))
}

struct Frame {
    array: bool,
    /// Start and rule of a container that is replaced whole when it closes.
    whole: Option<(usize, Entity, Strategy)>,
}

struct Rewriter<'m, 's> {
    m: &'m Masker,
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    out: String,
    copied: usize,
    changed: bool,
    counts: Counts,
    /// Above zero inside a container that is replaced whole: nothing inside is rewritten.
    suppress: usize,
}

impl Rewriter<'_, '_> {
    fn run(&mut self) -> Result<(), Invalid> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut rule: Rule = None;
        loop {
            self.ws();
            let start = self.pos;
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.pos += 1;
                    let array = open == b'[';
                    let whole = rule
                        .take()
                        .filter(|_| self.suppress == 0)
                        .map(|(e, s)| (start, e, s));
                    self.suppress += usize::from(whole.is_some());
                    stack.push(Frame { array, whole });
                    self.ws();
                    let close = if array { b']' } else { b'}' };
                    if self.peek()? != close {
                        rule = if array { None } else { self.member_key()? };
                        continue;
                    }
                }
                b'"' => {
                    let (content, escaped) = self.string()?;
                    self.string_value(start, content, escaped, rule.take());
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                    self.number_value(start, rule.take());
                }
                b't' => self.literal("true", rule.take())?,
                b'f' => self.literal("false", rule.take())?,
                b'n' => self.literal("null", None)?,
                _ => return Err(Invalid),
            }
            rule = None;
            // After a value: close finished containers, or move on to the next element.
            loop {
                self.ws();
                let Some(frame) = stack.last() else {
                    return if self.pos == self.b.len() {
                        Ok(())
                    } else {
                        Err(Invalid)
                    };
                };
                let array = frame.array;
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        if !array {
                            rule = self.member_key()?;
                        }
                        break;
                    }
                    c if c == if array { b']' } else { b'}' } => {
                        self.pos += 1;
                        if let Some(Frame {
                            whole: Some((s, entity, strategy)),
                            ..
                        }) = stack.pop()
                        {
                            self.suppress -= 1;
                            self.replace_whole(s..self.pos, entity, strategy, None);
                        }
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    fn peek(&self) -> Result<u8, Invalid> {
        self.b.get(self.pos).copied().ok_or(Invalid)
    }

    fn ws(&mut self) {
        while self
            .b
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    /// Reads `"key" :` and returns the rule its name selects; the key itself is scanned too.
    fn member_key(&mut self) -> Result<Rule, Invalid> {
        self.ws();
        let start = self.pos;
        if self.peek()? != b'"' {
            return Err(Invalid);
        }
        let (content, escaped) = self.string()?;
        let end = self.pos;
        self.ws();
        if self.peek()? != b':' {
            return Err(Invalid);
        }
        self.pos += 1;
        if self.suppress > 0 {
            return Ok(None);
        }
        let key = decode(&self.src[content], escaped);
        if let Cow::Owned(masked) = self.m.mask_text(&key, &mut self.counts) {
            self.replace(start..end, &quoted(&masked));
        }
        Ok(self.m.key_rule(&key))
    }

    /// Validates a string at `pos`; returns its content range and whether it has escapes.
    fn string(&mut self) -> Result<(Range<usize>, bool), Invalid> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match *self.b.get(i).ok_or(Invalid)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match *self.b.get(i + 1).ok_or(Invalid)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' if self
                            .b
                            .get(i + 2..i + 6)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            i += 6
                        }
                        _ => return Err(Invalid),
                    }
                }
                0x00..=0x1f => return Err(Invalid),
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        Ok((start..i, escaped))
    }

    fn number(&mut self) -> Result<(), Invalid> {
        let digits = |w: &mut Self| {
            let from = w.pos;
            while w.b.get(w.pos).is_some_and(u8::is_ascii_digit) {
                w.pos += 1;
            }
            if w.pos > from { Ok(()) } else { Err(Invalid) }
        };
        if self.b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        if self.b.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else {
            digits(self)?;
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            digits(self)?;
        }
        if matches!(self.b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            digits(self)?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &str, rule: Rule) -> Result<(), Invalid> {
        let start = self.pos;
        if !self.src[start..].starts_with(word) {
            return Err(Invalid);
        }
        self.pos += word.len();
        if let Some((entity, strategy)) = rule.filter(|_| self.suppress == 0) {
            self.replace_whole(start..self.pos, entity, strategy, None);
        }
        Ok(())
    }

    fn string_value(&mut self, start: usize, content: Range<usize>, escaped: bool, rule: Rule) {
        if self.suppress > 0 {
            return;
        }
        let text = decode(&self.src[content], escaped);
        if let Some((entity, strategy)) = rule {
            self.replace_whole(start..self.pos, entity, strategy, Some(&text));
        } else if let Cow::Owned(masked) = self.m.mask_text(&text, &mut self.counts) {
            self.replace(start..self.pos, &quoted(&masked));
        }
    }

    /// A number holding a sensitive value becomes a string, or `null` if that entity's
    /// strategy is Null.
    fn number_value(&mut self, start: usize, rule: Rule) {
        if self.suppress > 0 {
            return;
        }
        let raw = &self.src[start..self.pos];
        if let Some((entity, strategy)) = rule {
            return self.replace_whole(start..self.pos, entity, strategy, Some(raw));
        }
        let findings = self.m.find(raw);
        if findings
            .iter()
            .any(|f| self.m.strategy(f.entity) == Strategy::Null)
        {
            findings.iter().for_each(|f| self.counts.add(f.entity, 1));
            self.replace(start..self.pos, "null");
        } else if !findings.is_empty() {
            let masked = self.m.apply(raw, &findings, &mut self.counts);
            self.replace(start..self.pos, &quoted(&masked));
        }
    }

    /// Replaces a member value selected by a key rule. `text` is the string content or the
    /// number; other values (booleans, containers) have none, and `Partial` redacts them.
    fn replace_whole(
        &mut self,
        range: Range<usize>,
        entity: Entity,
        strategy: Strategy,
        text: Option<&str>,
    ) {
        self.counts.add(entity, 1);
        if strategy == Strategy::Null {
            return self.replace(range, "null");
        }
        let strategy = match (strategy, text) {
            (Strategy::Partial { .. }, None) => Strategy::Redact,
            _ => strategy,
        };
        let mut out = String::new();
        let value = text.unwrap_or(&self.src[range.clone()]);
        self.m.render(entity, strategy, value, &mut out);
        self.replace(range, &quoted(&out));
    }

    fn replace(&mut self, range: Range<usize>, with: &str) {
        self.out.push_str(&self.src[self.copied..range.start]);
        self.out.push_str(with);
        self.copied = range.end;
        self.changed = true;
    }
}
