//! What an audit event says (DESIGN.md §8): who did what, through which door, and what the
//! gateway decided.

use portcullis_identity::{Principal, PrincipalKind};
use serde::{Deserialize, Serialize};

/// One audit event, before it is placed in the chain. Empty fields are left out of the
/// stored record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Event {
    /// What happened: `gateway.start`, `gateway.stop`, `token.rejected`, `decision`,
    /// `revocation`, `config.reload`, ...
    pub kind: String,
    /// `allow`, `deny`, `error`, ... as the kind defines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<Who>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The configured connection (target) name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The agent run and tool call the event belongs to, when the agent said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The classified action, e.g. `sql.delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The command text as classified (never with secrets: callers pass masked text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The policies that determined the decision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Kind-specific structured data (review, masking counts, rows, duration, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// The identity behind an event, copied from the authenticated [`Principal`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Who {
    pub subject: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `machine` or `human`.
    pub kind: String,
    /// Subjects of the delegation chain, outermost (current) actor first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

impl From<&Principal> for Who {
    fn from(p: &Principal) -> Self {
        let kind = match p.kind {
            PrincipalKind::Machine => "machine",
            PrincipalKind::Human => "human",
        };
        Self {
            subject: p.subject.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            groups: p.groups.clone(),
            kind: kind.to_owned(),
            delegation: p.delegation.iter().map(|a| a.subject.clone()).collect(),
            token_id: p.token_id.clone(),
        }
    }
}
