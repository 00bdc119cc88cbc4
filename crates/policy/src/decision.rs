//! The engine's answer, which doors obey and the audit records (DESIGN.md §2, §4).

use serde::Serialize;

/// The outcome of one policy decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// Run the command. `policies` are the determining permits; `masks` the masking profiles
    /// they ask for (sorted, deduplicated).
    Allow {
        policies: Vec<String>,
        masks: Vec<String>,
        /// The tightest `@max_rows` of the determining permits: a write may change at most
        /// this many rows.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_rows: Option<RowLimit>,
    },
    /// Hold the command until `approvals` members of `reviewers` approve. `policies` are the
    /// permits that asked for approval. Serialized as `"approval_required"`, like
    /// [`Decision::outcome`].
    #[serde(rename = "approval_required")]
    RequireApproval {
        policies: Vec<String>,
        reviewers: Vec<String>,
        approvals: u32,
        masks: Vec<String>,
        /// As for [`Decision::Allow`], over every permit that matched.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_rows: Option<RowLimit>,
    },
    /// Refuse the command; `reason` and `hint` go to the agent and the audit.
    Deny {
        code: DenyCode,
        policies: Vec<String>,
        reason: String,
        hint: String,
    },
}

/// A bound on the rows one write may change, and the permit that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowLimit {
    pub max: u64,
    pub policy: String,
}

/// Why a command was denied. Serialized as its [`DenyCode::code`], so the audit, the API and
/// the agent all see the same string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DenyCode {
    /// A forbid policy matched.
    #[serde(rename = "policy_forbid")]
    Forbidden,
    /// No permit matched (default deny).
    #[serde(rename = "policy_default_deny")]
    NoPermit,
    /// A policy failed to evaluate; the engine fails closed.
    #[serde(rename = "policy_error")]
    PolicyError,
    /// The action is not a concrete action of the schema.
    #[serde(rename = "action_unknown")]
    UnknownAction,
    /// The facts handed in do not fit the schema's context.
    #[serde(rename = "context_invalid")]
    ContextInvalid,
}

impl DenyCode {
    /// The stable reason code for the audit and error responses.
    pub fn code(self) -> &'static str {
        match self {
            DenyCode::Forbidden => "policy_forbid",
            DenyCode::NoPermit => "policy_default_deny",
            DenyCode::PolicyError => "policy_error",
            DenyCode::UnknownAction => "action_unknown",
            DenyCode::ContextInvalid => "context_invalid",
        }
    }
}

impl Decision {
    /// `"allow"`, `"approval_required"` or `"deny"`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::RequireApproval { .. } => "approval_required",
            Decision::Deny { .. } => "deny",
        }
    }

    /// The policies that determined the outcome.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies, .. }
            | Decision::RequireApproval { policies, .. }
            | Decision::Deny { policies, .. } => policies,
        }
    }

    /// The row limit an allowed (or held) command runs under.
    pub fn max_rows(&self) -> Option<&RowLimit> {
        match self {
            Decision::Allow { max_rows, .. } | Decision::RequireApproval { max_rows, .. } => {
                max_rows.as_ref()
            }
            Decision::Deny { .. } => None,
        }
    }

    /// A denial that names no policy.
    pub(crate) fn deny(code: DenyCode, reason: String, hint: String) -> Self {
        Decision::Deny {
            code,
            policies: Vec::new(),
            reason,
            hint,
        }
    }
}
