//! `portcullis sessions list|show|replay`: recorded sessions, read offline from the state
//! store (what the audit says) and the recordings folder (what happened, masked): a
//! timeline replays as text, a terminal session (asciicast) as its output.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use portcullis_audit::{SessionFilter, SessionSummary};

use crate::audit_cmd::parse_time;
use crate::cli::{Global, SessionsCmd};
use crate::output::emit;
use crate::runtime;

pub async fn run(g: &Global, cmd: &SessionsCmd) -> anyhow::Result<ExitCode> {
    let cfg = runtime::load_config(g.config.as_deref())?;
    let store = runtime::audit_store(&cfg).await?;
    match cmd {
        SessionsCmd::List(a) => {
            let filter = SessionFilter {
                principal: a.principal.clone(),
                connection: a.connection.clone(),
                since_ms: Some(parse_time(a.since.as_deref().unwrap_or("7d"))?),
                until_ms: a.until.as_deref().map(parse_time).transpose()?,
                session_id: None,
            };
            let list = portcullis_audit::sessions(store.as_ref(), &filter).await?;
            emit(g, &list, |l| {
                if l.is_empty() {
                    return "no sessions".into();
                }
                l.iter().map(line).collect::<Vec<_>>().join("\n")
            });
            Ok(ExitCode::SUCCESS)
        }
        SessionsCmd::Show(a) => {
            let s = one(store.as_ref(), &a.id).await?;
            emit(g, &s, detail);
            Ok(ExitCode::SUCCESS)
        }
        SessionsCmd::Replay(a) => {
            if !(a.speed > 0.0 && a.speed.is_finite()) {
                bail!("--speed must be a positive number");
            }
            // Either format: a timeline (`.jsonl`) or a terminal session (`.cast`).
            let path = portcullis_recording::find_recording(&cfg.recording.dir, &a.id)
                .with_context(|| format!("cannot look up the recording of session {}", a.id))?
                .with_context(|| format!("no recording for session {}", a.id))?;
            let rec = portcullis_recording::read_any(&path)
                .with_context(|| format!("no readable recording for session {}", a.id))?;
            // A terminal session's output goes to stdout as it was shown; its input,
            // resizes and markers go to stderr, so either stream can be kept alone.
            let (mut out, mut notes) = (std::io::stdout(), std::io::stderr());
            portcullis_recording::replay_any(&rec, a.speed, a.no_wait, &mut out, &mut notes)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn one(store: &dyn portcullis_store::Store, id: &str) -> anyhow::Result<SessionSummary> {
    portcullis_audit::session(store, id)
        .await?
        .with_context(|| format!("no session {id} in the audit trail"))
}

fn ms_to_rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

fn line(s: &SessionSummary) -> String {
    format!(
        "{}  {}  {:<16} {:<12} {:<16} {} statements",
        s.session_id,
        ms_to_rfc3339(s.started_ms),
        s.who["subject"].as_str().unwrap_or("?"),
        s.connection,
        s.ended.as_deref().unwrap_or("open"),
        s.decisions.values().sum::<u64>()
    )
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn detail(s: &SessionSummary) -> String {
    let w = &s.who;
    format!(
        "session: {}\nwho: {} (issuer {}, client {}, {})\ntoken id: {}\nconnection: {} ({})\nfrom: {}\nstarted: {}\nended: {} ({})\nduration: {}\ndecisions: {}\nstatements run: {} ({} rows)\nmasked: {}\nreviews: {}\nrecording: {}",
        s.session_id,
        w["subject"].as_str().unwrap_or("?"),
        w["issuer"].as_str().unwrap_or("?"),
        w["client_id"].as_str().unwrap_or("-"),
        w["kind"].as_str().unwrap_or("?"),
        w["token_id"].as_str().unwrap_or("-"),
        s.connection,
        s.protocol,
        s.source_ip.as_deref().unwrap_or("-"),
        ms_to_rfc3339(s.started_ms),
        s.ended_ms.map_or("-".into(), ms_to_rfc3339),
        s.ended.as_deref().unwrap_or("still open"),
        s.duration_ms
            .map_or("-".into(), |d| format!("{:.3}s", d as f64 / 1000.0)),
        counts(&s.decisions),
        s.results,
        s.rows,
        counts(&s.masked),
        if s.reviews.is_empty() {
            "none".into()
        } else {
            s.reviews
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        s.recording.as_ref().map_or("-".into(), |r| format!(
            "{} (sha256 {})",
            r["file"].as_str().unwrap_or("?"),
            r["sha256"].as_str().unwrap_or("?")
        )),
    )
}
