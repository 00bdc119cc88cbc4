//! The `portcullis` binary: wires the crates together and nothing more. Each verb lives in
//! its own module; start-up errors are `anyhow`, everything below is typed.

mod approvals;
mod audit_cmd;
mod cli;
mod config_cmd;
mod output;
mod policy_cmd;
mod reviews_cmd;
mod runtime;
mod serve;
mod sessions_cmd;
mod token_cmd;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_providers();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match &cli.command {
        Command::Serve => serve::run(g).await,
        Command::Config(c) => config_cmd::run(g, c).await,
        Command::Policy(c) => policy_cmd::run(g, c).await,
        Command::Token(c) => token_cmd::run(g, c).await,
        Command::Audit(c) => audit_cmd::run(g, c).await,
        Command::Whoami(c) => token_cmd::whoami(g, c).await,
        Command::Reviews(c) => reviews_cmd::run(g, c).await,
        Command::Sessions(c) => sessions_cmd::run(g, c).await,
    }
}

/// One crypto library for the whole process: aws-lc-rs, for rustls and for JWT signatures.
/// Installing both explicitly means no dependency can pick another provider first.
fn install_crypto_providers() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Logs go to stderr (stdout is for command output); `PORTCULLIS_LOG` sets the filter.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,portcullis=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
