//! Bounded writes: whether the WHERE of each UPDATE, DELETE and `ON CONFLICT DO UPDATE` can
//! limit the rows of its target, read from the expression tree (the crate documentation
//! states the rule).
//!
//! The writes are found in the typed tree where PostgreSQL accepts them (the statement, and
//! the WITH clauses of every query level under it); [`crate::classify`] checks that this
//! finds as many as the serde walk saw, so a write the analysis misses counts as unbounded.
//! Each WHERE is then read by [`filter`] (AND/OR/NOT, tests, subqueries) and [`atom`]
//! (comparisons), over the relations of [`scope`], with [`side`] reading each side of a
//! comparison, [`node`] single nodes, [`pattern`] judging LIKE and regular expressions, and
//! [`cover`] catching positive conditions that cover both values of a boolean.

mod atom;
mod cover;
mod filter;
mod node;
mod pattern;
mod scope;
mod side;

use std::collections::BTreeSet;

use pg_query::NodeEnum;
use pg_query::protobuf::{
    CommonTableExpr, InsertStmt, OnConflictAction, RangeVar, SelectStmt, WithClause,
};

use filter::{Bound, Filter};
use scope::{Scopes, TARGET};

/// For each UPDATE, DELETE and `ON CONFLICT DO UPDATE` found in `node`: whether its WHERE
/// bounds its target.
pub(crate) fn writes(node: &NodeEnum) -> Vec<bool> {
    let mut finder = Finder::default();
    finder.statement(node);
    finder.found
}

/// The target table of a write, and the names whose reading reads it: the table itself
/// and the CTEs (visible from the write) whose bodies read it.
#[derive(Debug, Default)]
struct Target {
    schema: String,
    relation: String,
    ctes: Vec<String>,
}

impl Target {
    /// Whether a relation written `schema.relation` (schema possibly empty) may be the
    /// target or a CTE that reads it. Without a schema on either side, the name decides.
    fn read_by(&self, schema: &str, relation: &str) -> bool {
        let table = relation == self.relation
            && (schema.is_empty() || self.schema.is_empty() || schema == self.schema);
        table || (schema.is_empty() && self.ctes.iter().any(|cte| cte == relation))
    }
}

/// One write to judge.
struct Write<'a> {
    target: Option<&'a RangeVar>,
    others: &'a [pg_query::Node],
    filter: Option<&'a pg_query::Node>,
    upsert: bool,
}

#[derive(Default)]
struct Finder<'a> {
    /// The CTEs of the WITH clauses around the node being visited, each with whether its
    /// name is visible there: to the CTEs after it in its WITH (to all of them under
    /// RECURSIVE) and to the query body.
    ctes: Vec<(&'a CommonTableExpr, bool)>,
    found: Vec<bool>,
}

impl<'a> Finder<'a> {
    fn node(&mut self, node: Option<&'a pg_query::Node>) {
        if let Some(node) = node.and_then(|node| node.node.as_ref()) {
            self.statement(node);
        }
    }

    fn statement(&mut self, node: &'a NodeEnum) {
        use NodeEnum as N;
        match node {
            N::ExplainStmt(s) => self.node(s.query.as_deref()),
            N::PrepareStmt(s) => self.node(s.query.as_deref()),
            N::DeclareCursorStmt(s) => self.node(s.query.as_deref()),
            N::CopyStmt(s) => self.node(s.query.as_deref()),
            N::CreateTableAsStmt(s) => self.node(s.query.as_deref()),
            N::SelectStmt(s) => self.select(s),
            N::InsertStmt(s) => self.insert(s),
            N::UpdateStmt(s) => {
                let mark = self.with(s.with_clause.as_ref());
                self.judge(&Write {
                    target: s.relation.as_ref(),
                    others: &s.from_clause,
                    filter: s.where_clause.as_deref(),
                    upsert: false,
                });
                self.ctes.truncate(mark);
            }
            N::DeleteStmt(s) => {
                let mark = self.with(s.with_clause.as_ref());
                self.judge(&Write {
                    target: s.relation.as_ref(),
                    others: &s.using_clause,
                    filter: s.where_clause.as_deref(),
                    upsert: false,
                });
                self.ctes.truncate(mark);
            }
            N::MergeStmt(s) => {
                let mark = self.with(s.with_clause.as_ref());
                self.ctes.truncate(mark);
            }
            _ => {}
        }
    }

    /// An INSERT: its WITH, its query, and `ON CONFLICT DO UPDATE`, an UPDATE of the
    /// conflicting rows whose WHERE is the clause's own.
    fn insert(&mut self, insert: &'a InsertStmt) {
        let mark = self.with(insert.with_clause.as_ref());
        self.node(insert.select_stmt.as_deref());
        let upsert = insert
            .on_conflict_clause
            .as_deref()
            .filter(|clause| clause.action == OnConflictAction::OnconflictUpdate as i32);
        if let Some(clause) = upsert {
            self.judge(&Write {
                target: insert.relation.as_ref(),
                others: &[],
                filter: clause.where_clause.as_deref(),
                upsert: true,
            });
        }
        self.ctes.truncate(mark);
    }

    /// A SELECT, and the branches of a set operation, each with its own WITH.
    fn select(&mut self, select: &'a SelectStmt) {
        let mark = self.with(select.with_clause.as_ref());
        for branch in [&select.larg, &select.rarg].into_iter().flatten() {
            self.select(branch);
        }
        self.ctes.truncate(mark);
    }

    /// Makes the CTEs of `with` visible and visits their bodies; returns the mark to drop
    /// them at when the query level ends.
    fn with(&mut self, with: Option<&'a WithClause>) -> usize {
        let mark = self.ctes.len();
        let ctes = with.map(|with| with.ctes.as_slice()).unwrap_or_default();
        let ctes: Vec<&'a CommonTableExpr> = ctes
            .iter()
            .filter_map(|cte| match cte.node.as_ref() {
                Some(NodeEnum::CommonTableExpr(cte)) => Some(cte.as_ref()),
                _ => None,
            })
            .collect();
        let recursive = with.is_some_and(|with| with.recursive);
        self.ctes.extend(ctes.iter().map(|cte| (*cte, recursive)));
        for (i, cte) in ctes.iter().enumerate() {
            self.node(cte.ctequery.as_deref());
            if let Some(entry) = self.ctes.get_mut(mark + i) {
                entry.1 = true;
            }
        }
        mark
    }

    fn judge(&mut self, write: &Write<'_>) {
        let restricted = self.restricted_ctes();
        let bounded = write
            .target
            .is_some_and(|target| self.bounded(target, write, restricted));
        self.found.push(bounded);
    }

    /// Whether the write's WHERE bounds its target, with `restricted` the names of the CTEs
    /// that restrict what they are linked to.
    fn bounded(
        &self,
        relation: &RangeVar,
        write: &Write<'_>,
        restricted: BTreeSet<String>,
    ) -> bool {
        let Some(condition) = write.filter else {
            return false;
        };
        let target = self.target(relation);
        let mut scopes = Scopes::new(relation, write.upsert);
        scopes.set_restricted_ctes(restricted);
        let mut quals = Vec::new();
        for item in write.others {
            scopes.add_from_item(item, &mut quals);
        }
        let mut filter = Filter {
            scopes,
            target: &target,
            upsert: write.upsert,
            positive: false,
        };
        let mut bound = Bound::default();
        quals.push(condition);
        for qual in quals {
            bound.and(filter.filter(qual, false));
        }
        bound.closure(filter.scopes.preset()).contains(&TARGET)
    }

    /// The names of the visible CTEs whose rows are a restricted subset of one relation's
    /// (`WITH x AS (SELECT id FROM customers WHERE email = $1)`) or a list of constants: in
    /// FROM, such a CTE restricts what it is linked to. Of two CTEs of one name, the
    /// innermost hides the other.
    fn restricted_ctes(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut restricted = BTreeSet::new();
        let visible = self.ctes.iter().rev().filter(|(_, visible)| *visible);
        for (cte, _) in visible {
            if seen.insert(cte.ctename.as_str()) && self.restricts_its_rows(cte) {
                restricted.insert(cte.ctename.clone());
            }
        }
        restricted
    }

    /// A CTE body that is `VALUES` of constants, or a plain SELECT (see [`filter::mergeable`])
    /// over one relation whose WHERE bounds it as it would bound a write to it. CTEs read
    /// inside the body count as unrestricted there, since which ones it sees differs.
    fn restricts_its_rows(&self, cte: &CommonTableExpr) -> bool {
        let Some(body) = cte.ctequery.as_deref() else {
            return false;
        };
        if scope::is_constant_values(body) {
            return true;
        }
        let Some(NodeEnum::SelectStmt(select)) = body.node.as_ref() else {
            return false;
        };
        let Some(NodeEnum::RangeVar(relation)) = select
            .from_clause
            .first()
            .filter(|_| select.from_clause.len() == 1)
            .and_then(|item| item.node.as_ref())
        else {
            return false;
        };
        let read = Write {
            target: Some(relation),
            others: &[],
            filter: select.where_clause.as_deref(),
            upsert: false,
        };
        filter::mergeable(select)
            && select.into_clause.is_none()
            && self.bounded(relation, &read, BTreeSet::new())
    }

    /// The target and the CTEs that read it, directly or through one another. Every CTE
    /// around the write counts, visible or not (fail closed).
    fn target(&self, relation: &RangeVar) -> Target {
        let mut target = Target {
            schema: relation.schemaname.clone(),
            relation: relation.relname.clone(),
            ctes: Vec::new(),
        };
        loop {
            let reading: Vec<String> = self
                .ctes
                .iter()
                .map(|(cte, _)| cte)
                .filter(|cte| !target.ctes.contains(&cte.ctename))
                .filter(|cte| side::reads(cte.ctequery.as_deref(), relation, &target))
                .map(|cte| cte.ctename.clone())
                .collect();
            if reading.is_empty() {
                return target;
            }
            target.ctes.extend(reading);
        }
    }
}
