//! The authenticated identity every door hands to the pipeline.

use serde::{Deserialize, Serialize};

/// Whether a principal is a workload (agent, CI job) or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    #[default]
    Machine,
    Human,
}

/// One link of an RFC 8693 delegation chain (`act` claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// A verified token turned into an identity. Holds no secret material: the token itself is
/// never stored here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub subject: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Sorted and deduplicated: groups from the token's groups claim plus static groups.
    pub groups: Vec<String>,
    pub kind: PrincipalKind,
    /// The delegation chain from the `act` claim, outermost (current) actor first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<Actor>,
    /// The token's `jti`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// Unix seconds: the token's `exp`.
    pub expires_at: i64,
    /// Unix seconds: when this principal's authority ends, on every door. It is `exp` plus
    /// the issuer's leeway, the instant from which the validator refuses the token, so a
    /// session held open (PostgreSQL) ends when a new request with the token would be refused.
    pub valid_until: i64,
    /// Unix seconds, when the token says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
}
