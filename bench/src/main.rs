//! Throughput benchmarks for the pipeline's own parts. Run with `bench/run.sh`; results go in
//! BENCHMARKS.md. Each figure is set beside a baseline measured in the same run, so the
//! ratio says what Portcullis adds on top of the library doing the raw work.

mod audit;
mod keys;
mod policy;
mod tokens;

use std::time::{Duration, Instant};

/// How long each measurement runs (env `BENCH_SECS`, default 3).
pub fn budget() -> Duration {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Runs `f` repeatedly for the budget; returns operations per second.
pub fn rate(mut f: impl FnMut() -> u64) -> f64 {
    let budget = budget();
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        ops += f();
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

pub fn row(what: &str, ours: f64, base_name: &str, base: f64) {
    println!(
        "| {what} | {ours:.0}/s | {base_name}: {base:.0}/s | {:.2} |",
        ours / base
    );
}

fn main() -> anyhow::Result<()> {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    println!("| measurement | Portcullis | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    // BENCH_ONLY=audit (or tokens, policy) runs one part, e.g. under a profiler.
    let only = std::env::var("BENCH_ONLY").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if runs("tokens") {
        tokens::run()?;
    }
    if runs("policy") {
        policy::run()?;
    }
    if runs("audit") {
        audit::run()?;
    }
    Ok(())
}
