//! `portcullis policy check`: what would the policies decide, and which ones decided it.
//! Exit codes: 0 allow, 3 deny, 4 approval required.

use std::process::ExitCode;

use anyhow::{Context, bail};
use portcullis_identity::{Principal, PrincipalKind};
use portcullis_policy::{Decision, Request, Target};

use crate::cli::{Global, PolicyCheckArgs, PolicyCmd};
use crate::output::emit;
use crate::runtime;

pub async fn run(g: &Global, cmd: &PolicyCmd) -> anyhow::Result<ExitCode> {
    let PolicyCmd::Check(a) = cmd;
    let cfg = runtime::load_config(g.config.as_deref())?;
    let engine = runtime::load_policies(&cfg)
        .map_err(|ps| anyhow::anyhow!("the policies do not compile:\n{}", ps.join("\n")))?;
    let facts: serde_json::Value =
        serde_json::from_str(&a.context).context("--context is not valid JSON")?;
    let principal = principal(a);
    let conn =
        match &a.connection {
            Some(name) => Some(runtime::connection_info(&cfg, name).with_context(|| {
                format!("no connection named `{name}` in {}", cfg.path.display())
            })?),
            None if a.action.starts_with("admin") => None,
            None => bail!("--connection is required for `{}`", a.action),
        };
    let target = conn.as_ref().map_or(Target::Gateway, Target::Connection);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let decision = engine.decide(&Request {
        principal: &principal,
        action: &a.action,
        target,
        facts: &facts,
        now_unix: now,
        source_ip: a.source_ip,
    });
    emit(g, &decision, render);
    Ok(ExitCode::from(match decision {
        Decision::Allow { .. } => 0,
        Decision::Deny { .. } => 3,
        Decision::RequireApproval { .. } => 4,
    }))
}

fn principal(a: &PolicyCheckArgs) -> Principal {
    let mut groups: Vec<String> = a.groups.iter().filter(|g| !g.is_empty()).cloned().collect();
    groups.sort();
    groups.dedup();
    Principal {
        subject: a.subject.clone(),
        issuer: a.issuer.clone(),
        client_id: a.client_id.clone(),
        groups,
        kind: if a.human {
            PrincipalKind::Human
        } else {
            PrincipalKind::Machine
        },
        delegation: Vec::new(),
        token_id: None,
        expires_at: i64::MAX,
        valid_until: i64::MAX,
        issued_at: None,
    }
}

/// The `@max_rows` bound a decision carries, as a line of its own (empty without one).
fn row_limit(d: &Decision) -> String {
    d.max_rows().map_or_else(String::new, |l| {
        format!("\n  max rows changed: {} (policy {})", l.max, l.policy)
    })
}

fn render(d: &Decision) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    match d {
        Decision::Allow {
            policies, masks, ..
        } => {
            let mut s = format!("allow\n  policies: {}", list(policies));
            if !masks.is_empty() {
                s.push_str(&format!("\n  masks: {}", masks.join(", ")));
            }
            s + &row_limit(d)
        }
        Decision::RequireApproval {
            policies,
            reviewers,
            approvals,
            ..
        } => {
            format!(
                "approval required\n  policies: {}\n  reviewers: {} ({} approval(s))",
                list(policies),
                reviewers.join(", "),
                approvals
            ) + &row_limit(d)
        }
        Decision::Deny {
            code,
            policies,
            reason,
            hint,
        } => format!(
            "deny ({})\n  policies: {}\n  reason: {reason}\n  hint: {hint}",
            code.code(),
            list(policies)
        ),
    }
}
