//! The boolean structure of a WHERE: which relations a filter restricts, read through
//! AND, OR and NOT (pushed down by De Morgan), null and boolean tests, and subqueries.
//!
//! Inside a disjunction only positive restrictions count ([`Filter::positive`]): whether two
//! parts of an OR together keep every row cannot be told in general (`id = 1 OR id <> '1'`,
//! `id + 0 = 1 OR id <> 1`), but parts that each pick rows by equality cannot, so the
//! reading fails closed on everything else there.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{
    BoolExprType, BoolTestType, BooleanTest, ColumnRef, NullTest, NullTestType, SelectStmt,
    SetOperation, SubLink, SubLinkType,
};

use super::Target;
use super::cover;
use super::node::plain_column;
use super::scope::{Owner, RelId, Scopes, TARGET};
use super::side::{Side, side};
use crate::walk::walk;

/// What a filter tells about the relations of a write: the relations it restricts by
/// itself, and the pairs of relations one of its conditions compares (links). A relation
/// linked to a restricted one is restricted too: only its rows with a partner pass.
#[derive(Debug, Default)]
pub(super) struct Bound {
    restricted: BTreeSet<RelId>,
    links: Vec<(RelId, RelId)>,
}

impl Bound {
    pub(super) fn restrict(rel: RelId) -> Self {
        Self {
            restricted: BTreeSet::from([rel]),
            links: Vec::new(),
        }
    }

    pub(super) fn link(&mut self, a: RelId, b: RelId) {
        if a != b {
            self.links.push((a, b));
        }
    }

    /// Both hold (a conjunction).
    pub(super) fn and(&mut self, other: Bound) {
        self.restricted.extend(other.restricted);
        self.links.extend(other.links);
    }

    /// The relations restricted, directly or through any chain of links, with `preset` the
    /// relations restricted by what they are.
    pub(super) fn closure(&self, preset: &BTreeSet<RelId>) -> BTreeSet<RelId> {
        let mut neighbours: BTreeMap<RelId, Vec<RelId>> = BTreeMap::new();
        for &(a, b) in &self.links {
            neighbours.entry(a).or_default().push(b);
            neighbours.entry(b).or_default().push(a);
        }
        let mut restricted: BTreeSet<RelId> = self.restricted.union(preset).copied().collect();
        let mut queue: Vec<RelId> = restricted.iter().copied().collect();
        while let Some(rel) = queue.pop() {
            for &next in neighbours.get(&rel).into_iter().flatten() {
                if restricted.insert(next) {
                    queue.push(next);
                }
            }
        }
        restricted
    }
}

/// The analysis of one write's filter.
pub(super) struct Filter<'a> {
    pub scopes: Scopes,
    pub target: &'a Target,
    /// `ON CONFLICT DO UPDATE`: only comparisons with values restrict.
    pub upsert: bool,
    /// Inside a part of an OR: only positive atoms restrict, those that pick rows by equality
    /// (`=`, `IN` a list of values, `= ANY`, `IS NULL`, `IS TRUE|FALSE|UNKNOWN`, a bare boolean
    /// column, `IS NOT DISTINCT FROM`, a matching pattern, `BETWEEN` two values, a merged
    /// subquery). Negative and open-ended ones (`<>`, `NOT IN`, `<`, `>=`, `IS DISTINCT
    /// FROM`, `NOT LIKE`, `NOT BETWEEN`, `NOT active`, `IS NOT TRUE`, other operators) may
    /// complete another part to every row, and restrict nothing there.
    pub positive: bool,
}

impl Filter<'_> {
    /// What `node`, read as a filter (negated when `negated`), restricts.
    pub(super) fn filter(&mut self, node: &pg_query::Node, negated: bool) -> Bound {
        let Some(node) = node.node.as_ref() else {
            return Bound::default();
        };
        match node {
            NodeEnum::BoolExpr(expr) => {
                let op = BoolExprType::try_from(expr.boolop).unwrap_or(BoolExprType::Undefined);
                match (op, negated) {
                    (BoolExprType::AndExpr, false) | (BoolExprType::OrExpr, true) => {
                        self.all(&expr.args, negated)
                    }
                    (BoolExprType::OrExpr, false) | (BoolExprType::AndExpr, true) => {
                        self.any(&expr.args, negated)
                    }
                    (BoolExprType::NotExpr, _) => match expr.args.as_slice() {
                        [arg] => self.filter(arg, !negated),
                        _ => Bound::default(),
                    },
                    _ => Bound::default(),
                }
            }
            NodeEnum::NullTest(test) => self.null_test(test, negated),
            NodeEnum::BooleanTest(test) => self.boolean_test(test, negated),
            // `active IN (true, false)`: both values of a boolean.
            NodeEnum::AExpr(expr) if cover::covers_alone(expr, negated) => Bound::default(),
            NodeEnum::AExpr(expr) => self.a_expr(expr, negated),
            NodeEnum::SubLink(link) => self.sublink(link, negated),
            // The row under the cursor: one row, whatever the cursor read.
            NodeEnum::CurrentOfExpr(_) => Bound::restrict(TARGET),
            // A boolean column, `WHERE active` or `WHERE NOT active` (negative in an OR).
            NodeEnum::ColumnRef(_) | NodeEnum::TypeCast(_) if !(negated && self.positive) => {
                self.plain(Some(node))
            }
            // Constants, function calls, CASE, COALESCE, ...: nothing the text can bound.
            _ => Bound::default(),
        }
    }

    /// A conjunction restricts what any of its parts restricts.
    fn all(&mut self, args: &[pg_query::Node], negated: bool) -> Bound {
        let mut bound = Bound::default();
        for arg in args {
            bound.and(self.filter(arg, negated));
        }
        bound
    }

    /// A disjunction restricts a relation only when each of its parts does by a positive
    /// restriction, and nothing when its parts together cover both values of a boolean
    /// (`active OR active = false`, see [`cover`]).
    fn any(&mut self, args: &[pg_query::Node], negated: bool) -> Bound {
        if cover::covers_all(args, negated) {
            return Bound::default();
        }
        let outer = self.positive;
        self.positive |= args.len() > 1;
        let mut common: Option<BTreeSet<RelId>> = None;
        for arg in args {
            let restricted = self.filter(arg, negated).closure(self.scopes.preset());
            common = Some(match common {
                None => restricted,
                Some(common) => common.intersection(&restricted).copied().collect(),
            });
        }
        self.positive = outer;
        Bound {
            restricted: common.unwrap_or_default(),
            links: Vec::new(),
        }
    }

    /// `x IS NULL` keeps the rows whose column is null; `x IS NOT NULL` is assumed to keep
    /// them all (a column is taken as never null when unsure, as `ctid` or a key is).
    fn null_test(&mut self, test: &NullTest, negated: bool) -> Bound {
        let is_null = (test.nulltesttype == NullTestType::IsNull as i32) != negated;
        match test.arg.as_deref() {
            Some(arg) if is_null => self.plain(arg.node.as_ref()),
            _ => Bound::default(),
        }
    }

    /// `IS [NOT] TRUE/FALSE` and `IS UNKNOWN` over a column restrict; `IS NOT UNKNOWN` is
    /// `IS NOT NULL`. Over anything but a column (`(id = id) IS NOT FALSE`), nothing. In an
    /// OR, `IS NOT TRUE|FALSE` are negative.
    fn boolean_test(&mut self, test: &BooleanTest, negated: bool) -> Bound {
        use BoolTestType as T;
        let kind = T::try_from(test.booltesttype).unwrap_or(T::Undefined);
        let not_null = matches!(
            (kind, negated),
            (T::IsNotUnknown, false) | (T::IsUnknown, true) | (T::Undefined, _)
        );
        let negative = matches!(kind, T::IsNotTrue | T::IsNotFalse | T::IsNotUnknown) != negated;
        match test.arg.as_deref() {
            Some(_) if negative && self.positive => Bound::default(),
            Some(arg) if !not_null => self.plain(arg.node.as_ref()),
            _ => Bound::default(),
        }
    }

    /// A column by itself (through casts): it restricts its relation.
    pub(super) fn plain(&mut self, node: Option<&NodeEnum>) -> Bound {
        match plain_column(node) {
            Some(column_ref) => {
                let side = side(column_ref, &self.scopes, self.target);
                match side.columns.as_slice() {
                    [column] if side.trusted() => match column.owner {
                        Owner::Rel(rel) | Owner::Ambiguous(rel) => Bound::restrict(rel),
                        Owner::Unknown => Bound::default(),
                    },
                    _ => Bound::default(),
                }
            }
            None => Bound::default(),
        }
    }

    fn sublink(&mut self, link: &SubLink, negated: bool) -> Bound {
        let kind = SubLinkType::try_from(link.sub_link_type).unwrap_or(SubLinkType::Undefined);
        match (kind, negated) {
            (SubLinkType::ExistsSublink, false) => self.merged(link, None),
            (SubLinkType::AnySublink | SubLinkType::AllSublink, _) => {
                self.quantified_sublink(link, kind, negated)
            }
            // NOT EXISTS, scalar subqueries used as booleans, ...: nothing.
            _ => Bound::default(),
        }
    }

    /// A subquery in a conjunction joins its relations to the outer row: its FROM items
    /// become relations of a new level and its WHERE (and for `IN`/`= ANY`, the equality of
    /// each tested value with the output column at its place) joins the conjunction.
    /// `EXISTS (SELECT 1 FROM items i WHERE i.order_id = orders.id AND i.qty > 5)` and
    /// `customer_id IN (SELECT c.id FROM customers c WHERE c.email = 'x')` restrict orders;
    /// without `i.qty > 5` or `c.email = 'x'` they are join conditions alone and restrict
    /// nothing.
    pub(super) fn merged(&mut self, link: &SubLink, tested: Option<&pg_query::Node>) -> Bound {
        let Some(select) = subselect(link).filter(|select| mergeable(select)) else {
            return Bound::default();
        };
        // The tested values belong to the outer level: read them before the subquery's.
        let tested: Option<Vec<Side>> = tested.map(|node| {
            row_items(node)
                .iter()
                .map(|item| self.side_of(item))
                .collect()
        });
        self.scopes.push();
        let mut quals = Vec::new();
        for item in &select.from_clause {
            self.scopes.add_from_item(item, &mut quals);
        }
        let mut bound = Bound::default();
        if let Some(tested) = tested {
            match self.outputs(&tested, &select.target_list) {
                Some(links) => bound.and(links),
                None => {
                    self.scopes.pop();
                    return Bound::default();
                }
            }
        }
        quals.extend(select.where_clause.as_deref());
        for qual in quals {
            bound.and(self.filter(qual, false));
        }
        self.scopes.pop();
        bound
    }

    /// The equalities of the tested values with the subquery's outputs, read in the
    /// subquery's level. Each output must be a column of the subquery's rows; an expression
    /// could fall back on the tested value itself (`coalesce(..., orders.id)`). An output
    /// named without a qualifier may be the target's own column when the subquery's tables
    /// lack it: under a name the tested side also reads (`id IN (SELECT id FROM other)`), that
    /// is `id = id`, so nothing is known; under another name it is a link either way (or a
    /// restriction of the target by two of its columns, which is stronger).
    fn outputs(&self, tested: &[Side], outputs: &[pg_query::Node]) -> Option<Bound> {
        if tested.len() != outputs.len() {
            return None;
        }
        let names: BTreeSet<&str> = tested
            .iter()
            .flat_map(|side| side.columns.iter().map(|column| column.name.as_str()))
            .collect();
        let mut bound = Bound::default();
        for (tested, output) in tested.iter().zip(outputs) {
            let mut output = side(output_column(output)?, &self.scopes, self.target);
            for column in &mut output.columns {
                if let Owner::Ambiguous(rel) = column.owner {
                    if names.contains(column.name.as_str()) {
                        return None;
                    }
                    column.owner = Owner::Rel(rel);
                }
            }
            bound.and(self.compare(tested, &output));
        }
        Some(bound)
    }
}

/// The values a tested expression of `IN (subquery)` holds: the items of a row, `(a, b)`,
/// or the expression itself.
fn row_items(node: &pg_query::Node) -> &[pg_query::Node] {
    match node.node.as_ref() {
        Some(NodeEnum::RowExpr(row)) => &row.args,
        _ => std::slice::from_ref(node),
    }
}

/// The column a subquery's output entry is, if it is one.
fn output_column(entry: &pg_query::Node) -> Option<&ColumnRef> {
    match entry.node.as_ref()? {
        NodeEnum::ResTarget(target) => plain_column(target.val.as_deref()?.node.as_ref()),
        _ => None,
    }
}

pub(super) fn subselect(link: &SubLink) -> Option<&SelectStmt> {
    match link.subselect.as_deref()?.node.as_ref()? {
        NodeEnum::SelectStmt(select) => Some(select),
        _ => None,
    }
}

/// Aggregates that attribute notation can apply to a whole row (`i.count` is `count(i)`).
const ROW_AGGREGATES: &[&str] = &[
    "count",
    "array_agg",
    "json_agg",
    "jsonb_agg",
    "json_agg_strict",
    "jsonb_agg_strict",
    "any_value",
];

/// A subquery whose rows are some of its FROM rows that pass its WHERE: no set operation, no
/// grouping, and no aggregate, which would make it return one row whatever its WHERE (any
/// function call in its output, ORDER BY or DISTINCT is taken for one). LIMIT and OFFSET are
/// accepted: they only drop rows, so a subquery its WHERE restricts stays restricted (the
/// batch delete `id IN (SELECT id FROM t WHERE ... LIMIT 100)`) and one it does not is not
/// made restricted by them. A WITH of its own is refused, whose names would hide the CTEs
/// around the write.
pub(super) fn mergeable(select: &SelectStmt) -> bool {
    let no_calls = |nodes: &Vec<pg_query::Node>| {
        walk(nodes).is_ok_and(|facts| {
            facts.functions.is_empty()
                && !facts
                    .fields
                    .iter()
                    .any(|field| ROW_AGGREGATES.contains(&field.as_str()))
        })
    };
    select.op == SetOperation::SetopNone as i32
        && select.with_clause.is_none()
        && select.values_lists.is_empty()
        && select.group_clause.is_empty()
        && select.having_clause.is_none()
        && select.window_clause.is_empty()
        && no_calls(&select.target_list)
        && no_calls(&select.sort_clause)
        && no_calls(&select.distinct_clause)
}
