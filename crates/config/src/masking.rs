//! `[masking]`: the HMAC key and the masking profiles, and their translation into the
//! masking crate's [`ProfileSpec`]s (DESIGN.md §6).
//!
//! ```toml
//! [masking]
//! hmac_key = { env = "PORTCULLIS_MASKING_KEY" }   # only profiles using "hmac" need it
//! [masking.profiles.support]
//! entities = ["EMAIL", "PHONE", "CREDIT_CARD"]    # value recognizers; default: all
//! strategy = "redact"                             # redact | partial | hmac | null
//! keep = 4                                        # characters `partial` leaves visible
//! strategies = { EMAIL = "hmac", CREDIT_CARD = "partial" }
//! builtin_columns = true                          # the default column rules as well
//! columns = [{ name = "*notes*", entity = "GENERIC_SECRET" }, { type = "inet", entity = "IPV4" }]
//! ```
//!
//! A profile named `default` is built in (every entity, the default column rules, redact); a
//! file may redefine it.

use std::collections::BTreeMap;

use portcullis_masking::{ColumnMatch, ColumnRule, Entity, ProfileSpec, Strategy};
use serde::Deserialize;

use crate::SecretRef;
use crate::check::Problem;

/// The built-in profile's name.
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingConfig {
    /// The key of deterministic `hmac` tokens: one per deployment, so tokens join across
    /// sessions and connections.
    pub hmac_key: Option<SecretRef>,
    pub profiles: BTreeMap<String, ProfileConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Entity labels whose value recognizers are on; `None`: all of them.
    pub entities: Option<Vec<String>>,
    pub strategy: String,
    pub keep: usize,
    /// Per-entity strategy, e.g. `EMAIL = "hmac"` or `CREDIT_CARD = "partial:4"`.
    pub strategies: BTreeMap<String, String>,
    /// Include the built-in column rules (`*password*`, `ssn`, `email`, `inet`, ...).
    pub builtin_columns: bool,
    pub columns: Vec<ColumnRuleConfig>,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            entities: None,
            strategy: "redact".into(),
            keep: 4,
            strategies: BTreeMap::new(),
            builtin_columns: true,
            columns: Vec::new(),
        }
    }
}

/// A whole-column rule: `name` (a case-insensitive glob) or `type` (a PostgreSQL type name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRuleConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    pub entity: String,
}

impl MaskingConfig {
    /// Every profile by name, the built-in `default` included unless the file redefines it.
    /// Problems name the key at fault.
    pub fn profiles(&self) -> Result<BTreeMap<String, ProfileSpec>, Vec<Problem>> {
        let mut out = BTreeMap::new();
        let mut problems = Vec::new();
        out.insert(DEFAULT_PROFILE.to_owned(), ProfileSpec::builtin_default());
        for (name, p) in &self.profiles {
            match p.spec(&format!("masking.profiles.{name}")) {
                Ok(spec) => {
                    out.insert(name.clone(), spec);
                }
                Err(mut e) => problems.append(&mut e),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Whether any profile uses the `hmac` strategy, which needs `hmac_key`.
    pub fn needs_key(&self) -> bool {
        self.profiles.values().any(|p| {
            p.strategy.starts_with("hmac") || p.strategies.values().any(|s| s.starts_with("hmac"))
        })
    }
}

impl ProfileConfig {
    fn spec(&self, at: &str) -> Result<ProfileSpec, Vec<Problem>> {
        let mut problems = Vec::new();
        let entity =
            |label: &str, key: String, problems: &mut Vec<Problem>| match label.parse::<Entity>() {
                Ok(e) => Some(e),
                Err(_) => {
                    problems.push(Problem::error(
                        key,
                        format!("unknown entity `{label}`; known: {}", known_entities()),
                    ));
                    None
                }
            };
        let entities = match &self.entities {
            None => Entity::ALL.to_vec(),
            Some(list) => list
                .iter()
                .filter_map(|l| entity(l, format!("{at}.entities"), &mut problems))
                .collect(),
        };
        let mut columns = if self.builtin_columns {
            ProfileSpec::builtin_default().columns
        } else {
            Vec::new()
        };
        for (i, c) in self.columns.iter().enumerate() {
            let key = format!("{at}.columns[{i}]");
            let Some(e) = entity(&c.entity, key.clone(), &mut problems) else {
                continue;
            };
            let matcher = match (&c.name, &c.type_name) {
                (Some(n), None) => ColumnMatch::Name(n.clone()),
                (None, Some(t)) => ColumnMatch::Type(t.to_ascii_lowercase()),
                _ => {
                    problems.push(Problem::error(key, "give exactly one of `name` or `type`"));
                    continue;
                }
            };
            columns.push(ColumnRule { matcher, entity: e });
        }
        let mut strategies = Vec::new();
        for (label, s) in &self.strategies {
            let key = format!("{at}.strategies.{label}");
            let e = entity(label, key.clone(), &mut problems);
            match (e, strategy(s, self.keep)) {
                (Some(e), Ok(s)) => strategies.push((e, s)),
                (_, Err(m)) => problems.push(Problem::error(key, m)),
                (None, Ok(_)) => {}
            }
        }
        let default_strategy = strategy(&self.strategy, self.keep)
            .map_err(|m| problems.push(Problem::error(format!("{at}.strategy"), m)))
            .unwrap_or(Strategy::Redact);
        if problems.is_empty() {
            Ok(ProfileSpec {
                entities,
                columns,
                default_strategy,
                strategies,
            })
        } else {
            Err(problems)
        }
    }
}

/// `redact`, `hmac`, `null`, `partial` (keeping `keep`) or `partial:N`.
fn strategy(s: &str, keep: usize) -> Result<Strategy, String> {
    match s {
        "redact" => Ok(Strategy::Redact),
        "hmac" => Ok(Strategy::Hmac),
        "null" => Ok(Strategy::Null),
        "partial" => Ok(Strategy::Partial { keep }),
        other => match other.strip_prefix("partial:").map(str::parse::<usize>) {
            Some(Ok(keep)) => Ok(Strategy::Partial { keep }),
            _ => Err(format!(
                "unknown strategy `{other}`: use redact, partial, partial:N, hmac or null"
            )),
        },
    }
}

fn known_entities() -> String {
    Entity::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
