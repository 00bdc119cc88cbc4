//! Masking profiles: which recognizers are on, which columns are masked whole, and how.
//!
//! A profile is plain data (the config crate builds it); [`Masker::new`](crate::Masker::new)
//! compiles one or more of them into a runtime masker.

use crate::{Entity, Strategy};

/// A whole-column rule: every non-null value of a matching column is replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnRule {
    /// Which columns (or JSON object keys, for name rules) the rule applies to.
    pub matcher: ColumnMatch,
    /// The entity the replaced values are counted and labelled as.
    pub entity: Entity,
}

/// How a column rule selects columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnMatch {
    /// A case-insensitive glob on the column name (`*` any run, `?` one character), e.g.
    /// `"*password*"`. Also applied to JSON object keys inside json/jsonb values.
    Name(String),
    /// A PostgreSQL type name, lower case without schema, e.g. `"inet"`, `"macaddr"`. Also
    /// matches arrays of that type (`_inet`, `inet[]`), which are then replaced whole.
    Type(String),
}

/// One masking profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSpec {
    /// The value recognizers that are on.
    pub entities: Vec<Entity>,
    /// Whole-column rules, first match wins.
    pub columns: Vec<ColumnRule>,
    /// The strategy of every entity without an override.
    pub default_strategy: Strategy,
    /// Per-entity strategy overrides.
    pub strategies: Vec<(Entity, Strategy)>,
}

impl ProfileSpec {
    /// Every recognizer, the usual sensitive column names, `inet`/`cidr` and
    /// `macaddr`/`macaddr8` columns, all redacted.
    ///
    /// Name rules are deliberately not open-ended where an open end would catch flags and
    /// counters: `email`, `*_email`, `email_address` but not `email_verified`; `token`,
    /// `*_token` but not `token_count`.
    pub fn builtin_default() -> ProfileSpec {
        let names: &[(Entity, &[&str])] = &[
            (
                Entity::GenericSecret,
                &[
                    "*password*",
                    "*passwd*",
                    "pwd",
                    "*_pwd",
                    "*secret*",
                    "token",
                    "*_token",
                    "*api_key*",
                    "*apikey*",
                    "*access_key*",
                    "*auth_key*",
                    "*credentials*",
                ],
            ),
            (Entity::PrivateKey, &["*private_key*"]),
            (Entity::UsSsn, &["ssn", "*_ssn", "social_security*"]),
            (
                Entity::CreditCard,
                &[
                    "*card_number*",
                    "credit_card*",
                    "card",
                    "*_card",
                    "card_no",
                    "card_num",
                    "cardnumber",
                    "cc_number",
                    "ccnum",
                    "pan",
                    "cvv",
                    "cvv2",
                    "cvc",
                ],
            ),
            (
                Entity::Iban,
                &["iban", "*_iban", "*account_number*", "bank_account*"],
            ),
            (
                Entity::Email,
                &[
                    "email",
                    "*_email",
                    "*email_address*",
                    "emailaddress",
                    "e_mail",
                ],
            ),
            (
                Entity::Phone,
                &[
                    "phone",
                    "*_phone",
                    "*phone_number*",
                    "phonenumber",
                    "mobile",
                    "*mobile_number*",
                    "telephone",
                ],
            ),
            (
                Entity::DateOfBirth,
                &[
                    "dob",
                    "date_of_birth",
                    "birth_date",
                    "birthdate",
                    "birthday",
                ],
            ),
            (
                Entity::UsPassport,
                &[
                    "passport",
                    "passport_number",
                    "passport_no",
                    "passport_num",
                    "passport_id",
                ],
            ),
            (
                Entity::UkNino,
                &["national_insurance*", "nino", "ni_number"],
            ),
        ];
        let types: &[(Entity, &[&str])] = &[
            (Entity::Ipv4, &["inet", "cidr"]),
            (Entity::MacAddress, &["macaddr", "macaddr8"]),
        ];
        let mut columns = Vec::new();
        for (kinds, matcher) in [
            (names, ColumnMatch::Name as fn(String) -> ColumnMatch),
            (types, ColumnMatch::Type),
        ] {
            for &(entity, globs) in kinds {
                columns.extend(globs.iter().map(|g| ColumnRule {
                    matcher: matcher((*g).to_owned()),
                    entity,
                }));
            }
        }
        ProfileSpec {
            entities: Entity::ALL.to_vec(),
            columns,
            default_strategy: Strategy::Redact,
            strategies: Vec::new(),
        }
    }

    /// The strategy this profile gives `entity`, if the profile concerns it at all (the entity
    /// is on, is named by a column rule or has an override).
    pub(crate) fn strategy_for(&self, entity: Entity) -> Option<Strategy> {
        let overridden = self.strategies.iter().rev().find(|(e, _)| *e == entity);
        if let Some(&(_, strategy)) = overridden {
            return Some(strategy);
        }
        let concerned =
            self.entities.contains(&entity) || self.columns.iter().any(|r| r.entity == entity);
        concerned.then_some(self.default_strategy)
    }
}
