//! Comparisons: what one predicate atom restricts.
//!
//! An atom restricts a relation when it compares an expression over that relation's columns
//! with a value that depends on no column (a constant, a parameter, an independent scalar
//! subquery), or two disjoint sets of its columns (`a = b`). `IN (subquery)` is a join
//! instead ([`Filter::merged`]). Overlapping sides (`id = id`,
//! `coalesce(id, 0) = coalesce(id, 0)`) restrict nothing; an atom over columns of two
//! relations links them (a join condition).
//!
//! Equality in effect (once NOT is pushed down) may compare an expression of the columns
//! (`lower(email) = 'x'`). The other comparisons are open-ended or negative: each operand
//! that reads columns must be a bare column, since all of an expression's values may lie on
//! one side of the constant (`greatest(id, 0) >= 0`, `abs(id) <> -1`), and they restrict
//! nothing inside an OR ([`Filter::positive`]). IN, `op ANY|ALL` and patterns test their
//! left operand against values: a column among the values restricts nothing (`1 IN (1,
//! id)` holds for every row).

use std::collections::BTreeSet;

use pg_query::NodeEnum;
use pg_query::protobuf::{AExpr, AExprKind, SubLink, SubLinkType};

use super::filter::{Bound, Filter};
use super::node::{
    is_literal, is_not_equal, is_null, is_param, is_value, items, literal_array, negate, operator,
    ordered_bounds, plain_column, similar_pattern, string_constant, unwrapped,
};
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
            K::AexprOp => self.comparison(left, right, op, negated),
            // `IN` is `= ANY` over its list (never empty), `NOT IN` is `<> ALL`.
            K::AexprIn => self.against_values(left, right, (op == "=") != negated),
            K::AexprBetween | K::AexprNotBetween | K::AexprBetweenSym | K::AexprNotBetweenSym => {
                self.between(left, right, kind, negated)
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

    /// `a op b`: equality in effect restricts through expressions, `<>` and the orders only
    /// as open atoms ([`Filter::open`]). Other operators (`@>`, `&&`, ...) restrict as
    /// written, in either polarity, but not inside an OR.
    fn comparison(
        &mut self,
        left: &pg_query::Node,
        right: &pg_query::Node,
        op: &str,
        negated: bool,
    ) -> Bound {
        let effective = match (negate(op), negated) {
            (None, _) if self.positive => return Bound::default(),
            (None, _) => return self.compare_nodes(left, right),
            (Some(opposite), true) => opposite,
            (Some(_), false) => op,
        };
        if effective == "=" || self.open(&[left, right]) {
            self.compare_nodes(left, right)
        } else {
            Bound::default()
        }
    }

    /// Whether an open-ended or negative atom over `operands` may restrict: outside an OR,
    /// with bare operands ([`Filter::bare`]).
    fn open(&self, operands: &[&pg_query::Node]) -> bool {
        !self.positive && self.bare(operands)
    }

    /// Whether every operand (every bound of a BETWEEN) that reads columns is a bare column
    /// (through casts).
    fn bare(&self, operands: &[&pg_query::Node]) -> bool {
        let bare = |node: &pg_query::Node| {
            plain_column(node.node.as_ref()).is_some() || self.side_of(node).columns.is_empty()
        };
        operands
            .iter()
            .all(|operand| items(operand).iter().all(bare))
    }

    /// `x LIKE 'a%'`, `x ~ '^a'`, `x SIMILAR TO 'a%'`: a restriction unless the pattern,
    /// when rows that match it pass, matches everything (`'%'`, `'.*'`), or is an expression
    /// whose value the text does not give (`'%' || ''`). A parameter counts as a value. The
    /// negated forms (`NOT LIKE`) are open atoms.
    fn pattern(
        &mut self,
        left: &pg_query::Node,
        pattern: &pg_query::Node,
        op: &str,
        kind: Option<Pattern>,
        negated: bool,
    ) -> Bound {
        let matching = op.starts_with('!') == negated;
        if !matching && !self.open(&[left]) {
            return Bound::default();
        }
        match (kind, string_constant(pattern)) {
            (Some(kind), Some(text)) if matching && !pattern::restricts(kind, text) => {
                Bound::default()
            }
            (Some(_), Some(_)) => self.compare_nodes(left, pattern),
            (Some(_), None) if is_param(pattern) => self.compare_nodes(left, pattern),
            _ => Bound::default(),
        }
    }

    /// `tested IN (values)`, `tested op ANY|ALL (values)`: the tested side must read columns
    /// and the values none, or the atom may hold whatever the columns (`1 IN (1, id)`, `1 =
    /// ANY (ARRAY[1, id])`). Unless `equal`, it is an open atom.
    fn against_values(
        &mut self,
        tested: &pg_query::Node,
        values: &pg_query::Node,
        equal: bool,
    ) -> Bound {
        if !equal && !self.open(&[tested]) {
            return Bound::default();
        }
        let (tested, values) = (self.side_of(tested), self.side_of(values));
        if tested.columns.is_empty() || !values.columns.is_empty() {
            return Bound::default();
        }
        self.compare(&tested, &values)
    }

    /// BETWEEN is an order, so an open atom: `x NOT BETWEEN a AND b` is `x < a OR x > b`,
    /// which holds for every value when a > b (known only for ordered number bounds). Inside
    /// an OR, `BETWEEN` two values is positive (a closed interval); the negated forms are not.
    fn between(
        &mut self,
        left: &pg_query::Node,
        right: &pg_query::Node,
        kind: AExprKind,
        negated: bool,
    ) -> Bound {
        use AExprKind as K;
        let symmetric = matches!(kind, K::AexprBetweenSym | K::AexprNotBetweenSym);
        let outside = matches!(kind, K::AexprNotBetween | K::AexprNotBetweenSym) != negated;
        let closed = !outside && items(right).iter().all(is_value);
        let reversed = outside && !symmetric && !ordered_bounds(right);
        if !self.bare(&[left, right]) || (self.positive && !closed) || reversed {
            return Bound::default();
        }
        self.compare_nodes(left, right)
    }

    /// `x op ANY (array)` / `x op ALL (array)`. Negation swaps the quantifier and the
    /// operator. ALL over an empty array is true for every row, so it restricts only over
    /// a written array with elements; `x <> ANY (array)` is true for every row as soon as the
    /// array has two distinct values, and a pattern may match every string, so they restrict
    /// nothing. `= ANY (ARRAY(SELECT ...))` is `IN (SELECT ...)`; any other array a subquery
    /// computes may hold every row's value, so it restricts nothing.
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
        let Some(op) = op.filter(|op| !PATTERN_OPERATORS.contains(op)) else {
            return Bound::default();
        };
        if let Some(NodeEnum::SubLink(link)) = unwrapped(right.node.as_ref())
            && link.sub_link_type == SubLinkType::ArraySublink as i32
            && op == "="
            && !all
        {
            return self.merged(link, Some(left));
        }
        let usable = if all {
            literal_array(right)
        } else {
            !is_not_equal(op)
        };
        if !usable || self.side_of(right).subquery {
            return Bound::default();
        }
        self.against_values(left, right, op == "=")
    }

    /// `a IS [NOT] DISTINCT FROM b` treats NULL as a value: against NULL it is a null test,
    /// and against a value that may be NULL at run time (a parameter, a subquery) `IS
    /// DISTINCT FROM` may be `IS NOT NULL`, which keeps every row. `IS DISTINCT FROM` is an
    /// open atom, `IS NOT DISTINCT FROM` an equality.
    fn distinct(&mut self, left: &pg_query::Node, right: &pg_query::Node, distinct: bool) -> Bound {
        if distinct && !self.open(&[left, right]) {
            return Bound::default();
        }
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

    /// `x IN (SELECT ...)`, `x op ANY|ALL (SELECT ...)`. Only `= ANY` (IN) restricts, read as
    /// a join with the subquery's relations ([`Filter::merged`]), as the same semi-join
    /// written with EXISTS is: a subquery over another table may hold every row's partner
    /// (`customer_id IN (SELECT id FROM customers)`). ALL may face an empty set (true for
    /// every row), `<> ANY` two values, and the orders compare with a set the text does not
    /// give, so they restrict nothing.
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
        match (link.testexpr.as_deref(), all, op) {
            (Some(tested), false, Some("=")) => self.merged(link, Some(tested)),
            _ => Bound::default(),
        }
    }

    pub(super) fn side_of(&self, node: &pg_query::Node) -> Side {
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
