//! Transaction control and session settings, and the escapes hidden among them: a transaction
//! or session switched to READ WRITE, a role switch, a reset of the read-only default. Also
//! what a SET does to `client_encoding`, which the door must follow.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, DiscardMode, DiscardStmt, TransactionStmt, VariableSetStmt};

use crate::action::Action;
use crate::literal::{self, Literal};
use crate::model::SettingChange;

/// Settings whose change escapes the gateway's control of the session: a different role, or
/// replication mode (which skips triggers and foreign keys).
const GUARDED_SETTINGS: &[&str] = &["role", "session_authorization", "session_replication_role"];

/// Settings that may only be set to a clear `on`: the read-only defaults, and
/// `standard_conforming_strings`, without which the server would read `'\'` differently from
/// the parser here and could see a statement boundary the gateway does not.
const STAY_ON_SETTINGS: &[&str] = &[
    "transaction_read_only",
    "default_transaction_read_only",
    "standard_conforming_strings",
];

/// BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/...: `sql.transaction`, unless a mode list asks for
/// READ WRITE.
pub(crate) fn transaction(stmt: &TransactionStmt) -> Action {
    if requests_read_write(&stmt.options) {
        Action::Admin
    } else {
        Action::Transaction
    }
}

/// See [`crate::TransactionOp`].
pub(crate) fn transaction_op(stmt: &TransactionStmt) -> crate::model::TransactionOp {
    use crate::model::TransactionOp as Op;
    use protobuf::TransactionStmtKind as K;
    match K::try_from(stmt.kind).unwrap_or(K::Undefined) {
        K::TransStmtBegin | K::TransStmtStart => Op::Begin,
        K::TransStmtRollback => Op::Rollback,
        K::TransStmtSavepoint
        | K::TransStmtRelease
        | K::TransStmtRollbackTo
        | K::TransStmtRollbackPrepared => Op::Within,
        // COMMIT, PREPARE TRANSACTION, COMMIT PREPARED, and anything unknown: may commit.
        _ => Op::Commit,
    }
}

/// SET/RESET: `sql.session`, except role switches and anything that may leave read-only mode.
pub(crate) fn set(stmt: &VariableSetStmt) -> Action {
    use protobuf::VariableSetKind as Kind;
    let name = stmt.name.to_ascii_lowercase();
    let kind = Kind::try_from(stmt.kind).unwrap_or(Kind::Undefined);
    if GUARDED_SETTINGS.contains(&name.as_str()) {
        return Action::Admin;
    }
    match kind {
        // RESET ALL restores the server default of default_transaction_read_only, which
        // undoes a read-only session the gateway may have set up.
        Kind::VarResetAll | Kind::Undefined => Action::Admin,
        // SET TRANSACTION ... / SET SESSION CHARACTERISTICS AS TRANSACTION ...
        Kind::VarSetMulti if requests_read_write(&stmt.args) => Action::Admin,
        _ if STAY_ON_SETTINGS.contains(&name.as_str()) => {
            let stays_on = kind == Kind::VarSetValue
                && stmt.args.len() == 1
                && stmt.args.first().and_then(bool_value) == Some(true);
            if stays_on {
                Action::Session
            } else {
                Action::Admin
            }
        }
        _ => Action::Session,
    }
}

/// A SET of `standard_conforming_strings` to anything but a clear `on`. RESET and DEFAULT
/// restore the session's starting value, which the door has seen to be on.
pub(crate) fn conforming_strings_off(stmt: &VariableSetStmt) -> bool {
    use protobuf::VariableSetKind as Kind;
    stmt.name
        .eq_ignore_ascii_case("standard_conforming_strings")
        && Kind::try_from(stmt.kind) == Ok(Kind::VarSetValue)
        && !(stmt.args.len() == 1 && stmt.args.first().and_then(bool_value) == Some(true))
}

/// A `set_config` of `standard_conforming_strings` (constant name and value) to anything
/// but a clear `on`.
pub(crate) fn set_config_strings_off(name: &str, value: &str) -> bool {
    name.eq_ignore_ascii_case("standard_conforming_strings") && parse_bool(value) != Some(true)
}

/// What SET/RESET does to `client_encoding`. `SET NAMES` arrives here as `client_encoding`
/// (the grammar rewrites it), and setting names are compared as PostgreSQL does, without case.
pub(crate) fn client_encoding(stmt: &VariableSetStmt) -> Option<SettingChange> {
    use protobuf::VariableSetKind as Kind;
    let kind = Kind::try_from(stmt.kind).unwrap_or(Kind::Undefined);
    if kind == Kind::VarResetAll {
        return Some(SettingChange::Default);
    }
    if !stmt.name.eq_ignore_ascii_case("client_encoding") {
        return None;
    }
    Some(match (kind, stmt.args.as_slice()) {
        (Kind::VarSetDefault | Kind::VarReset, _) => SettingChange::Default,
        (Kind::VarSetValue, [value]) => {
            constant_text(value).map_or(SettingChange::Unknown, SettingChange::Value)
        }
        // FROM CURRENT, a list of values, or a kind this grammar does not know.
        _ => SettingChange::Unknown,
    })
}

/// The text PostgreSQL makes of a SET value: strings and identifiers as written, numbers in
/// their decimal form.
fn constant_text(node: &pg_query::Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::AConst(constant) => match literal::value(constant, literal::any)? {
            Literal::Str(string) => Some(string.to_owned()),
            Literal::Int(integer) => Some(integer.to_string()),
            Literal::Float(float) => Some(float.to_owned()),
            Literal::Bool(_) | Literal::Bits => None,
        },
        _ => None,
    }
}

/// DISCARD ALL: it runs RESET ALL, which also resets `client_encoding`.
pub(crate) fn discard_all(stmt: &DiscardStmt) -> bool {
    DiscardMode::try_from(stmt.target) == Ok(DiscardMode::DiscardAll)
}

/// `set_config('name', 'value', is_local)` with both constant is `SET [LOCAL] name = value`:
/// the same action as that SET would have.
pub(crate) fn set_config(name: &str, value: &str) -> Action {
    let name = name.to_ascii_lowercase();
    if GUARDED_SETTINGS.contains(&name.as_str()) {
        return Action::Admin;
    }
    if STAY_ON_SETTINGS.contains(&name.as_str()) && parse_bool(value) != Some(true) {
        return Action::Admin;
    }
    Action::Session
}

/// DISCARD ALL runs RESET ALL (see [`set`]); the other forms only drop caches and temp tables.
pub(crate) fn discard(stmt: &DiscardStmt) -> Action {
    match DiscardMode::try_from(stmt.target) {
        Ok(
            DiscardMode::DiscardPlans | DiscardMode::DiscardSequences | DiscardMode::DiscardTemp,
        ) => Action::Session,
        _ => Action::Admin,
    }
}

/// Whether a transaction mode list contains anything but a clear READ ONLY for
/// `transaction_read_only` (the grammar turns READ WRITE into `transaction_read_only = 0`).
fn requests_read_write(options: &[pg_query::Node]) -> bool {
    options.iter().any(|option| match &option.node {
        Some(NodeEnum::DefElem(def)) if def.defname == "transaction_read_only" => {
            def.arg.as_deref().and_then(bool_value) != Some(true)
        }
        _ => false,
    })
}

/// The boolean a constant spells, as PostgreSQL's `parse_bool` reads it (case-insensitive
/// prefixes of true/false/yes/no, on/off, 1/0). `None` when it is not clearly a boolean.
pub(crate) fn bool_value(node: &pg_query::Node) -> Option<bool> {
    match node.node.as_ref()? {
        NodeEnum::AConst(constant) => match literal::value(constant, literal::any)? {
            Literal::Int(integer) => int_bool(integer),
            Literal::Str(string) => parse_bool(string),
            Literal::Bool(boolean) => Some(boolean),
            Literal::Float(_) | Literal::Bits => None,
        },
        // Option arguments: a keyword's value, or a literal the grammar unwrapped.
        NodeEnum::Integer(integer) => {
            literal::read();
            int_bool(integer.ival)
        }
        NodeEnum::String(string) => {
            literal::read();
            parse_bool(&string.sval)
        }
        NodeEnum::Boolean(boolean) => {
            literal::read();
            Some(boolean.boolval)
        }
        _ => None,
    }
}

fn int_bool(value: i32) -> Option<bool> {
    match value {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// PostgreSQL's `parse_bool_with_len`: prefixes of true/false/yes/no, but "on" and "off"
/// only in full, since "o" and "of" are ambiguous there.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    let is_prefix_of = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    if is_prefix_of("true") || is_prefix_of("yes") || lower == "1" || lower == "on" {
        Some(true)
    } else if is_prefix_of("false") || is_prefix_of("no") || lower == "0" || lower == "off" {
        Some(false)
    } else {
        None
    }
}
