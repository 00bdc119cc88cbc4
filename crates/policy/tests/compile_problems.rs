//! Compile-problem tests: policy files that must not load, and the problems (file, line,
//! message) that `config check` must show for them. Cases live in `tests/compile/*.toml`.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use std::path::PathBuf;

use portcullis_policy::{PolicyEngine, PolicySource, Problem};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    files: Vec<File>,
    problems: Vec<Expected>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    source: String,
    /// Absent: any line, or none.
    line: Option<usize>,
    contains: String,
}

/// Compiles one case and returns what differs from its expected problems.
fn check(case: &Case) -> Vec<String> {
    let sources: Vec<PolicySource> = case
        .files
        .iter()
        .map(|f| PolicySource {
            name: f.name.clone(),
            text: f.text.clone(),
        })
        .collect();
    let problems: Vec<Problem> = match PolicyEngine::compile(&sources) {
        Ok(engine) => return vec![format!("compiled {} policies, want problems", engine.len())],
        Err(problems) => problems,
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    if problems.len() != case.problems.len() {
        return vec![format!(
            "want {} problems, got:\n    {}",
            case.problems.len(),
            shown.join("\n    ")
        )];
    }
    let mut diffs = Vec::new();
    for (want, got) in case.problems.iter().zip(&problems) {
        let line_ok = want.line.is_none_or(|l| got.line == Some(l));
        if got.source != want.source || !line_ok || !got.message.contains(&want.contains) {
            diffs.push(format!(
                "want {}:{:?} containing {:?}, got {got}",
                want.source, want.line, want.contains
            ));
        }
        if got.line.is_some() != got.column.is_some() {
            diffs.push(format!(
                "line without column or column without line: {got:?}"
            ));
        }
    }
    diffs
}

#[test]
fn compile_problems() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compile");
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/compile") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read case file");
        let file: CaseFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in &file.cases {
            failures.extend(
                check(case)
                    .into_iter()
                    .map(|d| format!("{}: {d}", case.name)),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn problems_display_file_line_column() {
    let sources = [PolicySource {
        name: "p.cedar".into(),
        text: "permit (principal, action == Action::\"nope\", resource);".into(),
    }];
    let problems = PolicyEngine::compile(&sources).expect_err("must not compile");
    assert!(
        problems[0].to_string().starts_with("p.cedar:1:"),
        "{}",
        problems[0]
    );
}

#[test]
fn empty_and_valid_sources_compile() {
    let engine = PolicyEngine::compile(&[]).expect("no policies is fine");
    assert!(engine.is_empty());
    let sources = [PolicySource {
        name: "p.cedar".into(),
        text: "permit (principal, action == Action::\"connect\", resource);\n\
               @id(\"named\") forbid (principal, action == Action::\"ssh.shell\", resource);"
            .into(),
    }];
    let engine = PolicyEngine::compile(&sources).expect("compiles");
    assert_eq!(engine.policy_ids(), ["p.cedar:0", "named"]);
    assert_eq!(engine.len(), 2);
    assert!(engine.is_known_action("sql.delete"));
    assert!(engine.is_known_action("admin.revoke"));
    assert!(
        !engine.is_known_action("sql.write"),
        "action groups are not request actions"
    );
    assert!(!engine.is_known_action("sql.nope"));
}

#[test]
fn engine_is_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<PolicyEngine>();
}
