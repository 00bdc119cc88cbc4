//! Turning Cedar's answer into a [`Decision`]: errors fail closed, forbids carry their
//! `@reason`/`@hint`, and permits carry their approval and masking obligations.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{PolicyId, Response};

use crate::decision::{Decision, DenyCode, RowLimit};
use crate::meta::PolicyMeta;
use crate::request::Target;

/// Names the request in messages: "sql.delete on connection analytics".
pub(crate) struct Subject<'a> {
    pub(crate) action: &'a str,
    pub(crate) target: &'a Target<'a>,
}

impl Subject<'_> {
    /// The target, as messages name it; built only when a message needs it.
    pub(crate) fn target(&self) -> String {
        match self.target {
            Target::Connection(c) => format!("connection {}", c.name),
            Target::Gateway => "the gateway".to_owned(),
        }
    }
}

pub(crate) fn decide(
    response: &Response,
    meta: &HashMap<PolicyId, PolicyMeta>,
    subject: &Subject<'_>,
) -> Decision {
    let diagnostics = response.diagnostics();
    let errors: Vec<_> = diagnostics.errors().collect();
    if !errors.is_empty() {
        // Any error fails closed, even when the remaining policies allow: a broken forbid must
        // never turn into an allow.
        let mut policies: Vec<String> = errors
            .iter()
            .map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                e.policy_id().to_string()
            })
            .collect();
        policies.sort();
        policies.dedup();
        let reason = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Decision::Deny {
            code: DenyCode::PolicyError,
            policies,
            reason,
            hint: "a policy could not be evaluated, so the command was refused; \
                   ask the gateway's administrator to fix the policy"
                .to_owned(),
        };
    }
    let mut determining: Vec<&PolicyMeta> =
        diagnostics.reason().filter_map(|id| meta.get(id)).collect();
    // Cedar reports reasons from a hash set; sort so decisions and audits are reproducible.
    determining.sort_by(|a, b| a.id.cmp(&b.id));
    match response.decision() {
        cedar_policy::Decision::Deny if determining.is_empty() => no_permit(subject),
        cedar_policy::Decision::Deny => forbidden(&determining, subject),
        cedar_policy::Decision::Allow => allowed(&determining),
    }
}

pub(crate) fn no_permit(subject: &Subject<'_>) -> Decision {
    Decision::deny(
        DenyCode::NoPermit,
        format!(
            "no policy permits {} on {}",
            subject.action,
            subject.target()
        ),
        format!(
            "no permit policy covers action {} on {} for this identity; ask the gateway's \
             administrator for a policy that grants it",
            subject.action,
            subject.target()
        ),
    )
}

fn forbidden(forbids: &[&PolicyMeta], subject: &Subject<'_>) -> Decision {
    let reason = forbids
        .iter()
        .map(|m| {
            m.reason.clone().unwrap_or_else(|| {
                format!(
                    "policy {} forbids {} on {}",
                    m.id,
                    subject.action,
                    subject.target()
                )
            })
        })
        .collect::<Vec<_>>()
        .join("; ");
    let hints: BTreeSet<&str> = forbids.iter().filter_map(|m| m.hint.as_deref()).collect();
    let hint = if hints.is_empty() {
        "this command is forbidden by policy; change the command, or ask the gateway's \
         administrator if you need it"
            .to_owned()
    } else {
        hints.into_iter().collect::<Vec<_>>().join("; ")
    };
    Decision::Deny {
        code: DenyCode::Forbidden,
        policies: forbids.iter().map(|m| m.id.clone()).collect(),
        reason,
        hint,
    }
}

fn allowed(permits: &[&PolicyMeta]) -> Decision {
    let masks: Vec<String> = permits
        .iter()
        .flat_map(|m| m.masks.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Bounds add up too: the tightest one holds (ties name the first policy by id).
    let max_rows = permits
        .iter()
        .filter_map(|m| m.max_rows.map(|max| (max, &m.id)))
        .min()
        .map(|(max, id)| RowLimit {
            max,
            policy: id.clone(),
        });
    let asking: Vec<&PolicyMeta> = permits
        .iter()
        .copied()
        .filter(|m| !m.approval.is_empty())
        .collect();
    if asking.is_empty() {
        return Decision::Allow {
            policies: permits.iter().map(|m| m.id.clone()).collect(),
            masks,
            max_rows,
        };
    }
    // Obligations add up: every matching permit that asks for approval is heard.
    let reviewers: BTreeSet<String> = asking
        .iter()
        .flat_map(|m| m.approval.iter().cloned())
        .collect();
    Decision::RequireApproval {
        policies: asking.iter().map(|m| m.id.clone()).collect(),
        reviewers: reviewers.into_iter().collect(),
        approvals: asking.iter().map(|m| m.approvals).max().unwrap_or(1),
        masks,
        max_rows,
    }
}
