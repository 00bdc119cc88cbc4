//! What Portcullis reads from a policy's annotations, checked once at compile time so that
//! deciding never parses an annotation.
//!
//! - `@id("...")`: the policy's name in decisions and the audit.
//! - `@reason("...")`, `@hint("...")`: on a forbid, what the agent is told and how to proceed.
//! - `@approval("dba, security")`: on a permit, the groups whose members must approve.
//! - `@approvals("2")`: on a permit with `@approval`, how many approvals are needed.
//! - `@mask("profile, ...")`: on a permit, masking profiles applied to the answer.
//! - `@max_rows("100")`: on a permit, the most rows one statement it allows may change; the
//!   door checks the server's own count before the change can commit.

use cedar_policy::{Effect, Policy};

/// The parsed annotations of one policy.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub(crate) id: String,
    pub(crate) reason: Option<String>,
    pub(crate) hint: Option<String>,
    /// Reviewer groups; empty when the permit needs no approval.
    pub(crate) approval: Vec<String>,
    pub(crate) approvals: u32,
    pub(crate) masks: Vec<String>,
    /// From `@max_rows`: the most rows a write this permit allows may change.
    pub(crate) max_rows: Option<u64>,
}

/// Reads the annotations of `policy`, named `id`; returns every misuse found.
pub(crate) fn read(id: String, policy: &Policy) -> Result<PolicyMeta, Vec<String>> {
    let mut errors = Vec::new();
    let permit = policy.effect() == Effect::Permit;
    let mut only_on_permit = |key: &str| {
        if !permit && policy.annotation(key).is_some() {
            errors.push(format!("@{key} applies only to permit policies"));
        }
    };
    only_on_permit("approval");
    only_on_permit("approvals");
    only_on_permit("mask");
    only_on_permit("max_rows");

    let approval = list(policy, "approval", &mut errors);
    let masks = list(policy, "mask", &mut errors);
    let approvals = match policy.annotation("approvals") {
        None => 1,
        Some(_) if approval.is_empty() => {
            errors.push("@approvals needs @approval naming the reviewer groups".to_owned());
            1
        }
        Some(n) => match n.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.push(format!("@approvals must be a whole number >= 1, got {n:?}"));
                1
            }
        },
    };
    let max_rows = policy
        .annotation("max_rows")
        .and_then(|n| match n.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(format!("@max_rows must be a whole number >= 0, got {n:?}"));
                None
            }
        });
    if errors.is_empty() {
        Ok(PolicyMeta {
            id,
            reason: text(policy, "reason"),
            hint: text(policy, "hint"),
            approval,
            approvals,
            masks,
            max_rows,
        })
    } else {
        Err(errors)
    }
}

/// A comma-separated annotation as a list; an annotation that is present but names nothing
/// is an error, since it would otherwise silently ask for nothing.
fn list(policy: &Policy, key: &str, errors: &mut Vec<String>) -> Vec<String> {
    let Some(value) = policy.annotation(key) else {
        return Vec::new();
    };
    let items: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
    if items.iter().any(String::is_empty) {
        errors.push(format!(
            "@{key} must be a comma-separated list of names, got {value:?}"
        ));
        return Vec::new();
    }
    items
}

fn text(policy: &Policy, key: &str) -> Option<String> {
    policy
        .annotation(key)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
