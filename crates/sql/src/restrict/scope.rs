//! The relations a write's WHERE can name, and which relation a column reference belongs to.
//!
//! Level 0 holds the write's target and its `FROM`/`USING` items; each merged subquery
//! (a correlated `EXISTS`, see [`super::filter`]) pushes a level of its own. Names resolve
//! innermost first, as in PostgreSQL, and an alias hides the relation's own name.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{JoinType, RangeVar, SelectStmt};

/// A relation of the analysis: the target, a `FROM`/`USING` item, or an item of a merged
/// subquery. Two references to one table are two relations, as they are two row variables.
pub(super) type RelId = usize;

/// The write's target.
pub(super) const TARGET: RelId = 0;

/// Whom a column belongs to, as far as the text tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Owner {
    Rel(RelId),
    /// An unqualified column in a merged subquery with one relation, the target being the
    /// only relation outside it: that relation's, or the target's. Compared with a value, it
    /// restricts one of them either way, and the target is restricted directly or through
    /// whatever links the subquery's relation to it.
    Ambiguous(RelId),
    /// Any relation's, the target's included.
    Unknown,
}

/// A column reference: its owner and its name (`*` for a whole row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Column {
    pub owner: Owner,
    pub name: String,
}

/// The whole row of a relation (`t.*`, or `t` alone): it overlaps every column.
pub(super) const WHOLE_ROW: &str = "*";

#[derive(Debug, Default)]
struct Level {
    /// The qualifiers that name each relation (`t`, `s.t`, or only the alias).
    names: BTreeMap<Vec<String>, RelId>,
    rels: Vec<RelId>,
}

#[derive(Debug)]
pub(super) struct Scopes {
    levels: Vec<Level>,
    next: RelId,
    /// Relations restricted by what they are: a `VALUES` list of constants is a fixed set.
    preset: BTreeSet<RelId>,
    /// The CTEs visible from the write whose rows are a restricted subset of a relation's.
    restricted_ctes: BTreeSet<String>,
}

impl Scopes {
    /// Level 0 with the target. In an `ON CONFLICT DO UPDATE`, `excluded` is the row that
    /// conflicted with the target row, so its columns count as the target's.
    pub(super) fn new(target: &RangeVar, upsert: bool) -> Self {
        let mut names: BTreeMap<Vec<String>, RelId> = qualifiers(target)
            .into_iter()
            .map(|name| (name, TARGET))
            .collect();
        if upsert {
            names.insert(vec!["excluded".to_owned()], TARGET);
        }
        let level = Level {
            names,
            rels: vec![TARGET],
        };
        Self {
            levels: vec![level],
            next: TARGET + 1,
            preset: BTreeSet::new(),
            restricted_ctes: BTreeSet::new(),
        }
    }

    /// Names the CTEs that, read in FROM, are restricted by what they are.
    pub(super) fn set_restricted_ctes(&mut self, names: BTreeSet<String>) {
        self.restricted_ctes = names;
    }

    pub(super) fn push(&mut self) {
        self.levels.push(Level::default());
    }

    pub(super) fn pop(&mut self) {
        if self.levels.len() > 1 {
            self.levels.pop();
        }
    }

    pub(super) fn preset(&self) -> &BTreeSet<RelId> {
        &self.preset
    }

    fn add(&mut self, names: Vec<Vec<String>>, restricted: bool) -> RelId {
        let rel = self.next;
        self.next += 1;
        if restricted {
            self.preset.insert(rel);
        }
        if let Some(level) = self.levels.last_mut() {
            level.rels.push(rel);
            for name in names {
                // PostgreSQL rejects a name given twice at one level; the first one stays.
                level.names.entry(name).or_insert(rel);
            }
        }
        rel
    }

    /// Adds a `FROM`/`USING` item to the innermost level, and the conditions of its inner
    /// joins to `quals`: they filter the same rows as the WHERE. Conditions of outer joins
    /// filter nothing on the preserved side, so they are left out.
    pub(super) fn add_from_item<'n>(
        &mut self,
        node: &'n pg_query::Node,
        quals: &mut Vec<&'n pg_query::Node>,
    ) {
        let Some(node) = node.node.as_ref() else {
            return;
        };
        match node {
            NodeEnum::RangeVar(range_var) => {
                let restricted = range_var.schemaname.is_empty()
                    && self.restricted_ctes.contains(&range_var.relname);
                self.add(qualifiers(range_var), restricted);
            }
            NodeEnum::RangeSubselect(sub) => {
                let values = sub.subquery.as_deref().is_some_and(is_constant_values);
                self.add(alias(sub.alias.as_ref()), values);
            }
            NodeEnum::RangeTableSample(sample) => {
                if let Some(relation) = sample.relation.as_deref() {
                    self.add_from_item(relation, quals);
                }
            }
            // A join with an alias hides the names inside it; its conditions then name
            // relations this analysis no longer sees, so they are left out (fail closed).
            NodeEnum::JoinExpr(join) if join.alias.is_some() => {
                self.add(alias(join.alias.as_ref()), false);
            }
            NodeEnum::JoinExpr(join) => {
                for side in [&join.larg, &join.rarg].into_iter().flatten() {
                    self.add_from_item(side, quals);
                }
                if join.jointype == JoinType::JoinInner as i32 {
                    quals.extend(join.quals.as_deref());
                }
            }
            NodeEnum::RangeFunction(function) => {
                self.add(alias(function.alias.as_ref()), false);
            }
            NodeEnum::RangeTableFunc(function) => {
                self.add(alias(function.alias.as_ref()), false);
            }
            NodeEnum::JsonTable(table) => {
                self.add(alias(table.alias.as_ref()), false);
            }
            _ => {
                self.add(Vec::new(), false);
            }
        }
    }

    /// The column a reference names, given its name parts (`*` excluded; `star` when the
    /// reference ends in `*`).
    pub(super) fn column(&self, parts: &[String], star: bool) -> Column {
        let (qualifier, name) = match (star, parts.split_last()) {
            (true, _) => (parts, WHOLE_ROW),
            (false, Some((name, qualifier))) => (qualifier, name.as_str()),
            (false, None) => (parts, WHOLE_ROW),
        };
        let column = |owner| Column {
            owner,
            name: name.to_owned(),
        };
        match qualifier {
            // `*` alone: every relation's row.
            [] if star => column(self.unqualified()),
            // `t` alone may be the whole row of `t` (PostgreSQL tries a column first; either
            // reading overlaps the same columns of `t` or is weaker).
            [] => match self.resolve(parts) {
                Some(rel) => Column {
                    owner: Owner::Rel(rel),
                    name: WHOLE_ROW.to_owned(),
                },
                None => column(self.unqualified()),
            },
            _ => match self.resolve(qualifier) {
                Some(rel) => column(Owner::Rel(rel)),
                // `c.f`, with no relation `c`: the field `f` of a composite column `c`.
                None => match qualifier {
                    [composite] => Column {
                        owner: self.unqualified(),
                        name: composite.clone(),
                    },
                    _ => column(Owner::Unknown),
                },
            },
        }
    }

    /// The relation a qualifier names, innermost level first.
    pub(super) fn resolve(&self, qualifier: &[String]) -> Option<RelId> {
        self.levels
            .iter()
            .rev()
            .find_map(|level| level.names.get(qualifier).copied())
    }

    /// The owner of an unqualified column: the innermost level with relations. With the
    /// target alone it is the target's; with other relations beside it, it could be any of
    /// theirs, so it is never counted as the target's (multi-relation writes must qualify
    /// their columns to count as bounded). In a merged subquery with one relation it is that
    /// relation's or, when the subquery's tables lack it, an outer one's: [`Owner::Ambiguous`]
    /// only when the target is the one outer relation, else anyone's.
    fn unqualified(&self) -> Owner {
        let Some((depth, level)) = self
            .levels
            .iter()
            .enumerate()
            .rev()
            .find(|(_, level)| !level.rels.is_empty())
        else {
            return Owner::Unknown;
        };
        let target_alone_outside = self
            .levels
            .iter()
            .take(depth)
            .all(|outer| outer.rels.iter().all(|&rel| rel == TARGET));
        match level.rels.as_slice() {
            [TARGET] if depth == 0 => Owner::Rel(TARGET),
            [rel] if depth > 0 && target_alone_outside => Owner::Ambiguous(*rel),
            _ => Owner::Unknown,
        }
    }
}

/// The qualifiers that name a relation: its alias alone when it has one (PostgreSQL: an
/// alias hides the name), else its name with each prefix of its schema and catalog.
pub(super) fn qualifiers(range_var: &RangeVar) -> Vec<Vec<String>> {
    if let Some(alias) = range_var.alias.as_ref() {
        return vec![vec![alias.aliasname.clone()]];
    }
    let mut names = vec![vec![range_var.relname.clone()]];
    if !range_var.schemaname.is_empty() {
        names.push(vec![
            range_var.schemaname.clone(),
            range_var.relname.clone(),
        ]);
        if !range_var.catalogname.is_empty() {
            names.push(vec![
                range_var.catalogname.clone(),
                range_var.schemaname.clone(),
                range_var.relname.clone(),
            ]);
        }
    }
    names
}

fn alias(alias: Option<&pg_query::protobuf::Alias>) -> Vec<Vec<String>> {
    alias
        .map(|alias| vec![vec![alias.aliasname.clone()]])
        .unwrap_or_default()
}

/// `(VALUES (1, 'a'), ($1, 'b')) v`: a fixed set of rows, which restricts what it is joined to.
pub(super) fn is_constant_values(node: &pg_query::Node) -> bool {
    let Some(NodeEnum::SelectStmt(select)) = node.node.as_ref() else {
        return false;
    };
    let SelectStmt { values_lists, .. } = select.as_ref();
    !values_lists.is_empty()
        && values_lists.iter().all(|row| match row.node.as_ref() {
            Some(NodeEnum::List(list)) => list.items.iter().all(super::node::is_value),
            _ => false,
        })
}
