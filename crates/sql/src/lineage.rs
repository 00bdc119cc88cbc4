//! Lineage: which columns of which relations each result column of a statement is made of, so
//! that masking can follow sensitive data through any expression (`reverse(card)`,
//! `'x' || ssn`, `encode(convert_to(email, 'UTF8'), 'base64')`, one character per row) rather
//! than recognise its values.
//!
//! The statement's parse tree is read as a `serde_json::Value` (libpg_query's types only
//! implement `Serialize`), and every expression is walked generically, key by key, so that no
//! node kind can hide a column reference: only the nodes that change what a reference means are
//! interpreted (column references, sub-selects, the FROM items that name things, `count(...)`
//! and `IS [NOT] NULL`, which reveal nothing of the values they read).
//!
//! Resolution follows PostgreSQL's scoping where the text settles it and takes the union where
//! it does not: without the catalog a table's columns are unknown, so an unqualified name is a
//! column of every table in the innermost scope that has a table, and of every sub-select or
//! CTE there with an output of that name. Sources therefore only ever err towards more.
//! A reference that names a whole row (`t`, `t.*` as an argument, `row_to_json(t)`) is a whole
//! row of that relation. What cannot be followed (nesting beyond [`MAX_DEPTH`]) leaves the
//! lineage incomplete, and a door then takes every column the statement reads as the source of
//! every result column (fail closed).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

/// Deeper expression or query nesting than this is not followed (the lineage is incomplete).
const MAX_DEPTH: usize = 160;

/// A column of a relation, as the statement names it: `table` is the relation as written
/// (`public.members`, `members`), `None` when the text does not say which.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SourceColumn {
    pub table: Option<String>,
    pub column: String,
}

/// What one result column (or a statement as a whole) is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// Columns whose values flow into it.
    pub columns: BTreeSet<SourceColumn>,
    /// Relations whose whole rows flow into it (every column of each).
    pub whole_rows: BTreeSet<String>,
}

impl Sources {
    fn column(table: Option<&str>, column: &str) -> Self {
        let mut s = Sources::default();
        s.columns.insert(SourceColumn {
            table: table.map(str::to_owned),
            column: column.to_owned(),
        });
        s
    }

    fn whole_row(table: &str) -> Self {
        let mut s = Sources::default();
        s.whole_rows.insert(table.to_owned());
        s
    }

    fn add(&mut self, other: &Sources) {
        self.columns.extend(other.columns.iter().cloned());
        self.whole_rows.extend(other.whole_rows.iter().cloned());
    }

    fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.whole_rows.is_empty()
    }
}

/// One entry of a result's column list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum OutputColumn {
    /// One result column.
    One(Sources),
    /// A `*` (or `t.*`): the columns of `tables` (as many as they have, each made of the
    /// table column of the same name), then `known` (sub-select and CTE outputs, in order),
    /// with `also` flowing into each (a set-returning function's arguments). `open` when the
    /// number of columns is not known from the text.
    Star {
        tables: BTreeSet<String>,
        known: Vec<Sources>,
        also: Sources,
        open: bool,
    },
}

/// Values a statement stores: into which column of which relation (when the text says), and
/// what they are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub table: Option<String>,
    pub column: Option<String>,
    pub sources: Sources,
}

/// How a `COPY ... TO` writes its rows, from its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CopyFormat {
    pub csv: bool,
    pub binary: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: u8,
}

impl CopyFormat {
    /// From a CopyStmt's `options` list (`FORMAT csv`, `DELIMITER ';'`, the legacy `CSV`).
    fn from_options(options: Option<&Value>) -> CopyFormat {
        let mut f = CopyFormat {
            csv: false,
            binary: false,
            delimiter: b'\t',
            quote: b'"',
            escape: b'"',
        };
        let mut delimiter = None;
        let mut escape = None;
        for (_, d) in as_list(options).filter_map(node_of) {
            let arg = d
                .get("arg")
                .and_then(node_of)
                .map(|(_, a)| str_field(a, "sval"))
                .unwrap_or_default();
            let byte = arg.bytes().next();
            match str_field(d, "defname") {
                "format" => {
                    f.csv = arg.eq_ignore_ascii_case("csv");
                    f.binary = arg.eq_ignore_ascii_case("binary");
                }
                "delimiter" => delimiter = byte,
                "quote" => f.quote = byte.unwrap_or(b'"'),
                "escape" => escape = byte,
                _ => {}
            }
        }
        f.delimiter = delimiter.unwrap_or(if f.csv { b',' } else { b'\t' });
        f.escape = escape.unwrap_or(f.quote);
        f
    }
}

/// Where a statement's result columns come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// The result's column list, in order.
    pub columns: Vec<OutputColumn>,
    /// Every column and whole row the statement reads anywhere (WHERE, JOIN, inside
    /// `count(...)`), for what its errors may quote.
    pub reads: Sources,
    /// False when part of the statement could not be followed: every result column must then
    /// be taken as made of `reads`.
    pub complete: bool,
    /// For `COPY ... TO`: how its rows are written.
    pub copy: Option<CopyFormat>,
    /// What it stores in tables (INSERT, UPDATE, MERGE, `ON CONFLICT`, `CREATE TABLE AS`,
    /// `SELECT INTO`, data-modifying CTEs), for a door to refuse moving data out of a
    /// sensitive column into one masking would not follow.
    pub stored: Vec<Stored>,
}

impl Lineage {
    /// The sources of each result column, given the result's column names as the server
    /// describes them. A `*` whose width the text does not give takes the columns the named
    /// ones leave; when that does not settle the positions (two such `*`, or a count that
    /// does not add up), every column takes the sources of all of them.
    pub fn fields(&self, names: &[&str]) -> Vec<Sources> {
        if !self.complete {
            return names.iter().map(|_| self.reads.clone()).collect();
        }
        let fixed: usize = self
            .columns
            .iter()
            .map(|c| match c {
                OutputColumn::One(_) => 1,
                OutputColumn::Star { known, open, .. } => usize::from(!open) * known.len(),
            })
            .sum();
        let opens = self
            .columns
            .iter()
            .filter(|c| matches!(c, OutputColumn::Star { open: true, .. }))
            .count();
        let aligned = match opens {
            0 => fixed == names.len(),
            1 => fixed <= names.len(),
            _ => false,
        };
        if !aligned {
            return names
                .iter()
                .map(|name| {
                    let mut all = Sources::default();
                    for c in &self.columns {
                        all.add(&star_field(c, Some(name), None));
                    }
                    all
                })
                .collect();
        }
        let open_width = names.len() - fixed;
        let mut out = Vec::with_capacity(names.len());
        let mut at = 0;
        for c in &self.columns {
            let width = match c {
                OutputColumn::One(_) => 1,
                OutputColumn::Star { open: true, .. } => open_width,
                OutputColumn::Star { known, .. } => known.len(),
            };
            for k in 0..width {
                let name = names.get(at).copied().unwrap_or_default();
                out.push(star_field(c, Some(name), Some(k)));
                at += 1;
            }
        }
        out
    }
}

/// The sources of the result column `name` inside the entry `c`, at `position` within it when
/// that is known.
/// `name` `None` stands for all of them.
fn star_field(c: &OutputColumn, name: Option<&str>, position: Option<usize>) -> Sources {
    match c {
        OutputColumn::One(s) => s.clone(),
        OutputColumn::Star {
            tables,
            known,
            also,
            open,
        } => {
            let mut s = also.clone();
            for t in tables {
                s.add(&match name {
                    Some(name) => Sources::column(Some(t), name),
                    None => Sources::whole_row(t),
                });
            }
            match (position, open) {
                (Some(k), false) => {
                    if let Some(k) = known.get(k) {
                        s.add(k);
                    }
                }
                _ => known.iter().for_each(|k| s.add(k)),
            }
            s
        }
    }
}

/// The lineage of a top-level statement node (`{"SelectStmt": {...}}` and so on), or `None`
/// when the statement returns no rows of its own (DDL, settings, `EXPLAIN`, calls).
pub(crate) fn lineage(node: &impl Serialize) -> Option<Lineage> {
    let value = serde_json::to_value(node).ok()?;
    let (kind, body) = single(&value)?;
    let mut walker = Walker::default();
    let root = Scope::root();
    let outs = match kind {
        "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
            walker.query(kind, body, &root, 0)
        }
        "CreateTableAsStmt" => {
            let (k, b) = body.get("query").and_then(node_of)?;
            let outs = walker.query(k, b, &root, 0);
            let mut all = Sources::default();
            outs.iter().for_each(|o| all.add(&o.all()));
            let table = body
                .get("into")
                .and_then(|i| i.get("rel"))
                .map(|r| str_field(r, "relname").to_owned());
            walker.stored.push(Stored {
                table,
                column: None,
                sources: all,
            });
            Vec::new()
        }
        "CopyStmt" => walker.copy(body, &root),
        "DeclareCursorStmt" | "PrepareStmt" => {
            let (k, b) = body.get("query").and_then(node_of)?;
            walker.query(k, b, &root, 0)
        }
        _ => return None,
    };
    let columns: Vec<OutputColumn> = outs.into_iter().map(|o| o.column).collect();
    if columns.is_empty()
        && walker.reads.is_empty()
        && walker.stored.is_empty()
        && !walker.incomplete
    {
        return None;
    }
    Some(Lineage {
        columns,
        reads: walker.reads,
        complete: !walker.incomplete,
        copy: (kind == "CopyStmt").then(|| CopyFormat::from_options(body.get("options"))),
        stored: {
            // A CTE's query is walked again while its sources grow: keep each once.
            let mut stored: Vec<Stored> = Vec::new();
            for s in walker.stored {
                if !stored.contains(&s) {
                    stored.push(s);
                }
            }
            stored
        },
    })
}

/// A named output of a query (a sub-select's or CTE's), for references from outside it.
#[derive(Debug, Clone)]
struct Out {
    name: Option<String>,
    column: OutputColumn,
}

impl Out {
    fn all(&self) -> Sources {
        star_field(&self.column, None, None)
    }
}

/// A FROM item: what its name stands for.
#[derive(Debug, Clone)]
enum Item {
    /// A relation the catalog holds, as written.
    Table { name: String, relation: String },
    /// A sub-select, a CTE reference, a VALUES list.
    Query { name: String, outs: Vec<Out> },
    /// A set-returning function (or XMLTABLE, JSON_TABLE): its columns are made of `sources`.
    Function {
        name: String,
        columns: Option<Vec<String>>,
        sources: Sources,
    },
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::Table { name, .. } | Item::Query { name, .. } | Item::Function { name, .. } => {
                name
            }
        }
    }

    /// The sources of its column `column`, or `None` when it has no such column.
    fn column(&self, column: &str) -> Option<Sources> {
        match self {
            Item::Table { relation, .. } => Some(Sources::column(Some(relation), column)),
            Item::Query { outs, .. } => {
                let named: Vec<&Out> = outs
                    .iter()
                    .filter(|o| o.name.as_deref() == Some(column))
                    .collect();
                let mut s = Sources::default();
                if named.is_empty() {
                    // A `*` inside may hold it under a name the text does not show.
                    let mut any = false;
                    for o in outs {
                        if let OutputColumn::Star { .. } = o.column {
                            s.add(&star_field(&o.column, Some(column), None));
                            any = true;
                        }
                    }
                    return any.then_some(s);
                }
                named.iter().for_each(|o| s.add(&o.all()));
                Some(s)
            }
            Item::Function {
                columns, sources, ..
            } => match columns {
                Some(cols) if !cols.iter().any(|c| c == column) => None,
                _ => {
                    let mut s = sources.clone();
                    s.add(&Sources::column(None, column));
                    Some(s)
                }
            },
        }
    }

    /// Its whole row.
    fn whole(&self) -> Sources {
        match self {
            Item::Table { relation, .. } => Sources::whole_row(relation),
            Item::Query { outs, .. } => {
                let mut s = Sources::default();
                outs.iter().for_each(|o| s.add(&o.all()));
                s
            }
            Item::Function { sources, .. } => sources.clone(),
        }
    }

    /// Its columns as a `*` expands them.
    fn star(&self) -> OutputColumn {
        match self {
            Item::Table { relation, .. } => OutputColumn::Star {
                tables: BTreeSet::from([relation.clone()]),
                known: Vec::new(),
                also: Sources::default(),
                open: true,
            },
            Item::Query { outs, .. } => flatten(outs),
            Item::Function { sources, .. } => OutputColumn::Star {
                tables: BTreeSet::new(),
                known: Vec::new(),
                also: sources.clone(),
                open: true,
            },
        }
    }
}

/// The outputs of a query as one `*` entry.
fn flatten(outs: &[Out]) -> OutputColumn {
    let mut tables = BTreeSet::new();
    let mut known = Vec::new();
    let mut also = Sources::default();
    let mut open = false;
    for o in outs {
        match &o.column {
            OutputColumn::One(s) => known.push(s.clone()),
            OutputColumn::Star {
                tables: t,
                known: k,
                also: a,
                open: o,
            } => {
                tables.extend(t.iter().cloned());
                known.extend(k.iter().cloned());
                also.add(a);
                open |= *o;
            }
        }
    }
    OutputColumn::Star {
        tables,
        known,
        also,
        open,
    }
}

/// The names in scope at one query level, and the level around it.
struct Scope<'a> {
    items: Vec<Item>,
    ctes: Vec<(String, Vec<Out>)>,
    parent: Option<&'a Scope<'a>>,
}

impl<'a> Scope<'a> {
    fn root() -> Scope<'static> {
        Scope {
            items: Vec::new(),
            ctes: Vec::new(),
            parent: None,
        }
    }

    fn child(parent: &'a Scope<'a>) -> Scope<'a> {
        Scope {
            items: Vec::new(),
            ctes: Vec::new(),
            parent: Some(parent),
        }
    }

    fn cte(&self, name: &str) -> Option<&Vec<Out>> {
        self.ctes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, outs)| outs)
            .or_else(|| self.parent.and_then(|p| p.cte(name)))
    }

    /// A column reference `[qualifier.]column`, resolved level by level outwards.
    fn resolve(&self, qualifier: Option<&str>, column: &str) -> Option<Sources> {
        let mut found: Option<Sources> = None;
        for item in &self.items {
            let hit = match qualifier {
                Some(q) if item.name() == q => Some(item.column(column).unwrap_or_else(|| {
                    // `q.f` where `q` has no column `f`: a field of it or `f(q)`.
                    item.whole()
                })),
                Some(_) => None,
                None => {
                    let mut hit = item.column(column);
                    if item.name() == column {
                        hit.get_or_insert_with(Sources::default).add(&item.whole());
                    }
                    hit
                }
            };
            if let Some(hit) = hit {
                found.get_or_insert_with(Sources::default).add(&hit);
            }
        }
        found.or_else(|| self.parent.and_then(|p| p.resolve(qualifier, column)))
    }

    /// `q.*` or `*`.
    fn star(&self, qualifier: Option<&str>) -> Vec<OutputColumn> {
        let here: Vec<OutputColumn> = self
            .items
            .iter()
            .filter(|i| qualifier.is_none_or(|q| i.name() == q))
            .map(Item::star)
            .collect();
        match (here.is_empty(), qualifier, self.parent) {
            (true, Some(_), Some(p)) => p.star(qualifier),
            _ => here,
        }
    }
}

#[derive(Default)]
struct Walker {
    reads: Sources,
    stored: Vec<Stored>,
    incomplete: bool,
}

impl Walker {
    /// The outputs of a query node of kind `kind`.
    fn query(&mut self, kind: &str, q: &Value, outer: &Scope<'_>, depth: usize) -> Vec<Out> {
        if depth > MAX_DEPTH {
            self.incomplete = true;
            return Vec::new();
        }
        let mut scope = Scope::child(outer);
        self.with_clause(q.get("with_clause"), &mut scope, depth);
        match kind {
            "SelectStmt" => self.select(q, scope, depth),
            "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => self.write(q, scope, depth),
            _ => {
                // A node this module does not read as a query: everything in it may flow.
                let s = self.expr(q, &scope, depth + 1, true);
                vec![Out {
                    name: None,
                    column: OutputColumn::Star {
                        tables: BTreeSet::new(),
                        known: Vec::new(),
                        also: s,
                        open: true,
                    },
                }]
            }
        }
    }

    fn with_clause(&mut self, with: Option<&Value>, scope: &mut Scope<'_>, depth: usize) {
        let Some(ctes) = with.and_then(|w| w.get("ctes")).and_then(Value::as_array) else {
            return;
        };
        for cte in ctes.iter().filter_map(node_of) {
            let (_, cte) = cte;
            let name = str_field(cte, "ctename").to_owned();
            let Some((kind, body)) = cte.get("ctequery").and_then(node_of) else {
                continue;
            };
            let aliases = names(cte.get("aliascolnames"));
            // A recursive CTE reads itself: iterate until its sources stop growing.
            let mut outs: Vec<Out> = Vec::new();
            for _ in 0..4 {
                scope.ctes.push((name.clone(), outs.clone()));
                let next = renamed(self.query(kind, body, scope, depth + 1), &aliases);
                scope.ctes.pop();
                let same = next.len() == outs.len()
                    && next
                        .iter()
                        .zip(&outs)
                        .all(|(a, b)| a.column == b.column && a.name == b.name);
                outs = next;
                if same {
                    break;
                }
            }
            scope.ctes.push((name, outs));
        }
    }

    fn select(&mut self, q: &Value, mut scope: Scope<'_>, depth: usize) -> Vec<Out> {
        // Set operations: the arms' columns by position.
        let op = q.get("op").and_then(Value::as_i64).unwrap_or(1);
        if op > 1 {
            let left = q
                .get("larg")
                .map(|l| self.query("SelectStmt", l, &scope, depth + 1))
                .unwrap_or_default();
            let right = q
                .get("rarg")
                .map(|r| self.query("SelectStmt", r, &scope, depth + 1))
                .unwrap_or_default();
            self.rest(q, &scope, depth);
            return set_operation(left, right);
        }
        if let Some(lists) = q.get("values_lists").and_then(Value::as_array)
            && !lists.is_empty()
        {
            let mut columns: Vec<Sources> = Vec::new();
            for list in lists {
                let Some((_, items)) = node_of(list) else {
                    continue;
                };
                for (i, v) in items
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let s = self.expr(v, &scope, depth + 1, true);
                    if columns.len() <= i {
                        columns.resize_with(i + 1, Sources::default);
                    }
                    columns[i].add(&s);
                }
            }
            self.rest(q, &scope, depth);
            return columns
                .into_iter()
                .enumerate()
                .map(|(i, s)| Out {
                    name: Some(format!("column{}", i + 1)),
                    column: OutputColumn::One(s),
                })
                .collect();
        }
        for from in q
            .get("from_clause")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let items = self.range_item(from, &scope, depth + 1);
            scope.items.extend(items);
        }
        let outs = self.targets(q.get("target_list"), &scope, depth);
        self.rest(q, &scope, depth);
        if q.get("into_clause").is_some_and(Value::is_object) {
            // SELECT INTO stores its result in a new table.
            let mut all = Sources::default();
            outs.iter().for_each(|o| all.add(&o.all()));
            self.stored.push(Stored {
                table: None,
                column: None,
                sources: all,
            });
        }
        outs
    }

    /// The parts of a SELECT that do not make its columns: read, for what errors may quote.
    fn rest(&mut self, q: &Value, scope: &Scope<'_>, depth: usize) {
        for key in [
            "where_clause",
            "group_clause",
            "having_clause",
            "window_clause",
            "sort_clause",
            "distinct_clause",
            "limit_offset",
            "limit_count",
            "into_clause",
            "locking_clause",
        ] {
            if let Some(v) = q.get(key) {
                self.expr(v, scope, depth + 1, false);
            }
        }
    }

    fn targets(&mut self, list: Option<&Value>, scope: &Scope<'_>, depth: usize) -> Vec<Out> {
        let mut outs = Vec::new();
        for target in list.and_then(Value::as_array).into_iter().flatten() {
            let Some((_, t)) = node_of(target) else {
                continue;
            };
            let val = t.get("val").unwrap_or(&Value::Null);
            if let Some((qualifier, true)) = star_ref(val) {
                for column in scope.star(qualifier.as_deref()) {
                    outs.push(Out { name: None, column });
                }
                continue;
            }
            let name = match str_field(t, "name") {
                "" => figure_name(val),
                n => Some(n.to_owned()),
            };
            let s = self.expr(val, scope, depth + 1, true);
            self.expr(
                t.get("indirection").unwrap_or(&Value::Null),
                scope,
                depth + 1,
                false,
            );
            outs.push(Out {
                name,
                column: OutputColumn::One(s),
            });
        }
        outs
    }

    /// INSERT/UPDATE/DELETE/MERGE: the RETURNING list over the target and the other FROM
    /// items, each column also made of every value the statement writes (the returned row
    /// holds them).
    fn write(&mut self, q: &Value, mut scope: Scope<'_>, depth: usize) -> Vec<Out> {
        let mut relation = None;
        if let Some(rel) = q.get("relation") {
            let target = self.range_var(rel, &scope);
            if let Some(Item::Table { relation: r, .. }) = target.first() {
                relation = Some(r.clone());
            }
            // `RETURNING old.c, new.c` (PostgreSQL 18) name the target's row.
            if let Some(Item::Table { relation, .. }) = target.first() {
                for name in ["old", "new"] {
                    scope.items.push(Item::Table {
                        name: name.to_owned(),
                        relation: relation.clone(),
                    });
                }
            }
            scope.items.extend(target);
        }
        let mut written = Sources::default();
        for key in ["from_clause", "using_clause", "source_relation"] {
            for from in nodes(q.get(key)) {
                let items = self.range_item(from, &scope, depth + 1);
                scope.items.extend(items);
            }
        }
        let store = |w: &mut Walker, column: Option<String>, sources: &Sources| {
            if !sources.is_empty() {
                w.stored.push(Stored {
                    table: relation.clone(),
                    column,
                    sources: sources.clone(),
                });
            }
        };
        if let Some((kind, body)) = q.get("select_stmt").and_then(node_of) {
            // INSERT: the query's columns into the listed columns, by position.
            let outs = self.query(kind, body, &scope, depth + 1);
            let cols: Vec<String> = as_list(q.get("cols"))
                .filter_map(node_of)
                .map(|(_, t)| str_field(t, "name").to_owned())
                .collect();
            let positional = cols.len() == outs.len()
                && outs
                    .iter()
                    .all(|o| matches!(o.column, OutputColumn::One(_)));
            for (i, o) in outs.iter().enumerate() {
                let all = o.all();
                written.add(&all);
                let column = positional.then(|| cols[i].clone());
                store(self, column, &all);
            }
        }
        if let Some(targets) = q.get("target_list").and_then(Value::as_array) {
            // UPDATE: each SET column and the value it takes.
            for t in targets.iter().filter_map(node_of).map(|(_, t)| t) {
                let s = self.expr(
                    t.get("val").unwrap_or(&Value::Null),
                    &scope,
                    depth + 1,
                    true,
                );
                written.add(&s);
                let column = Some(str_field(t, "name").to_owned()).filter(|c| !c.is_empty());
                store(self, column, &s);
            }
        }
        for key in ["merge_when_clauses", "on_conflict_clause"] {
            if let Some(v) = q.get(key) {
                let s = self.expr(v, &scope, depth + 1, true);
                written.add(&s);
                store(self, None, &s);
            }
        }
        for key in ["where_clause", "join_condition", "cols"] {
            if let Some(v) = q.get(key) {
                self.expr(v, &scope, depth + 1, false);
            }
        }
        let returning = q.get("returning_clause").and_then(|r| r.get("exprs"));
        let mut outs = self.targets(returning, &scope, depth);
        for o in &mut outs {
            match &mut o.column {
                OutputColumn::One(s) => s.add(&written),
                OutputColumn::Star { also, .. } => also.add(&written),
            }
        }
        outs
    }

    /// `COPY table [(cols)] TO` or `COPY (query) TO`.
    fn copy(&mut self, c: &Value, root: &Scope<'_>) -> Vec<Out> {
        if let Some((kind, body)) = c.get("query").and_then(node_of) {
            return self.query(kind, body, root, 1);
        }
        if c.get("is_from").and_then(Value::as_bool) == Some(true) {
            return Vec::new();
        }
        let Some(rel) = c.get("relation") else {
            return Vec::new();
        };
        let items = self.range_var(rel, root);
        let Some(Item::Table { relation, .. }) = items.first() else {
            return Vec::new();
        };
        let cols = names(c.get("attlist"));
        if cols.is_empty() {
            let mut s = Sources::default();
            s.add(&Sources::whole_row(relation));
            self.reads.add(&s);
            return vec![Out {
                name: None,
                column: items[0].star(),
            }];
        }
        cols.iter()
            .map(|col| {
                let s = Sources::column(Some(relation), col);
                self.reads.add(&s);
                Out {
                    name: Some(col.clone()),
                    column: OutputColumn::One(s),
                }
            })
            .collect()
    }

    /// The items one FROM entry brings into scope (a join brings both sides').
    fn range_item(&mut self, from: &Value, scope: &Scope<'_>, depth: usize) -> Vec<Item> {
        let Some((kind, body)) = node_of(from) else {
            return Vec::new();
        };
        if depth > MAX_DEPTH {
            self.incomplete = true;
            return Vec::new();
        }
        match kind {
            "RangeVar" => self.range_var(from, scope),
            "JoinExpr" => {
                let mut items = Vec::new();
                for side in ["larg", "rarg"] {
                    if let Some(s) = body.get(side) {
                        items.extend(self.range_item(s, scope, depth + 1));
                    }
                }
                // The join condition sees both sides.
                let mut inner = Scope::child(scope);
                inner.items = items;
                if let Some(quals) = body.get("quals") {
                    self.expr(quals, &inner, depth + 1, false);
                }
                inner.items
            }
            "RangeSubselect" => {
                let Some((k, b)) = body.get("subquery").and_then(node_of) else {
                    return Vec::new();
                };
                let outs = self.query(k, b, scope, depth + 1);
                let (name, aliases) = alias(body);
                vec![Item::Query {
                    name: name.unwrap_or_default(),
                    outs: renamed(outs, &aliases),
                }]
            }
            "RangeFunction" => {
                let mut sources = Sources::default();
                let mut first = None;
                for f in as_list(body.get("functions")) {
                    if first.is_none() {
                        first = node_of(f)
                            .and_then(|(_, l)| l.get("items"))
                            .and_then(Value::as_array)
                            .and_then(|i| i.first())
                            .and_then(figure_name);
                    }
                    let s = self.expr(f, scope, depth + 1, true);
                    sources.add(&s);
                }
                let (name, aliases) = alias(body);
                vec![Item::Function {
                    name: name.or(first).unwrap_or_default(),
                    columns: (!aliases.is_empty()).then_some(aliases),
                    sources,
                }]
            }
            "RangeTableSample" => match body.get("relation") {
                Some(r) => {
                    self.expr(
                        body.get("args").unwrap_or(&Value::Null),
                        scope,
                        depth,
                        false,
                    );
                    self.range_item(r, scope, depth + 1)
                }
                None => Vec::new(),
            },
            _ => {
                // XMLTABLE, JSON_TABLE and anything newer: its columns are made of whatever
                // it reads.
                let sources = self.expr(body, scope, depth + 1, true);
                let (name, _) = alias(body);
                vec![Item::Function {
                    name: name.unwrap_or_default(),
                    columns: None,
                    sources,
                }]
            }
        }
    }

    fn range_var(&mut self, from: &Value, scope: &Scope<'_>) -> Vec<Item> {
        let body = match node_of(from) {
            Some(("RangeVar", b)) => b,
            // `relation` fields hold the RangeVar itself, not a node.
            _ => from,
        };
        let schema = str_field(body, "schemaname");
        let relname = str_field(body, "relname");
        let (alias_name, aliases) = alias(body);
        let name = alias_name.unwrap_or_else(|| relname.to_owned());
        if schema.is_empty()
            && let Some(outs) = scope.cte(relname)
        {
            return vec![Item::Query {
                name,
                outs: renamed(outs.clone(), &aliases),
            }];
        }
        let relation = if schema.is_empty() {
            relname.to_owned()
        } else {
            format!("{schema}.{relname}")
        };
        if !aliases.is_empty() {
            // `t(a, b)` renames its first columns, which the text does not name.
            return vec![Item::Query {
                name,
                outs: vec![Out {
                    name: None,
                    column: OutputColumn::Star {
                        tables: BTreeSet::from([relation.clone()]),
                        known: Vec::new(),
                        also: Sources::whole_row(&relation),
                        open: true,
                    },
                }],
            }];
        }
        vec![Item::Table { name, relation }]
    }

    /// The sources of an expression (any JSON value of the tree). Everything it reads goes
    /// to `reads`; what it reveals is returned (`reveal` false: nothing is).
    fn expr(&mut self, v: &Value, scope: &Scope<'_>, depth: usize, reveal: bool) -> Sources {
        let mut out = Sources::default();
        self.expr_into(v, scope, depth, reveal, &mut out);
        out
    }

    fn expr_into(
        &mut self,
        v: &Value,
        scope: &Scope<'_>,
        depth: usize,
        reveal: bool,
        out: &mut Sources,
    ) {
        if depth > MAX_DEPTH {
            self.incomplete = true;
            return;
        }
        match v {
            Value::Array(items) => {
                for i in items {
                    self.expr_into(i, scope, depth + 1, reveal, out);
                }
            }
            Value::Object(map) => {
                if let Some((kind, body)) = single_map(map)
                    && self.special(kind, body, scope, depth, reveal, out)
                {
                    return;
                }
                for value in map.values() {
                    self.expr_into(value, scope, depth + 1, reveal, out);
                }
            }
            _ => {}
        }
    }

    /// Nodes whose meaning is not the sum of their parts. Returns false for the rest.
    fn special(
        &mut self,
        kind: &str,
        body: &Value,
        scope: &Scope<'_>,
        depth: usize,
        reveal: bool,
        out: &mut Sources,
    ) -> bool {
        match kind {
            "ColumnRef" => {
                let s = column_ref(body, scope);
                self.reads.add(&s);
                if reveal {
                    out.add(&s);
                }
                true
            }
            "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                for o in self.query(kind, body, scope, depth + 1) {
                    if reveal {
                        out.add(&o.all());
                    }
                }
                true
            }
            "SubLink" => {
                // EXISTS gives one bit per row (an oracle, like WHERE: documented); the other
                // kinds give the sub-select's values.
                let exists = body.get("sub_link_type").and_then(Value::as_i64) == Some(1);
                for key in ["testexpr", "subselect"] {
                    if let Some(x) = body.get(key) {
                        self.expr_into(x, scope, depth + 1, reveal && !exists, out);
                    }
                }
                true
            }
            "NullTest" => {
                self.expr(body, scope, depth + 1, false);
                true
            }
            "FuncCall" if is_count(body) => {
                self.expr(body, scope, depth + 1, false);
                true
            }
            _ => false,
        }
    }
}

/// Set operations take each column from either arm.
fn set_operation(left: Vec<Out>, right: Vec<Out>) -> Vec<Out> {
    let all_one = |o: &Vec<Out>| o.iter().all(|o| matches!(o.column, OutputColumn::One(_)));
    if left.len() == right.len() && all_one(&left) && all_one(&right) {
        return left
            .into_iter()
            .zip(right)
            .map(|(l, r)| {
                let mut s = l.all();
                s.add(&r.all());
                Out {
                    name: l.name,
                    column: OutputColumn::One(s),
                }
            })
            .collect();
    }
    // Positions the text does not settle: every column may hold any arm's data.
    let mut also = Sources::default();
    let mut tables = BTreeSet::new();
    for o in left.iter().chain(&right) {
        match &o.column {
            OutputColumn::One(s) => also.add(s),
            OutputColumn::Star {
                tables: t,
                known,
                also: a,
                ..
            } => {
                tables.extend(t.iter().cloned());
                known.iter().for_each(|k| also.add(k));
                also.add(a);
            }
        }
    }
    vec![Out {
        name: None,
        column: OutputColumn::Star {
            tables,
            known: Vec::new(),
            also,
            open: true,
        },
    }]
}

/// Output names replaced by an alias list, in order (`AS t(a, b)`, `WITH c(a, b)`).
fn renamed(mut outs: Vec<Out>, aliases: &[String]) -> Vec<Out> {
    if aliases.is_empty() {
        return outs;
    }
    if outs
        .iter()
        .any(|o| matches!(o.column, OutputColumn::Star { .. }))
    {
        // Positions unknown: each alias may be any of the columns.
        let all = flatten(&outs);
        let mut named: Vec<Out> = aliases
            .iter()
            .map(|a| Out {
                name: Some(a.clone()),
                column: OutputColumn::One(star_field(&all, Some(a), None)),
            })
            .collect();
        named.push(Out {
            name: None,
            column: all,
        });
        return named;
    }
    for (o, a) in outs.iter_mut().zip(aliases) {
        o.name = Some(a.clone());
    }
    outs
}

/// A column reference's sources.
fn column_ref(body: &Value, scope: &Scope<'_>) -> Sources {
    let parts: Vec<Option<&str>> = as_list(body.get("fields"))
        .map(|f| match node_of(f) {
            Some(("String", s)) => Some(str_field(s, "sval")),
            _ => None, // AStar
        })
        .collect();
    match parts.as_slice() {
        [Some(c)] => scope
            .resolve(None, c)
            .unwrap_or_else(|| Sources::column(None, c)),
        [None] => {
            let mut s = Sources::default();
            for o in scope.star(None) {
                s.add(&star_field(&o, None, None));
            }
            s
        }
        [.., Some(q), Some(c)] => scope.resolve(Some(q), c).unwrap_or_else(|| {
            let mut s = Sources::column(Some(q), c);
            s.add(&Sources::column(None, q));
            s
        }),
        [.., Some(q), None] => {
            let mut s = Sources::default();
            for o in scope.star(Some(q)) {
                s.add(&star_field(&o, None, None));
            }
            if s.is_empty() {
                s = Sources::whole_row(q);
            }
            s
        }
        _ => Sources::default(),
    }
}

/// `*` or `q.*` as a whole target: `Some((qualifier, true))`.
fn star_ref(val: &Value) -> Option<(Option<String>, bool)> {
    let ("ColumnRef", body) = node_of(val)? else {
        return None;
    };
    let fields: Vec<&Value> = as_list(body.get("fields")).collect();
    let last = fields.last().and_then(|f| node_of(f))?;
    if last.0 != "AStar" {
        return None;
    }
    let qualifier = fields
        .len()
        .checked_sub(2)
        .and_then(|i| fields.get(i))
        .and_then(|f| node_of(f))
        .map(|(_, s)| str_field(s, "sval").to_owned());
    Some((qualifier, true))
}

fn is_count(call: &Value) -> bool {
    let name = as_list(call.get("funcname"))
        .last()
        .and_then(|n| node_of(n))
        .map(|(_, s)| str_field(s, "sval"));
    name == Some("count")
}

/// The column name PostgreSQL gives an unnamed target (a subset of `FigureColname`: the
/// cases where a later reference can name it).
fn figure_name(val: &Value) -> Option<String> {
    let (kind, body) = node_of(val)?;
    match kind {
        "ColumnRef" => as_list(body.get("fields"))
            .last()
            .and_then(|f| node_of(f))
            .filter(|(k, _)| *k == "String")
            .map(|(_, s)| str_field(s, "sval").to_owned()),
        "FuncCall" => as_list(body.get("funcname"))
            .last()
            .and_then(|n| node_of(n))
            .map(|(_, s)| str_field(s, "sval").to_owned()),
        "TypeCast" => body.get("arg").and_then(figure_name).or_else(|| {
            body.get("type_name")
                .and_then(|t| as_list(t.get("names")).last())
                .and_then(|n| node_of(n))
                .map(|(_, s)| str_field(s, "sval").to_owned())
        }),
        _ => None,
    }
}

/// `alias: {aliasname, colnames}` of a FROM item.
fn alias(body: &Value) -> (Option<String>, Vec<String>) {
    match body.get("alias") {
        Some(Value::Object(a)) => {
            let name = a
                .get("aliasname")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            (name, names(a.get("colnames")))
        }
        _ => (None, Vec::new()),
    }
}

/// A list of `String` nodes.
fn names(list: Option<&Value>) -> Vec<String> {
    as_list(list)
        .filter_map(node_of)
        .map(|(_, s)| str_field(s, "sval").to_owned())
        .collect()
}

/// A list of nodes, or one node.
fn nodes(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    let one = v.filter(|v| v.is_object());
    as_list(v).chain(one)
}

fn as_list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

fn str_field<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `{"node": {"Kind": body}}` → `("Kind", body)`.
fn node_of(v: &Value) -> Option<(&str, &Value)> {
    single(v.get("node")?)
}

/// `{"Kind": body}` → `("Kind", body)`.
fn single(v: &Value) -> Option<(&str, &Value)> {
    single_map(v.as_object()?)
}

fn single_map(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    k.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some((k.as_str(), v))
}

#[cfg(test)]
mod tests;
