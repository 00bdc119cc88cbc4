//! The session engine every door runs on (DESIGN.md §2): a door parses its protocol, asks
//! its classifier, relays what the engine admits and renders the engine's refusals; the
//! engine owns the rest of a governed session.
//!
//! - [`Engine::authenticate`] and [`Engine::connect`]: the token, then the `connect`
//!   decision, before a door opens anything upstream;
//! - [`Engine::open`]: `session.open` (durable before the session runs), the recording
//!   (fail closed) and the identity it watches ([`Session::ended`]: revocation and the end of
//!   the token's validity);
//! - [`Session::decide`] per command: the decision, audited before it is acted on, the
//!   masking obligations resolved (the connection's profile, the policies' `@mask`, the
//!   principal's `data.unmask`), a review need and a row limit; [`Session::hold`] holds it
//!   for approval ([`Session::admit`] does both in one call); [`Session::refuse`] audits a
//!   refusal of the door's own (a command it cannot read as the target would);
//! - [`Session::result`]: the `statement.result` event of a command that ran;
//! - [`Session::close`]: the recording finished and `session.close` with its counts and hash.
//!
//! No door builds an audit `Event`, a `Who`, a recording or a review itself.

mod events;
mod hold;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_identity::Principal;
use portcullis_masking::{Counts, Masker};
use portcullis_policy::{ConnectionInfo, Decision, RowLimit, SessionMemo, Target};
use portcullis_recording::{Recordings, SessionRecording};
use portcullis_reviews::Reviews;
use serde_json::{Map, Value};

pub use events::{Ended, Tally};
pub use hold::{Exact, Held, HoldLine, NeedsReview, requester};

use crate::masking::{Maskers, MaskingSettings};
use crate::refusal::{Code, Refusal};
use crate::{Ask, Decided, Origin, Pipeline};

/// What the engine needs besides the pipeline.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How long a command that needs approval is held before its client is told to retry.
    pub hold: Duration,
    pub masking: MaskingSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(30),
            masking: MaskingSettings::default(),
        }
    }
}

/// The gateway-wide engine; doors share it behind an `Arc`.
pub struct Engine {
    pipeline: Arc<Pipeline>,
    settings: EngineSettings,
    maskers: Maskers,
    reviews: Option<Reviews>,
    recordings: Option<Recordings>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("reviews", &self.reviews.is_some())
            .field("recordings", &self.recordings.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(pipeline: Arc<Pipeline>, settings: EngineSettings) -> Self {
        Self {
            pipeline,
            maskers: Maskers::new(settings.masking.clone()),
            settings,
            reviews: None,
            recordings: None,
        }
    }

    /// Holds commands whose decision is RequireApproval with `reviews` (without it they
    /// are refused, `approval_required`).
    pub fn with_reviews(mut self, reviews: Reviews) -> Self {
        self.reviews = Some(reviews);
        self
    }

    /// Records every session with `recordings` (a session whose recording cannot be opened
    /// does not run).
    pub fn with_recordings(mut self, recordings: Recordings) -> Self {
        self.recordings = Some(recordings);
        self
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    pub fn maskers(&self) -> &Maskers {
        &self.maskers
    }

    pub fn hold_time(&self) -> Duration {
        self.settings.hold
    }

    pub fn holds(&self) -> bool {
        self.reviews.is_some()
    }

    pub fn records(&self) -> bool {
        self.recordings.is_some()
    }

    /// Validates a bearer token (a rejection is audited).
    pub async fn authenticate(
        &self,
        token: &str,
        origin: &Origin,
    ) -> Result<Arc<Principal>, Refusal> {
        self.pipeline.authenticate(token, origin).await
    }

    /// Decides `connect` on `connection`, before the door opens anything upstream.
    pub async fn connect(
        &self,
        principal: &Principal,
        connection: &ConnectionInfo,
        origin: &Origin,
    ) -> Result<(), Refusal> {
        let facts = Value::Null;
        let ask = Ask {
            action: "connect",
            target: Target::Connection(connection),
            facts: &facts,
            command: None,
        };
        match self.pipeline.decide(principal, &ask, origin).await? {
            Decision::Allow { .. } => Ok(()),
            decision => Err(refusal_for(
                "connect",
                &decision,
                &connection.name,
                "statement",
            )),
        }
    }

    /// A session a limit turned away after its `connect` decision: it never opened, and
    /// leaves a `session.refused` event with what the client was told (`told`).
    pub async fn refused(
        &self,
        principal: &Principal,
        connection: &str,
        origin: &Origin,
        code: Code,
        told: String,
    ) {
        let event = events::refused(principal, connection, origin, code, told);
        // Refused either way; an audit that cannot be written is in the gateway's log.
        if self.pipeline.record(event).await.is_err() {
            tracing::error!("could not audit a refused session");
        }
    }

    /// Opens an admitted session: `session.open`, durable, then the recording. A session
    /// that cannot be audited or recorded does not run (its refusal says which).
    pub async fn open(self: &Arc<Self>, o: Open) -> Result<Session, Refusal> {
        let started = Instant::now();
        let opened = events::open(&o.principal, &o.connection.name, &o.origin, o.data);
        self.pipeline.record(opened).await?;
        let recording = match &self.recordings {
            None => None,
            Some(r) => {
                let header = events::header(&o.principal, &o.connection.name, &o.origin);
                let opened = match o.recording {
                    Recording::Timeline => r.open(header).await,
                    Recording::Terminal { width, height } => {
                        r.open_terminal(terminal_header(header, width, height))
                            .await
                    }
                };
                match opened {
                    Ok(rec) => Some(rec),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot open the session recording");
                        let refusal = Refusal::new(
                            Code::RecordingUnavailable,
                            "portcullis: the session cannot be recorded, so it does not run",
                            OPERATOR_HINT,
                        );
                        let closing = events::Closing {
                            started,
                            ended: Ended::Error,
                            tally: &Tally::default(),
                            extra: Map::new(),
                            error: Some("recording unavailable"),
                            recording: None,
                        };
                        let closed =
                            events::close(&o.principal, &o.connection.name, &o.origin, &closing);
                        let _ = self.pipeline.record(closed).await;
                        return Err(refusal);
                    }
                }
            }
        };
        Ok(Session {
            engine: self.clone(),
            principal: o.principal,
            connection: o.connection,
            origin: o.origin,
            started,
            recording,
            masking: SessionMasking {
                profile: o.masking,
                unmask: Mutex::new(None),
                seen: Mutex::new(BTreeSet::new()),
            },
            decisions: Mutex::new(SessionMemo::new()),
            checked_revocations: AtomicU64::new(u64::MAX),
            tally: Tally::default(),
        })
    }
}

/// What a door knows when it opens a session.
pub struct Open {
    pub principal: Arc<Principal>,
    pub connection: ConnectionInfo,
    pub origin: Origin,
    /// The connection's own masking profile.
    pub masking: Option<String>,
    /// The door's facts for `session.open` (e.g. the client's user name, read-only).
    pub data: Map<String, Value>,
    /// How the session is recorded.
    pub recording: Recording,
}

/// A session's recording: a timeline of commands (JSONL), or a terminal (asciicast v2, which
/// the door feeds with `SessionRecording::output`, `input` and `resize`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recording {
    #[default]
    Timeline,
    Terminal {
        width: u16,
        height: u16,
    },
}

fn terminal_header(
    h: portcullis_recording::Header,
    width: u16,
    height: u16,
) -> portcullis_recording::TerminalHeader {
    portcullis_recording::TerminalHeader {
        session_id: h.session_id,
        started_ms: h.started_ms,
        protocol: h.protocol,
        connection: h.connection,
        principal: h.principal,
        source_ip: h.source_ip,
        width,
        height,
        term: None,
        command: None,
        title: None,
    }
}

struct SessionMasking {
    profile: Option<String>,
    /// The `data.unmask` verdict and the policy engine that gave it (a reload makes it stale).
    unmask: Mutex<Option<(u64, bool)>>,
    /// Every profile a command of this session was masked with, for what no command owns.
    seen: Mutex<BTreeSet<String>>,
}

/// One open session. Close it with [`Session::close`].
pub struct Session {
    engine: Arc<Engine>,
    principal: Arc<Principal>,
    connection: ConnectionInfo,
    origin: Origin,
    started: Instant,
    recording: Option<SessionRecording>,
    masking: SessionMasking,
    /// The session's own memo of decisions (reset by a policy reload).
    decisions: Mutex<SessionMemo>,
    /// The revocation epoch at which the principal was last found not revoked.
    checked_revocations: AtomicU64,
    /// What the session did, for `session.close`; the door adds to it.
    pub tally: Tally,
}

/// One command as the door classified it.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub action: &'a str,
    /// Classifier facts, e.g. `{"sql": {"has_where": false}}`.
    pub facts: &'a Value,
    /// The command as the audit keeps it (already free of values where the door can).
    pub audit: &'a str,
    /// The command as reviewers see it.
    pub display: &'a str,
    /// What the door calls a command (`statement`, `request`, `command`).
    pub noun: &'static str,
    /// Mask the command's output at least as this action would be (a SQL write returns rows
    /// and quotes values in its errors, so it is masked at least as a read).
    pub masked_as: Option<&'a str>,
}

/// A command the policy allowed: run it.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The audit seq of its `decision` event, which its result quotes.
    pub seq: i64,
    /// How its output is masked; `None`: it passes as it is.
    pub masker: Option<Masker>,
    /// Set when the policy asked for approval: hold it ([`Session::hold`]) before it runs.
    pub review: Option<Arc<NeedsReview>>,
    /// The most rows it may change (`@max_rows`).
    pub row_limit: Option<RowLimit>,
}

/// What became of a command that ran.
#[derive(Debug, Clone, Default)]
pub struct Ran<'a> {
    /// The audit seq of its decision.
    pub seq: Option<i64>,
    pub action: Option<&'a str>,
    pub rows: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// The protocol's name for the target's errors (`sqlstate`, `exit_status`, `status`).
    pub error_key: &'static str,
    /// The target's own error, if it failed (`23505`).
    pub error: Option<String>,
    pub masked: Counts,
    /// The gateway undid it (a row limit): the code, and the door's facts about it.
    pub refused: Option<(Code, Value)>,
}

/// Why an identity's authority over a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// Revoked; the revocation's reason.
    Revoked(portcullis_identity::Reason),
    /// The token's `exp` plus the issuer's leeway passed.
    Expired,
}

impl Lapse {
    pub fn code(self) -> Code {
        match self {
            Lapse::Revoked(r) => Code::Token(r),
            Lapse::Expired => Code::TokenExpired,
        }
    }

    pub fn ended(self) -> Ended {
        match self {
            Lapse::Revoked(_) => Ended::Revoked,
            Lapse::Expired => Ended::TokenExpired,
        }
    }
}

/// How a session ended, for `session.close`.
pub struct Close<'a> {
    pub ended: Ended,
    /// What the client was told, never the target's own words.
    pub error: Option<&'a str>,
    /// The door's own facts (e.g. `in_transaction`).
    pub extra: Map<String, Value>,
}

impl Close<'_> {
    /// An end with nothing more to say.
    pub fn ended(ended: Ended) -> Self {
        Self {
            ended,
            error: None,
            extra: Map::new(),
        }
    }
}

const OPERATOR_HINT: &str =
    "retry later; if it persists, tell the gateway operator (the details are in its log)";

impl Session {
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn recording(&self) -> Option<&SessionRecording> {
        self.recording.as_ref()
    }

    /// Writes one entry of the door's into the recording (`kind` is the door's, e.g.
    /// `statement`); nothing when the session is not recorded.
    pub async fn record(&self, kind: &str, data: Value) {
        if let (Some(r), Value::Object(map)) = (&self.recording, data) {
            r.record(kind, map).await;
        }
    }

    /// Decides one command: the policy once, audited (durable) before anything acts on it,
    /// then its masking obligations. A RequireApproval comes back as an admission with a
    /// review need when the gateway can hold it (else it is refused, `approval_required`).
    ///
    /// A revocation of the principal refuses the next command (audited), whether or not the
    /// door has noticed the lapse yet; a policy reload decides it with the new policies.
    pub async fn decide(&self, c: &Command<'_>) -> Result<Admission, Refusal> {
        if let Some(reason) = self.revoked() {
            let refusal = Refusal::new(
                Code::Token(reason),
                "portcullis: this identity was revoked",
                reason.hint(),
            );
            return Err(self.refuse(c.action, c.audit, refusal).await);
        }
        let ask = Ask {
            action: c.action,
            target: Target::Connection(&self.connection),
            facts: c.facts,
            command: Some(c.audit),
        };
        let Decided { decision, seq } = self
            .engine
            .pipeline
            .decide_audited_in(&self.decisions, &self.principal, &ask, &self.origin)
            .await
            .map_err(|r| statement_refused(&r))?;
        let (masks, review, row_limit) = match decision {
            Decision::Allow {
                masks, max_rows, ..
            } => (masks, None, max_rows),
            Decision::RequireApproval {
                policies,
                reviewers,
                approvals,
                masks,
                max_rows,
            } if self.engine.reviews.is_some() => {
                let need = NeedsReview {
                    action: c.action.to_owned(),
                    display: c.display.to_owned(),
                    policies,
                    reviewers,
                    approvals,
                    noun: c.noun,
                };
                (masks, Some(Arc::new(need)), max_rows)
            }
            d => return Err(refusal_for(c.action, &d, &self.connection.name, c.noun)),
        };
        let mut masks = masks;
        if let Some(action) = c.masked_as.filter(|a| *a != c.action) {
            masks.extend(self.masks_of(action, c.facts));
        }
        let masker = self.masker(masks).await?;
        Ok(Admission {
            seq,
            masker,
            review,
            row_limit,
        })
    }

    /// Whether the principal is revoked, checked again only when a revocation was added
    /// since the last check (one atomic load per command otherwise).
    fn revoked(&self) -> Option<portcullis_identity::Reason> {
        let revocations = self.engine.pipeline.validator().revocations();
        // The epoch is read before the check: a revocation added in between moves it, and
        // the next command checks again.
        let epoch = revocations.epoch();
        if self.checked_revocations.load(Ordering::Acquire) == epoch {
            return None;
        }
        let reason = revocations.check(&self.principal);
        if reason.is_none() {
            self.checked_revocations.store(epoch, Ordering::Release);
        }
        reason
    }

    /// [`Session::decide`], then [`Session::hold`] when the policy asks for approval: the
    /// whole per-command path in one call, for a door whose command runs as it arrives.
    pub async fn admit(
        &self,
        c: &Command<'_>,
        exact: &Exact<'_>,
        line: &dyn HoldLine,
    ) -> Result<Admission, Refusal> {
        let admission = self.decide(c).await?;
        if let Some(need) = &admission.review {
            self.hold(need, exact, line).await?;
        }
        Ok(admission)
    }

    /// A refusal of the door's own, before any policy is asked (a command it cannot read as
    /// the target would): audited as a denied decision with its reason code. An audit that
    /// cannot be written refuses the command all the same, with that reason instead.
    pub async fn refuse(&self, action: &str, command: &str, refusal: Refusal) -> Refusal {
        let event = events::gateway_refusal(self, action, command, refusal.code);
        match self.engine.pipeline.record(event).await {
            Ok(()) => refusal,
            Err(r) => statement_refused(&r),
        }
    }

    /// The `@mask` profiles `action` with `facts` would be answered with (asked without an
    /// audit event: it grants nothing and only shapes what the answer shows).
    pub fn masks_of(&self, action: &str, facts: &Value) -> Vec<String> {
        let ask = Ask {
            action,
            target: Target::Connection(&self.connection),
            facts,
            command: None,
        };
        match self
            .engine
            .pipeline
            .preview(&self.principal, &ask, &self.origin)
        {
            Decision::Allow { masks, .. } | Decision::RequireApproval { masks, .. } => masks,
            Decision::Deny { .. } => Vec::new(),
        }
    }

    /// The masker for output allowed with `masks` (the policies' `@mask` profiles) on top of
    /// the connection's profile; `None` when nothing masks it or the principal may
    /// `data.unmask` here. A profile set that cannot be built refuses the command.
    pub async fn masker(&self, mut masks: Vec<String>) -> Result<Option<Masker>, Refusal> {
        masks.extend(self.masking.profile.clone());
        if masks.is_empty() {
            return Ok(None);
        }
        masks.sort();
        masks.dedup();
        if self.unmasked().await {
            return Ok(None);
        }
        self.masking
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(masks.iter().cloned());
        self.engine.maskers.get(&masks).map(Some).map_err(|e| {
            tracing::error!(error = %e, "masking profiles cannot be built; refusing the command");
            Refusal::new(
                Code::MaskingUnavailable,
                "portcullis: the masking profiles for this statement cannot be built",
                "the gateway's masking configuration is broken; tell the operator (portcullis config check)",
            )
        })
    }

    /// The masker for output no command owns (a notification from elsewhere, a notice
    /// between commands): every profile this session was masked with, the connection's own,
    /// and those of `plain` (the door's most ordinary read: `(action, facts)`); `None` when
    /// none applies or the principal may `data.unmask` here.
    pub fn fallback_masker(&self, plain: (&str, &Value)) -> Option<Masker> {
        if self.unmask_known() == Some(true) {
            return None;
        }
        let mut names: BTreeSet<String> = self.masks_of(plain.0, plain.1).into_iter().collect();
        names.extend(self.masking.profile.clone());
        names.extend(
            self.masking
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        if names.is_empty() {
            return None;
        }
        let names: Vec<String> = names.into_iter().collect();
        match self.engine.maskers.get(&names) {
            Ok(masker) => Some(masker),
            Err(e) => {
                tracing::error!(error = %e, "masking profiles cannot be built");
                None
            }
        }
    }

    /// Whether the principal may see raw values on this connection: `data.unmask`, decided
    /// (and audited) when first needed and again after each policy reload. Anything but an
    /// Allow, an audit failure included, keeps the masking on.
    pub async fn unmasked(&self) -> bool {
        if let Some(known) = self.unmask_known() {
            return known;
        }
        // The engine is read before deciding: a reload in between leaves the verdict marked
        // stale, and the next command decides again.
        let engine = self.engine.pipeline.policy_id();
        let facts = Value::Null;
        let ask = Ask {
            action: "data.unmask",
            target: Target::Connection(&self.connection),
            facts: &facts,
            command: None,
        };
        let unmasked = matches!(
            self.engine
                .pipeline
                .decide(&self.principal, &ask, &self.origin)
                .await,
            Ok(Decision::Allow { .. })
        );
        *self
            .masking
            .unmask
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((engine, unmasked));
        unmasked
    }

    /// The `data.unmask` verdict, if one was decided under the current policies.
    fn unmask_known(&self) -> Option<bool> {
        let engine = self.engine.pipeline.policy_id();
        match *self
            .masking
            .unmask
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((id, verdict)) if id == engine => Some(verdict),
            _ => None,
        }
    }

    /// Queues the `statement.result` event of a command that ran (or failed in the target).
    /// It is not waited for: the command has already happened.
    pub async fn result(&self, ran: &Ran<'_>) {
        let event = events::result(self, ran);
        self.engine.pipeline.record_after(event).await;
    }

    /// Notes a refusal the door told its client, for a caller inside the gateway that
    /// reads the typed value (the exec API) instead of the protocol's text.
    pub fn told(&self, refusal: &Refusal) {
        if let Some(r) = &self.origin.receipts {
            r.refused(refusal);
        }
    }

    /// Resolves when the identity's authority over this session ends: revoked (effective at
    /// once, DESIGN.md §3) or past the principal's `valid_until`.
    pub async fn lapsed(&self) -> Lapse {
        tokio::select! {
            reason = revoked(&self.engine.pipeline, &self.principal) => Lapse::Revoked(reason),
            () = expiry(&self.principal) => Lapse::Expired,
        }
    }

    /// Finishes the recording and writes `session.close` with the session's counts and the
    /// recording's hash.
    pub async fn close(self, c: Close<'_>) {
        let recorded = match self.recording {
            Some(r) => match r.finish(c.ended.as_str()).await {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!(error = %e, "cannot finish the session recording");
                    None
                }
            },
            None => None,
        };
        let closing = events::Closing {
            started: self.started,
            ended: c.ended,
            tally: &self.tally,
            extra: c.extra,
            error: c.error,
            recording: recorded.as_ref(),
        };
        let closed = events::close(
            &self.principal,
            &self.connection.name,
            &self.origin,
            &closing,
        );
        if self.engine.pipeline.record(closed).await.is_err() {
            tracing::error!("could not audit the end of a session");
        }
    }
}

/// Resolves with the reason once `principal` is revoked.
async fn revoked(pipeline: &Pipeline, principal: &Principal) -> portcullis_identity::Reason {
    use tokio::sync::broadcast::error::RecvError;
    let revocations = pipeline.validator().revocations();
    // Subscribe before checking, so a revocation between the two is not missed.
    let mut feed = revocations.subscribe();
    loop {
        if let Some(reason) = revocations.check(principal) {
            return reason;
        }
        match feed.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Resolves at the principal's `valid_until`, the token's `exp` plus the issuer's leeway,
/// the instant from which the validator refuses the token on every door. The client then
/// reconnects with a fresh token, as short-lived identities mean.
async fn expiry(principal: &Principal) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let left = (principal.valid_until as f64 - now).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(left)).await;
}

/// The pipeline could not decide (the audit is down): the command does not run.
fn statement_refused(r: &Refusal) -> Refusal {
    Refusal::new(
        r.code,
        format!("portcullis: statement refused: {}", r.code),
        r.hint.clone(),
    )
}

/// The refusal of a decision other than Allow on `action`.
pub fn refusal_for(action: &str, decision: &Decision, connection: &str, noun: &str) -> Refusal {
    match decision {
        Decision::Deny {
            code,
            policies,
            reason,
            hint,
        } => {
            let ids = if policies.is_empty() {
                "(default deny)".to_owned()
            } else {
                policies.join(", ")
            };
            let hint = if hint.is_empty() {
                format!(
                    "no policy permits {action} on connection {connection:?}; ask its owner for access or use a permitted {noun}"
                )
            } else {
                hint.clone()
            };
            Refusal::new(
                Code::Policy(*code),
                format!("portcullis: {action} denied by policy {ids}: {reason}"),
                hint,
            )
            .with_policies(policies.clone())
        }
        // Reached only where nothing can be held (no review service, or a connect).
        Decision::RequireApproval {
            policies,
            reviewers,
            approvals,
            ..
        } => Refusal::new(
            Code::ApprovalRequired,
            format!(
                "portcullis: {action} requires approval by {} ({approvals} needed; policy {}): approval_required",
                reviewers.join(", "),
                policies.join(", ")
            ),
            "this gateway holds nothing for review (approvals are off); ask a reviewer to run it, or the operator to enable approvals",
        )
        .with_policies(policies.clone()),
        Decision::Allow { .. } => Refusal::new(
            Code::Policy(portcullis_policy::DenyCode::PolicyError),
            "portcullis: internal error",
            "",
        ),
    }
}
