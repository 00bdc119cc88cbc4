//! `portcullis config check`: every problem in the config and its policies, at once.

use std::process::ExitCode;

use portcullis_config::{Problem, Severity};
use serde::Serialize;

use crate::cli::{ConfigCmd, Global};
use crate::output::emit;
use crate::runtime;

#[derive(Serialize)]
struct Report {
    config: String,
    ok: bool,
    policies: usize,
    connections: usize,
    problems: Vec<Problem>,
}

pub async fn run(g: &Global, cmd: &ConfigCmd) -> anyhow::Result<ExitCode> {
    let ConfigCmd::Check = cmd;
    let cfg = runtime::load_config(g.config.as_deref())?;
    let mut problems = cfg.check();
    let mut policies = 0;
    match runtime::load_policies(&cfg) {
        Ok(engine) => policies = engine.len(),
        Err(ps) => problems.extend(ps.into_iter().map(|m| Problem::error("policy", m))),
    }
    let ok = !problems.iter().any(|p| p.severity == Severity::Error);
    let report = Report {
        config: cfg.path.display().to_string(),
        ok,
        policies,
        connections: cfg.connections.len(),
        problems,
    };
    emit(g, &report, |r| {
        let mut out: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
        out.push(if r.ok {
            format!(
                "{}: ok ({} policies, {} connections)",
                r.config, r.policies, r.connections
            )
        } else {
            format!("{}: {} problem(s)", r.config, r.problems.len())
        });
        out.join("\n")
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
