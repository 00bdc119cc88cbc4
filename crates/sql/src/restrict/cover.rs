//! Positive conditions that still keep every row: a boolean has two values, so `active OR
//! active IS FALSE`, `active = 't' OR active = 'f'` and `active IN (true, false)` hold for
//! every row (a column is taken as never null when unsure, as elsewhere in the analysis).
//!
//! Other complements need a negative or open-ended part (`id = 1 OR id <> 1`, `id < 5 OR id
//! >= 5`), which restricts nothing inside an OR anyway ([`super::filter::Filter::positive`]).
//!
//! Each part of a disjunction is read as the truth values it lets pass for a column,
//! known by its name alone (`users.active` and `active` are one subject; two relations'
//! columns of one name are taken for one, which fails closed). A string constant counts as
//! a boolean when PostgreSQL's boolean input reads it so (`'t'`, `'no'`, `' 1 '`): the text
//! does not tell whether the column is a boolean, so `code IN ('1', '0')` counts as every
//! row too.

use std::collections::BTreeMap;

use pg_query::NodeEnum;
use pg_query::protobuf::{AExpr, AExprKind, BoolExprType, BoolTestType};

use crate::literal::{self, Literal};

use super::node::{items, operator, plain_column, unwrapped};
use crate::session::parse_bool;

/// A set of truth values: true, false (null is assumed away).
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BOTH: u8 = TRUE | FALSE;

/// Whether the disjunction of `args`, each read negated when `negated` (a negated AND is
/// such a disjunction, by De Morgan), holds for every row.
pub(super) fn covers_all(args: &[pg_query::Node], negated: bool) -> bool {
    let mut parts = Vec::new();
    for arg in args {
        flatten(arg, negated, &mut parts);
    }
    let mut passing: BTreeMap<&str, u8> = BTreeMap::new();
    for (node, negated) in parts {
        if let Some((column, set)) = truth(node, negated) {
            *passing.entry(column).or_default() |= set;
        }
    }
    passing.values().any(|&set| set == BOTH)
}

/// Whether one comparison by itself holds for every row (`active IN (true, false)`).
pub(super) fn covers_alone(expr: &AExpr, negated: bool) -> bool {
    compared(expr, negated).is_some_and(|(_, set)| set == BOTH)
}

/// The parts of a disjunction, nested disjunctions included, with their polarity.
fn flatten<'a>(node: &'a pg_query::Node, negated: bool, out: &mut Vec<(&'a NodeEnum, bool)>) {
    let Some(inner) = node.node.as_ref() else {
        return;
    };
    if let NodeEnum::BoolExpr(expr) = inner {
        let op = BoolExprType::try_from(expr.boolop).unwrap_or(BoolExprType::Undefined);
        match (op, negated) {
            (BoolExprType::OrExpr, false) | (BoolExprType::AndExpr, true) => {
                for arg in &expr.args {
                    flatten(arg, negated, out);
                }
                return;
            }
            (BoolExprType::NotExpr, _) => {
                if let [arg] = expr.args.as_slice() {
                    flatten(arg, !negated, out);
                }
                return;
            }
            _ => {}
        }
    }
    out.push((inner, negated));
}

/// One part as the truth values it lets pass for a column.
fn truth(node: &NodeEnum, negated: bool) -> Option<(&str, u8)> {
    let flip = |set: u8| if negated { BOTH & !set } else { set };
    match node {
        NodeEnum::ColumnRef(_) | NodeEnum::TypeCast(_) => Some((column(Some(node))?, flip(TRUE))),
        NodeEnum::BooleanTest(test) => {
            let set = match BoolTestType::try_from(test.booltesttype).ok()? {
                BoolTestType::IsTrue | BoolTestType::IsNotFalse => TRUE,
                BoolTestType::IsFalse | BoolTestType::IsNotTrue => FALSE,
                BoolTestType::IsNotUnknown => BOTH,
                BoolTestType::IsUnknown | BoolTestType::Undefined => 0,
            };
            Some((column(test.arg.as_deref()?.node.as_ref())?, flip(set)))
        }
        NodeEnum::AExpr(expr) => compared(expr, negated),
        _ => None,
    }
}

/// A column compared with boolean constants: `= c`, `<> c`, `IS [NOT] DISTINCT FROM c`,
/// `[NOT] IN (c, ...)`, `= ANY (ARRAY[c, ...])`, `= ANY ('{c,...}')`.
fn compared(expr: &AExpr, negated: bool) -> Option<(&str, u8)> {
    use AExprKind as K;
    let kind = K::try_from(expr.kind).ok()?;
    let op = operator(&expr.name);
    let (left, right) = (expr.lexpr.as_deref()?, expr.rexpr.as_deref()?);
    let (subject, values, equal) = match kind {
        K::AexprOp | K::AexprDistinct | K::AexprNotDistinct => {
            let equal = match kind {
                K::AexprOp if op == "=" => true,
                K::AexprOp if matches!(op, "<>" | "!=") => false,
                K::AexprOp => return None,
                _ => kind == K::AexprNotDistinct,
            };
            match column(left.node.as_ref()) {
                Some(subject) => (subject, booleans(std::slice::from_ref(right))?, equal),
                None => (
                    column(right.node.as_ref())?,
                    booleans(std::slice::from_ref(left))?,
                    equal,
                ),
            }
        }
        K::AexprIn => (
            column(left.node.as_ref())?,
            booleans(items(right))?,
            op == "=",
        ),
        K::AexprOpAny if op == "=" => (column(left.node.as_ref())?, array(right)?, true),
        _ => return None,
    };
    let set = if equal == negated {
        BOTH & !values
    } else {
        values
    };
    Some((subject, set))
}

/// The column a node is (through casts), by name.
fn column(node: Option<&NodeEnum>) -> Option<&str> {
    match plain_column(node)?.fields.last()?.node.as_ref()? {
        NodeEnum::String(name) => Some(name.sval.as_str()),
        _ => None,
    }
}

/// The truth values among `nodes`, when every one is a boolean constant.
fn booleans(nodes: &[pg_query::Node]) -> Option<u8> {
    nodes.iter().try_fold(0, |set, node| {
        let value = boolean(unwrapped(node.node.as_ref())?)?;
        Some(set | if value { TRUE } else { FALSE })
    })
}

/// `true`, `false`, or a string PostgreSQL's boolean input reads as one.
fn boolean(node: &NodeEnum) -> Option<bool> {
    match node {
        NodeEnum::AConst(constant) => match literal::value(constant, literal::boolean)? {
            Literal::Bool(boolean) => Some(boolean),
            Literal::Str(text) => parse_bool(text.trim()),
            _ => None,
        },
        _ => None,
    }
}

/// The truth values of a written array: `ARRAY[true, false]` or `'{t,f}'`.
fn array(node: &pg_query::Node) -> Option<u8> {
    match unwrapped(node.node.as_ref())? {
        NodeEnum::AArrayExpr(array) => booleans(&array.elements),
        NodeEnum::AConst(constant) => match literal::value(constant, literal::string)? {
            Literal::Str(text) => {
                let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
                inner.split(',').try_fold(0, |set, element| {
                    let value = parse_bool(element.trim().trim_matches('"'))?;
                    Some(set | if value { TRUE } else { FALSE })
                })
            }
            _ => None,
        },
        _ => None,
    }
}
