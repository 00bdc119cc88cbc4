//! `portcullis audit verify|export|pubkey`. These read the store directly, so they work
//! offline, with or without a running gateway.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use portcullis_audit::{PublicKey, SigningKey, VerifyReport};

use crate::cli::{AuditCmd, ExportFormat, Global, ReportArgs, ReportFormat, VerifyArgs};
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
        AuditCmd::Report(a) => report(&cfg, a).await,
        AuditCmd::Export(a) => {
            let since = a.since.as_deref().map(parse_time).transpose()?;
            let until = a.until.as_deref().map(parse_time).transpose()?;
            let store = runtime::audit_store(&cfg).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let n = match a.format {
                ExportFormat::Jsonl => {
                    portcullis_audit::export_jsonl(store.as_ref(), since, until, &mut out).await?
                }
                ExportFormat::Ocsf => {
                    portcullis_audit::export_ocsf(store.as_ref(), since, until, &mut out).await?
                }
            };
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
    let store = runtime::audit_store(cfg).await?;
    let report = portcullis_audit::verify(store.as_ref(), pubkey.as_ref()).await?;
    let recordings = verify_recordings(store.as_ref(), &cfg.recording.dir).await?;
    let ok = report.ok && recordings.iter().all(|r| r.ok);
    let out = serde_json::json!({ "ok": ok, "chain": report, "recordings": recordings });
    emit(g, &out, |_| {
        let mut text = render(&report);
        let bad: Vec<&RecordingCheck> = recordings.iter().filter(|r| !r.ok).collect();
        if bad.is_empty() {
            text.push_str(&format!(
                "\n{} session recordings match their audited hashes",
                recordings.len()
            ));
        }
        for r in bad {
            text.push_str(&format!(
                "\nrecording of session {} FAILED: {}",
                r.session_id, r.problem
            ));
        }
        text
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `audit report`: the evidence for a period, with the chain verified as it is now.
async fn report(cfg: &portcullis_config::Config, a: &ReportArgs) -> anyhow::Result<ExitCode> {
    let since = parse_time(a.since.as_deref().unwrap_or("30d"))?;
    let until = match a.until.as_deref() {
        Some(t) => parse_time(t)?,
        None => parse_time("0s")?.saturating_add(1),
    };
    let store = runtime::audit_store(cfg).await?;
    let verified = portcullis_audit::verify(store.as_ref(), None).await?;
    let report = portcullis_audit::build_report(store.as_ref(), since, until, verified).await?;
    let text = match a.format {
        ReportFormat::Html => report.to_html(),
        ReportFormat::Md => report.to_markdown(),
    };
    match &a.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One recording checked against the hash its closing audit event vouches for.
#[derive(Debug, serde::Serialize)]
struct RecordingCheck {
    session_id: String,
    ok: bool,
    problem: String,
}

/// Every recording the audit vouches for (`session.close`, `session.interrupted`) must
/// still have the audited SHA-256: a recording changed after the fact is reported.
async fn verify_recordings(
    store: &dyn portcullis_store::Store,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<RecordingCheck>> {
    let mut checks = Vec::new();
    let mut after = None;
    loop {
        let page = store.audit_between(None, None, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.node.clone(), last.seq));
        for row in page
            .iter()
            .filter(|r| r.kind == "session.close" || r.kind == "session.interrupted")
        {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&row.body) else {
                continue;
            };
            let e = &record["event"];
            let (Some(id), Some(want)) = (
                e["session_id"].as_str(),
                e["data"]["recording"]["sha256"].as_str(),
            ) else {
                continue;
            };
            let got = match portcullis_recording::find_recording(dir, id) {
                Ok(Some(p)) => portcullis_recording::sha256_file(&p).map_err(|e| e.to_string()),
                Ok(None) => Err("the file is missing".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            let (ok, problem) = match got {
                Ok(h) if h == want => (true, String::new()),
                Ok(_) => (
                    false,
                    "its SHA-256 differs from the audited one: it was changed".into(),
                ),
                Err(e) => (false, format!("cannot read it: {e}")),
            };
            checks.push(RecordingCheck {
                session_id: id.to_owned(),
                ok,
                problem,
            });
        }
    }
    Ok(checks)
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
pub(crate) fn parse_time(s: &str) -> anyhow::Result<i64> {
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
