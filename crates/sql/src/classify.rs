//! Combines a statement's top-level reading ([`crate::head`]) with what the walk found
//! inside it ([`crate::walk`]) into the public [`Statement`].

use pg_query::NodeEnum;
use pg_query::protobuf::RawStmt;

use crate::action::Action;
use crate::head::{Head, head};
use crate::model::{Classification, SettingChange, Statement};
use crate::options::Options;
use crate::pg;
use crate::restrict;
use crate::shape::Shape;
use crate::system::{self, SystemTarget};
use crate::walk::{Facts, walk};

/// Classifies `sql`; see the crate documentation for the rules.
pub fn classify(sql: &str, opts: &Options) -> Classification {
    let parsed = match pg::parse(sql) {
        Ok(parsed) => parsed,
        Err(error) => return unparsed(sql, error),
    };
    from_parsed(sql, &parsed, opts, Shape::of(sql).as_ref())
}

/// Classifies what `sql` parsed to. `shape`, the input's shape when it is one statement,
/// gives the literal-free text (one lexer pass instead of a second parse).
pub(crate) fn from_parsed(
    sql: &str,
    parsed: &pg_query::ParseResult,
    opts: &Options,
    shape: Option<&Shape>,
) -> Classification {
    let single = parsed.protobuf.stmts.len() == 1;
    let statements = parsed
        .protobuf
        .stmts
        .iter()
        .map(|raw| statement(sql, raw, opts, shape.filter(|_| single)))
        .collect();
    Classification {
        parsed: true,
        statements,
        error: None,
    }
}

/// Input the grammar rejects: one `sql.admin` statement holding the whole input.
pub(crate) fn unparsed(sql: &str, error: String) -> Classification {
    let statement = bare(Action::Admin, sql, pg::redact(sql));
    Classification {
        parsed: false,
        statements: vec![statement],
        error: Some(error),
    }
}

fn statement(sql: &str, raw: &RawStmt, opts: &Options, shape: Option<&Shape>) -> Statement {
    let text = pg::statement_text(sql, raw);
    let normalized = match shape {
        Some(shape) => shape.normalized(sql),
        None => pg::normalize(text),
    };
    // A statement without a node, or whose walk fails, cannot be judged: fail closed.
    let Some(node) = raw.stmt.as_ref().and_then(|node| node.node.as_ref()) else {
        return bare(Action::Admin, text, normalized);
    };
    match walk(node) {
        Ok(facts) => build(node, facts, opts, text, normalized),
        Err(_) => bare(Action::Admin, text, normalized),
    }
}

fn build(
    node: &NodeEnum,
    mut facts: Facts,
    opts: &Options,
    text: &str,
    normalized: String,
) -> Statement {
    let head = head(node);
    facts.functions = functions(&facts, opts);
    facts.system_write = facts.system_write.max(system::truncated_or_copied(node));
    let action = action(&head, &facts, opts);
    let counts_rows = counts_rows(node, &facts, action);
    let has_where = has_where(action, node, &head, &facts);
    let client_encoding = client_encoding(&head, &facts);
    let conforming_strings_off = head.action != Action::Explain
        && (head.conforming_strings_off
            || facts
                .settings
                .iter()
                .flatten()
                .any(|(name, value)| crate::session::set_config_strings_off(name, value)));
    let mut tables = facts.tables;
    if !head.tables.is_empty() {
        tables.extend(head.tables);
        tables.sort_unstable();
        tables.dedup();
    }
    Statement {
        action: action.as_str(),
        tables,
        has_where,
        functions: facts.functions,
        operators: facts.operators,
        attribute_calls: facts.fields,
        modifies_data: action.modifies_data(),
        text: text.to_owned(),
        normalized,
        prepare_name: head.prepare_name,
        execute_name: head.execute_name,
        deallocate_name: head.deallocate_name,
        deallocate_all: head.deallocate_all,
        client_encoding,
        conforming_strings_off,
        database_wide: database_wide(node),
        cursor: head.cursor,
        counts_rows,
        transaction: head.transaction,
        lineage: crate::model::LazyLineage::default(),
    }
}

/// See [`Statement::counts_rows`]. Read from the node itself (through PREPARE only): an
/// EXPLAIN ANALYZE runs its write but its tag counts nothing. A write in a CTE, a second
/// write, an INTO or an action raised to `sql.admin` (code whose writes no tag counts)
/// makes the tag count less than the statement changes.
fn counts_rows(node: &NodeEnum, facts: &Facts, action: Action) -> bool {
    use Action as A;
    match node {
        NodeEnum::InsertStmt(_)
        | NodeEnum::UpdateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::MergeStmt(_) => {
            facts.write_nodes == 1
                && !facts.into
                && !facts.execute
                && matches!(action, A::Insert | A::Update | A::Delete | A::Merge)
        }
        NodeEnum::CopyStmt(_) => action == A::CopyFrom,
        NodeEnum::PrepareStmt(p) => p
            .query
            .as_deref()
            .and_then(|q| q.node.as_ref())
            .is_some_and(|inner| counts_rows(inner, facts, action)),
        _ => false,
    }
}

/// See [`Statement::database_wide`].
fn database_wide(node: &NodeEnum) -> bool {
    use pg_query::protobuf::ObjectType;
    match node {
        NodeEnum::CreatedbStmt(_) | NodeEnum::DropdbStmt(_) => true,
        NodeEnum::RenameStmt(r) => r.rename_type == ObjectType::ObjectDatabase as i32,
        _ => false,
    }
}

/// The calls: every `FuncCall` and field selection, plus the parts of column references that
/// are on the side-effect list (`t.pg_read_file` is `pg_read_file(t)` when `t` has no such
/// column; other parts are column names far more often than calls).
fn functions(facts: &Facts, opts: &Options) -> Vec<String> {
    let mut functions = facts.functions.clone();
    let calls = facts
        .fields
        .iter()
        .filter(|field| opts.is_side_effect(field));
    functions.extend(calls.cloned());
    functions.sort_unstable();
    functions.dedup();
    functions
}

/// The top-level statement's effect on `client_encoding` followed by its `set_config` calls
/// (a write to `pg_settings` is such a call, on a setting the text does not tell); plain
/// EXPLAIN runs nothing.
fn client_encoding(head: &Head, facts: &Facts) -> Option<SettingChange> {
    if head.action == Action::Explain {
        return None;
    }
    let previous = match (head.client_encoding.clone(), facts.client_encoding.clone()) {
        (previous, Some(calls)) => Some(SettingChange::then(previous, calls)),
        (previous, None) => previous,
    };
    if facts.system_write == Some(SystemTarget::Settings) {
        Some(SettingChange::then(previous, SettingChange::Unknown))
    } else {
        previous
    }
}

/// The statement's action: a side-effecting call or a write to a system relation
/// ([`system`]) anywhere wins; then nested writes raise a read or a weaker write to the
/// strongest write; EXPLAIN without ANALYZE runs nothing.
fn action(head: &Head, facts: &Facts, opts: &Options) -> Action {
    use Action as A;
    let settings = settings_only(head, facts);
    let side_effect = facts.functions.iter().any(|function| {
        opts.is_side_effect(function) && !(settings.is_some() && is_set_config(function))
    });
    if side_effect || facts.system_write.is_some() {
        return A::Admin;
    }
    if let Some(action) = settings {
        return action;
    }
    let strongest = facts.writes.iter().copied().max();
    let reads_or_writes = matches!(
        head.action,
        A::Select | A::CopyTo | A::Insert | A::Update | A::Delete | A::Merge
    );
    match (head.action, strongest, facts.into) {
        (A::Explain, _, _) => A::Explain,
        // A prepared statement run from inside another (CREATE TABLE AS EXECUTE) is unknown.
        _ if facts.execute => A::Admin,
        // A write feeding SELECT INTO (or any INTO next to a write) is two things at once.
        (_, Some(_), true) => A::Admin,
        (_, Some(write), false) if reads_or_writes => write.action(),
        // Writes under DDL (CREATE RULE ... DO DELETE) or any other statement.
        (_, Some(_), false) => A::Admin,
        (A::Select | A::CopyTo, None, true) => A::Ddl,
        (action, None, _) => action,
    }
}

/// A SELECT that reads no relation and whose only side effects are `set_config` calls with
/// a constant setting and value (`SELECT set_config('jit', 'off', false)`, as asyncpg sends
/// around its type introspection) is the `SET` those calls spell: `sql.session`, or
/// `sql.admin` for the settings a SET of them would make `sql.admin` (role, read-only mode,
/// `standard_conforming_strings` off). Anything else with `set_config` in it stays
/// `sql.admin` (a computed name or value, or a read of tables next to it, which a policy on
/// reads must see).
fn settings_only(head: &Head, facts: &Facts) -> Option<Action> {
    let constant: Option<Vec<&(String, String)>> =
        facts.settings.iter().map(Option::as_ref).collect();
    let constant = constant.filter(|c| !c.is_empty())?;
    let plain_select = head.action == Action::Select
        && facts.tables.is_empty()
        && facts.writes.is_empty()
        && !facts.into
        && !facts.execute;
    if !plain_select {
        return None;
    }
    let admin = constant
        .iter()
        .any(|(name, value)| crate::session::set_config(name, value) == Action::Admin);
    Some(if admin {
        Action::Admin
    } else {
        Action::Session
    })
}

fn is_set_config(function: &str) -> bool {
    function
        .rsplit('.')
        .next()
        .is_some_and(|bare| bare == "set_config")
}

/// For UPDATE/DELETE: every UPDATE/DELETE in the tree (upserts included) has a WHERE that
/// bounds its target ([`restrict`]); TRUNCATE has none. Otherwise: the top-level statement
/// has a WHERE.
fn has_where(action: Action, node: &NodeEnum, head: &Head, facts: &Facts) -> bool {
    if !matches!(action, Action::Update | Action::Delete) {
        return head.has_where;
    }
    let walked = facts
        .writes
        .iter()
        .filter(|kind| kind.has_where_notion())
        .count();
    let bounded = restrict::writes(node);
    // The analysis finds writes where PostgreSQL accepts them; one it did not find (a write
    // the grammar accepts somewhere the server would reject) cannot be shown to be bounded.
    walked > 0 && bounded.len() == walked && bounded.iter().all(|bounded| *bounded)
}

fn bare(action: Action, text: &str, normalized: String) -> Statement {
    Statement {
        action: action.as_str(),
        tables: Vec::new(),
        has_where: false,
        functions: Vec::new(),
        operators: Vec::new(),
        attribute_calls: Vec::new(),
        modifies_data: action.modifies_data(),
        text: text.to_owned(),
        normalized,
        prepare_name: None,
        execute_name: None,
        deallocate_name: None,
        deallocate_all: false,
        // Input that could not be read may be anything the server runs (a tree too deep to
        // decode still parses there).
        client_encoding: Some(SettingChange::Unknown),
        conforming_strings_off: false,
        database_wide: false,
        cursor: None,
        counts_rows: false,
        transaction: None,
        lineage: crate::model::LazyLineage::default(),
    }
}
