//! Reading single expression nodes: operators, constants, bare columns, written arrays.

use pg_query::NodeEnum;
use pg_query::protobuf::ColumnRef;

use crate::literal::{self, Literal};

/// The operator's name (its last part: `OPERATOR(pg_catalog.=)` is `=`).
pub(super) fn operator(name: &[pg_query::Node]) -> &str {
    match name.last().and_then(|part| part.node.as_ref()) {
        Some(NodeEnum::String(part)) => part.sval.as_str(),
        _ => "",
    }
}

/// The operator that is true exactly when `op` is false (NULLs aside); `None` for an
/// operator that is no comparison.
pub(super) fn negate(op: &str) -> Option<&'static str> {
    Some(match op {
        "=" => "<>",
        "<>" | "!=" => "=",
        "<" => ">=",
        ">=" => "<",
        ">" => "<=",
        "<=" => ">",
        _ => return None,
    })
}

pub(super) fn is_not_equal(op: &str) -> bool {
    matches!(op, "<>" | "!=")
}

/// The operands of a list (`BETWEEN a AND b`, `IN (a, b)`), or the node itself.
pub(super) fn items(node: &pg_query::Node) -> &[pg_query::Node] {
    match node.node.as_ref() {
        Some(NodeEnum::List(list)) => &list.items,
        _ => std::slice::from_ref(node),
    }
}

/// `SIMILAR TO p` arrives as `~ similar_to_escape(p)`; with an ESCAPE clause the pattern is
/// not read (fail closed).
pub(super) fn similar_pattern(node: &pg_query::Node) -> Option<&pg_query::Node> {
    match node.node.as_ref()? {
        NodeEnum::FuncCall(call) => match call.args.as_slice() {
            [pattern] => Some(pattern),
            _ => None,
        },
        _ => Some(node),
    }
}

/// The node under type casts and COLLATE.
pub(super) fn unwrapped(node: Option<&NodeEnum>) -> Option<&NodeEnum> {
    match node? {
        NodeEnum::TypeCast(cast) => unwrapped(cast.arg.as_deref()?.node.as_ref()),
        NodeEnum::CollateClause(collate) => unwrapped(collate.arg.as_deref()?.node.as_ref()),
        other => Some(other),
    }
}

/// A column reference alone (through casts), not a whole row.
pub(super) fn plain_column(node: Option<&NodeEnum>) -> Option<&ColumnRef> {
    match unwrapped(node)? {
        NodeEnum::ColumnRef(column)
            if matches!(
                column.fields.last().and_then(|f| f.node.as_ref()),
                Some(NodeEnum::String(_))
            ) =>
        {
            Some(column)
        }
        _ => None,
    }
}

/// A constant or a parameter (through casts): a value fixed before the statement runs.
pub(super) fn is_value(node: &pg_query::Node) -> bool {
    matches!(
        unwrapped(node.node.as_ref()),
        Some(NodeEnum::AConst(_) | NodeEnum::ParamRef(_))
    )
}

pub(super) fn is_param(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::ParamRef(_)))
}

pub(super) fn is_null(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::AConst(c)) if c.isnull)
}

pub(super) fn is_literal(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::AConst(c)) if !c.isnull)
}

pub(super) fn string_constant(node: &pg_query::Node) -> Option<&str> {
    match unwrapped(node.node.as_ref())? {
        NodeEnum::AConst(constant) => match literal::value(constant, literal::string)? {
            Literal::Str(string) => Some(string),
            _ => None,
        },
        _ => None,
    }
}

/// BETWEEN bounds that are number constants, the lower one first.
pub(super) fn ordered_bounds(bounds: &pg_query::Node) -> bool {
    let number = |node: &pg_query::Node| match unwrapped(node.node.as_ref()) {
        Some(NodeEnum::AConst(constant)) => match literal::value(constant, literal::number) {
            Some(Literal::Int(integer)) => Some(f64::from(integer)),
            Some(Literal::Float(float)) => float.parse::<f64>().ok(),
            _ => None,
        },
        _ => None,
    };
    match bounds.node.as_ref() {
        Some(NodeEnum::List(list)) => match list.items.as_slice() {
            [low, high] => matches!((number(low), number(high)), (Some(l), Some(h)) if l <= h),
            _ => false,
        },
        _ => false,
    }
}

/// `ARRAY[1, 2]` or `'{1,2}'`: an array written out, with at least one element.
pub(super) fn literal_array(node: &pg_query::Node) -> bool {
    match unwrapped(node.node.as_ref()) {
        Some(NodeEnum::AArrayExpr(array)) => !array.elements.is_empty(),
        Some(NodeEnum::AConst(_)) => string_constant(node).is_some_and(|text| {
            let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
            text.trim().starts_with('{') && !inner.trim().is_empty()
        }),
        _ => false,
    }
}
