//! `portcullis audit verify|export|pubkey`. These read the store directly, so they work
//! offline, with or without a running gateway.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use portcullis_audit::{PublicKey, SigningKey, VerifyReport};

use crate::cli::{AuditCmd, ExportFormat, Global, VerifyArgs};
use crate::output::emit;
use crate::runtime;

pub async fn run(g: &Global, cmd: &AuditCmd) -> anyhow::Result<ExitCode> {
    let cfg = runtime::load_config(g.config.as_deref())?;
    match cmd {
        AuditCmd::Pubkey => {
            let key = SigningKey::load_or_create(&cfg.server.state_dir)?;
            let pk = key.public_key().to_string();
            emit(g, &serde_json::json!({ "public_key": pk }), |_| pk.clone());
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify(a) => verify(g, &cfg, a).await,
        AuditCmd::Export(a) => {
            let ExportFormat::Jsonl = a.format;
            let since = a.since.as_deref().map(parse_time).transpose()?;
            let until = a.until.as_deref().map(parse_time).transpose()?;
            let store = portcullis_store::open(cfg.store_url()).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let n = portcullis_audit::export_jsonl(store.as_ref(), since, until, &mut out).await?;
            out.flush()?;
            tracing::debug!(events = n, "exported");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn verify(
    g: &Global,
    cfg: &portcullis_config::Config,
    a: &VerifyArgs,
) -> anyhow::Result<ExitCode> {
    let pubkey = match &a.pubkey {
        None => None,
        Some(s) => {
            let text = match s.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the public key file {path}"))?,
                None => s.clone(),
            };
            Some(PublicKey::parse(text.trim())?)
        }
    };
    let store = portcullis_store::open(cfg.store_url()).await?;
    let report = portcullis_audit::verify(store.as_ref(), pubkey.as_ref()).await?;
    emit(g, &report, render);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(r: &VerifyReport) -> String {
    let mut out = Vec::new();
    for n in &r.nodes {
        match &n.first_break {
            None => out.push(format!(
                "node {}: ok — {} events, {} signed checkpoints, last seq {}",
                n.node, n.events, n.checkpoints, n.last_seq
            )),
            Some(b) => out.push(format!(
                "node {}: BROKEN at seq {}: {}",
                n.node, b.seq, b.problem
            )),
        }
    }
    if r.nodes.is_empty() {
        out.push("no audit events yet".into());
    }
    out.push(if r.ok {
        "audit chain verified".into()
    } else {
        "audit chain verification FAILED".into()
    });
    out.join("\n")
}

/// An RFC 3339 time, or a duration meaning that long before now; as Unix milliseconds.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    let t = if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        t
    } else if let Ok(d) = humantime::parse_duration(s) {
        SystemTime::now()
            .checked_sub(d)
            .unwrap_or(UNIX_EPOCH + Duration::ZERO)
    } else {
        bail!("`{s}` is neither an RFC 3339 time (2026-11-28T10:00:00Z) nor a duration (24h)")
    };
    Ok(t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}
