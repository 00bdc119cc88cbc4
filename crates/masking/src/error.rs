//! Errors of building a [`Masker`](crate::Masker) or parsing an entity label.
//!
//! Masking itself never fails: every input has a masked output.

use crate::Entity;

/// Why a masker could not be built, or a label not parsed. Messages carry no masked values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A label that is not one of [`Entity::ALL`].
    #[error("unknown masking entity {0:?}")]
    UnknownEntity(String),
    /// A profile asks for the `hmac` strategy but the masker got no (or an empty) key.
    #[error("masking strategy hmac is configured for {entity} but no HMAC key was given")]
    HmacKeyMissing {
        /// The first entity found with the `hmac` strategy.
        entity: Entity,
    },
    /// The built-in recognizer patterns did not compile (a bug, caught by the tests).
    #[error("internal error: masking patterns failed to compile: {0}")]
    Build(String),
}
