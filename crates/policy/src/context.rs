//! The Cedar request context: the caller's time, address and token, plus the facts a door's
//! classifier hands in for the action's family (`sql`, `http`, `k8s`, `ssh`, `mcp`).
//!
//! Every context attribute is required by the schema, so a door may give only the facts it
//! knows and this module fills the rest with defaults chosen to fail closed (an address of
//! `0.0.0.0`, `has_where = false`). Facts are checked against the descriptors below, which mirror
//! `schema.cedarschema`; a test checks every action's default context against the schema so the
//! two cannot drift apart.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use cedar_policy::{Context, RestrictedExpression};
use portcullis_identity::Principal;
use serde_json::{Map, Value};

/// The type of one fact together with its default value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool(bool),
    Long(i64),
    /// A string, empty by default.
    Str,
    /// A set of strings, empty by default.
    StrSet,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Bool(_) => "a boolean",
            Kind::Long(_) => "an integer",
            Kind::Str => "a string",
            Kind::StrSet => "an array of strings",
        }
    }
}

/// The facts of one action family, in schema order.
#[derive(Debug)]
pub(crate) struct Family {
    /// The context attribute holding the record (`context.sql`).
    pub(crate) key: &'static str,
    fields: &'static [(&'static str, Kind)],
}

static SQL: Family = Family {
    key: "sql",
    fields: &[
        // A door that classifies nothing still gets a parsed, single-statement, read-only
        // record: it can only satisfy policies that demand no more than that.
        ("parsed", Kind::Bool(true)),
        ("has_where", Kind::Bool(false)),
        ("statement_count", Kind::Long(1)),
        ("tables", Kind::StrSet),
        ("functions", Kind::StrSet),
        ("modifies_data", Kind::Bool(false)),
        ("kinds", Kind::StrSet),
        ("user_functions", Kind::StrSet),
        ("function_owners", Kind::StrSet),
        ("writing_functions", Kind::StrSet),
        ("opaque_reads", Kind::Bool(false)),
        ("triggers", Kind::StrSet),
        ("rules", Kind::StrSet),
    ],
};

static HTTP: Family = Family {
    key: "http",
    fields: &[("method", Kind::Str), ("path", Kind::Str)],
};

static K8S: Family = Family {
    key: "k8s",
    fields: &[
        ("namespace", Kind::Str),
        ("resource", Kind::Str),
        ("subresource", Kind::Str),
        ("name", Kind::Str),
        ("api_group", Kind::Str),
    ],
};

static SSH: Family = Family {
    key: "ssh",
    fields: &[("command", Kind::Str)],
};

static MCP: Family = Family {
    key: "mcp",
    fields: &[("tool", Kind::Str)],
};

/// The fact family of an action, from its name's prefix; `None` for actions that take only
/// the common context (`connect`, `data.unmask`, `admin.*`).
pub(crate) fn family_for(action: &str) -> Option<&'static Family> {
    let prefix = action.split_once('.').map(|(p, _)| p)?;
    [&SQL, &HTTP, &K8S, &SSH, &MCP]
        .into_iter()
        .find(|f| f.key == prefix)
}

/// Why the facts a door handed in cannot form a context.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("facts must be a JSON object or null, got {0}")]
    NotObject(&'static str),
    #[error("unknown fact `{path}` for action `{action}` (known: {known})")]
    UnknownFact {
        path: String,
        action: String,
        known: String,
    },
    #[error("fact `{path}` must be {expected}")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("building the context failed: {0}")]
    Cedar(String),
}

/// What the caller knows besides the facts.
pub(crate) struct Common<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) now_unix: i64,
    /// The `ip(...)` expression of the source address, from [`IpExprs`].
    pub(crate) source_ip: RestrictedExpression,
}

/// `ip(...)` expressions for source addresses, kept because Cedar's `new_ip` parses the
/// function name on every call, which costs more than the rest of the context together.
pub(crate) struct IpExprs {
    unknown: RestrictedExpression,
    recent: Mutex<HashMap<IpAddr, RestrictedExpression>>,
}

impl IpExprs {
    const MAX: usize = 4_096;

    pub(crate) fn new() -> Self {
        // An unknown address becomes 0.0.0.0, which no sensible allow-list contains.
        IpExprs {
            unknown: RestrictedExpression::new_ip(Ipv4Addr::UNSPECIFIED.to_string()),
            recent: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, ip: Option<IpAddr>) -> RestrictedExpression {
        let Some(ip) = ip else {
            return self.unknown.clone();
        };
        // IPv4-mapped IPv6 addresses are unwrapped so `isInRange(ip("10.0.0.0/8"))` sees them
        // as IPv4.
        let ip = ip.to_canonical();
        let Ok(mut recent) = self.recent.lock() else {
            return RestrictedExpression::new_ip(ip.to_string());
        };
        if let Some(expr) = recent.get(&ip) {
            return expr.clone();
        }
        if recent.len() >= Self::MAX {
            recent.clear();
        }
        let expr = RestrictedExpression::new_ip(ip.to_string());
        recent.insert(ip, expr.clone());
        expr
    }
}

/// Builds the full context for `action` of `family`, merging `facts` over the defaults.
pub(crate) fn build(
    action: &str,
    family: Option<&Family>,
    facts: &Value,
    common: &Common<'_>,
) -> Result<Context, ContextError> {
    let given = match facts {
        Value::Null => None,
        Value::Object(map) => Some(map),
        other => return Err(ContextError::NotObject(json_type(other))),
    };
    let mut pairs = common_pairs(common)?;
    let mut family_facts = None;
    for (key, value) in given.into_iter().flatten() {
        match family {
            Some(f) if f.key == key => family_facts = Some(value),
            _ => {
                return Err(ContextError::UnknownFact {
                    path: key.clone(),
                    action: action.to_owned(),
                    known: family.map_or_else(|| "none".to_owned(), |f| f.key.to_owned()),
                });
            }
        }
    }
    if let Some(f) = family {
        pairs.push((f.key.to_owned(), family_record(action, f, family_facts)?));
    }
    Context::from_pairs(pairs).map_err(|e| ContextError::Cedar(e.to_string()))
}

fn common_pairs(c: &Common<'_>) -> Result<Vec<(String, RestrictedExpression)>, ContextError> {
    let days = c.now_unix.div_euclid(86_400);
    let now = record([
        ("unix", RestrictedExpression::new_long(c.now_unix)),
        (
            "hour",
            RestrictedExpression::new_long(c.now_unix.rem_euclid(86_400) / 3_600),
        ),
        // 1970-01-01 was a Thursday, day 3 when Monday is 0.
        (
            "weekday",
            RestrictedExpression::new_long((days + 3).rem_euclid(7)),
        ),
    ])?;
    let p = c.principal;
    let token = record([
        ("issuer", RestrictedExpression::new_string(p.issuer.clone())),
        ("client_id", string_or_empty(p.client_id.as_deref())),
        ("token_id", string_or_empty(p.token_id.as_deref())),
        ("expires_at", RestrictedExpression::new_long(p.expires_at)),
    ])?;
    Ok(vec![
        ("now".to_owned(), now),
        ("source_ip".to_owned(), c.source_ip.clone()),
        ("token".to_owned(), token),
    ])
}

fn family_record(
    action: &str,
    family: &Family,
    given: Option<&Value>,
) -> Result<RestrictedExpression, ContextError> {
    let given: Option<&Map<String, Value>> = match given {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(ContextError::WrongType {
                path: family.key.to_owned(),
                expected: "an object",
            });
        }
    };
    if let Some(map) = given
        && let Some(unknown) = map
            .keys()
            .find(|k| !family.fields.iter().any(|(name, _)| name == k))
    {
        return Err(ContextError::UnknownFact {
            path: format!("{}.{unknown}", family.key),
            action: action.to_owned(),
            known: family
                .fields
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut fields = Vec::with_capacity(family.fields.len());
    for &(name, kind) in family.fields {
        let value = given.and_then(|m| m.get(name));
        let expr = fact_value(kind, value).ok_or_else(|| ContextError::WrongType {
            path: format!("{}.{name}", family.key),
            expected: kind.expected(),
        })?;
        fields.push((name, expr));
    }
    record(fields)
}

/// The value of one fact, or its default when absent; `None` when the given value has the
/// wrong type.
fn fact_value(kind: Kind, value: Option<&Value>) -> Option<RestrictedExpression> {
    Some(match (kind, value) {
        (Kind::Bool(d), None) => RestrictedExpression::new_bool(d),
        (Kind::Long(d), None) => RestrictedExpression::new_long(d),
        (Kind::Str, None) => RestrictedExpression::new_string(String::new()),
        (Kind::StrSet, None) => RestrictedExpression::new_set([]),
        (Kind::Bool(_), Some(Value::Bool(b))) => RestrictedExpression::new_bool(*b),
        (Kind::Long(_), Some(Value::Number(n))) => RestrictedExpression::new_long(n.as_i64()?),
        (Kind::Str, Some(Value::String(s))) => RestrictedExpression::new_string(s.clone()),
        (Kind::StrSet, Some(Value::Array(items))) => {
            let strings = items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| RestrictedExpression::new_string(s.to_owned()))
                })
                .collect::<Option<Vec<_>>>()?;
            RestrictedExpression::new_set(strings)
        }
        _ => return None,
    })
}

fn record(
    fields: impl IntoIterator<Item = (&'static str, RestrictedExpression)>,
) -> Result<RestrictedExpression, ContextError> {
    RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| ContextError::Cedar(e.to_string()))
}

fn string_or_empty(s: Option<&str>) -> RestrictedExpression {
    RestrictedExpression::new_string(s.unwrap_or_default().to_owned())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
