//! The one pass: folds records into bounded counters, then sorts them into a [`Report`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::escape::clip;
use super::{
    COMMAND_CHARS, Commands, Connection, Count, Day, Denial, Identity, Report, ReviewDecision,
    SessionTotals,
};
use crate::utc::{Utc, day_number};
use crate::verify::VerifyReport;

/// What a decision decided, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    Held,
    Other,
}

impl Outcome {
    fn of(outcome: Option<&str>) -> Self {
        match outcome {
            Some("allow") => Self::Allowed,
            Some("deny") => Self::Denied,
            Some("approval_required") => Self::Held,
            _ => Self::Other,
        }
    }
}

/// Allowed, denied and held counts.
#[derive(Debug, Clone, Copy, Default)]
struct Three {
    allowed: u64,
    denied: u64,
    held: u64,
}

impl Three {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Allowed => self.allowed += 1,
            Outcome::Denied => self.denied += 1,
            Outcome::Held => self.held += 1,
            Outcome::Other => {}
        }
    }

    fn total(&self) -> u64 {
        self.allowed + self.denied + self.held
    }
}

struct IdentityAcc {
    subject: String,
    issuer: String,
    kind: String,
    client_id: Option<String>,
    first: i64,
    last: i64,
    events: u64,
    commands: Three,
}

struct ConnAcc {
    protocol: Option<String>,
    first: i64,
    last: i64,
    identities: BTreeSet<usize>,
    sessions: u64,
    commands: Three,
}

/// The running totals of one pass.
#[derive(Default)]
pub(super) struct Tally {
    events: u64,
    unreadable: u64,
    kinds: BTreeMap<String, u64>,
    index: HashMap<(String, String), usize>,
    identities: Vec<IdentityAcc>,
    connections: BTreeMap<String, ConnAcc>,
    commands: Commands,
    /// Requester subjects by review id, from `review.requested` events.
    requesters: HashMap<String, String>,
    reviews: Vec<ReviewDecision>,
    denials: BTreeMap<(String, String), u64>,
    masked: BTreeMap<String, u64>,
    sessions: SessionTotals,
    ended: BTreeMap<String, u64>,
    rejections: BTreeMap<String, u64>,
    days: BTreeMap<i64, Three>,
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str().filter(|s| !s.is_empty())
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, by: u64) {
    match map.get_mut(key) {
        Some(c) => *c = c.saturating_add(by),
        None => {
            map.insert(key.to_owned(), by);
        }
    }
}

impl Tally {
    /// A record whose body could not be parsed.
    pub(super) fn unreadable(&mut self) {
        self.events += 1;
        self.unreadable += 1;
    }

    /// Folds in one parsed record stored at `ts_ms`.
    pub(super) fn add(&mut self, ts_ms: i64, record: &Value) {
        let null = Value::Null;
        let e = record.get("event").unwrap_or(&null);
        let data = e.get("data").unwrap_or(&null);
        let kind = s(e, "kind").unwrap_or("(none)");
        self.events += 1;
        bump(&mut self.kinds, kind, 1);
        let who = self.identity(e, ts_ms);
        if let Some(name) = s(e, "connection") {
            self.connection(name, s(e, "protocol"), ts_ms);
        }
        match kind {
            "decision" => self.decision(e, ts_ms, who),
            "statement.result" => {
                if let Some(masked) = data.get("masked").and_then(Value::as_object) {
                    for (entity, count) in masked {
                        bump(&mut self.masked, entity, count.as_u64().unwrap_or(0));
                    }
                }
            }
            "session.open" => {
                self.sessions.opened += 1;
                if let Some(c) = s(e, "connection").and_then(|c| self.connections.get_mut(c)) {
                    c.sessions += 1;
                }
            }
            "session.close" => self.session_closed(data),
            "token.rejected" => bump(
                &mut self.rejections,
                s(e, "reason_code").unwrap_or("(none)"),
                1,
            ),
            "review.requested" => {
                let who = e.get("who").and_then(|w| s(w, "subject"));
                if let (Some(id), Some(subject)) = (s(data, "review_id"), who) {
                    self.requesters.insert(id.to_owned(), subject.to_owned());
                }
            }
            "review.approved" | "review.denied" => self.review(e, data, ts_ms),
            "review.expired" => self.commands.expired += 1,
            "review.executed" => self.commands.executed += 1,
            _ => {}
        }
    }

    /// Records the event's principal; returns its index.
    fn identity(&mut self, e: &Value, ts: i64) -> Option<usize> {
        let who = e.get("who")?;
        let subject = s(who, "subject")?;
        let issuer = s(who, "issuer").unwrap_or("");
        let kind = s(who, "kind").unwrap_or("unknown");
        let key = (subject.to_owned(), issuer.to_owned());
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.identities.len();
                self.index.insert(key, i);
                self.identities.push(IdentityAcc {
                    subject: subject.to_owned(),
                    issuer: issuer.to_owned(),
                    kind: kind.to_owned(),
                    client_id: None,
                    first: ts,
                    last: ts,
                    events: 0,
                    commands: Three::default(),
                });
                i
            }
        };
        let acc = self.identities.get_mut(i)?;
        acc.first = acc.first.min(ts);
        acc.last = acc.last.max(ts);
        acc.events += 1;
        // A principal's own kind beats the role it played in a review event.
        if matches!(kind, "machine" | "human") {
            kind.clone_into(&mut acc.kind);
        }
        if acc.client_id.is_none() {
            acc.client_id = s(who, "client_id").map(str::to_owned);
        }
        Some(i)
    }

    fn connection(&mut self, name: &str, protocol: Option<&str>, ts: i64) {
        let c = self
            .connections
            .entry(name.to_owned())
            .or_insert_with(|| ConnAcc {
                protocol: None,
                first: ts,
                last: ts,
                identities: BTreeSet::new(),
                sessions: 0,
                commands: Three::default(),
            });
        c.first = c.first.min(ts);
        c.last = c.last.max(ts);
        if c.protocol.is_none() {
            c.protocol = protocol.map(str::to_owned);
        }
    }

    fn decision(&mut self, e: &Value, ts: i64, who: Option<usize>) {
        let action = s(e, "action").unwrap_or("");
        let outcome = Outcome::of(s(e, "outcome"));
        let connection = s(e, "connection").and_then(|c| self.connections.get_mut(c));
        if let (Some(c), Some(i)) = (connection, who) {
            c.identities.insert(i);
        }
        match action {
            "data.unmask" => {
                if outcome == Outcome::Allowed {
                    self.commands.unmask_allowed += 1;
                }
                return;
            }
            "connect" => match outcome {
                Outcome::Allowed => self.commands.connects_allowed += 1,
                Outcome::Denied => self.commands.connects_denied += 1,
                _ => {}
            },
            _ => {
                match outcome {
                    Outcome::Allowed => self.commands.allowed += 1,
                    Outcome::Denied => self.commands.denied += 1,
                    Outcome::Held => self.commands.held += 1,
                    Outcome::Other => {}
                }
                if let Some(acc) = who.and_then(|i| self.identities.get_mut(i)) {
                    acc.commands.add(outcome);
                }
                if let Some(c) = s(e, "connection").and_then(|c| self.connections.get_mut(c)) {
                    c.commands.add(outcome);
                }
                if outcome != Outcome::Other {
                    self.days.entry(day_number(ts)).or_default().add(outcome);
                }
            }
        }
        if outcome == Outcome::Denied {
            self.denial(e);
        }
    }

    fn denial(&mut self, e: &Value) {
        let reason = s(e, "reason_code").unwrap_or("(none)");
        let policies: Vec<&str> = e
            .get("policies")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let policies = if policies.is_empty() {
            vec!["(none)"]
        } else {
            policies
        };
        for p in policies {
            let key = (reason.to_owned(), p.to_owned());
            *self.denials.entry(key).or_default() += 1;
        }
    }

    fn session_closed(&mut self, data: &Value) {
        let sessions = &mut self.sessions;
        sessions.closed += 1;
        sessions.statements = sessions.statements.saturating_add(n(data, "statements"));
        sessions.denied = sessions.denied.saturating_add(n(data, "denied"));
        sessions.rows = sessions.rows.saturating_add(n(data, "rows"));
        if data.get("recording").is_some_and(|r| !r.is_null()) {
            sessions.recorded += 1;
        }
        bump(&mut self.ended, s(data, "ended").unwrap_or("(unknown)"), 1);
    }

    fn review(&mut self, e: &Value, data: &Value, ts: i64) {
        let approved = s(e, "kind") == Some("review.approved");
        let status = s(e, "outcome").unwrap_or("");
        if approved && status == "approved" {
            self.commands.approved += 1;
        }
        if !approved {
            self.commands.rejected += 1;
        }
        let review_id = s(data, "review_id").unwrap_or("").to_owned();
        let reviewer = e.get("who").and_then(|w| s(w, "subject")).unwrap_or("");
        self.reviews.push(ReviewDecision {
            time_ms: ts,
            requester: self.requesters.get(&review_id).cloned(),
            review_id,
            verdict: if approved { "approved" } else { "denied" }.to_owned(),
            status: status.to_owned(),
            approvals: data.get("approvals").and_then(Value::as_u64),
            approvals_needed: data.get("approvals_needed").and_then(Value::as_u64),
            reviewer: reviewer.to_owned(),
            action: s(e, "action").unwrap_or("").to_owned(),
            connection: s(e, "connection").unwrap_or("").to_owned(),
            command: clip(s(e, "command").unwrap_or(""), COMMAND_CHARS),
            comment: s(data, "comment").map(str::to_owned),
        });
    }

    /// Sorts everything into the report.
    pub(super) fn finish(
        self,
        since_ms: i64,
        until_ms: i64,
        generated_ms: i64,
        verify: VerifyReport,
    ) -> Report {
        let mut identities: Vec<Identity> = self.identities.into_iter().map(identity).collect();
        identities.sort_by(|a, b| (&a.subject, &a.issuer).cmp(&(&b.subject, &b.issuer)));
        let mut reviews = self.reviews;
        reviews.sort_by_key(|r| r.time_ms);
        let mut denials: Vec<Denial> = self
            .denials
            .into_iter()
            .map(|((reason_code, policy), count)| Denial {
                reason_code,
                policy,
                count,
            })
            .collect();
        denials.sort_by_key(|d| std::cmp::Reverse(d.count));
        let mut sessions = self.sessions;
        sessions.ended = by_count(self.ended);
        Report {
            since_ms,
            until_ms,
            generated_ms,
            events: self.events,
            unreadable: self.unreadable,
            kinds: by_count(self.kinds),
            identities,
            connections: self.connections.into_iter().map(connection).collect(),
            commands: self.commands,
            reviews,
            denials,
            masked: by_count(self.masked),
            sessions,
            token_rejections: by_count(self.rejections),
            days: self
                .days
                .into_iter()
                .map(|(day, t)| Day {
                    date: Utc::from_ms(crate::utc::day_start_ms(day)).date(),
                    day,
                    allowed: t.allowed,
                    denied: t.denied,
                    held: t.held,
                })
                .collect(),
            verify,
        }
    }
}

fn identity(a: IdentityAcc) -> Identity {
    Identity {
        subject: a.subject,
        issuer: a.issuer,
        kind: a.kind,
        client_id: a.client_id,
        first_seen_ms: a.first,
        last_seen_ms: a.last,
        events: a.events,
        commands: a.commands.total(),
        denied: a.commands.denied,
        held: a.commands.held,
    }
}

fn connection((name, c): (String, ConnAcc)) -> Connection {
    Connection {
        name,
        protocol: c.protocol,
        first_seen_ms: c.first,
        last_seen_ms: c.last,
        identities: c.identities.len() as u64,
        sessions: c.sessions,
        commands: c.commands.total(),
        denied: c.commands.denied,
        held: c.commands.held,
    }
}

/// Most frequent first; ties in key order (the map's order, kept by the stable sort).
fn by_count(map: BTreeMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.count));
    v
}
