//! Collects the facts that can hide anywhere in a statement: tables, function calls,
//! data-modifying statements (CTEs, `COPY (DELETE ... RETURNING ...)`) and `SELECT ... INTO`.
//!
//! The tree is walked through its `serde::Serialize` implementation (see [`serializer`]), so
//! every field of every node type is visited: a new node kind in a later libpg_query cannot
//! hide a function call or a write from the classifier, which a hand-written visitor over
//! ~270 node types could. The walk is streaming and allocates only for the names it keeps.
//!
//! CTE names are resolved with PostgreSQL's scoping ([`scope`]), so a CTE cannot shadow a
//! table outside its scope and hide it from the policy.

mod scope;
mod serializer;

use serde::Serialize;

use pg_query::protobuf::OnConflictAction;

use crate::action::WriteKind;
use scope::Scopes;

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Tables, sorted and deduplicated.
    pub tables: Vec<String>,
    /// Called functions, lower-case, sorted and deduplicated.
    pub functions: Vec<String>,
    /// Every INSERT/UPDATE/DELETE/MERGE in the tree, the top-level one included, plus an
    /// UPDATE for each `ON CONFLICT DO UPDATE`.
    pub writes: Vec<Write>,
    /// An `INTO` clause (SELECT INTO, CREATE TABLE AS) is present.
    pub into: bool,
    /// An `EXECUTE` of a prepared statement is present (`CREATE TABLE AS EXECUTE`).
    pub execute: bool,
}

/// One write, and whether a WHERE that refers to a column bounds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Write {
    pub kind: WriteKind,
    pub has_where: bool,
}

/// The error type the serializer needs; the walk itself never produces one.
#[derive(Debug, thiserror::Error)]
#[error("parse tree walk failed: {0}")]
pub(crate) struct WalkError(String);

impl serde::ser::Error for WalkError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Walks `node` (a top-level statement) and returns its facts.
pub(crate) fn walk(node: &impl Serialize) -> Result<Facts, WalkError> {
    let mut walker = Walker::default();
    node.serialize(&mut walker)?;
    Ok(walker.finish())
}

/// One struct being serialized: its type name, the field being visited, and a per-kind slot
/// (write index, CTE counter, or whether a RangeVar is a DML target).
#[derive(Debug)]
struct Frame {
    name: &'static str,
    field: &'static str,
    slot: usize,
}

#[derive(Debug, Default)]
struct RangeVarParts {
    catalog: String,
    schema: String,
    relation: String,
}

#[derive(Debug, Default)]
pub(crate) struct Walker {
    frames: Vec<Frame>,
    scopes: Scopes,
    range_var: RangeVarParts,
    calls: Vec<String>,
    facts: Facts,
}

const QUERY_STATEMENTS: &[&str] = &[
    "SelectStmt",
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
];

impl Walker {
    fn on_struct_start(&mut self, name: &'static str) {
        let slot = match name {
            "SelectStmt" => self.enter_scope(),
            "InsertStmt" => self.enter_write(WriteKind::Insert),
            "UpdateStmt" => self.enter_write(WriteKind::Update),
            "DeleteStmt" => self.enter_write(WriteKind::Delete),
            "MergeStmt" => self.enter_write(WriteKind::Merge),
            "CommonTableExpr" => self.enter_cte(),
            "RangeVar" => self.enter_range_var(),
            "FuncCall" => {
                self.calls.push(String::new());
                0
            }
            "IntoClause" => {
                self.facts.into = true;
                0
            }
            "ExecuteStmt" => {
                self.facts.execute = true;
                0
            }
            // No write until the action turns out to be DO UPDATE (see `on_i32`).
            "OnConflictClause" => usize::MAX,
            "ColumnRef" | "CurrentOfExpr" => {
                self.mark_bounding_where();
                0
            }
            _ => 0,
        };
        self.frames.push(Frame {
            name,
            field: "",
            slot,
        });
    }

    fn on_field(&mut self, key: &'static str) {
        if let Some(frame) = self.frames.last_mut() {
            frame.field = key;
        }
    }

    fn on_struct_end(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        match frame.name {
            name if QUERY_STATEMENTS.contains(&name) => self.scopes.exit(),
            "CommonTableExpr" => self.scopes.exit_cte(),
            "RangeVar" => self.finish_range_var(frame.slot == 1),
            "FuncCall" => {
                if let Some(call) = self.calls.pop() {
                    self.facts.functions.push(call.to_lowercase());
                }
            }
            _ => {}
        }
    }

    fn on_str(&mut self, value: &str) {
        let Some(top) = self.frames.last() else {
            return;
        };
        match (top.name, top.field) {
            ("RangeVar", "catalogname") => value.clone_into(&mut self.range_var.catalog),
            ("RangeVar", "schemaname") => value.clone_into(&mut self.range_var.schema),
            ("RangeVar", "relname") => value.clone_into(&mut self.range_var.relation),
            ("CommonTableExpr", "ctename") => self.scopes.name_cte(value),
            ("String", "sval") if self.in_function_name() => {
                if let Some(call) = self.calls.last_mut() {
                    if !call.is_empty() {
                        call.push('.');
                    }
                    call.push_str(value);
                }
            }
            _ => {}
        }
    }

    fn on_bool(&mut self, value: bool) {
        let recursive_with = matches!(
            self.frames.last(),
            Some(Frame {
                name: "WithClause",
                field: "recursive",
                ..
            })
        );
        if value && recursive_with {
            self.scopes.mark_recursive();
        }
    }

    /// `INSERT ... ON CONFLICT DO UPDATE` overwrites existing rows: it is an UPDATE too, so an
    /// agent allowed to insert but not to update cannot rewrite rows through an upsert. Its
    /// WHERE is the one of the `DO UPDATE`.
    fn on_i32(&mut self, value: i32) {
        if let Some(
            frame @ Frame {
                name: "OnConflictClause",
                field: "action",
                ..
            },
        ) = self.frames.last_mut()
            && value == OnConflictAction::OnconflictUpdate as i32
        {
            frame.slot = self.facts.writes.len();
            self.facts.writes.push(Write {
                kind: WriteKind::Update,
                has_where: false,
            });
        }
    }

    /// A column (or `CURRENT OF cursor`) in a write's WHERE, outside any subquery, is what
    /// bounds the rows it touches. `WHERE true`, `WHERE 1 = 1` or an uncorrelated
    /// `WHERE EXISTS (...)` have none, so they do not count as a WHERE.
    fn mark_bounding_where(&mut self) {
        let owner = self.frames.iter().rev().find(|frame| {
            QUERY_STATEMENTS.contains(&frame.name) || frame.name == "OnConflictClause"
        });
        if let Some(Frame {
            name: "UpdateStmt" | "DeleteStmt" | "OnConflictClause",
            field: "where_clause",
            slot,
        }) = owner
            && let Some(write) = self.facts.writes.get_mut(*slot)
        {
            write.has_where = true;
        }
    }

    fn enter_scope(&mut self) -> usize {
        self.scopes.enter();
        0
    }

    fn enter_write(&mut self, kind: WriteKind) -> usize {
        self.enter_scope();
        self.facts.writes.push(Write {
            kind,
            has_where: false,
        });
        self.facts.writes.len() - 1
    }

    /// A CTE belongs to the innermost query level, whose `WITH` clause is being visited; its
    /// position in that clause decides which sibling CTEs its body can see.
    fn enter_cte(&mut self) -> usize {
        let with = self
            .frames
            .iter_mut()
            .rev()
            .take(2)
            .find(|frame| frame.name == "WithClause");
        let index = with.map_or(0, |with| {
            with.slot += 1;
            with.slot - 1
        });
        self.scopes.enter_cte(index);
        0
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE is always a table: PostgreSQL does not
    /// resolve it against CTE names. Neither is the new table of SELECT INTO.
    fn enter_range_var(&mut self) -> usize {
        self.range_var.catalog.clear();
        self.range_var.schema.clear();
        self.range_var.relation.clear();
        let target = matches!(
            self.frames.last(),
            Some(Frame {
                name: "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt",
                field: "relation",
                ..
            }) | Some(Frame {
                name: "IntoClause",
                field: "rel",
                ..
            })
        );
        usize::from(target)
    }

    fn finish_range_var(&mut self, target: bool) {
        let parts = &self.range_var;
        if parts.relation.is_empty() {
            return;
        }
        if parts.schema.is_empty() && parts.catalog.is_empty() {
            if !target && !self.scopes.is_empty() {
                self.scopes.reference(parts.relation.clone());
            } else {
                self.facts.tables.push(parts.relation.clone());
            }
            return;
        }
        let qualified = [&parts.catalog, &parts.schema, &parts.relation]
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| part.as_str())
            .collect::<Vec<_>>()
            .join(".");
        self.facts.tables.push(qualified);
    }

    /// True while visiting the name parts of a function call: FuncCall.funcname → Node → String.
    fn in_function_name(&self) -> bool {
        let n = self.frames.len();
        n >= 3
            && matches!(
                self.frames.get(n - 2),
                Some(Frame {
                    name: "Node",
                    field: "node",
                    ..
                })
            )
            && matches!(
                self.frames.get(n - 3),
                Some(Frame {
                    name: "FuncCall",
                    field: "funcname",
                    ..
                })
            )
    }

    fn finish(self) -> Facts {
        let mut facts = self.facts;
        facts.tables.extend(self.scopes.into_tables());
        facts.tables.sort_unstable();
        facts.tables.dedup();
        facts.functions.sort_unstable();
        facts.functions.dedup();
        facts
    }
}
