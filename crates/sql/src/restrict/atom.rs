//! Comparisons: what one predicate atom restricts.
//!
//! An atom restricts a relation when it compares an expression over that relation's columns
//! with a value that depends on no column (a constant, a parameter, an independent
//! subquery), or two disjoint sets of its columns (`a = b`). Overlapping sides (`id = id`,
//! `coalesce(id, 0) = coalesce(id, 0)`) restrict nothing; an atom over columns of two
//! relations links them (a join condition).

use std::collections::BTreeSet;

use pg_query::NodeEnum;
use pg_query::protobuf::{AExpr, AExprKind, ColumnRef, SubLink, SubLinkType};

use super::filter::{Bound, Filter};
use super::pattern::{self, Pattern};
use super::scope::{Owner, RelId, WHOLE_ROW};
use super::side::{Side, side};

/// Operators that match a string against a pattern (LIKE, ILIKE and regular expressions,
/// each with its negation).
const PATTERN_OPERATORS: &[&str] = &["~~", "~~*", "!~~", "!~~*", "~", "~*", "!~", "!~*"];

impl Filter<'_> {
    pub(super) fn a_expr(&mut self, expr: &AExpr, negated: bool) -> Bound {
        use AExprKind as K;
        let kind = K::try_from(expr.kind).unwrap_or(K::Undefined);
        let op = operator(&expr.name);
        let (Some(left), Some(right)) = (expr.lexpr.as_deref(), expr.rexpr.as_deref()) else {
            return Bound::default();
        };
        match kind {
            K::AexprOp if PATTERN_OPERATORS.contains(&op) => {
                self.pattern(left, right, op, Pattern::of_operator(op), negated)
            }
            K::AexprLike | K::AexprIlike => {
                self.pattern(left, right, op, Some(Pattern::Like), negated)
            }
            K::AexprSimilar => match similar_pattern(right) {
                Some(pattern) => self.pattern(left, pattern, op, Some(Pattern::Similar), negated),
                None => Bound::default(),
            },
            // Comparisons, IN lists (whose list is never empty) and BETWEEN SYMMETRIC
            // restrict in either polarity: `NOT (a = 1)` is `a <> 1`.
            K::AexprOp | K::AexprIn | K::AexprBetweenSym | K::AexprNotBetweenSym => {
                self.compare_nodes(left, right)
            }
            // `x NOT BETWEEN a AND b` is `x < a OR x > b`: every value when a > b.
            K::AexprBetween | K::AexprNotBetween => {
                let outside = (kind == K::AexprNotBetween) != negated;
                if outside && !ordered_bounds(right) {
                    Bound::default()
                } else {
                    self.compare_nodes(left, right)
                }
            }
            K::AexprOpAny | K::AexprOpAll => {
                self.quantified(left, right, op, kind == K::AexprOpAll, negated)
            }
            K::AexprDistinct | K::AexprNotDistinct => {
                self.distinct(left, right, (kind == K::AexprDistinct) != negated)
            }
            K::AexprNullif | K::Undefined => Bound::default(),
        }
    }

    /// `x LIKE 'a%'`, `x ~ '^a'`, `x SIMILAR TO 'a%'`: a restriction unless the pattern,
    /// when rows that match it pass, matches everything (`'%'`, `'.*'`), or is an expression
    /// whose value the text does not give (`'%' || ''`). A parameter counts as a value.
    fn pattern(
        &mut self,
        left: &pg_query::Node,
        pattern: &pg_query::Node,
        op: &str,
        kind: Option<Pattern>,
        negated: bool,
    ) -> Bound {
        let matching = op.starts_with('!') == negated;
        match (kind, string_constant(pattern)) {
            (Some(kind), Some(text)) if matching && !pattern::restricts(kind, text) => {
                Bound::default()
            }
            (Some(_), Some(_)) => self.compare_nodes(left, pattern),
            (Some(_), None) if is_param(pattern) => self.compare_nodes(left, pattern),
            _ => Bound::default(),
        }
    }

    /// `x op ANY (array)` / `x op ALL (array)`. Negation swaps the quantifier and the
    /// operator. ALL over an empty array is true for every row, so it restricts only over
    /// a literal array with elements; `x <> ANY (array)` is true for every row as soon as the
    /// array has two distinct values, so it restricts nothing.
    fn quantified(
        &mut self,
        left: &pg_query::Node,
        right: &pg_query::Node,
        op: &str,
        all: bool,
        negated: bool,
    ) -> Bound {
        let all = all != negated;
        let op = if negated { negate(op) } else { Some(op) };
        if all {
            return if literal_array(right) {
                self.compare_nodes(left, right)
            } else {
                Bound::default()
            };
        }
        match op {
            Some(op) if is_not_equal(op) || PATTERN_OPERATORS.contains(&op) => Bound::default(),
            Some(_) => self.compare_nodes(left, right),
            None => Bound::default(),
        }
    }

    /// `a IS [NOT] DISTINCT FROM b` treats NULL as a value: against NULL it is a null test,
    /// and against a value that may be NULL at run time (a parameter, a subquery) `IS
    /// DISTINCT FROM` may be `IS NOT NULL`, which keeps every row.
    fn distinct(&mut self, left: &pg_query::Node, right: &pg_query::Node, distinct: bool) -> Bound {
        let null_other = match (is_null(left), is_null(right)) {
            (true, true) => return Bound::default(),
            (true, false) => Some(right),
            (false, true) => Some(left),
            (false, false) => None,
        };
        if let Some(tested) = null_other {
            return if distinct {
                Bound::default()
            } else {
                self.plain(tested.node.as_ref())
            };
        }
        let (l, r) = (self.side_of(left), self.side_of(right));
        let valued = match (l.columns.is_empty(), r.columns.is_empty()) {
            (true, false) => Some((left, right)),
            (false, true) => Some((right, left)),
            _ => None,
        };
        if let Some((value, tested)) = valued
            && !is_literal(value)
            && (distinct || plain_column(tested.node.as_ref()).is_none())
        {
            return Bound::default();
        }
        self.compare(&l, &r)
    }

    /// `x IN (SELECT ...)`, `x op ANY|ALL (SELECT ...)`. A subquery that neither depends on
    /// the tested row nor reads the target is a set of values: `= ANY` restricts like IN. One
    /// that does is read as a join (see [`Filter::merged`]). ALL may face an empty set (true
    /// for every row), so it restricts nothing; nor does `<> ANY`.
    pub(super) fn quantified_sublink(
        &mut self,
        link: &SubLink,
        kind: SubLinkType,
        negated: bool,
    ) -> Bound {
        let written = if link.oper_name.is_empty() {
            "="
        } else {
            operator(&link.oper_name)
        };
        let all = (kind == SubLinkType::AllSublink) != negated;
        let op = if negated {
            negate(written)
        } else {
            Some(written)
        };
        let (Some(tested), Some(subquery), false) =
            (link.testexpr.as_deref(), link.subselect.as_deref(), all)
        else {
            return Bound::default();
        };
        let tested = self.side_of(tested);
        let values = side(subquery, &self.scopes, self.target);
        match op {
            Some(op) if is_not_equal(op) || PATTERN_OPERATORS.contains(&op) => Bound::default(),
            Some(_) if values.trusted() => self.compare(&tested, &values),
            Some("=") => self.merged(link, Some(tested)),
            _ => Bound::default(),
        }
    }

    fn side_of(&self, node: &pg_query::Node) -> Side {
        side(node, &self.scopes, self.target)
    }

    fn compare_nodes(&mut self, left: &pg_query::Node, right: &pg_query::Node) -> Bound {
        let (left, right) = (self.side_of(left), self.side_of(right));
        self.compare(&left, &right)
    }

    /// What comparing two sides restricts or links.
    pub(super) fn compare(&self, left: &Side, right: &Side) -> Bound {
        let column_sides_fine = [left, right].iter().all(|side| {
            let erased = side.erasing && !side.columns.is_empty();
            let known = side.columns.iter().all(|c| c.owner != Owner::Unknown);
            side.trusted() && !erased && known
        });
        if !column_sides_fine || shares_inner_name(left, right) || shares_inner_name(right, left) {
            return Bound::default();
        }
        match (left.columns.is_empty(), right.columns.is_empty()) {
            (true, true) => Bound::default(),
            (false, true) => restrict_or_link(left),
            (true, false) => restrict_or_link(right),
            (false, false) => self.both_columns(left, right),
        }
    }

    /// Columns on both sides: disjoint columns of one relation restrict it (`a = b`), unless
    /// in an upsert, where only values restrict; columns of two relations link them. A
    /// column on both sides makes the atom restrict nothing.
    fn both_columns(&self, left: &Side, right: &Side) -> Bound {
        let ambiguous = |side: &Side| {
            side.columns
                .iter()
                .any(|c| matches!(c.owner, Owner::Ambiguous(_)))
        };
        if ambiguous(left) || ambiguous(right) {
            return Bound::default();
        }
        // A column on both sides can cancel out (`t.id = t.id + v.k - v.k`).
        if overlap(left, right) {
            return Bound::default();
        }
        let (l, r) = (rels(left), rels(right));
        if l == r && l.len() == 1 {
            return match (self.upsert, l.first()) {
                (false, Some(&rel)) => Bound::restrict(rel),
                _ => Bound::default(),
            };
        }
        let mut bound = Bound::default();
        for &a in &l {
            for &b in &r {
                bound.link(a, b);
            }
        }
        bound
    }
}

/// A side over columns compared with a value: it restricts its relation; over columns of
/// several relations (`t.a + u.b = 5`) it relates them like a join.
fn restrict_or_link(side: &Side) -> Bound {
    match rels(side).as_slice() {
        [rel] => Bound::restrict(*rel),
        many => {
            let mut bound = Bound::default();
            for pair in many.windows(2) {
                if let [a, b] = pair {
                    bound.link(*a, *b);
                }
            }
            bound
        }
    }
}

/// The relations of a side's columns, sorted and unique.
fn rels(side: &Side) -> Vec<RelId> {
    let mut rels: Vec<RelId> = side
        .columns
        .iter()
        .filter_map(|c| match c.owner {
            Owner::Rel(rel) | Owner::Ambiguous(rel) => Some(rel),
            Owner::Unknown => None,
        })
        .collect();
    rels.sort_unstable();
    rels.dedup();
    rels
}

/// Whether the sides share a column, a whole row counting as every column of its relation.
fn overlap(left: &Side, right: &Side) -> bool {
    let (l, r) = (columns(left), columns(right));
    let whole = |set: &BTreeSet<(Owner, &str)>, owner: Owner| set.contains(&(owner, WHOLE_ROW));
    l.intersection(&r).next().is_some()
        || l.iter().any(|(owner, _)| whole(&r, *owner))
        || r.iter().any(|(owner, _)| whole(&l, *owner))
}

fn columns(side: &Side) -> BTreeSet<(Owner, &str)> {
    side.columns
        .iter()
        .map(|c| (c.owner, c.name.as_str()))
        .collect()
}

/// A subquery on one side names, unqualified, a column the other side reads: PostgreSQL
/// takes it from the outer row when the subquery's tables lack it, and the comparison may
/// then be `id = id` (`id IN (SELECT id FROM pg_class)`).
fn shares_inner_name(subquery: &Side, other: &Side) -> bool {
    let names: BTreeSet<&str> = other.columns.iter().map(|c| c.name.as_str()).collect();
    subquery
        .inner_names
        .iter()
        .any(|name| names.contains(name.as_str()))
}

fn operator(name: &[pg_query::Node]) -> &str {
    match name.last().and_then(|part| part.node.as_ref()) {
        Some(NodeEnum::String(part)) => part.sval.as_str(),
        _ => "",
    }
}

/// The operator that is true exactly when `op` is false (NULLs aside).
fn negate(op: &str) -> Option<&'static str> {
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

fn is_not_equal(op: &str) -> bool {
    matches!(op, "<>" | "!=")
}

/// `SIMILAR TO p` arrives as `~ similar_to_escape(p)`; with an ESCAPE clause the pattern is
/// not read (fail closed).
fn similar_pattern(node: &pg_query::Node) -> Option<&pg_query::Node> {
    match node.node.as_ref()? {
        NodeEnum::FuncCall(call) => match call.args.as_slice() {
            [pattern] => Some(pattern),
            _ => None,
        },
        _ => Some(node),
    }
}

/// The node under type casts and COLLATE.
fn unwrapped(node: Option<&NodeEnum>) -> Option<&NodeEnum> {
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

fn is_param(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::ParamRef(_)))
}

fn is_null(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::AConst(c)) if c.isnull)
}

fn is_literal(node: &pg_query::Node) -> bool {
    matches!(unwrapped(node.node.as_ref()), Some(NodeEnum::AConst(c)) if !c.isnull)
}

fn string_constant(node: &pg_query::Node) -> Option<&str> {
    use pg_query::protobuf::a_const::Val;
    match unwrapped(node.node.as_ref())? {
        NodeEnum::AConst(constant) => match constant.val.as_ref()? {
            Val::Sval(string) => Some(string.sval.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// BETWEEN bounds that are number constants, the lower one first.
fn ordered_bounds(bounds: &pg_query::Node) -> bool {
    use pg_query::protobuf::a_const::Val;
    let number = |node: &pg_query::Node| match unwrapped(node.node.as_ref()) {
        Some(NodeEnum::AConst(constant)) => match constant.val.as_ref() {
            Some(Val::Ival(integer)) => Some(f64::from(integer.ival)),
            Some(Val::Fval(float)) => float.fval.parse::<f64>().ok(),
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
fn literal_array(node: &pg_query::Node) -> bool {
    match unwrapped(node.node.as_ref()) {
        Some(NodeEnum::AArrayExpr(array)) => !array.elements.is_empty(),
        Some(NodeEnum::AConst(_)) => string_constant(node).is_some_and(|text| {
            let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
            text.trim().starts_with('{') && !inner.trim().is_empty()
        }),
        _ => false,
    }
}
