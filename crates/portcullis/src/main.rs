//! The `portcullis` binary: wires the crates together and nothing more. Each verb lives in
//! its own module; start-up errors are `anyhow`, everything below is typed.

mod approvals;
mod audit_cmd;
mod cli;
mod config_cmd;
mod doors;
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
        Command::Connections(c) => reviews_cmd::connections(g, c).await,
        Command::Sessions(c) => sessions_cmd::run(g, c).await,
    }
}

/// One crypto library for the whole process: aws-lc-rs, for rustls and for JWT signatures.
/// Installing both explicitly means no dependency can pick another provider first.
fn install_crypto_providers() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// The log filter when neither `PORTCULLIS_LOG` nor `RUST_LOG` is set (`cli.rs` quotes it).
const DEFAULT_LOG: &str = "warn,portcullis=info";

/// Logs go to stderr (stdout is for command output). The filter is `PORTCULLIS_LOG`, else
/// `RUST_LOG` (what Rust users reach for), else [`DEFAULT_LOG`]. No level logs a token: the
/// gateway's own events never carry one, and the libraries' debug and trace output reports
/// header counts and byte counts, not values (`token_doors.rs` checks this at `trace`).
fn init_logging() {
    let (source, directives) = log_filter(|var| std::env::var(var).ok());
    let (filter, invalid) = match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(filter) => (filter, None),
        Err(e) => (tracing_subscriber::EnvFilter::new(DEFAULT_LOG), Some(e)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // Said once logging works, rather than silently running with another filter.
    if let Some(e) = invalid {
        tracing::warn!("{source} is not a valid log filter ({e}); using `{DEFAULT_LOG}`");
    }
}

/// Which variable sets the log filter, and its directives: the first of `PORTCULLIS_LOG` and
/// `RUST_LOG` that is set and not blank, else the default.
fn log_filter(var: impl Fn(&str) -> Option<String>) -> (&'static str, String) {
    ["PORTCULLIS_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        })
        .unwrap_or(("the default", DEFAULT_LOG.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portcullis_log_wins_over_rust_log_which_wins_over_the_default() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        let both = [("PORTCULLIS_LOG", "debug"), ("RUST_LOG", "trace")];
        assert_eq!(log_filter(env(&both)), ("PORTCULLIS_LOG", "debug".into()));
        let rust = [("RUST_LOG", "portcullis_identity=trace")];
        assert_eq!(
            log_filter(env(&rust)),
            ("RUST_LOG", "portcullis_identity=trace".into())
        );
        let blank = [("PORTCULLIS_LOG", " "), ("RUST_LOG", "info")];
        assert_eq!(log_filter(env(&blank)), ("RUST_LOG", "info".into()));
        assert_eq!(log_filter(env(&[])), ("the default", DEFAULT_LOG.into()));
    }

    #[test]
    fn the_help_names_the_variables_and_the_default() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for needle in ["PORTCULLIS_LOG", "RUST_LOG", DEFAULT_LOG] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
    }
}
