//! The session's own audit events, built here and nowhere else: `session.open` once the
//! session is admitted, `session.close` when it ends (or `session.refused` when a limit
//! turns it away after `connect`), `statement.result` per command that ran, and the denied
//! `decision` of a refusal of the door's own. Decisions are audited by the pipeline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use portcullis_audit::{Event, Who};
use portcullis_identity::Principal;
use serde_json::{Map, Value};

use super::{Ran, Session};
use crate::Origin;
use crate::refusal::Code;

/// How a session ended, as written in `session.close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientTerminate,
    ClientGone,
    UpstreamGone,
    /// The target could not be reached or refused the gateway's login.
    UpstreamError,
    Shutdown,
    /// The identity was revoked while the session was open.
    Revoked,
    /// The session's authority ended: its token's `exp` plus the issuer's leeway
    /// (`Principal::valid_until`) has passed.
    TokenExpired,
    /// A limit of the door's ended it.
    Limit(Code),
    Error,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::ClientTerminate => "client_terminate",
            Ended::ClientGone => "client_gone",
            Ended::UpstreamGone => "upstream_gone",
            Ended::UpstreamError => "upstream_error",
            Ended::Shutdown => "shutdown",
            Ended::Revoked => "revoked",
            Ended::TokenExpired => "token_expired",
            Ended::Limit(code) => code.as_str(),
            Ended::Error => "error",
        }
    }

    fn ok(self) -> bool {
        matches!(
            self,
            Ended::ClientTerminate | Ended::ClientGone | Ended::Shutdown
        )
    }
}

/// What a session did, counted as it runs (the door adds to it).
#[derive(Debug, Default)]
pub struct Tally {
    /// Commands decided.
    pub commands: AtomicU64,
    pub denied: AtomicU64,
    /// Rows (or records) the target returned or changed.
    pub rows: AtomicU64,
    pub bytes_from_client: AtomicU64,
    pub bytes_to_client: AtomicU64,
    /// The target said why it is closing (and the client has that message).
    pub upstream_fatal: AtomicBool,
}

impl Tally {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub(super) struct Closing<'a> {
    pub(super) started: Instant,
    pub(super) ended: Ended,
    pub(super) tally: &'a Tally,
    pub(super) extra: Map<String, Value>,
    /// What the client was told, never the target's own words.
    pub(super) error: Option<&'a str>,
    /// The finished recording, whose hash the audit vouches for.
    pub(super) recording: Option<&'a portcullis_recording::Finished>,
}

fn base(kind: &str, principal: &Principal, connection: &str, origin: &Origin) -> Event {
    Event {
        kind: kind.into(),
        who: Some(Who::from(principal)),
        source_ip: origin.source_ip.map(|i| i.to_string()),
        connection: Some(connection.to_owned()),
        protocol: Some(origin.protocol.into()),
        session_id: origin.session_id.clone(),
        run_id: origin.run_id.clone(),
        tool_call_id: origin.tool_call_id.clone(),
        ..Event::default()
    }
}

/// Records the door's facts, the token's `exp` and the end of the session's validity (`exp`
/// plus the issuer's leeway), both Unix seconds: an auditor can see when the session would
/// have been closed.
pub(super) fn open(
    principal: &Principal,
    connection: &str,
    origin: &Origin,
    mut data: Map<String, Value>,
) -> Event {
    data.insert("token_expires_at".into(), principal.expires_at.into());
    data.insert("valid_until".into(), principal.valid_until.into());
    Event {
        outcome: Some("ok".into()),
        data: Some(Value::Object(data)),
        ..base("session.open", principal, connection, origin)
    }
}

pub(super) fn refused(
    principal: &Principal,
    connection: &str,
    origin: &Origin,
    code: Code,
    told: String,
) -> Event {
    Event {
        outcome: Some("deny".into()),
        reason_code: Some(code.as_str().to_owned()),
        detail: Some(told),
        ..base("session.refused", principal, connection, origin)
    }
}

pub(super) fn close(
    principal: &Principal,
    connection: &str,
    origin: &Origin,
    c: &Closing<'_>,
) -> Event {
    let t = c.tally;
    let mut data = serde_json::json!({
        "ended": c.ended.as_str(),
        "duration_ms": u64::try_from(c.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "statements": Tally::get(&t.commands),
        "denied": Tally::get(&t.denied),
        "rows": Tally::get(&t.rows),
        "bytes_from_client": Tally::get(&t.bytes_from_client),
        "bytes_to_client": Tally::get(&t.bytes_to_client),
        "recording": c.recording.map(|r| serde_json::json!({
            "file": r.path.file_name().map(|f| f.to_string_lossy().into_owned()),
            "sha256": r.sha256,
            "bytes": r.bytes,
            "entries": r.entries,
        })),
    });
    if let Value::Object(m) = &mut data {
        m.extend(c.extra.clone());
    }
    // A session ended by expiry ended at this instant, not at the token's `exp`.
    if c.ended == Ended::TokenExpired {
        data["valid_until"] = principal.valid_until.into();
    }
    Event {
        outcome: Some(if c.ended.ok() { "ok" } else { "error" }.into()),
        detail: c.error.map(str::to_owned),
        data: Some(data),
        ..base("session.close", principal, connection, origin)
    }
}

/// The recording's first line: who, which connection, from where.
pub(super) fn header(
    principal: &Principal,
    connection: &str,
    origin: &Origin,
) -> portcullis_recording::Header {
    let who = serde_json::to_value(Who::from(principal)).unwrap_or_default();
    portcullis_recording::Header {
        v: 1,
        session_id: origin.session_id.clone().unwrap_or_default(),
        started_ms: portcullis_reviews::wall_clock_ms(),
        protocol: origin.protocol.to_owned(),
        connection: connection.to_owned(),
        principal: who,
        source_ip: origin.source_ip.map(|i| i.to_string()),
    }
}

pub(super) fn result(s: &Session, ran: &Ran<'_>) -> Event {
    let outcome = match (&ran.refused, &ran.error) {
        (Some(_), _) => "refused",
        (None, Some(_)) => "error",
        (None, None) => "ok",
    };
    let mut data = serde_json::json!({
        "decision_seq": ran.seq,
        "rows": ran.rows,
        "bytes": ran.bytes,
        "duration_us": u64::try_from(ran.duration.as_micros()).unwrap_or(u64::MAX),
        "masked": masked_counts(&ran.masked),
    });
    // The key the door's errors use is there, null, when nothing failed.
    if !ran.error_key.is_empty() {
        data[ran.error_key] = ran.error.clone().map_or(Value::Null, Value::String);
    }
    if let Some((_, facts)) = &ran.refused
        && let (Value::Object(m), Value::Object(f)) = (&mut data, facts)
    {
        m.extend(f.clone());
    }
    Event {
        kind: "statement.result".into(),
        outcome: Some(outcome.into()),
        reason_code: ran.refused.as_ref().map(|(c, _)| c.as_str().to_owned()),
        action: ran.action.map(str::to_owned),
        data: Some(data),
        source_ip: None,
        ..base(
            "statement.result",
            &s.principal,
            &s.connection.name,
            &s.origin,
        )
    }
}

/// A refusal of the door's own, audited as a denied decision with its reason code.
pub(super) fn gateway_refusal(s: &Session, action: &str, command: &str, code: Code) -> Event {
    Event {
        kind: "decision".into(),
        outcome: Some("deny".into()),
        action: Some(action.to_owned()),
        command: Some(command.to_owned()),
        reason_code: Some(code.as_str().to_owned()),
        ..base("decision", &s.principal, &s.connection.name, &s.origin)
    }
}

/// Masked values by entity label, e.g. `{"EMAIL": 3}`; `null` when nothing was masked.
fn masked_counts(counts: &portcullis_masking::Counts) -> Value {
    if counts.is_empty() {
        return Value::Null;
    }
    counts
        .iter()
        .map(|(e, n)| (e.as_str().to_owned(), Value::from(n)))
        .collect::<Map<_, _>>()
        .into()
}
