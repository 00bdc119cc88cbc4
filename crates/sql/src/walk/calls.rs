//! Function calls, in every way PostgreSQL lets one be written.
//!
//! Besides `f(x)` (a `FuncCall` node, whatever the quoting, case or schema of its name),
//! PostgreSQL resolves the attribute notation `x.f` and `(x).f` to the call `f(x)` when `x` has
//! no field `f` (PostgreSQL manual §8.16.5, "Using Composite Types in Queries"). In the raw parse
//! tree such a call is an `A_Indirection` whose list holds the name, or a multi-part
//! `ColumnRef` (`t.f` is the column `f` of `t`, or else the call `f(t)`); neither says which.
//!
//! - A field name in an `A_Indirection` is kept as a call: field selection on a composite
//!   value is rare, and the policy must see every call.
//! - The name parts after the first of a `ColumnRef` are kept apart ([`Calls::fields`]):
//!   nearly always they are column names, so [`crate::classify`] counts one as a call only
//!   when it is on the side-effect list. Which one is meant needs the catalog (DESIGN.md §5).
//!
//! `set_config` calls are also read for what they do to `client_encoding`.

use crate::model::SettingChange;

/// The setting the door must follow (see [`crate::Statement::client_encoding`]).
const CLIENT_ENCODING: &str = "client_encoding";

/// A `FuncCall` being visited: its name so far and, for `set_config` only, the string
/// constant each argument is (`None` for any other expression).
#[derive(Debug, Default)]
struct Open {
    name: String,
    args: Option<Vec<Option<String>>>,
}

#[derive(Debug, Default)]
pub(super) struct Calls {
    open: Vec<Open>,
    /// Called functions, lower-case, schema-qualified when written so.
    pub functions: Vec<String>,
    /// Name parts after the first of multi-part column references, lower-case.
    pub fields: Vec<String>,
    /// What the `set_config` calls do to `client_encoding`, in the order they end.
    pub client_encoding: Option<SettingChange>,
    /// Every `set_config` call: its setting name and value when both are string constants
    /// (then it is exactly `SET name = value`), `None` otherwise.
    pub settings: Vec<Option<(String, String)>>,
}

impl Calls {
    pub(super) fn start_call(&mut self) {
        self.open.push(Open::default());
    }

    /// One part of the name of the innermost `FuncCall`.
    pub(super) fn name_part(&mut self, part: &str) {
        if let Some(call) = self.open.last_mut() {
            if !call.name.is_empty() {
                call.name.push('.');
            }
            call.name.push_str(part);
        }
    }

    /// A new argument of the innermost `FuncCall` starts. Arguments are only recorded for
    /// `set_config`, whose name is complete by then (`funcname` comes before `args`).
    pub(super) fn start_arg(&mut self) {
        if let Some(call) = self.open.last_mut()
            && is_set_config(&call.name)
        {
            call.args.get_or_insert_with(Vec::new).push(None);
        }
    }

    /// The current argument of the innermost `FuncCall` is the string constant `value`.
    pub(super) fn string_arg(&mut self, value: &str) {
        let last = self.open.last_mut().and_then(|call| call.args.as_mut());
        if let Some(Some(slot)) = last.map(|args| args.last_mut()) {
            *slot = Some(value.to_owned());
        }
    }

    pub(super) fn end_call(&mut self) {
        let Some(call) = self.open.pop() else {
            return;
        };
        if is_set_config(&call.name) {
            let args = call.args.as_deref().unwrap_or_default();
            self.change_encoding(set_config(args));
            self.settings.push(match args {
                [Some(name), Some(value), ..] => Some((name.clone(), value.clone())),
                _ => None,
            });
        }
        self.functions.push(call.name.to_lowercase());
    }

    /// A field name of an `A_Indirection`: possibly the call `name(x)`.
    pub(super) fn indirection(&mut self, name: &str) {
        let name = name.to_lowercase();
        if is_set_config(&name) {
            // Its arguments are not visible in this notation.
            self.change_encoding(Some(SettingChange::Unknown));
            self.settings.push(None);
        }
        self.functions.push(name);
    }

    /// A name part after the first of a `ColumnRef`.
    pub(super) fn field(&mut self, name: &str) {
        let name = name.to_lowercase();
        if is_set_config(&name) {
            self.change_encoding(Some(SettingChange::Unknown));
            self.settings.push(None);
        }
        self.fields.push(name);
    }

    fn change_encoding(&mut self, change: Option<SettingChange>) {
        if let Some(change) = change {
            self.client_encoding = Some(SettingChange::then(self.client_encoding.take(), change));
        }
    }
}

fn is_set_config(name: &str) -> bool {
    let bare = name.rsplit('.').next().unwrap_or(name);
    bare.eq_ignore_ascii_case("set_config")
}

/// `set_config(name, value, is_local)`: a change of `client_encoding` when `name` says so.
/// A name or value the text does not give (an expression, a named argument) is `Unknown`.
fn set_config(args: &[Option<String>]) -> Option<SettingChange> {
    match args {
        [Some(name), value, ..] if name.eq_ignore_ascii_case(CLIENT_ENCODING) => Some(
            value
                .clone()
                .map_or(SettingChange::Unknown, SettingChange::Value),
        ),
        [Some(_), ..] => None,
        _ => Some(SettingChange::Unknown),
    }
}
