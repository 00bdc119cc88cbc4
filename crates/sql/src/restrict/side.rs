//! One side of a comparison: the columns it reads, and whether it can be trusted to be a
//! value that depends on those columns only.
//!
//! The expression is visited through serde ([`crate::visit`]), like the walk, so no node kind
//! can hide a column. Subqueries inside it are followed with PostgreSQL's name scoping, to
//! tell a subquery that is an independent value (`id IN (SELECT uid FROM banned)`) from one
//! that depends on the row being tested (correlated) or reads the target table itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use pg_query::protobuf::{AExprKind, RangeVar, SubLinkType};

use super::Target;
use super::scope::{Column, Owner, Scopes, WHOLE_ROW};
use crate::visit::{Hooks, visit};

/// What one side of a comparison reads.
#[derive(Debug, Default)]
pub(super) struct Side {
    /// Columns of the write's relations read outside any subquery.
    pub columns: Vec<Column>,
    /// The side holds a predicate of its own (a comparison, AND/OR/NOT, a null or boolean
    /// test, CASE, ...), or reads a column twice: `(id = id) = true`, `id - id = 0`.
    pub untrusted: bool,
    /// Arithmetic that can erase a column's value (`id * 0`, `id % 1`, `id & 0`).
    pub erasing: bool,
    /// `tableoid`, the same for every row of a plain table.
    pub tableoid: bool,
    /// A subquery refers to the row being tested.
    pub correlated: bool,
    /// A subquery reads the target table, or a CTE that does.
    pub reads_target: bool,
    /// The side holds a subquery (whose rows the text does not give).
    pub subquery: bool,
    /// Unqualified column names inside subqueries: PostgreSQL takes such a name from the
    /// outer row when the subquery's tables have no such column, so `id IN (SELECT id FROM
    /// other)` may be `id = id`.
    pub inner_names: Vec<String>,
}

impl Side {
    /// Whether the side is a value of its columns alone.
    pub(super) fn trusted(&self) -> bool {
        !self.untrusted && !self.correlated && !self.reads_target && !self.tableoid
    }
}

/// Reads `node` as one side of a comparison.
pub(super) fn side(node: &impl Serialize, scopes: &Scopes, target: &Target) -> Side {
    let collector = Collector {
        scopes: Some(scopes),
        target: Some(target),
        ..Collector::default()
    };
    match visit(node, collector) {
        Ok(collector) => collector.finish(),
        // Cannot happen (the visit never fails); if it did, nothing would be known.
        Err(_) => Side {
            untrusted: true,
            ..Side::default()
        },
    }
}

/// Whether a column occurs twice (`id - id`), or beside its relation's whole row.
fn repeats(columns: &[Column]) -> bool {
    let mut seen = BTreeSet::new();
    let mut per_owner: BTreeMap<Owner, (usize, bool)> = BTreeMap::new();
    for column in columns {
        if !seen.insert((column.owner, column.name.as_str())) {
            return true;
        }
        let entry = per_owner.entry(column.owner).or_default();
        entry.0 += 1;
        entry.1 |= column.name == WHOLE_ROW;
    }
    per_owner.values().any(|&(count, whole)| whole && count > 1)
}

/// Whether `node` (a CTE body) reads the target of the write on `relation`, or a CTE that
/// does.
pub(super) fn reads(node: Option<&pg_query::Node>, relation: &RangeVar, target: &Target) -> bool {
    let Some(node) = node else {
        return false;
    };
    let scopes = Scopes::new(relation, false);
    side(node, &scopes, target).reads_target
}

/// Nodes that are predicates wherever they appear.
const PREDICATES: &[&str] = &[
    "BoolExpr",
    "NullTest",
    "BooleanTest",
    "CaseExpr",
    "CurrentOfExpr",
    "XmlExpr",
    "JsonIsPredicate",
];

/// Operators that compute a value from values; any other operator may be a predicate.
const VALUE_OPERATORS: &[&str] = &[
    "+", "-", "||", "->", "->>", "#>", "#>>", "#-", "@", "|/", "||/",
];

/// Operators that compute a value but can erase the column's part in it.
const ERASING_OPERATORS: &[&str] = &["*", "/", "%", "^", "&", "|", "#", "<<", ">>", "~"];

/// A subquery level inside the side: the names its FROM defines.
#[derive(Debug, Default)]
struct Level {
    names: Vec<Vec<String>>,
    has_relation: bool,
}

/// A column reference and the subquery levels around it (innermost last).
#[derive(Debug, Default)]
struct Ref {
    parts: Vec<String>,
    star: bool,
    chain: Vec<usize>,
}

#[derive(Debug, Default)]
struct RangeVarName {
    schema: String,
    relation: String,
    alias: Option<String>,
}

#[derive(Debug, Default)]
struct Collector<'a> {
    scopes: Option<&'a Scopes>,
    target: Option<&'a Target>,
    frames: Vec<(&'static str, &'static str)>,
    levels: Vec<Level>,
    chain: Vec<usize>,
    refs: Vec<Ref>,
    column: Option<Ref>,
    range_var: RangeVarName,
    /// For each open JoinExpr: the level's name count at its start, and its alias.
    joins: Vec<(usize, Option<String>)>,
    /// For each open A_Expr outside subqueries: its kind and operator.
    operators: Vec<(i32, String)>,
    side: Side,
}

impl Hooks for Collector<'_> {
    fn on_struct_start(&mut self, name: &'static str) {
        let outside = self.chain.is_empty();
        match name {
            "SelectStmt" => {
                self.chain.push(self.levels.len());
                self.levels.push(Level::default());
            }
            "ColumnRef" => {
                self.column = Some(Ref {
                    chain: self.chain.clone(),
                    ..Ref::default()
                });
            }
            "AStar" => {
                if let Some(column) = self.column.as_mut() {
                    column.star = true;
                }
            }
            "RangeVar" => self.range_var = RangeVarName::default(),
            "JoinExpr" => {
                let count = self.level().map_or(0, |level| level.names.len());
                self.joins.push((count, None));
            }
            "AExpr" if outside => self.operators.push((0, String::new())),
            name if outside && PREDICATES.contains(&name) => self.side.untrusted = true,
            _ => {}
        }
        if matches!(
            name,
            "RangeVar" | "RangeSubselect" | "RangeFunction" | "RangeTableFunc" | "JsonTable"
        ) && let Some(level) = self.level()
        {
            level.has_relation = true;
        }
        self.frames.push((name, ""));
    }

    fn on_field(&mut self, key: &'static str) {
        if let Some(frame) = self.frames.last_mut() {
            frame.1 = key;
        }
    }

    fn on_struct_end(&mut self) {
        let Some((name, _)) = self.frames.pop() else {
            return;
        };
        match name {
            "SelectStmt" => {
                self.chain.pop();
            }
            "ColumnRef" => self.refs.extend(self.column.take()),
            "RangeVar" => self.finish_range_var(),
            "JoinExpr" => self.finish_join(),
            "AExpr" if self.chain.is_empty() => self.finish_operator(),
            _ => {}
        }
    }

    fn on_str(&mut self, value: &str) {
        let Some(&(name, field)) = self.frames.last() else {
            return;
        };
        match (name, field) {
            ("String", "sval") if self.in_list("ColumnRef", "fields") => {
                if let Some(column) = self.column.as_mut() {
                    column.parts.push(value.to_owned());
                }
            }
            ("String", "sval") if self.chain.is_empty() && self.in_list("AExpr", "name") => {
                if let Some(operator) = self.operators.last_mut() {
                    value.clone_into(&mut operator.1);
                }
            }
            ("RangeVar", "schemaname") => value.clone_into(&mut self.range_var.schema),
            ("RangeVar", "relname") => value.clone_into(&mut self.range_var.relation),
            ("Alias", "aliasname") => self.alias(value),
            _ => {}
        }
    }

    fn on_i32(&mut self, value: i32) {
        let Some(&(name, field)) = self.frames.last() else {
            return;
        };
        if !self.chain.is_empty() {
            return;
        }
        match (name, field) {
            ("AExpr", "kind") => {
                if let Some(operator) = self.operators.last_mut() {
                    operator.0 = value;
                }
            }
            // A subquery used as a value is fine; EXISTS, IN, ANY and ALL are predicates.
            ("SubLink", "sub_link_type") => {
                let value_like = [SubLinkType::ExprSublink, SubLinkType::ArraySublink]
                    .iter()
                    .any(|kind| *kind as i32 == value);
                self.side.untrusted |= !value_like;
            }
            _ => {}
        }
    }
}

impl Collector<'_> {
    fn level(&mut self) -> Option<&mut Level> {
        let index = *self.chain.last()?;
        self.levels.get_mut(index)
    }

    /// Whether the innermost struct is an element of the list `field` of `name`.
    fn in_list(&self, name: &str, field: &str) -> bool {
        let n = self.frames.len();
        n >= 3
            && self.frames.get(n - 2) == Some(&("Node", "node"))
            && self.frames.get(n - 3) == Some(&(name, field))
    }

    /// An alias names the relation it belongs to: a RangeVar's replaces its name, a join's
    /// hides the names inside the join, the others (subqueries, functions) add a name.
    fn alias(&mut self, value: &str) {
        let n = self.frames.len();
        let owner = n.checked_sub(2).and_then(|i| self.frames.get(i)).copied();
        match owner {
            Some(("RangeVar", "alias")) => self.range_var.alias = Some(value.to_owned()),
            Some(("JoinExpr", "alias")) => {
                if let Some(join) = self.joins.last_mut() {
                    join.1 = Some(value.to_owned());
                }
            }
            _ => {
                if let Some(level) = self.level() {
                    level.names.push(vec![value.to_owned()]);
                }
            }
        }
    }

    fn finish_range_var(&mut self) {
        let RangeVarName {
            schema,
            relation,
            alias,
        } = std::mem::take(&mut self.range_var);
        if self
            .target
            .is_some_and(|target| target.read_by(&schema, &relation))
        {
            self.side.reads_target = true;
        }
        let Some(level) = self.level() else {
            return;
        };
        match alias {
            Some(alias) => level.names.push(vec![alias]),
            None => {
                if !schema.is_empty() {
                    level.names.push(vec![schema, relation.clone()]);
                }
                level.names.push(vec![relation]);
            }
        }
    }

    fn finish_join(&mut self) {
        let Some((count, alias)) = self.joins.pop() else {
            return;
        };
        if let (Some(alias), Some(level)) = (alias, self.level()) {
            level.names.truncate(count);
            level.names.push(vec![alias]);
        }
    }

    fn finish_operator(&mut self) {
        let Some((kind, operator)) = self.operators.pop() else {
            return;
        };
        if kind != AExprKind::AexprOp as i32 {
            // IN, LIKE, BETWEEN, IS DISTINCT FROM, NULLIF (an equality), ANY/ALL.
            self.side.untrusted = true;
        } else if ERASING_OPERATORS.contains(&operator.as_str()) {
            self.side.erasing = true;
        } else if !VALUE_OPERATORS.contains(&operator.as_str()) {
            self.side.untrusted = true;
        }
    }

    fn finish(mut self) -> Side {
        let defined: Vec<BTreeSet<Vec<String>>> = self
            .levels
            .iter_mut()
            .map(|level| std::mem::take(&mut level.names).into_iter().collect())
            .collect();
        for reference in std::mem::take(&mut self.refs) {
            if reference.chain.is_empty() {
                self.outer_column(&reference);
            } else {
                self.inner_column(&reference, &defined);
            }
        }
        self.side.untrusted |= repeats(&self.side.columns);
        self.side.subquery = !self.levels.is_empty();
        self.side
    }

    /// A column outside any subquery: one of the write's relations.
    fn outer_column(&mut self, reference: &Ref) {
        let Some(scopes) = self.scopes else {
            return;
        };
        let column = scopes.column(&reference.parts, reference.star);
        if column.name == "tableoid" {
            self.side.tableoid = true;
        }
        self.side.columns.push(column);
    }

    /// A column inside a subquery: the subquery's own, unless no level around it defines it,
    /// in which case it is the outer row's (a correlation).
    fn inner_column(&mut self, reference: &Ref, defined: &[BTreeSet<Vec<String>>]) {
        let (qualifier, name) = match (reference.star, reference.parts.split_last()) {
            (false, Some((name, qualifier))) => (qualifier, Some(name)),
            _ => (reference.parts.as_slice(), None),
        };
        let inner = reference.chain.iter().rev().any(|&index| {
            if qualifier.is_empty() {
                self.levels
                    .get(index)
                    .is_some_and(|level| level.has_relation)
            } else {
                defined
                    .get(index)
                    .is_some_and(|names| names.contains(qualifier))
            }
        });
        match (inner, qualifier.is_empty(), name) {
            (true, true, Some(name)) => self.side.inner_names.push(name.clone()),
            (true, _, _) => {}
            (false, _, _) => {
                self.side.correlated = true;
                if let Some(name) = name {
                    self.side.inner_names.push(name.clone());
                }
            }
        }
    }
}
