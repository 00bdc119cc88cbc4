//! The enforcement pipeline every door shares (DESIGN.md §2): authenticate, decide, audit.
//!
//! Doors (protocol adapters, the API) classify their input and call [`Pipeline`]; they never
//! evaluate policy themselves. Each call that reaches a decision leaves exactly one audit
//! event, and an audit write that fails refuses the request (fail closed).

mod exec;
mod masking;
mod metrics;
mod refusal;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use portcullis_audit::{Auditor, Event, Who};
use portcullis_identity::{Principal, Rejection, Validator};
use portcullis_policy::{Decision, PolicyEngine, Request, SessionMemo, Target};

pub use exec::{
    BodyEncoding, Described, DescribedColumn, DescribedTable, ExecDoor, ExecOutcome, ExecRefusal,
    ExecRequest, Output, ToolCall, ToolSpec,
};
pub use masking::{Maskers, MaskingSettings};
pub use metrics::Metrics;
pub use refusal::{AUDIT_HINT, Code, Refusal};
pub use session::{Engine, EngineSettings};

/// Where a request came from, for the audit and for policy context.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: Option<IpAddr>,
    /// `api`, `postgres`, `mysql`, `http`, `kubernetes`, `ssh`, `mcp`, ...
    pub protocol: &'static str,
    pub session_id: Option<String>,
    /// The agent run and tool call this request serves, when the agent said (exec API, MCP):
    /// carried into every audit event of the request.
    pub run_id: Option<String>,
    pub tool_call_id: Option<String>,
    /// Set by a caller that answers with the audit ids of what it caused (the exec API):
    /// every audited decision taken for this origin is noted here.
    pub receipts: Option<Receipts>,
}

impl Origin {
    /// The origin of a new session of `protocol` from `peer`, with a fresh session id (a
    /// UUIDv7, so ids sort by time).
    pub fn session(protocol: &'static str, peer: std::net::SocketAddr) -> Self {
        Self {
            source_ip: Some(peer.ip().to_canonical()),
            protocol,
            session_id: Some(uuid::Uuid::now_v7().to_string()),
            ..Self::default()
        }
    }
}

/// What the sessions of one request did, for a caller inside the gateway that answers with
/// it (the exec API): the audit receipts of their decisions in order, the last refusal a
/// door told its client, and the last hold, as typed values.
#[derive(Debug, Clone, Default)]
pub struct Receipts(Arc<std::sync::Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    receipts: Vec<Receipt>,
    refusal: Option<Refusal>,
    held: Option<session::Held>,
}

/// One audited decision: its audit seq, what was asked and the outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    pub seq: i64,
    pub action: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Asked about a command (a statement), not about the session around it (`connect`,
    /// `data.unmask`).
    #[serde(skip)]
    pub command: bool,
}

impl Receipts {
    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, r: Receipt) {
        self.noted().receipts.push(r);
    }

    /// Notes a refusal a door told its client.
    pub fn refused(&self, r: &Refusal) {
        self.noted().refusal = Some(r.clone());
    }

    /// Notes a hold a door told its client about.
    pub fn held(&self, h: &session::Held) {
        self.noted().held = Some(h.clone());
    }

    /// The receipts noted so far (the list is emptied).
    pub fn take(&self) -> Vec<Receipt> {
        std::mem::take(&mut self.noted().receipts)
    }

    /// The last refusal noted (taken).
    pub fn take_refusal(&self) -> Option<Refusal> {
        self.noted().refusal.take()
    }

    /// The last hold noted (taken).
    pub fn take_held(&self) -> Option<session::Held> {
        self.noted().held.take()
    }
}

/// What a door asks the policy about.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub action: &'a str,
    pub target: Target<'a>,
    /// Classifier facts for the action family, e.g. `{"sql": {"has_where": false}}`.
    pub facts: &'a serde_json::Value,
    /// The command as the agent sent it, for the audit (already free of secrets).
    pub command: Option<&'a str>,
}

/// A decision and the audit seq of the event that recorded it.
#[derive(Debug, Clone)]
pub struct Decided {
    pub decision: Decision,
    pub seq: i64,
}

/// The shared enforcement point. Cheap to share behind an `Arc`; policies swap atomically.
pub struct Pipeline {
    validator: Validator,
    policy: ArcSwap<PolicyEngine>,
    auditor: Auditor,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(validator: Validator, policy: PolicyEngine, auditor: Auditor) -> Self {
        Self {
            validator,
            policy: ArcSwap::from_pointee(policy),
            auditor,
            metrics: Arc::new(Metrics::new()),
        }
    }

    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The policies in force now.
    pub fn policy(&self) -> Arc<PolicyEngine> {
        self.policy.load_full()
    }

    /// The [`PolicyEngine::id`] of the policies in force now.
    pub fn policy_id(&self) -> u64 {
        self.policy.load().id()
    }

    /// Replaces the policies for every request that starts after this call.
    pub fn swap_policy(&self, engine: PolicyEngine) {
        self.policy.store(Arc::new(engine));
    }

    /// Validates a bearer token. A rejection is audited before it is returned.
    pub async fn authenticate(
        &self,
        token: &str,
        origin: &Origin,
    ) -> Result<Arc<Principal>, Refusal> {
        match self.validator.validate(token).await {
            Ok(p) => {
                self.metrics.token("ok", "valid");
                Ok(p)
            }
            Err(rej) => {
                self.metrics.token("rejected", rej.reason.code());
                let event = Event {
                    kind: "token.rejected".into(),
                    outcome: Some("deny".into()),
                    source_ip: origin.source_ip.map(|i| i.to_string()),
                    protocol: Some(origin.protocol.into()),
                    session_id: origin.session_id.clone(),
                    run_id: origin.run_id.clone(),
                    tool_call_id: origin.tool_call_id.clone(),
                    reason_code: Some(rej.reason.code().into()),
                    detail: Some(rej.detail.clone()),
                    data: rejection_data(&rej),
                    ..Event::default()
                };
                self.record(event).await?;
                Err(Refusal::token(&rej))
            }
        }
    }

    /// Asks the policy once and audits the decision. The decision is only returned once the
    /// audit event is durable; if it cannot be written the request is refused.
    pub async fn decide(
        &self,
        principal: &Principal,
        ask: &Ask<'_>,
        origin: &Origin,
    ) -> Result<Decision, Refusal> {
        self.decide_audited(principal, ask, origin)
            .await
            .map(|d| d.decision)
    }

    /// [`Pipeline::decide`], also returning the audit seq of the decision event, which a
    /// door quotes in the `statement.result` event it writes once the command has run.
    pub async fn decide_audited(
        &self,
        principal: &Principal,
        ask: &Ask<'_>,
        origin: &Origin,
    ) -> Result<Decided, Refusal> {
        let decision = self.preview(principal, ask, origin);
        self.audit_decision(principal, ask, origin, decision).await
    }

    /// [`Pipeline::decide_audited`] for a session, with the session's own memo of decisions
    /// (see [`SessionMemo`]): the same answer, without hashing the principal per command.
    pub async fn decide_audited_in(
        &self,
        memo: &std::sync::Mutex<SessionMemo>,
        principal: &Principal,
        ask: &Ask<'_>,
        origin: &Origin,
    ) -> Result<Decided, Refusal> {
        let decision = {
            let mut memo = memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.policy
                .load()
                .decide_in(&mut memo, &self.request(principal, ask, origin))
        };
        self.audit_decision(principal, ask, origin, decision).await
    }

    /// Audits `decision` (durably) and returns it with its event's seq.
    async fn audit_decision(
        &self,
        principal: &Principal,
        ask: &Ask<'_>,
        origin: &Origin,
        decision: Decision,
    ) -> Result<Decided, Refusal> {
        self.metrics.decision(decision.outcome());
        let (reason_code, detail) = match &decision {
            Decision::Deny { code, reason, .. } => (Some(code.code().into()), Some(reason.clone())),
            _ => (None, None),
        };
        let event = Event {
            kind: "decision".into(),
            outcome: Some(decision.outcome().into()),
            who: Some(Who::from(principal)),
            source_ip: origin.source_ip.map(|i| i.to_string()),
            connection: connection_name(&ask.target),
            protocol: Some(origin.protocol.into()),
            session_id: origin.session_id.clone(),
            run_id: origin.run_id.clone(),
            tool_call_id: origin.tool_call_id.clone(),
            action: Some(ask.action.into()),
            command: ask.command.map(str::to_string),
            policies: decision.policies().to_vec(),
            reason_code,
            detail,
            data: None,
        };
        let seq = self.record_receipt(event).await?;
        if let Some(receipts) = &origin.receipts {
            receipts.push(Receipt {
                seq,
                action: ask.action.into(),
                outcome: decision.outcome().into(),
                policies: decision.policies().to_vec(),
                command: ask.command.is_some(),
            });
        }
        Ok(Decided { decision, seq })
    }

    /// What the policy would decide, without auditing it: for showing a principal what it may
    /// use (the tables `describe` lists). A preview grants nothing; the request itself is
    /// decided, and audited, when it is made.
    pub fn preview(&self, principal: &Principal, ask: &Ask<'_>, origin: &Origin) -> Decision {
        self.policy
            .load()
            .decide(&self.request(principal, ask, origin))
    }

    fn request<'a>(&self, principal: &'a Principal, ask: &Ask<'a>, origin: &Origin) -> Request<'a> {
        Request {
            principal,
            action: ask.action,
            target: ask.target,
            facts: ask.facts,
            now_unix: now_unix(),
            source_ip: origin.source_ip,
        }
    }

    /// Writes an event, mapping a failure to a refusal (fail closed).
    pub async fn record(&self, event: Event) -> Result<(), Refusal> {
        self.record_receipt(event).await.map(drop)
    }

    /// Queues an event about something that already happened (a statement's result): it is
    /// not waited for, since nothing is left to refuse. A failure is counted and logged.
    pub async fn record_after(&self, event: Event) {
        match self.auditor.submit(event).await {
            Ok(()) => self.metrics.audit_ok(),
            Err(e) => {
                self.metrics.audit_failed();
                tracing::error!(error = %e, "audit queue unavailable; a result event is lost");
            }
        }
    }

    async fn record_receipt(&self, event: Event) -> Result<i64, Refusal> {
        match self.auditor.record(event).await {
            Ok(receipt) => {
                self.metrics.audit_ok();
                Ok(receipt.seq)
            }
            Err(e) => {
                self.metrics.audit_failed();
                tracing::error!(error = %e, "audit write failed; refusing the request");
                Err(Refusal::audit_unavailable())
            }
        }
    }
}

fn connection_name(t: &Target<'_>) -> Option<String> {
    match t {
        Target::Connection(c) => Some(c.name.clone()),
        Target::Gateway => None,
    }
}

fn rejection_data(rej: &Rejection) -> Option<serde_json::Value> {
    if rej.issuer.is_none() && rej.subject.is_none() {
        return None;
    }
    Some(serde_json::json!({ "issuer": rej.issuer, "subject": rej.subject }))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
