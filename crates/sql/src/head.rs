//! The action a statement's top-level node asks for, before what hides inside it (nested
//! writes, side-effecting calls) is taken into account by [`crate::classify`].

use pg_query::NodeEnum;
use pg_query::protobuf::{
    self, AlterTableType, ClosePortalStmt, CopyStmt, DeclareCursorStmt, DropStmt, ExplainStmt,
    FetchStmt, ObjectType,
};

use crate::action::Action;
use crate::model::{CursorOp, SettingChange};
use crate::session;

/// `CURSOR_OPT_HOLD` in PostgreSQL's `parsenodes.h`: `DECLARE ... WITH HOLD`.
const CURSOR_OPT_HOLD: i32 = 0x0020;

/// The top-level reading of a statement.
#[derive(Debug)]
pub(crate) struct Head {
    pub action: Action,
    /// The top-level statement (through EXPLAIN/PREPARE/DECLARE) has a WHERE clause.
    pub has_where: bool,
    /// Tables named outside any RangeVar (DROP TABLE lists plain names).
    pub tables: Vec<String>,
    pub prepare_name: Option<String>,
    pub execute_name: Option<String>,
    pub deallocate_name: Option<String>,
    pub deallocate_all: bool,
    /// What the top-level statement does to `client_encoding` (SET, RESET, DISCARD, and the
    /// statements that run code the text does not show).
    pub client_encoding: Option<SettingChange>,
    /// A SET that turns `standard_conforming_strings` off.
    pub conforming_strings_off: bool,
    pub cursor: Option<CursorOp>,
    pub transaction: Option<crate::model::TransactionOp>,
}

impl Head {
    fn new(action: Action) -> Self {
        Self {
            action,
            has_where: false,
            tables: Vec::new(),
            prepare_name: None,
            execute_name: None,
            deallocate_name: None,
            deallocate_all: false,
            client_encoding: None,
            conforming_strings_off: false,
            cursor: None,
            transaction: None,
        }
    }

    /// Code the text does not show (`DO`, `CALL`, `EXECUTE`) may run `SET client_encoding`.
    fn running_code(action: Action) -> Self {
        Self {
            client_encoding: Some(SettingChange::Unknown),
            ..Self::new(action)
        }
    }

    fn with_where(mut self, has_where: bool) -> Self {
        self.has_where = has_where;
        self
    }
}

/// Reads the top-level node. Anything not recognised is `sql.admin` (fail closed).
pub(crate) fn head(node: &NodeEnum) -> Head {
    use NodeEnum as N;
    match node {
        N::SelectStmt(s) if s.into_clause.is_some() => Head::new(Action::Ddl),
        N::SelectStmt(s) => Head::new(Action::Select).with_where(s.where_clause.is_some()),
        N::InsertStmt(_) => Head::new(Action::Insert),
        N::UpdateStmt(s) => Head::new(Action::Update).with_where(s.where_clause.is_some()),
        N::DeleteStmt(s) => Head::new(Action::Delete).with_where(s.where_clause.is_some()),
        N::MergeStmt(_) => Head::new(Action::Merge),
        // TRUNCATE empties tables: a DELETE without WHERE.
        N::TruncateStmt(_) => Head::new(Action::Delete),
        N::CopyStmt(s) => Head::new(copy(s)),
        N::ExplainStmt(s) => explain(s),
        N::DeclareCursorStmt(s) => declare(s),
        N::FetchStmt(s) => fetch(s),
        N::ClosePortalStmt(s) => close(s),
        N::TransactionStmt(s) => Head {
            transaction: Some(session::transaction_op(s)),
            ..Head::new(session::transaction(s))
        },
        N::VariableSetStmt(s) => Head {
            client_encoding: session::client_encoding(s),
            conforming_strings_off: session::conforming_strings_off(s),
            ..Head::new(session::set(s))
        },
        N::DiscardStmt(s) => Head {
            client_encoding: session::discard_all(s).then_some(SettingChange::Default),
            ..Head::new(session::discard(s))
        },
        N::DoStmt(_) | N::CallStmt(_) => Head::running_code(Action::Admin),
        N::VariableShowStmt(_)
        | N::ListenStmt(_)
        | N::UnlistenStmt(_)
        | N::ConstraintsSetStmt(_) => Head::new(Action::Session),
        N::PrepareStmt(s) => Head {
            prepare_name: Some(s.name.clone()),
            ..inner(s.query.as_deref())
        },
        N::ExecuteStmt(s) => Head {
            execute_name: Some(s.name.clone()),
            ..Head::running_code(Action::Admin)
        },
        N::DeallocateStmt(s) => Head {
            deallocate_name: (!s.isall).then(|| s.name.clone()),
            deallocate_all: s.isall,
            ..Head::new(Action::Session)
        },
        N::DropStmt(s) => drop(s),
        N::RenameStmt(s) => Head::new(object_action(
            ObjectType::try_from(s.rename_type).unwrap_or(ObjectType::Undefined),
        )),
        N::AlterTableStmt(s) => Head::new(alter_table(s)),
        N::CreateSchemaStmt(s) => Head::new(create_schema(s)),
        N::DefineStmt(s) => Head::new(define(s)),
        node if is_ddl(node) => Head::new(Action::Ddl),
        _ => Head::new(Action::Admin),
    }
}

fn inner(node: Option<&pg_query::Node>) -> Head {
    match node.and_then(|node| node.node.as_ref()) {
        Some(node) => head(node),
        None => Head::new(Action::Admin),
    }
}

/// `DECLARE`: the query's reading (a cursor runs its query as it is fetched), and the cursor.
fn declare(stmt: &DeclareCursorStmt) -> Head {
    Head {
        cursor: Some(CursorOp::Declare {
            name: stmt.portalname.clone(),
            hold: stmt.options & CURSOR_OPT_HOLD != 0,
        }),
        ..inner(stmt.query.as_deref())
    }
}

/// `FETCH` and `MOVE` read the cursor's rows: they run its query further.
fn fetch(stmt: &FetchStmt) -> Head {
    let name = stmt.portalname.clone();
    let cursor = if stmt.ismove {
        CursorOp::Move { name }
    } else {
        CursorOp::Fetch { name }
    };
    Head {
        cursor: Some(cursor),
        ..Head::new(Action::Select)
    }
}

/// `CLOSE name`, or `CLOSE ALL` (no name).
fn close(stmt: &ClosePortalStmt) -> Head {
    Head {
        cursor: Some(CursorOp::Close {
            name: (!stmt.portalname.is_empty()).then(|| stmt.portalname.clone()),
        }),
        ..Head::new(Action::Select)
    }
}

/// COPY to or from the client is a read or a bulk write; a server file or program runs
/// with the server's own rights, so it is `sql.admin`.
fn copy(stmt: &CopyStmt) -> Action {
    if stmt.is_program || !stmt.filename.is_empty() {
        Action::Admin
    } else if stmt.is_from {
        Action::CopyFrom
    } else {
        Action::CopyTo
    }
}

/// EXPLAIN only plans, but EXPLAIN ANALYZE runs the statement, so it is that statement.
/// `ANALYZE` with anything but a clear false value counts as analyze.
fn explain(stmt: &ExplainStmt) -> Head {
    let analyze = stmt.options.iter().any(|option| match &option.node {
        Some(NodeEnum::DefElem(def)) if def.defname.eq_ignore_ascii_case("analyze") => {
            def.arg.as_deref().and_then(session::bool_value) != Some(false)
        }
        _ => false,
    });
    let explained = inner(stmt.query.as_deref());
    if analyze {
        // EXPLAIN ANALYZE DECLARE runs the query but opens no cursor.
        Head {
            cursor: None,
            ..explained
        }
    } else {
        Head::new(Action::Explain).with_where(explained.has_where)
    }
}

/// DROP of objects that govern access or run code is `sql.admin`, like their CREATE.
fn drop(stmt: &DropStmt) -> Head {
    use ObjectType as O;
    let kind = ObjectType::try_from(stmt.remove_type).unwrap_or(O::Undefined);
    let names_relations = matches!(
        kind,
        O::ObjectTable
            | O::ObjectView
            | O::ObjectMatview
            | O::ObjectForeignTable
            | O::ObjectSequence
    );
    let tables = if names_relations {
        stmt.objects.iter().filter_map(dotted_name).collect()
    } else {
        Vec::new()
    };
    Head {
        tables,
        ..Head::new(object_action(kind))
    }
}

/// `sql.admin` for objects that govern access, run code with other rights, or span the
/// cluster; `sql.ddl` for the rest of the schema.
fn object_action(kind: ObjectType) -> Action {
    use ObjectType as O;
    match kind {
        O::ObjectExtension
        | O::ObjectEventTrigger
        | O::ObjectForeignServer
        | O::ObjectFdw
        | O::ObjectLanguage
        | O::ObjectAccessMethod
        | O::ObjectPolicy
        | O::ObjectPublication
        | O::ObjectSubscription
        | O::ObjectTransform
        | O::ObjectRole
        | O::ObjectDatabase
        | O::ObjectTablespace
        | O::ObjectUserMapping
        | O::ObjectParameterAcl
        | O::ObjectDefacl
        | O::Undefined => Action::Admin,
        _ => Action::Ddl,
    }
}

/// `a.b.c` from a list of String nodes, as DROP writes object names.
fn dotted_name(node: &pg_query::Node) -> Option<String> {
    let Some(NodeEnum::List(list)) = &node.node else {
        return None;
    };
    let parts: Vec<&str> = list
        .items
        .iter()
        .filter_map(|item| match &item.node {
            Some(NodeEnum::String(part)) => Some(part.sval.as_str()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

/// ALTER TABLE is DDL, except the sub-commands that change who may see or change rows:
/// ownership, row-level security, and switching triggers or rules off.
fn alter_table(stmt: &protobuf::AlterTableStmt) -> Action {
    use AlterTableType as T;
    let guarded = stmt.cmds.iter().any(|cmd| match &cmd.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => matches!(
            AlterTableType::try_from(cmd.subtype).unwrap_or(T::Undefined),
            T::AtChangeOwner
                | T::AtEnableRowSecurity
                | T::AtDisableRowSecurity
                | T::AtForceRowSecurity
                | T::AtNoForceRowSecurity
                | T::AtEnableTrig
                | T::AtEnableAlwaysTrig
                | T::AtEnableReplicaTrig
                | T::AtDisableTrig
                | T::AtEnableTrigAll
                | T::AtDisableTrigAll
                | T::AtEnableTrigUser
                | T::AtDisableTrigUser
                | T::AtEnableRule
                | T::AtEnableAlwaysRule
                | T::AtEnableReplicaRule
                | T::AtDisableRule
                | T::Undefined
        ),
        _ => true,
    });
    if guarded { Action::Admin } else { Action::Ddl }
}

/// CREATE SCHEMA may carry its own CREATE TABLE/VIEW/... and GRANT statements.
fn create_schema(stmt: &protobuf::CreateSchemaStmt) -> Action {
    let elements_are_ddl = stmt.schema_elts.iter().all(|element| {
        element
            .node
            .as_ref()
            .is_some_and(|element| head(element).action == Action::Ddl)
    });
    if elements_are_ddl {
        Action::Ddl
    } else {
        Action::Admin
    }
}

/// CREATE AGGREGATE/OPERATOR/TYPE and text search parsers and templates bind existing
/// functions to syntax (an operator can call any function, unseen by the walk), so they are
/// `sql.admin`; collations and text search dictionaries and configurations are DDL.
fn define(stmt: &protobuf::DefineStmt) -> Action {
    use ObjectType as O;
    match ObjectType::try_from(stmt.kind) {
        Ok(O::ObjectCollation | O::ObjectTsdictionary | O::ObjectTsconfiguration) => Action::Ddl,
        _ => Action::Admin,
    }
}

/// Schema changes that neither grant rights nor bind code to syntax or other rights. Casts,
/// conversions and operator classes/families bind functions too, so they are left out.
fn is_ddl(node: &NodeEnum) -> bool {
    use NodeEnum as N;
    matches!(
        node,
        N::CreateStmt(_)
            | N::CreateTableAsStmt(_)
            | N::ViewStmt(_)
            | N::IndexStmt(_)
            | N::CommentStmt(_)
            | N::CreateSeqStmt(_)
            | N::AlterSeqStmt(_)
            | N::CompositeTypeStmt(_)
            | N::CreateEnumStmt(_)
            | N::CreateRangeStmt(_)
            | N::AlterEnumStmt(_)
            | N::CreateDomainStmt(_)
            | N::AlterDomainStmt(_)
            | N::RuleStmt(_)
            | N::CreateTrigStmt(_)
            | N::CreateStatsStmt(_)
            | N::AlterStatsStmt(_)
            | N::AlterObjectSchemaStmt(_)
            | N::CreateForeignTableStmt(_)
            | N::AlterTypeStmt(_)
            | N::AlterTsdictionaryStmt(_)
            | N::AlterTsconfigurationStmt(_)
            | N::AlterCollationStmt(_)
    )
}
