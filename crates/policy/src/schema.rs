//! The schema Portcullis ships and the names it defines.

use cedar_policy::{EntityTypeName, Schema};

use crate::compile::Problem;

const SCHEMA: &str = include_str!("schema.cedarschema");

/// The Cedar schema (human syntax) that policies are validated against.
pub fn schema_text() -> &'static str {
    SCHEMA
}

/// Parses the shipped schema. It is part of the binary, so a failure is a build mistake; it is
/// still reported as a problem rather than a panic.
pub(crate) fn load() -> Result<Schema, Problem> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Problem {
            source: "schema.cedarschema".to_owned(),
            line: None,
            column: None,
            message: format!("the shipped schema does not parse: {e}"),
        })
}

/// Entity type names, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Types {
    pub(crate) machine: EntityTypeName,
    pub(crate) human: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) connection: EntityTypeName,
    pub(crate) gateway: EntityTypeName,
}

impl Types {
    pub(crate) fn new() -> Result<Self, Problem> {
        let name = |s: &str| {
            s.parse::<EntityTypeName>().map_err(|e| Problem {
                source: "schema.cedarschema".to_owned(),
                line: None,
                column: None,
                message: format!("entity type {s}: {e}"),
            })
        };
        Ok(Types {
            machine: name("Machine")?,
            human: name("Human")?,
            group: name("Group")?,
            connection: name("Connection")?,
            gateway: name("Gateway")?,
        })
    }
}
