//! Data-driven decision tests: every `tests/cases/*.toml` file holds policies and the cases to
//! decide against them, all run through one `check()` helper.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis_identity::{Actor, Principal, PrincipalKind};
use portcullis_policy::{ConnectionInfo, Decision, PolicyEngine, PolicySource, Request, Target};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// Inline policies, compiled as `policies.cedar`...
    policies: Option<String>,
    /// ...or every `*.cedar` file of a folder, relative to the crate.
    policy_dir: Option<String>,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    principal: PrincipalSpec,
    action: String,
    /// Absent: the connection `analytics` of kind `postgres`.
    connection: Option<ConnectionSpec>,
    #[serde(default)]
    gateway: bool,
    /// Inline JSON.
    facts: Option<String>,
    #[serde(default = "default_now")]
    now: i64,
    source_ip: Option<String>,
    expect: String,
    #[serde(default)]
    expect_policies: Vec<String>,
    expect_code: Option<String>,
    expect_reviewers: Option<Vec<String>>,
    expect_approvals: Option<u32>,
    expect_masks: Option<Vec<String>>,
    /// `"N by policy"` or `"none"`: the decision's `@max_rows` bound.
    expect_max_rows: Option<String>,
    /// Substrings of the deny reason and hint.
    expect_reason: Option<String>,
    expect_hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalSpec {
    #[serde(default = "default_subject")]
    subject: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    kind: PrincipalKind,
    #[serde(default = "default_issuer")]
    issuer: String,
    client_id: Option<String>,
    token_id: Option<String>,
    #[serde(default)]
    actors: Vec<String>,
}

impl Default for PrincipalSpec {
    fn default() -> Self {
        PrincipalSpec {
            subject: default_subject(),
            groups: Vec::new(),
            kind: PrincipalKind::Machine,
            issuer: default_issuer(),
            client_id: None,
            token_id: None,
            actors: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionSpec {
    name: String,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn default_subject() -> String {
    "bot".into()
}
fn default_issuer() -> String {
    "https://idp.example".into()
}
fn default_kind() -> String {
    "postgres".into()
}
/// 2023-11-14 22:13:20 UTC, a Tuesday.
fn default_now() -> i64 {
    1_700_000_000
}

impl PrincipalSpec {
    fn principal(&self) -> Principal {
        Principal {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            groups: self.groups.clone(),
            kind: self.kind,
            delegation: self
                .actors
                .iter()
                .map(|s| Actor {
                    subject: s.clone(),
                    client_id: None,
                    issuer: None,
                })
                .collect(),
            token_id: self.token_id.clone(),
            expires_at: default_now() + 300,
            valid_until: default_now() + 300,
            issued_at: None,
        }
    }
}

/// Decides one case and returns what differs from its expectations.
fn check(engine: &PolicyEngine, case: &Case) -> Vec<String> {
    let principal = case.principal.principal();
    let connection = match &case.connection {
        Some(c) => ConnectionInfo {
            name: c.name.clone(),
            kind: c.kind.clone(),
            labels: c.labels.clone(),
        },
        None => ConnectionInfo {
            name: "analytics".into(),
            kind: default_kind(),
            labels: BTreeMap::new(),
        },
    };
    let facts: serde_json::Value = match &case.facts {
        Some(text) => serde_json::from_str(text).expect("facts must be JSON"),
        None => serde_json::Value::Null,
    };
    let request = Request {
        principal: &principal,
        action: &case.action,
        target: if case.gateway {
            Target::Gateway
        } else {
            Target::Connection(&connection)
        },
        facts: &facts,
        now_unix: case.now,
        source_ip: case
            .source_ip
            .as_ref()
            .map(|ip| ip.parse().expect("source_ip")),
    };
    compare(case, &engine.decide(&request))
}

/// What differs between a case's expectations and the decision.
fn compare(case: &Case, decision: &Decision) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut expect = |what: &str, want: String, got: String| {
        if want != got {
            diffs.push(format!("{what}: want {want}, got {got}"));
        }
    };
    expect(
        "outcome",
        case.expect.clone(),
        decision.outcome().to_owned(),
    );
    expect(
        "policies",
        format!("{:?}", case.expect_policies),
        format!("{:?}", decision.policies()),
    );
    if let Some(want) = &case.expect_max_rows {
        let got = decision.max_rows().map_or_else(
            || "none".to_owned(),
            |l| format!("{} by {}", l.max, l.policy),
        );
        expect("max_rows", want.clone(), got);
    }
    match decision {
        Decision::Allow { masks, .. } => {
            if let Some(want) = &case.expect_masks {
                expect("masks", format!("{want:?}"), format!("{masks:?}"));
            }
        }
        Decision::RequireApproval {
            reviewers,
            approvals,
            masks,
            ..
        } => {
            if let Some(want) = &case.expect_reviewers {
                expect("reviewers", format!("{want:?}"), format!("{reviewers:?}"));
            }
            if let Some(want) = case.expect_approvals {
                expect("approvals", want.to_string(), approvals.to_string());
            }
            if let Some(want) = &case.expect_masks {
                expect("masks", format!("{want:?}"), format!("{masks:?}"));
            }
        }
        Decision::Deny {
            code, reason, hint, ..
        } => {
            if let Some(want) = &case.expect_code {
                expect("code", want.clone(), code.code().to_owned());
            }
            for (what, want, got) in [
                ("reason", &case.expect_reason, reason),
                ("hint", &case.expect_hint, hint),
            ] {
                if let Some(want) = want
                    && !got.contains(want.as_str())
                {
                    diffs.push(format!("{what}: want it to contain {want:?}, got {got:?}"));
                }
            }
        }
    }
    if !diffs.is_empty() {
        diffs.push(format!(
            "decision: {}",
            serde_json::to_string(decision).unwrap_or_default()
        ));
    }
    diffs
}

fn run_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read case file");
    let file: CaseFile =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sources = match (file.policies, file.policy_dir) {
        (Some(text), None) => vec![PolicySource {
            name: "policies.cedar".into(),
            text,
        }],
        (None, Some(dir)) => policy_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)),
        _ => panic!("{}: give either policies or policy_dir", path.display()),
    };
    let engine = match PolicyEngine::compile(&sources) {
        Ok(engine) => engine,
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return vec![format!(
                "{}: policies do not compile:\n  {}",
                path.display(),
                list.join("\n  ")
            )];
        }
    };
    // Two passes: the second is answered from the engine's memo of recent decisions, which
    // must agree with the first.
    ["", " (memoized)"]
        .into_iter()
        .flat_map(|pass| {
            let engine = &engine;
            file.cases.iter().flat_map(move |case| {
                check(engine, case)
                    .into_iter()
                    .map(move |d| format!("{} / {}{pass}: {d}", path.display(), case.name))
            })
        })
        .collect::<Vec<_>>()
}

/// Every `*.cedar` file of `dir`, in name order.
fn policy_dir(dir: &Path) -> Vec<PolicySource> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| PolicySource {
            text: std::fs::read_to_string(&p).expect("read policy"),
            name: p.display().to_string(),
        })
        .collect()
}

/// The quickstart's policies must always load against the shipped schema.
#[test]
fn quickstart_policies_compile() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/policies");
    let sources = policy_dir(&dir);
    assert!(
        sources.len() >= 2,
        "expected agents.cedar and admins.cedar in {}",
        dir.display()
    );
    let engine = PolicyEngine::compile(&sources).unwrap_or_else(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        panic!("quickstart policies do not compile:\n{}", list.join("\n"))
    });
    assert!(engine.len() >= 7, "{:?}", engine.policy_ids());
}

#[test]
fn cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let failures: Vec<String> = files.iter().flat_map(|f| run_file(f)).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
