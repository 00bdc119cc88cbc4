//! The session's own audit events: `session.open` once the connection is allowed and
//! `session.close` when it ends, or `session.refused` when a limit turns it away after the
//! `connect` decision (it never opened). Statement decisions are audited by the pipeline.

use std::time::Instant;

use portcullis_audit::{Event, Who};
use portcullis_identity::Principal;
use portcullis_pipeline::Origin;

use crate::relay::state::Stats;

/// How a session ended, as written in `session.close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    ClientTerminate,
    ClientGone,
    UpstreamGone,
    /// The server could not be reached or refused the gateway's login.
    UpstreamError,
    Shutdown,
    /// The identity was revoked while the session was open.
    Revoked,
    /// The session's authority ended: its token's `exp` plus the issuer's leeway
    /// (`Principal::valid_until`) has passed.
    TokenExpired,
    /// A limit of the door's ended it; the reason code.
    Limit(&'static str),
    Error,
}

impl Ended {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ended::ClientTerminate => "client_terminate",
            Ended::ClientGone => "client_gone",
            Ended::UpstreamGone => "upstream_gone",
            Ended::UpstreamError => "upstream_error",
            Ended::Shutdown => "shutdown",
            Ended::Revoked => "revoked",
            Ended::TokenExpired => "token_expired",
            Ended::Limit(code) => code,
            Ended::Error => "error",
        }
    }
}

/// Whose session, on which connection, from where.
pub(crate) struct Subject<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) connection: &'a str,
    pub(crate) origin: &'a Origin,
}

/// How the session ended.
pub(crate) struct Closing<'a> {
    pub(crate) started: Instant,
    pub(crate) ended: Ended,
    /// A session that ends inside a transaction block had that transaction rolled back.
    pub(crate) in_transaction: bool,
    /// What the client was told, never the server's own words.
    pub(crate) error: Option<&'a str>,
    /// The finished recording, whose hash the audit vouches for.
    pub(crate) recording: Option<&'a portcullis_recording::Finished>,
}

fn base(kind: &str, s: &Subject<'_>) -> Event {
    Event {
        kind: kind.into(),
        who: Some(Who::from(s.principal)),
        source_ip: s.origin.source_ip.map(|i| i.to_string()),
        connection: Some(s.connection.to_owned()),
        protocol: Some(s.origin.protocol.into()),
        session_id: s.origin.session_id.clone(),
        run_id: s.origin.run_id.clone(),
        tool_call_id: s.origin.tool_call_id.clone(),
        ..Event::default()
    }
}

/// Records the token's `exp` and the end of the session's validity (`exp` plus the issuer's
/// leeway), both Unix seconds: an auditor can see when the session would have been closed.
/// `read_only`: the session runs read-only in the server (its principal may not write).
pub(crate) fn open(s: &Subject<'_>, user: &str, read_only: bool) -> Event {
    Event {
        outcome: Some("ok".into()),
        data: Some(serde_json::json!({
            "client_user": user,
            "token_expires_at": s.principal.expires_at,
            "valid_until": s.principal.valid_until,
            "read_only": read_only,
        })),
        ..base("session.open", s)
    }
}

/// A session turned away by a limit after its `connect` decision: `code` is the reason code,
/// `told` what the client was told (`SQLSTATE: message`).
pub(crate) fn refused(s: &Subject<'_>, code: &str, told: String) -> Event {
    Event {
        outcome: Some("deny".into()),
        reason_code: Some(code.to_owned()),
        detail: Some(told),
        ..base("session.refused", s)
    }
}

pub(crate) fn close(s: &Subject<'_>, stats: &Stats, c: &Closing<'_>) -> Event {
    let ok = matches!(
        c.ended,
        Ended::ClientTerminate | Ended::ClientGone | Ended::Shutdown
    );
    let mut data = serde_json::json!({
        "ended": c.ended.as_str(),
        "in_transaction": c.in_transaction,
        "duration_ms": u64::try_from(c.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "statements": Stats::get(&stats.statements),
        "denied": Stats::get(&stats.denied),
        "rows": Stats::get(&stats.rows),
        "bytes_from_client": Stats::get(&stats.bytes_from_client),
        "bytes_to_client": Stats::get(&stats.bytes_to_client),
        "recording": c.recording.map(|r| serde_json::json!({
            "file": r.path.file_name().map(|f| f.to_string_lossy().into_owned()),
            "sha256": r.sha256,
            "bytes": r.bytes,
            "entries": r.entries,
        })),
    });
    // A session ended by expiry ended at this instant, not at the token's `exp`.
    if c.ended == Ended::TokenExpired {
        data["valid_until"] = s.principal.valid_until.into();
    }
    Event {
        outcome: Some(if ok { "ok" } else { "error" }.into()),
        detail: c.error.map(str::to_owned),
        data: Some(data),
        ..base("session.close", s)
    }
}

/// The recording's first line: who, which connection, from where.
pub(crate) fn header(s: &Subject<'_>) -> portcullis_recording::Header {
    let who = serde_json::to_value(Who::from(s.principal)).unwrap_or_default();
    portcullis_recording::Header {
        v: 1,
        session_id: s.origin.session_id.clone().unwrap_or_default(),
        started_ms: portcullis_reviews::wall_clock_ms(),
        protocol: s.origin.protocol.to_owned(),
        connection: s.connection.to_owned(),
        principal: who,
        source_ip: s.origin.source_ip.map(|i| i.to_string()),
    }
}
