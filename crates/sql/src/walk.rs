//! Collects the facts that can hide anywhere in a statement: tables, function calls
//! ([`calls`]), data-modifying statements (CTEs, `COPY (DELETE ... RETURNING ...)`) and
//! `SELECT ... INTO`.
//!
//! The tree is walked through its `serde::Serialize` implementation (see [`crate::visit`]), so
//! every field of every node type is visited: a new node kind in a later libpg_query cannot
//! hide a function call or a write from the classifier, which a hand-written visitor over
//! ~270 node types could. The walk is streaming and allocates only for the names it keeps.
//!
//! CTE names are resolved with PostgreSQL's scoping ([`scope`]), so a CTE cannot shadow a
//! table outside its scope and hide it from the policy.

mod calls;
mod scope;

use serde::Serialize;

use pg_query::protobuf::OnConflictAction;

use crate::action::WriteKind;
use crate::model::SettingChange;
use crate::system::{SystemTarget, system_target};
use crate::visit::{Hooks, VisitError, visit};
use calls::Calls;
use scope::Scopes;

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Tables, sorted and deduplicated.
    pub tables: Vec<String>,
    /// Called functions, lower-case, sorted and deduplicated.
    pub functions: Vec<String>,
    /// Operator names (expressions, `op ANY (...)`, `ORDER BY ... USING op`).
    pub operators: Vec<String>,
    /// Name parts after the first of multi-part column references (`t.f`), lower-case: calls
    /// `f(t)` when `t` has no column `f`. Sorted and deduplicated.
    pub fields: Vec<String>,
    /// Every INSERT/UPDATE/DELETE/MERGE in the tree, the top-level one included, plus an
    /// UPDATE for each `ON CONFLICT DO UPDATE`.
    pub writes: Vec<WriteKind>,
    /// INSERT/UPDATE/DELETE/MERGE nodes in the tree (`writes` less the ON CONFLICT updates).
    pub write_nodes: usize,
    /// An `INTO` clause (SELECT INTO, CREATE TABLE AS) is present.
    pub into: bool,
    /// An `EXECUTE` of a prepared statement is present (`CREATE TABLE AS EXECUTE`).
    pub execute: bool,
    /// What the `set_config` calls in the tree do to `client_encoding`.
    pub client_encoding: Option<SettingChange>,
    /// Every `set_config` call's setting and value, when both are string constants.
    pub settings: Vec<Option<(String, String)>>,
    /// The strongest system relation an INSERT/UPDATE/DELETE/MERGE in the tree writes
    /// ([`crate::system`]).
    pub system_write: Option<SystemTarget>,
}

/// Walks `node` (a top-level statement) and returns its facts.
pub(crate) fn walk(node: &impl Serialize) -> Result<Facts, VisitError> {
    Ok(visit(node, Walker::default())?.finish())
}

/// One struct being serialized: its type name, the field being visited, and a per-kind slot
/// (CTE counter, name parts of a ColumnRef, or what a RangeVar is: see [`RangeVarRole`]).
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
    calls: Calls,
    facts: Facts,
}

/// What a RangeVar names, kept in its frame's slot.
struct RangeVarRole;

impl RangeVarRole {
    /// A relation read (or a CTE name).
    const READ: usize = 0;
    /// The target of INSERT/UPDATE/DELETE/MERGE.
    const WRITTEN: usize = 1;
    /// The new table of SELECT INTO.
    const CREATED: usize = 2;
}

const QUERY_STATEMENTS: &[&str] = &[
    "SelectStmt",
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
];

impl Hooks for Walker {
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
                self.calls.start_call();
                0
            }
            "Node" if self.frame_is(0, "FuncCall", "args") => {
                self.calls.start_arg();
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
            "RangeVar" => self.finish_range_var(frame.slot),
            "FuncCall" => self.calls.end_call(),
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
            ("String", "sval")
                if self.in_list("AExpr", "name")
                    || self.in_list("SubLink", "oper_name")
                    || self.in_list("SortBy", "use_op") =>
            {
                self.facts.operators.push(value.to_owned());
            }
            ("String", "sval") => self.on_name(value),
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
    /// agent allowed to insert but not to update cannot rewrite rows through an upsert.
    fn on_i32(&mut self, value: i32) {
        let on_conflict_action = matches!(
            self.frames.last(),
            Some(Frame {
                name: "OnConflictClause",
                field: "action",
                ..
            })
        );
        if on_conflict_action && value == OnConflictAction::OnconflictUpdate as i32 {
            self.facts.writes.push(WriteKind::Update);
        }
    }
}

impl Walker {
    /// A `String` node: a name part of a call, of a field selection or of a column reference,
    /// or a string constant given to a call (read for `set_config`).
    fn on_name(&mut self, value: &str) {
        if self.in_list("FuncCall", "funcname") {
            self.calls.name_part(value);
        } else if self.in_list("AIndirection", "indirection") {
            self.calls.indirection(value);
        } else if self.in_list("ColumnRef", "fields") {
            self.column_ref_part(value);
        } else if self.frame_is(1, "AConst", "val")
            && self.frame_is(2, "Node", "node")
            && self.frame_is(3, "FuncCall", "args")
        {
            crate::literal::read();
            self.calls.string_arg(value);
        }
    }

    /// Every part after the first of a column reference may name a function (`t.f` is `f(t)`
    /// when `t` has no column `f`). The ColumnRef's slot counts its parts.
    fn column_ref_part(&mut self, value: &str) {
        let n = self.frames.len();
        let Some(column_ref) = n.checked_sub(3).and_then(|i| self.frames.get_mut(i)) else {
            return;
        };
        column_ref.slot += 1;
        if column_ref.slot > 1 {
            self.calls.field(value);
        }
    }

    /// Whether the struct `back` levels below the top of the stack (0 = the innermost) is
    /// `name`, visiting its field `field`.
    fn frame_is(&self, back: usize, name: &str, field: &str) -> bool {
        let index = self.frames.len().checked_sub(1 + back);
        index
            .and_then(|i| self.frames.get(i))
            .is_some_and(|frame| frame.name == name && frame.field == field)
    }

    /// Whether the innermost struct is an element of the list `field` of `name`: the frame
    /// below it is the `Node` wrapper, and the one below that is `name`.
    fn in_list(&self, name: &str, field: &str) -> bool {
        self.frame_is(1, "Node", "node") && self.frame_is(2, name, field)
    }

    fn enter_scope(&mut self) -> usize {
        self.scopes.enter();
        0
    }

    fn enter_write(&mut self, kind: WriteKind) -> usize {
        self.facts.writes.push(kind);
        self.facts.write_nodes += 1;
        self.enter_scope()
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
        match self.frames.last() {
            Some(Frame {
                name: "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt",
                field: "relation",
                ..
            }) => RangeVarRole::WRITTEN,
            Some(Frame {
                name: "IntoClause",
                field: "rel",
                ..
            }) => RangeVarRole::CREATED,
            _ => RangeVarRole::READ,
        }
    }

    fn finish_range_var(&mut self, role: usize) {
        let parts = &self.range_var;
        if parts.relation.is_empty() {
            return;
        }
        if role == RangeVarRole::WRITTEN {
            let system = system_target(&parts.schema, &parts.relation);
            self.facts.system_write = self.facts.system_write.max(system);
        }
        let target = role != RangeVarRole::READ;
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

    fn finish(self) -> Facts {
        let mut facts = self.facts;
        facts.functions = self.calls.functions;
        facts.functions.sort_unstable();
        facts.functions.dedup();
        facts.operators.sort_unstable();
        facts.operators.dedup();
        facts.fields = self.calls.fields;
        facts.fields.sort_unstable();
        facts.fields.dedup();
        facts.client_encoding = self.calls.client_encoding;
        facts.settings = self.calls.settings;
        facts.tables.extend(self.scopes.into_tables());
        facts.tables.sort_unstable();
        facts.tables.dedup();
        facts
    }
}
