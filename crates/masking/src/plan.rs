//! What the door gets back: the plan for a result column and the result of masking a value.

use crate::profile::{ColumnMatch, ColumnRule};
use crate::{Entity, Strategy, glob};

/// How the values of one result column are masked; computed once per column by
/// [`Masker::column`](crate::Masker::column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnPlan {
    /// No column rule: values are scanned as text.
    Pass,
    /// A column rule matched: every non-null value is replaced whole.
    Whole {
        /// The entity of the rule.
        entity: Entity,
        /// The strategy for that entity.
        strategy: Strategy,
    },
    /// `json`/`jsonb`: values are rewritten by [`Masker::mask_json`](crate::Masker::mask_json).
    Json,
    /// A PostgreSQL array in text format: elements are scanned as text and the literal stays
    /// valid.
    Array,
}

/// The result of masking one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Masked<'a> {
    /// Nothing to mask: the original bytes.
    Unchanged(&'a [u8]),
    /// The masked value.
    Replaced(Vec<u8>),
    /// The value must become SQL NULL (a whole-column rule with [`Strategy::Null`]).
    Null,
}

impl Masked<'_> {
    /// The bytes to send, or `None` for NULL.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Masked::Unchanged(b) => Some(b),
            Masked::Replaced(b) => Some(b),
            Masked::Null => None,
        }
    }

    /// Whether anything was masked.
    pub fn is_changed(&self) -> bool {
        !matches!(self, Masked::Unchanged(_))
    }
}

/// The plan for a column: the first matching rule, else by type (see [`Masker::column`]).
///
/// [`Masker::column`]: crate::Masker::column
pub(crate) fn column_plan(
    rules: &[ColumnRule],
    name: &str,
    type_name: &str,
    strategy: impl Fn(Entity) -> Strategy,
) -> ColumnPlan {
    let ty = type_name.trim().to_ascii_lowercase();
    let ty = ty.rsplit_once('.').map_or(ty.as_str(), |(_, t)| t);
    let ty = ty.split_once('(').map_or(ty, |(t, _)| t).trim();
    let (base, is_array) = match (ty.strip_suffix("[]"), ty.strip_prefix('_')) {
        (Some(b), _) | (None, Some(b)) => (b.trim(), true),
        (None, None) => (ty, false),
    };
    let rule = rules.iter().find(|rule| match &rule.matcher {
        ColumnMatch::Name(glob) => glob::matches(glob, name),
        ColumnMatch::Type(t) => t.trim().eq_ignore_ascii_case(base),
    });
    match rule {
        Some(rule) => ColumnPlan::Whole {
            entity: rule.entity,
            strategy: strategy(rule.entity),
        },
        None if is_array => ColumnPlan::Array,
        None if base == "json" || base == "jsonb" => ColumnPlan::Json,
        None => ColumnPlan::Pass,
    }
}
