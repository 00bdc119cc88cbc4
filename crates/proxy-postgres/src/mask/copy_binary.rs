//! Binary `COPY ... TO STDOUT` output, masked tuple by tuple as it streams.
//!
//! The binary format carries no column names or types (CopyOutResponse gives only formats),
//! so each field is judged by its bytes: a field that reads as text is masked in place like a
//! value of a text-format COPY (the field's length is rewritten); any other field (a number,
//! a date, an array, bytea that is not text) is checked as text and under the integer and
//! numeric readings its length allows, and if anything sensitive shows, the COPY is refused
//! rather than passed in the clear. A COPY in which nothing needs masking passes unchanged.
//!
//! Format: <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>. Tuples
//! may be split across CopyData messages in any way; only complete tuples are emitted, and a
//! tuple is never buffered past [`MAX_TUPLE`].

use std::borrow::Cow;

use portcullis_masking::{ColumnPlan, Counts, Masked, Masker};

use super::types;

/// The 11-byte signature that opens binary COPY data.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The largest tuple held while waiting for the rest of it (PostgreSQL's own limit on a
/// field is 1 GiB, but a result row that large cannot be masked in memory here).
const MAX_TUPLE: usize = 256 << 20;

/// Why a binary COPY cannot pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A value that is not text holds something sensitive: it cannot be masked in place.
    Sensitive,
    /// The data is not binary COPY format, or a tuple is too large to hold.
    Malformed,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Header,
    Tuples,
    Done,
}

/// The masking state of one binary COPY.
#[derive(Debug, Default)]
pub(crate) struct BinaryCopy {
    pending: Vec<u8>,
    state: State,
}

impl BinaryCopy {
    /// Takes the next CopyData payload; returns the bytes to send now (possibly empty while
    /// a tuple is incomplete).
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        masker: &Masker,
        data: &[u8],
        counts: &mut Counts,
    ) -> Result<Vec<u8>, Refused> {
        self.push_with(masker, &|_| None, data, counts)
    }

    /// As `push`, with `whole(n)` giving, for tuples of `n` fields, the fields that become
    /// NULL whatever they hold (made of a sensitive column, by the statement's lineage).
    pub(crate) fn push_with<'w>(
        &mut self,
        masker: &Masker,
        whole: &dyn Fn(usize) -> Option<&'w [Option<ColumnPlan>]>,
        data: &[u8],
        counts: &mut Counts,
    ) -> Result<Vec<u8>, Refused> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::with_capacity(self.pending.len());
        let mut at = 0;
        loop {
            let rest = self.pending.get(at..).unwrap_or_default();
            let used = match self.state {
                State::Header => header(rest)?,
                State::Tuples => tuple(masker, whole, rest, counts, &mut out)?,
                // Nothing follows the trailer; should anything, it is not passed unread.
                State::Done if rest.is_empty() => None,
                State::Done => return Err(Refused::Malformed),
            };
            let Some(used) = used else { break };
            self.state = match (self.state, used.trailer) {
                (_, true) => State::Done,
                (State::Header, false) => State::Tuples,
                (state, false) => state,
            };
            if used.copy {
                out.extend_from_slice(rest.get(..used.len).unwrap_or_default());
            }
            at += used.len;
        }
        self.pending.drain(..at);
        if self.pending.len() > MAX_TUPLE {
            return Err(Refused::Malformed);
        }
        Ok(out)
    }

    /// The COPY ended: anything still held is an incomplete tuple, which is not passed.
    pub(crate) fn finish(&self) -> Result<(), Refused> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Refused::Malformed)
        }
    }
}

/// How much of the pending bytes one step consumed, and whether to copy them out as they are
/// (a tuple that was masked has been written already).
struct Used {
    len: usize,
    copy: bool,
    trailer: bool,
}

fn header(b: &[u8]) -> Result<Option<Used>, Refused> {
    let Some(sig) = b.get(..SIGNATURE.len()) else {
        return Ok(None);
    };
    if sig != SIGNATURE {
        return Err(Refused::Malformed);
    }
    let Some(ext) = be_i32(b, SIGNATURE.len() + 4) else {
        return Ok(None);
    };
    let ext = usize::try_from(ext).map_err(|_| Refused::Malformed)?;
    let len = SIGNATURE.len() + 8 + ext;
    Ok((b.len() >= len).then_some(Used {
        len,
        copy: true,
        trailer: false,
    }))
}

/// One tuple: `Int16` field count (-1 ends the data), then per field an `Int32` length (-1
/// for NULL) and its bytes.
fn tuple<'w>(
    masker: &Masker,
    whole: &dyn Fn(usize) -> Option<&'w [Option<ColumnPlan>]>,
    b: &[u8],
    counts: &mut Counts,
    out: &mut Vec<u8>,
) -> Result<Option<Used>, Refused> {
    let Some(&[hi, lo]) = b.get(..2) else {
        return Ok(None);
    };
    let count = i16::from_be_bytes([hi, lo]);
    if count == -1 {
        return Ok(Some(Used {
            len: 2,
            copy: true,
            trailer: true,
        }));
    }
    let count = usize::try_from(count).map_err(|_| Refused::Malformed)?;
    let wholes = whole(count);
    let mut nulled = Vec::new();
    let mut fields = Vec::with_capacity(count.min(1600));
    let mut at = 2;
    for i in 0..count {
        let Some(len) = be_i32(b, at) else {
            return Ok(None);
        };
        at += 4;
        if len < 0 {
            fields.push(None);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| Refused::Malformed)?;
        let Some(value) = b.get(at..at + len) else {
            return Ok(None);
        };
        at += len;
        if let Some(ColumnPlan::Whole { entity, .. }) =
            wholes.and_then(|w| w.get(i).copied().flatten())
        {
            counts.add(entity, 1);
            fields.push(Some(Cow::Owned(Vec::new())));
            nulled.push(i);
            continue;
        }
        fields.push(Some(mask_field(masker, value, counts)?));
    }
    if fields
        .iter()
        .flatten()
        .all(|f| matches!(f, Cow::Borrowed(_)))
    {
        return Ok(Some(Used {
            len: at,
            copy: true,
            trailer: false,
        }));
    }
    for i in nulled {
        fields[i] = None;
    }
    out.extend_from_slice(b.get(..2).unwrap_or_default());
    for field in &fields {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| Refused::Malformed)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    Ok(Some(Used {
        len: at,
        copy: false,
        trailer: false,
    }))
}

/// A field that reads as text is masked in place; any other field passes only when none of
/// its readings holds anything sensitive.
fn mask_field<'a>(
    masker: &Masker,
    value: &'a [u8],
    counts: &mut Counts,
) -> Result<Cow<'a, [u8]>, Refused> {
    if let Some(text) = std::str::from_utf8(value).ok().filter(|t| is_text(t)) {
        return Ok(match masker.mask_text(text, counts) {
            Cow::Borrowed(_) => Cow::Borrowed(value),
            Cow::Owned(masked) => Cow::Owned(masked.into_bytes()),
        });
    }
    if let Some(masked) = jsonb(masker, value, counts)? {
        return Ok(masked);
    }
    match types::sensitive_reading(masker, None, value) {
        Some(entity) => {
            counts.add(entity, 1);
            Err(Refused::Sensitive)
        }
        None => Ok(Cow::Borrowed(value)),
    }
}

/// A field that reads as binary jsonb (the version byte, then text that parses as JSON),
/// masked as JSON in place; `None` when it does not read so. (Read as text, the version byte
/// is a control character, so without this a jsonb value would be judged by its numeric
/// readings alone.) What the same bytes say read as a number (a bigint or numeric field's
/// readings) must still be clean.
fn jsonb<'a>(
    masker: &Masker,
    value: &'a [u8],
    counts: &mut Counts,
) -> Result<Option<Cow<'a, [u8]>>, Refused> {
    let Some((&types::JSONB_VERSION, doc)) = value.split_first() else {
        return Ok(None);
    };
    let Some(doc) = std::str::from_utf8(doc).ok().filter(|d| is_text(d)) else {
        return Ok(None);
    };
    let mut found = Counts::default();
    let Some(masked) = masker.mask_json_document(doc, &mut found) else {
        return Ok(None);
    };
    if let Some(entity) = types::number_reading(masker, value) {
        counts.add(entity, 1);
        return Err(Refused::Sensitive);
    }
    counts.merge(&found);
    Ok(Some(match masked {
        Masked::Unchanged(_) => Cow::Borrowed(value),
        Masked::Replaced(json) => Cow::Owned(types::jsonb_encode(&json)),
        Masked::Null => return Err(Refused::Sensitive),
    }))
}

/// Text as a text column would hold it: no control characters but tab and line breaks. A
/// binary number or date almost always has one (a zero byte, for a start).
fn is_text(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests;
