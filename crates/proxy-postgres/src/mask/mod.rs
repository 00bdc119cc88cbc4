//! Masking results on their way to the client (DESIGN.md §6): the per-result plan that rewrites DataRow and COPY data while they
//! stream through, one message at a time.
//!
//! Which profiles apply to a statement: the connection's own (`masking = "..."`) plus those
//! the allowing policies ask for (`@mask("...")`), unless the principal may `data.unmask` on
//! the connection. Types stay valid: text-like values are masked in place; a value of another
//! type that holds something sensitive, or that a whole-column rule covers, becomes NULL,
//! which every type accepts. RowDescription is never changed.

mod copy_binary;
mod lineage;
mod report;
mod types;

pub(crate) use copy_binary::{BinaryCopy, Refused};
pub(crate) use lineage::{Followed, column_sensitive, derived_plan, reads_sensitive};
pub(crate) use report::{mask_notification, mask_report};

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use portcullis_masking::{ColumnPlan, Counts, Masked, Masker};
use portcullis_pgwire::{FieldDescription, Frame, WireError, encode_data_row, parse_data_row};

use types::Kind;

/// One result column as masking sees it.
#[derive(Debug, Clone, Copy)]
struct Column {
    plan: ColumnPlan,
    kind: Kind,
    oid: u32,
    binary: bool,
}

/// How the rows of one result are masked: a plan per column, computed once.
#[derive(Debug)]
pub(crate) struct ResultPlan {
    masker: Masker,
    columns: Vec<Column>,
    /// Where the statement's columns come from, for a result without a description (COPY,
    /// a portal never described): their plans by position, computed at the first row (every
    /// row of a result has as many columns); `None` inside when no column needs one, so the
    /// rows after the first cost nothing.
    lineage: Option<Followed>,
    by_position: OnceLock<Option<Box<[Option<ColumnPlan>]>>>,
}

impl ResultPlan {
    /// From the result's description; `formats` (a Bind's result formats) override the
    /// description's when it came from a statement Describe, where formats are not yet known.
    /// A column made of a sensitive column (the statement's `lineage`) is masked whole.
    pub(crate) fn new(
        masker: Masker,
        fields: &[FieldDescription],
        formats: Option<&[i16]>,
        lineage: Option<Followed>,
    ) -> Self {
        let derived = lineage.as_ref().map(|l| {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            lineage::column_plans(&masker, l, &names)
        });
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let (kind, type_name) = types::kind(f.type_oid);
                let format = match formats {
                    None => f.format,
                    Some([]) => 0,
                    Some([one]) => *one,
                    Some(many) => many.get(i).copied().unwrap_or(0),
                };
                let own = masker.column(&f.name, type_name);
                let plan = match (
                    &own,
                    derived.as_ref().and_then(|d| d.get(i).copied().flatten()),
                ) {
                    (ColumnPlan::Whole { .. }, _) | (_, None) => own,
                    (_, Some(derived)) => derived,
                };
                Column {
                    plan,
                    kind,
                    oid: f.type_oid,
                    binary: format == 1,
                }
            })
            .collect();
        Self {
            masker,
            columns,
            lineage,
            by_position: OnceLock::new(),
        }
    }

    /// The lineage plans of a result that has no description, its column count given by
    /// `columns` (asked once, at the first row); `None` when no column needs one.
    fn positional(&self, columns: impl FnOnce() -> usize) -> Option<&[Option<ColumnPlan>]> {
        let lineage = self.lineage.as_ref()?;
        self.by_position
            .get_or_init(|| {
                let plans = lineage::column_plans(&self.masker, lineage, &vec![""; columns()]);
                plans.iter().any(Option::is_some).then(|| plans.into())
            })
            .as_deref()
    }

    /// The masker every column of this result uses.
    pub(crate) fn masker(&self) -> &Masker {
        &self.masker
    }

    /// A result whose description the gateway never saw: every value is treated as an
    /// unknown type, so nothing sensitive passes (at worst a value becomes NULL).
    pub(crate) fn blind(masker: Masker, lineage: Option<Followed>) -> Self {
        Self {
            masker,
            columns: Vec::new(),
            lineage,
            by_position: OnceLock::new(),
        }
    }

    /// The DataRow to send instead of `frame`, or `None` when nothing in it is sensitive.
    pub(crate) fn mask_row(
        &self,
        frame: &Frame,
        counts: &mut Counts,
    ) -> Result<Option<Bytes>, WireError> {
        let values = parse_data_row(frame)?;
        let mut out: Vec<Option<Masked<'_>>> = Vec::with_capacity(values.len());
        let mut changed = false;
        let positional = if self.columns.is_empty() {
            self.positional(|| values.len())
        } else {
            None
        };
        for (i, v) in values.iter().enumerate() {
            let whole = positional.and_then(|p| p.get(i).copied().flatten());
            let masked = v.as_deref().map(|v| match &whole {
                // No description: the value's type is unknown, so it cannot take text.
                Some(plan) => {
                    if let ColumnPlan::Whole { entity, .. } = plan {
                        counts.add(*entity, 1);
                    }
                    Masked::Null
                }
                None => self.mask_value(i, v, counts),
            });
            changed |= masked.as_ref().is_some_and(Masked::is_changed);
            out.push(masked);
        }
        if !changed {
            return Ok(None);
        }
        encode_data_row(out.iter().map(|m| m.as_ref().and_then(Masked::as_bytes))).map(Some)
    }

    fn mask_value<'a>(&self, i: usize, value: &'a [u8], counts: &mut Counts) -> Masked<'a> {
        let col = self.columns.get(i).copied().unwrap_or(Column {
            plan: ColumnPlan::Pass,
            kind: Kind::Other,
            oid: 0,
            binary: true,
        });
        let m = &self.masker;
        let textual = match col.kind {
            Kind::Text | Kind::Json | Kind::Jsonb | Kind::TextArray => true,
            // A binary value of an unknown type is read every way below.
            Kind::Other => !col.binary,
            _ => false,
        };
        if textual && std::str::from_utf8(value).is_err() {
            // Not UTF-8: another client_encoding, or binary data. What cannot be masked in
            // place is replaced whole when it reads as anything sensitive.
            let lossy = String::from_utf8_lossy(value);
            return self.null_if_sensitive(Some(&lossy), value, counts);
        }
        if let ColumnPlan::Whole { .. } = col.plan {
            let masked = m.mask_value(&col.plan, value, counts);
            // Only text takes the replacement text; any other type takes NULL.
            return match (col.kind, masked) {
                (Kind::Text, masked) => masked,
                (Kind::Other, masked) if !col.binary => masked,
                _ => Masked::Null,
            };
        }
        match (col.kind, col.binary) {
            (Kind::Inert, _) => Masked::Unchanged(value),
            (Kind::Text, _) | (Kind::Json | Kind::TextArray | Kind::Other, false) => {
                m.mask_value(&col.plan, value, counts)
            }
            (Kind::Jsonb, false) => m.mask_value(&ColumnPlan::Json, value, counts),
            (Kind::Jsonb, true) => self.jsonb_binary(value, counts),
            (Kind::Json, true) => m.mask_value(&ColumnPlan::Json, value, counts),
            (Kind::TextArray, true) => self.text_array_binary(value, counts),
            (Kind::Int | Kind::Numeric | Kind::Inet | Kind::Mac | Kind::Structured, false) => {
                self.null_if_sensitive(std::str::from_utf8(value).ok(), value, counts)
            }
            (Kind::Int, true) => {
                self.null_if_sensitive(types::int_text(value).as_deref(), value, counts)
            }
            (Kind::Numeric, true) => {
                self.null_if_sensitive(types::numeric_text(value).as_deref(), value, counts)
            }
            (Kind::Inet, true) => {
                self.null_if_sensitive(types::inet_text(value).as_deref(), value, counts)
            }
            (Kind::Mac, true) => {
                self.null_if_sensitive(types::mac_text(value).as_deref(), value, counts)
            }
            // A binary value of a structured type, or of a type the gateway does not know (or
            // of a result it never saw described): every reading its bytes allow is checked,
            // parts of arrays, ranges and records included, so a card number sent as a binary
            // numeric, bigint or range bound does not pass for want of a type.
            // (A result never described has oid 0, which reads as a type not known.)
            (Kind::Structured | Kind::Other, true) => {
                match types::sensitive_reading(&self.masker, Some(col.oid), value) {
                    Some(entity) => {
                        counts.add(entity, 1);
                        Masked::Null
                    }
                    None => Masked::Unchanged(value),
                }
            }
        }
    }

    /// A value of a non-text type is replaced whole, by NULL, when its text holds anything
    /// sensitive (a card number stored as numeric, an address in an inet column).
    fn null_if_sensitive<'a>(
        &self,
        text: Option<&str>,
        value: &'a [u8],
        counts: &mut Counts,
    ) -> Masked<'a> {
        match text.and_then(|t| self.masker.contains_sensitive(t)) {
            Some(entity) => {
                counts.add(entity, 1);
                Masked::Null
            }
            None => Masked::Unchanged(value),
        }
    }

    fn jsonb_binary<'a>(&self, value: &'a [u8], counts: &mut Counts) -> Masked<'a> {
        let Some((&types::JSONB_VERSION, doc)) = value.split_first() else {
            return self.null_if_sensitive(std::str::from_utf8(value).ok(), value, counts);
        };
        match self.masker.mask_value(&ColumnPlan::Json, doc, counts) {
            Masked::Replaced(json) => Masked::Replaced(types::jsonb_encode(&json)),
            Masked::Null => Masked::Null,
            Masked::Unchanged(_) => Masked::Unchanged(value),
        }
    }

    fn text_array_binary<'a>(&self, value: &'a [u8], counts: &mut Counts) -> Masked<'a> {
        let Some(types::BinaryArray { header, elements }) = types::array_elements(value) else {
            return self.null_if_sensitive(std::str::from_utf8(value).ok(), value, counts);
        };
        let mut changed = false;
        let masked: Vec<Option<Vec<u8>>> = elements
            .iter()
            .map(|e| {
                e.map(
                    |e| match self.masker.mask_value(&ColumnPlan::Pass, e, counts) {
                        Masked::Replaced(v) => {
                            changed = true;
                            v
                        }
                        _ => e.to_vec(),
                    },
                )
            })
            .collect();
        if !changed {
            return Masked::Unchanged(value);
        }
        match types::array_encode(header, &masked) {
            Some(out) => Masked::Replaced(out),
            None => Masked::Null,
        }
    }

    /// A CopyData row of a text-format COPY TO STDOUT: values are scanned as text (a COPY
    /// has no column names, so column rules cannot apply). Replacements contain no tab,
    /// newline or backslash, so the row keeps its shape.
    /// Fields made of a sensitive column (the statement's lineage) are replaced whole first.
    pub(crate) fn mask_copy_text(&self, data: &[u8], counts: &mut Counts) -> Option<Vec<u8>> {
        let fields = self.copy_fields(data, counts);
        let row = fields.as_deref().unwrap_or(data);
        let text = String::from_utf8_lossy(row);
        match self.masker.mask_text(&text, counts) {
            std::borrow::Cow::Borrowed(_) => fields,
            // Text that was not UTF-8 leaves with U+FFFD in place of what could not be read:
            // garbled, but never in the clear.
            std::borrow::Cow::Owned(s) => Some(s.into_bytes()),
        }
    }

    fn copy_fields(&self, row: &[u8], counts: &mut Counts) -> Option<Vec<u8>> {
        let format = self.lineage.as_ref()?.lineage.copy?;
        let plans = self.positional(|| lineage::field_count(&format, row))?;
        lineage::mask_copy_row(&self.masker, &format, row, plans, counts)
    }

    /// For a binary COPY whose tuples have `n` fields: the fields made of a sensitive column.
    pub(crate) fn copy_whole(&self, n: usize) -> Option<&[Option<ColumnPlan>]> {
        self.positional(|| n)
    }
}

/// Every column's plan, shared by the rows of one result.
pub(crate) type SharedPlan = Arc<ResultPlan>;

#[cfg(test)]
mod tests;
