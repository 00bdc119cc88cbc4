//! Sessions as the audit trail tells them (`portcullis sessions`, `GET /v1/sessions`): one
//! pass over the events of a period joins each session's `session.open`, its decisions and
//! results, its reviews and its `session.close` (or `session.interrupted` after a crash)
//! into a summary; a session a limit refused (`session.refused`) is listed as one that
//! started and ended at once, `ended` being the reason code. Memory grows with the number of
//! sessions in the period, not of events.

use std::collections::{BTreeMap, HashMap};

use portcullis_store::Store;
use serde::Serialize;
use serde_json::Value;

use crate::error::AuditError;

const PAGE: i64 = 1000;

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// The principal's subject.
    pub principal: Option<String>,
    pub connection: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only this session.
    pub session_id: Option<String>,
}

/// What the audit says about one session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub protocol: String,
    pub connection: String,
    /// Who: subject, issuer, client id, groups, token id, as in the audit events.
    pub who: Value,
    pub source_ip: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// How it ended (`client_terminate`, `shutdown`, `interrupted`, `idle_timeout`, ...; for a
    /// refused session, the reason code such as `session_limit_principal`); `None`: still open.
    pub ended: Option<String>,
    pub duration_ms: Option<i64>,
    /// Commands decided in the session, by outcome (`allow`, `deny`, `approval_required`).
    pub decisions: BTreeMap<String, u64>,
    /// Statements that ran, and the rows they returned or changed.
    pub results: u64,
    pub rows: u64,
    /// Masked values by entity type.
    pub masked: BTreeMap<String, u64>,
    /// Review ids, with their last known status.
    pub reviews: BTreeMap<String, String>,
    /// The recording as the closing event vouches for it: file, sha256, bytes, entries.
    pub recording: Option<Value>,
}

/// The sessions that opened in the filter's period (and match it), oldest first.
pub async fn sessions(
    store: &dyn Store,
    filter: &SessionFilter,
) -> Result<Vec<SessionSummary>, AuditError> {
    let mut by_id: HashMap<String, SessionSummary> = HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .audit_between(filter.since_ms, filter.until_ms, after, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.node.clone(), last.seq));
        for row in &page {
            let Ok(record) = serde_json::from_str::<Value>(&row.body) else {
                continue;
            };
            fold(&mut by_id, &record["event"], row.ts_ms, filter);
        }
    }
    let mut out: Vec<SessionSummary> = by_id
        .into_values()
        .filter(|s| s.started_ms > 0)
        .filter(|s| keep(s, filter))
        .collect();
    out.sort_by(|a, b| (a.started_ms, &a.session_id).cmp(&(b.started_ms, &b.session_id)));
    Ok(out)
}

/// One session by id (the whole trail is read: a session may be old).
pub async fn session(store: &dyn Store, id: &str) -> Result<Option<SessionSummary>, AuditError> {
    let filter = SessionFilter {
        session_id: Some(id.to_owned()),
        ..SessionFilter::default()
    };
    Ok(sessions(store, &filter).await?.into_iter().next())
}

fn keep(s: &SessionSummary, f: &SessionFilter) -> bool {
    f.principal
        .as_ref()
        .is_none_or(|p| s.who["subject"] == p.as_str())
        && f.connection.as_ref().is_none_or(|c| &s.connection == c)
}

fn opened(s: &mut SessionSummary, e: &Value, ts_ms: i64) {
    s.started_ms = ts_ms;
    s.protocol = text(&e["protocol"]).unwrap_or_default();
    s.connection = text(&e["connection"]).unwrap_or_default();
    s.who = e["who"].clone();
    s.source_ip = text(&e["source_ip"]);
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Adds one event to its session's summary.
fn fold(by_id: &mut HashMap<String, SessionSummary>, e: &Value, ts_ms: i64, f: &SessionFilter) {
    let Some(id) = e["session_id"].as_str() else {
        return;
    };
    if f.session_id.as_deref().is_some_and(|want| want != id) {
        return;
    }
    let s = by_id
        .entry(id.to_owned())
        .or_insert_with(|| SessionSummary {
            session_id: id.to_owned(),
            ..SessionSummary::default()
        });
    let data = &e["data"];
    match e["kind"].as_str().unwrap_or_default() {
        "session.open" => opened(s, e, ts_ms),
        "session.refused" => {
            opened(s, e, ts_ms);
            s.ended_ms = Some(ts_ms);
            s.ended = text(&e["reason_code"]).or_else(|| Some("refused".into()));
            s.duration_ms = Some(0);
        }
        "session.close" | "session.interrupted" => {
            s.ended_ms = Some(ts_ms);
            s.ended = text(&data["ended"]).or_else(|| Some("interrupted".into()));
            s.duration_ms = data["duration_ms"].as_i64().or(Some(ts_ms - s.started_ms));
            if !data["recording"].is_null() {
                s.recording = Some(data["recording"].clone());
            }
        }
        // Commands only: the session's own `connect` and `data.unmask` are not commands.
        "decision" if !matches!(e["action"].as_str(), Some("connect" | "data.unmask")) => {
            let outcome = text(&e["outcome"]).unwrap_or_default();
            *s.decisions.entry(outcome).or_default() += 1;
        }
        "statement.result" => {
            s.results += 1;
            s.rows += data["rows"].as_u64().unwrap_or(0);
            if let Some(m) = data["masked"].as_object() {
                for (entity, n) in m {
                    *s.masked.entry(entity.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
        k if k.starts_with("review.") => {
            if let (Some(rid), Some(status)) = (data["review_id"].as_str(), e["outcome"].as_str()) {
                s.reviews.insert(rid.to_owned(), status.to_owned());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_refused_session_is_listed_as_started_and_ended_with_its_reason() {
        let mut by_id = HashMap::new();
        let f = SessionFilter::default();
        let who = json!({ "subject": "agent-7", "issuer": "https://idp" });
        let connect = json!({ "kind": "decision", "action": "connect", "outcome": "allow",
            "session_id": "s-1", "who": who });
        let refused = json!({ "kind": "session.refused", "outcome": "deny", "session_id": "s-1",
            "who": who, "connection": "appdb", "protocol": "postgres",
            "reason_code": "session_limit_principal", "detail": "53300: too many sessions" });
        fold(&mut by_id, &connect, 1000, &f);
        fold(&mut by_id, &refused, 1001, &f);
        let s = &by_id["s-1"];
        assert_eq!(
            (s.started_ms, s.ended_ms, s.duration_ms),
            (1001, Some(1001), Some(0))
        );
        assert_eq!(s.ended.as_deref(), Some("session_limit_principal"));
        assert_eq!((s.connection.as_str(), &s.who), ("appdb", &who));
        assert!(s.decisions.is_empty(), "connect is not a command");
    }
}
