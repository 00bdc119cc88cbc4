//! What both relay directions share: the prepared statements the session has, and the
//! response cycles in flight, each with the denial (if any) whose error it must replace.
//!
//! A *cycle* is what one ReadyForQuery ends: a simple Query (or an injected one), or the
//! extended-protocol messages up to and including a Sync. The client direction appends
//! cycles in the order it forwards messages; the server direction consumes them in the order
//! responses arrive, so pipelined clients are matched correctly.
//!
//! # The message sequences the door follows
//!
//! Every sequence PostgreSQL accepts, with the server's own meaning:
//!
//! - Parse, Bind, Describe (of a statement or a portal), Execute and Close in any order and
//!   number, ended by Sync; a Sync with nothing before it (an empty cycle) answers just
//!   ReadyForQuery.
//! - Flush anywhere: it asks the server to send what it has, answers nothing and opens
//!   nothing (libpq sends it after a pipeline's Sync).
//! - Pipelines of any depth: cycles are matched to answers in order; the client is read
//!   no further while [`Tracker::queued`] passes the session's bound, until the server's
//!   answers drain it (backpressure, as the server's own full output buffer would apply).
//! - A simple Query (or FunctionCall) inside an unfinished extended sequence: the server
//!   runs it after the extended messages and its ReadyForQuery ends both, unless one of the
//!   extended messages failed, in which case the server skips the Query as it skips
//!   everything up to the next Sync, and that Sync's ReadyForQuery ends it all. Which one
//!   happened is known from the server's answers: an ErrorResponse that arrives before every
//!   extended message was answered (each has exactly one final answer: ParseComplete,
//!   BindComplete, CloseComplete, RowDescription or NoData for a Describe, CommandComplete,
//!   EmptyQueryResponse or PortalSuspended for an Execute) comes from the extended part.
//! - A Sync sent during COPY FROM STDIN, which the server ignores in copy-in mode.
//!
//! Statement names are updated optimistically when a Parse, Close, PREPARE or DEALLOCATE is
//! forwarded (a pipelined Bind may follow before the server answers) and the change is kept
//! until the server confirms it (ParseComplete, CloseComplete, CommandComplete). If the
//! server reports an error first, every unconfirmed change of that cycle is undone, because
//! the server skipped those messages. So the gateway's map and the server's agree on which
//! statement a name means, which matters because a named statement is decided again at Bind.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use portcullis_pgwire::{Bind, ErrorFields, FieldDescription, TransactionStatus};

use crate::cache::Classified;
use crate::encoding::ClientEncoding;
use crate::enforce::{Admitted, Denial};
use crate::error::PgError;
use crate::mask::{Followed, ResultPlan, SharedPlan};
use crate::relay::MARKER;
use portcullis_masking::{Counts, Masker};
use portcullis_policy::RowLimit;

/// How many prepared statements a session may have in the gateway's map; Parse beyond this
/// is refused rather than letting one client grow the gateway's memory without bound.
pub(crate) const MAX_STATEMENTS: usize = 100_000;
const MAX_PORTALS: usize = 10_000;

/// Undo information: what each touched name meant before.
type Change = Vec<(Bytes, Option<Arc<Prepared>>)>;

/// One prepared statement as the server has it: each Parse makes a new one, so a description
/// learned for it can never be confused with a later statement of the same name.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) classified: Arc<Classified>,
    /// Its result columns, from a Describe of the statement (formats not yet chosen).
    described: OnceLock<Arc<[FieldDescription]>>,
}

impl Prepared {
    fn new(classified: Arc<Classified>) -> Arc<Self> {
        Arc::new(Self {
            classified,
            described: OnceLock::new(),
        })
    }
}

/// What a Describe asked about, so that its RowDescription (or NoData) lands there.
enum Describing {
    Statement(Option<Arc<Prepared>>),
    Portal(Option<Arc<Portal>>),
}

#[derive(Default)]
struct Cycle {
    simple: bool,
    /// Who sent it: the client, or the gateway around a bounded write ([`Role`]).
    role: Role,
    /// Its ReadyForQuery gives the verdict the client direction waits for ([`Verdict`]).
    decides: bool,
    /// A simple Query the gateway wrapped in its own BEGIN: its ReadyForQuery is not shown
    /// (the COMMIT or ROLLBACK that follows answers the client's).
    wrapped: bool,
    /// A bounded statement of this simple Query changed more rows than allowed: the rest
    /// of its answers are not shown, and this is the refusal the client gets instead.
    exceeded: Option<Denial>,
    /// Its ReadyForQuery is not shown (the marker that aborts a wrapped transaction).
    hide_ready: bool,
    /// Extended-protocol messages followed, before any Sync, by a simple Query: the Query's
    /// ReadyForQuery ends the cycle unless the extended part fails (see the module docs).
    then_query: bool,
    /// Extended messages of the cycle whose final answer has not arrived.
    unanswered: usize,
    /// An extended message of this cycle failed while a simple Query followed it: the
    /// server skips everything up to the next Sync, so the cycles up to the one that Sync
    /// closes end at this cycle's ReadyForQuery.
    skips_to_sync: bool,
    denial: Option<Denial>,
    /// Closed by a Sync sent while a COPY FROM STDIN may have been running, which the server
    /// ignores in copy-in mode ("The backend will ignore Flush and Sync messages received
    /// during copy-in mode"); see [`Tracker::ready`].
    swallowable: bool,
    /// The server entered copy-in mode in this cycle.
    copy_in_seen: bool,
    /// The cycle may change client_encoding: SQL sent after it waits for its ReadyForQuery,
    /// which comes after the server's report of the new value.
    changes_encoding: bool,
    /// While the cycle is open (extended protocol, no Sync yet): the encoding its remaining
    /// messages will be read in, after an Execute that changes it. They run only if that
    /// Execute succeeded (the server skips to Sync after an error), so a known new value is
    /// exact; an unknown one leaves nothing the door can classify.
    predicted: Option<Predicted>,
    parses: VecDeque<Option<Change>>,
    closes: VecDeque<Option<Change>>,
    describes: VecDeque<Describing>,
    commands: VecDeque<Option<Change>>,
    /// Statements forwarded to run, in the order their results will arrive.
    results: VecDeque<Pending>,
}

/// A statement (a simple-query statement or an Execute) awaiting its result.
struct Pending {
    admitted: Option<Arc<Admitted>>,
    /// The portal an Execute runs; `None` for a simple-query statement.
    portal: Option<Arc<Portal>>,
    started: Instant,
}

/// Who sent a cycle. Around a simple Query with a row limit, outside a transaction, the
/// gateway sends its own `BEGIN` before it and `COMMIT` or `ROLLBACK` after it; their
/// answers are the gateway's, not the client's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    #[default]
    Client,
    /// The gateway's BEGIN: nothing of its answer is shown.
    Begin,
    /// The gateway's COMMIT or ROLLBACK: its CommandComplete is not shown; an error (a
    /// deferred constraint failing at COMMIT) and the ReadyForQuery are the client's.
    End,
}

/// What the client direction learns when the statement it waits for has run: whether a
/// bounded statement changed more rows than allowed (the refusal to send), and the
/// transaction status after it.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) exceeded: Option<Denial>,
    pub(crate) status: TransactionStatus,
    /// The server entered copy-in mode for it (so it ignored a Sync sent meanwhile).
    pub(crate) copied: bool,
}

/// What the client direction is waiting for.
#[derive(Debug, Default)]
enum Awaiting {
    #[default]
    Nothing,
    /// The ReadyForQuery of the cycle marked `decides`.
    Ready,
    /// The end of the bounded Execute forwarded last.
    Execute,
    Decided(Verdict),
}

/// A statement's result, for its `statement.result` audit event.
#[derive(Debug)]
pub(crate) struct Finished {
    /// `None` when the gateway has no decision for it (an Execute of a portal it never saw
    /// bound, which the server rejects).
    pub(crate) admitted: Option<Arc<Admitted>>,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) duration: Duration,
    /// The server's SQLSTATE when the statement failed.
    pub(crate) sqlstate: Option<String>,
    /// Values masked in its result, by entity.
    pub(crate) masked: Counts,
    /// Its result columns, when known, and the first rows as sent (for the recording).
    pub(crate) columns: Option<Arc<[FieldDescription]>>,
    pub(crate) kept: Vec<serde_json::Value>,
    /// It changed more rows than its bound allows (`rows` says how many): refused, and
    /// rolled back.
    pub(crate) exceeded: Option<RowLimit>,
    /// Of a simple Query (not an Execute).
    pub(crate) simple: bool,
}

/// A bound portal: what it runs, the decision that let it, and its result's shape.
#[derive(Debug)]
pub(crate) struct Portal {
    classified: Option<Arc<Classified>>,
    admitted: Option<Arc<Admitted>>,
    statement: Option<Arc<Prepared>>,
    /// The Bind's result format codes.
    formats: Vec<i16>,
    /// From a Describe of the portal (formats included).
    described: OnceLock<Arc<[FieldDescription]>>,
}

/// A change of client_encoding an Execute makes, as the rest of its cycle will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Predicted {
    Known(ClientEncoding),
    Unknown,
}

/// How the next SQL text the client sends can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlEncoding {
    /// In `encoding` (`server` is the database's).
    Ready {
        encoding: ClientEncoding,
        server: ClientEncoding,
    },
    /// Only once the server has answered a statement that may change client_encoding.
    Wait,
    /// Not at all: it follows, in the same unfinished extended-protocol sequence, a statement
    /// whose new client_encoding cannot be known before the server's answer.
    Unknowable,
}

/// How the rows of the statement at the front of the response stream are to be masked.
#[derive(Debug)]
pub(crate) enum RowsPlan {
    /// No masking applies.
    Clear,
    Masked(SharedPlan),
}

/// Session-wide counters for the audit's `session.close`: the engine's.
pub(crate) use portcullis_pipeline::session::Tally as Stats;

pub(crate) struct Tracker {
    cycles: VecDeque<Cycle>,
    /// The cycles in flight plus their extended messages not yet answered: what the
    /// session's pipeline bound counts.
    queued: usize,
    /// The last cycle is extended-protocol and has not seen its Sync.
    open_extended: bool,
    statements: HashMap<Bytes, Arc<Prepared>>,
    portals: HashMap<Bytes, Arc<Portal>>,
    /// SQL cursors by name, as their DECLARE was classified.
    cursors: HashMap<Bytes, Arc<Classified>>,
    /// The decision taken at the last Parse of the unnamed statement, which a Bind of the
    /// unnamed statement runs under (it is not decided again).
    unnamed: Option<Arc<Admitted>>,
    status: TransactionStatus,
    /// The session's client_encoding as the server last reported it.
    encoding: ClientEncoding,
    /// What `RESET client_encoding` restores: the value at the start of the session.
    default_encoding: ClientEncoding,
    /// The database's encoding, which SQL_ASCII input is checked against.
    server_encoding: ClientEncoding,
    /// A statement that may change client_encoding has run in this session: from then on,
    /// ending a transaction may change it back (SET LOCAL, a rolled-back SET), so
    /// transaction control counts as a change too.
    encoding_touched: bool,
    /// An Execute of a COPY FROM STDIN was forwarded and its CopyDone/CopyFail was not.
    copy_in_pending: bool,
    /// See [`Tracker::read_only`].
    read_only: bool,
    /// When the last cycle in flight ended (for the idle timeouts).
    quiet_since: tokio::time::Instant,
    /// What the client direction waits for around a bounded statement.
    awaiting: Awaiting,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Self {
            cycles: VecDeque::new(),
            queued: 0,
            open_extended: false,
            statements: HashMap::new(),
            portals: HashMap::new(),
            cursors: HashMap::new(),
            unnamed: None,
            status: TransactionStatus::Idle,
            encoding: ClientEncoding::UTF8,
            default_encoding: ClientEncoding::UTF8,
            server_encoding: ClientEncoding::UTF8,
            encoding_touched: false,
            copy_in_pending: false,
            read_only: false,
            quiet_since: tokio::time::Instant::now(),
            awaiting: Awaiting::Nothing,
        }
    }

    /// The server's parameters at the start of the session: the encodings the door must
    /// follow. A session the door cannot read (an unsafe client_encoding set for the role or
    /// database, `standard_conforming_strings` off) is refused.
    /// The session may not write: the server runs it with `default_transaction_read_only`
    /// on, and a report of it turned off ends the session.
    pub(crate) fn read_only(&mut self) {
        self.read_only = true;
    }

    pub(crate) fn greeted(&mut self, params: &[(String, String)]) -> Result<(), PgError> {
        for (name, value) in params {
            self.parameter_status(name, value)?;
        }
        self.default_encoding = self.encoding;
        Ok(())
    }

    /// The encoding the next SQL text the client sends will be read in by the server, as
    /// far as the door knows it for certain.
    pub(crate) fn sql_encoding(&self) -> SqlEncoding {
        let open = self.open_extended.then(|| self.cycles.back()).flatten();
        if let Some(Predicted::Unknown) = open.and_then(|c| c.predicted) {
            return SqlEncoding::Unknowable;
        }
        let settled = self.cycles.len() - usize::from(open.is_some());
        if self.cycles.iter().take(settled).any(|c| c.changes_encoding) {
            return SqlEncoding::Wait;
        }
        let encoding = match open.and_then(|c| c.predicted) {
            Some(Predicted::Known(e)) => e,
            _ => self.encoding,
        };
        SqlEncoding::Ready {
            encoding,
            server: self.server_encoding,
        }
    }

    /// What running `statements` may do to client_encoding (`None`: nothing).
    fn encoding_effect(&self, statements: &[portcullis_sql::Statement]) -> Option<Predicted> {
        use portcullis_sql::SettingChange;
        let mut effect = None;
        for s in statements {
            let change = match &s.client_encoding {
                Some(SettingChange::Value(name)) => ClientEncoding::lookup(name)
                    .filter(|e| e.is_safe())
                    .map_or(Predicted::Unknown, Predicted::Known),
                Some(SettingChange::Default) => Predicted::Known(self.default_encoding),
                Some(SettingChange::Unknown) => Predicted::Unknown,
                None if self.encoding_touched && s.action == portcullis_sql::ids::TRANSACTION => {
                    Predicted::Unknown
                }
                None => continue,
            };
            if effect != Some(Predicted::Unknown) {
                effect = Some(change);
            }
        }
        effect
    }

    pub(crate) fn status(&self) -> TransactionStatus {
        self.status
    }

    pub(crate) fn statement(&self, name: &[u8]) -> Option<Arc<Classified>> {
        self.statements.get(name).map(|p| p.classified.clone())
    }

    pub(crate) fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Whether the server still owes answers (a query may be running).
    pub(crate) fn in_flight(&self) -> bool {
        !self.cycles.is_empty()
    }

    /// What the idle timeouts need ([`crate::limits::watch`]).
    pub(crate) fn quiet(&self) -> crate::limits::Quiet {
        crate::limits::Quiet {
            in_flight: self.in_flight(),
            status: self.status,
            since: self.quiet_since,
        }
    }

    /// The answers the server owes: cycles in flight and their extended messages not yet
    /// answered (the pipeline's depth).
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    // ---- client direction -------------------------------------------------------------

    /// A simple Query (or an injected one) was forwarded. `allowed` carries its
    /// classification when it runs, so PREPARE and DEALLOCATE update the names. Inside an
    /// unfinished extended sequence it joins that cycle (see the module docs).
    pub(crate) fn simple(
        &mut self,
        denial: Option<Denial>,
        allowed: Option<&Classified>,
        admitted: Vec<Arc<Admitted>>,
    ) {
        if let Some(c) = allowed {
            for (i, s) in c.classification.statements.iter().enumerate() {
                self.cursor_effect(s, admitted.get(i));
            }
        }
        let mut commands = VecDeque::new();
        let mut changes_encoding = false;
        if let Some(c) = allowed {
            for s in &c.classification.statements {
                commands.push_back(self.sql_effect(s));
            }
            // The whole Query was converted with the encoding in effect when it arrived, so
            // only what comes after it is read in a new one.
            changes_encoding = self.encoding_effect(&c.classification.statements).is_some();
            self.encoding_touched |= changes_encoding;
        }
        let started = Instant::now();
        let results = admitted.into_iter().map(|a| Pending {
            admitted: Some(a),
            portal: None,
            started,
        });
        if self.open_extended && !self.cycles.is_empty() {
            let last = self.cycles.len() - 1;
            let cycle = &mut self.cycles[last];
            cycle.then_query = true;
            // One cycle holds one denial: after a denied extended message the rest of the
            // cycle is dropped by the door, so a Query never reaches a cycle that has one.
            if denial.is_some() {
                cycle.denial = denial;
            }
            cycle.results.extend(results);
            cycle.commands.extend(commands);
            cycle.changes_encoding |= changes_encoding;
        } else {
            self.queued += 1;
            self.cycles.push_back(Cycle {
                simple: true,
                denial,
                results: results.collect(),
                commands,
                changes_encoding,
                ..Cycle::default()
            });
        }
        self.open_extended = false;
    }

    fn sql_effect(&mut self, s: &portcullis_sql::Statement) -> Option<Change> {
        if let Some(name) = &s.prepare_name {
            let one = Prepared::new(Arc::new(Classified::single(s.clone())));
            return Some(self.set(Bytes::from(name.clone()), Some(one)));
        }
        if let Some(name) = &s.deallocate_name {
            return Some(self.set(Bytes::from(name.clone()), None));
        }
        // DEALLOCATE ALL drops every prepared statement; so do DISCARD ALL and RESET ALL
        // as far as the door can tell (both `sql.admin`, both back to the session's
        // defaults). Forgetting a statement the server still has only makes its later use
        // an unknown one, decided as `sql.admin`: the safe direction.
        let resets_all = s.action == portcullis_sql::ids::ADMIN
            && s.client_encoding == Some(portcullis_sql::SettingChange::Default);
        if s.deallocate_all || resets_all {
            let old: Change = self.statements.drain().map(|(k, v)| (k, Some(v))).collect();
            return Some(old);
        }
        None
    }

    /// Follows SQL cursors: `DECLARE c CURSOR FOR query` creates a portal the client may run
    /// with a protocol-level Execute as well as with `FETCH`, so it is kept as a portal that
    /// runs under the DECLARE's decision (and masking), and as the query a later `FETCH` or
    /// `MOVE` is decided as. `CLOSE` forgets it. Entries are updated when the statement is
    /// forwarded and not undone should it fail: a stale entry only masks or decides a later
    /// portal of that name as the cursor's query would be.
    fn cursor_effect(&mut self, s: &portcullis_sql::Statement, admitted: Option<&Arc<Admitted>>) {
        use portcullis_sql::CursorOp;
        match &s.cursor {
            Some(CursorOp::Declare { name, .. }) => {
                let query = Arc::new(Classified::single(s.clone()));
                let name = Bytes::from(name.clone());
                if self.portals.len() >= MAX_PORTALS {
                    self.portals.clear();
                }
                if self.cursors.len() >= MAX_PORTALS {
                    self.cursors.clear();
                }
                self.cursors.insert(name.clone(), query.clone());
                let portal = Portal {
                    classified: Some(query),
                    admitted: admitted.cloned(),
                    statement: None,
                    formats: Vec::new(),
                    described: OnceLock::new(),
                };
                self.portals.insert(name, Arc::new(portal));
            }
            Some(CursorOp::Close { name: Some(name) }) => {
                self.cursors.remove(name.as_bytes());
                self.portals.remove(name.as_bytes());
            }
            Some(CursorOp::Close { name: None }) => {
                self.cursors.clear();
                self.portals.clear();
            }
            Some(CursorOp::Fetch { .. } | CursorOp::Move { .. }) | None => {}
        }
    }

    /// The query of the SQL cursor `name`, as its DECLARE was classified.
    pub(crate) fn cursor(&self, name: &[u8]) -> Option<Arc<Classified>> {
        self.cursors.get(name).cloned()
    }

    /// Sets or removes `name`, returning what it meant before.
    fn set(&mut self, name: Bytes, value: Option<Arc<Prepared>>) -> Change {
        let old = match value {
            Some(v) => self.statements.insert(name.clone(), v),
            None => self.statements.remove(&name),
        };
        vec![(name, old)]
    }

    /// The open extended cycle, opened if need be, counting one more message in it;
    /// `answered`: the message has a final answer of its own (all but Sync).
    fn extended(&mut self, answered: bool) -> &mut Cycle {
        if !self.open_extended || self.cycles.is_empty() {
            self.cycles.push_back(Cycle::default());
            self.open_extended = true;
            self.queued += 1;
        }
        self.queued += usize::from(answered);
        let last = self.cycles.len() - 1;
        let cycle = &mut self.cycles[last];
        cycle.unanswered += usize::from(answered);
        cycle
    }

    /// A Describe was forwarded; its RowDescription or NoData will describe this target.
    pub(crate) fn describe(&mut self, statement: bool, name: &[u8]) {
        let target = if statement {
            Describing::Statement(self.statements.get(name).cloned())
        } else {
            Describing::Portal(self.portals.get(name).cloned())
        };
        self.extended(true).describes.push_back(target);
    }

    /// An Execute of `portal` was forwarded. A COPY FROM STDIN makes the server ignore the
    /// Syncs that follow until the copy ends, so they are marked as possibly swallowed.
    pub(crate) fn execute(&mut self, portal: &[u8]) {
        let bound = self.portals.get(portal);
        let copy_in = bound.and_then(|p| p.classified.as_ref()).is_some_and(|c| {
            c.classification
                .statements
                .iter()
                .any(|s| s.action == portcullis_sql::ids::COPY_FROM)
        });
        let admitted = bound.and_then(|p| p.admitted.clone());
        let classified = bound.and_then(|p| p.classified.clone());
        let effect = bound
            .and_then(|p| p.classified.as_ref())
            .and_then(|c| self.encoding_effect(&c.classification.statements));
        let portal = bound.cloned();
        for s in classified.iter().flat_map(|c| &c.classification.statements) {
            self.cursor_effect(s, admitted.as_ref());
        }
        self.copy_in_pending |= copy_in;
        self.encoding_touched |= effect.is_some();
        let cycle = self.extended(true);
        if let Some(effect) = effect {
            cycle.changes_encoding = true;
            if cycle.predicted != Some(Predicted::Unknown) {
                cycle.predicted = Some(effect);
            }
        }
        cycle.results.push_back(Pending {
            admitted,
            portal,
            started: Instant::now(),
        });
    }

    /// The row bound of the portal an Execute would run.
    pub(crate) fn portal_row_limit(&self, portal: &[u8]) -> Option<RowLimit> {
        self.portals
            .get(portal)?
            .admitted
            .as_ref()?
            .row_limit
            .clone()
    }

    /// The decision the unnamed statement was parsed under.
    pub(crate) fn unnamed_admitted(&self) -> Option<Arc<Admitted>> {
        self.unnamed.clone()
    }

    /// CopyDone or CopyFail was forwarded: the copy (if any) ends there.
    pub(crate) fn copy_end(&mut self) {
        self.copy_in_pending = false;
    }

    /// An allowed Parse was forwarded.
    pub(crate) fn parse(
        &mut self,
        name: &Bytes,
        classified: &Arc<Classified>,
        admitted: Option<Arc<Admitted>>,
    ) {
        if name.is_empty() {
            self.unnamed = admitted;
        }
        // PREPARE/DEALLOCATE run through the extended protocol take effect at Execute,
        // which the gateway does not follow: the names they touch are forgotten, so their
        // later use is decided as an unknown statement (fail closed).
        for s in &classified.classification.statements {
            for n in [&s.prepare_name, &s.deallocate_name].into_iter().flatten() {
                self.statements.remove(n.as_bytes());
            }
        }
        // The unnamed statement is kept too (under the empty name), for portal tracking.
        let change = self.set(name.clone(), Some(Prepared::new(classified.clone())));
        self.extended(true).parses.push_back(Some(change));
    }

    /// An allowed Bind was forwarded.
    pub(crate) fn bind(
        &mut self,
        b: &Bind,
        classified: Option<Arc<Classified>>,
        admitted: Option<Arc<Admitted>>,
    ) {
        if self.portals.len() >= MAX_PORTALS {
            self.portals.clear();
        }
        let bound = Portal {
            classified,
            admitted,
            statement: self.statements.get(&b.statement).cloned(),
            formats: b.result_formats.clone(),
            described: OnceLock::new(),
        };
        self.portals.insert(b.portal.clone(), Arc::new(bound));
        self.extended(true);
    }

    /// A Close was forwarded.
    pub(crate) fn close(&mut self, statement: bool, name: &Bytes) {
        let change = if statement {
            Some(self.set(name.clone(), None))
        } else {
            self.portals.remove(name);
            None
        };
        self.extended(true).closes.push_back(change);
    }

    /// A denied Parse or Bind was replaced by the injected Parse, which (failing) leaves
    /// the server without an unnamed statement.
    pub(crate) fn deny_extended(&mut self, denial: Denial) {
        self.statements.remove(&b""[..]);
        self.unnamed = None;
        self.extended(true).denial = Some(denial);
    }

    /// Whether an extended-protocol sequence is open or a COPY FROM STDIN may be running:
    /// a simple Query sent now would not run on its own.
    pub(crate) fn mid_sequence(&self) -> bool {
        self.open_extended || self.copy_in_pending
    }

    /// Whether a COPY FROM STDIN forwarded may still be reading data (no CopyDone or
    /// CopyFail was forwarded after it).
    pub(crate) fn copying_in(&self) -> bool {
        self.copy_in_pending
    }

    /// The gateway's own BEGIN (`Role::Begin`, whose ReadyForQuery is awaited) or COMMIT or
    /// ROLLBACK (`Role::End`) was forwarded as a simple Query.
    pub(crate) fn internal(&mut self, role: Role) {
        let begin = role == Role::Begin;
        if begin {
            self.awaiting = Awaiting::Ready;
        }
        self.queued += 1;
        self.cycles.push_back(Cycle {
            simple: true,
            role,
            decides: begin,
            ..Cycle::default()
        });
    }

    /// The simple Query just forwarded holds bounded statements: its ReadyForQuery gives the
    /// verdict; `wrapped` when it runs in the gateway's BEGIN.
    pub(crate) fn bounded(&mut self, wrapped: bool) {
        if let Some(c) = self.cycles.back_mut() {
            c.decides = true;
            c.wrapped = wrapped;
            self.awaiting = Awaiting::Ready;
        }
    }

    /// The injected Query just forwarded ends a wrapped transaction that went over its
    /// bound: its ReadyForQuery is not the client's (the ROLLBACK's is).
    pub(crate) fn hide_ready(&mut self) {
        if let Some(c) = self.cycles.back_mut() {
            c.hide_ready = true;
        }
    }

    /// The Execute just forwarded is bounded: its end gives the verdict.
    pub(crate) fn await_execute(&mut self) {
        self.awaiting = Awaiting::Execute;
    }

    /// The verdict the client direction waits for, once given.
    pub(crate) fn verdict(&mut self) -> Option<Verdict> {
        match std::mem::take(&mut self.awaiting) {
            Awaiting::Decided(v) => Some(v),
            other => {
                self.awaiting = other;
                None
            }
        }
    }

    /// A Sync was forwarded: it ends the open extended cycle, or is a cycle of its own.
    pub(crate) fn sync(&mut self) {
        let swallowable = self.copy_in_pending;
        self.extended(false).swallowable = swallowable;
        self.open_extended = false;
    }

    // ---- server direction -------------------------------------------------------------

    /// The final answer to one extended message of the front cycle arrived. (Answers of the
    /// simple-query part of a cycle come after every extended message was answered.)
    fn answered(&mut self) -> Option<&mut Cycle> {
        let c = self.cycles.front_mut()?;
        if c.unanswered > 0 {
            c.unanswered -= 1;
            self.queued = self.queued.saturating_sub(1);
        }
        Some(c)
    }

    pub(crate) fn parse_complete(&mut self) {
        if let Some(c) = self.answered() {
            c.parses.pop_front();
        }
    }

    pub(crate) fn bind_complete(&mut self) {
        self.answered();
    }

    pub(crate) fn close_complete(&mut self) {
        if let Some(c) = self.answered() {
            c.closes.pop_front();
        }
    }

    /// CommandComplete, EmptyQueryResponse or PortalSuspended: a statement ended.
    pub(crate) fn command_complete(&mut self) {
        if self.front_is_simple() {
            if let Some(c) = self.cycles.front_mut() {
                c.commands.pop_front();
            }
        } else {
            self.answered();
        }
    }

    /// The front statement's result is complete (CommandComplete, EmptyQueryResponse,
    /// PortalSuspended, or an ErrorResponse with `sqlstate`).
    pub(crate) fn finish(
        &mut self,
        rows: u64,
        bytes: u64,
        sqlstate: Option<String>,
    ) -> Option<Finished> {
        let cycle = self.cycles.front_mut()?;
        let pending = cycle.results.pop_front()?;
        let simple = pending.portal.is_none();
        let limit = pending.admitted.as_ref().and_then(|a| a.row_limit.as_ref());
        let exceeded = limit
            .filter(|l| sqlstate.is_none() && rows > l.max)
            .cloned();
        let refusal = exceeded
            .as_ref()
            .map(|l| crate::enforce::row_limit_exceeded(l, rows));
        if simple {
            if cycle.exceeded.is_none() {
                cycle.exceeded = refusal;
            }
        } else if limit.is_some() && matches!(self.awaiting, Awaiting::Execute) {
            self.awaiting = Awaiting::Decided(Verdict {
                exceeded: refusal,
                status: self.status,
                copied: cycle.copy_in_seen,
            });
        }
        Some(Finished {
            admitted: pending.admitted,
            rows,
            bytes,
            duration: pending.started.elapsed(),
            sqlstate,
            masked: Counts::default(),
            columns: None,
            kept: Vec::new(),
            exceeded,
            simple,
        })
    }

    /// Whether the response stream is in a simple-query cycle (where RowDescription belongs
    /// to the running statement, not to a Describe).
    pub(crate) fn front_is_simple(&self) -> bool {
        self.cycles
            .front()
            .is_some_and(|c| c.simple || (c.then_query && c.unanswered == 0))
    }

    /// The row bound of the statement at the front of the response stream: the rows it
    /// returns beyond it are not shown (a refusal follows).
    pub(crate) fn front_row_limit(&self) -> Option<u64> {
        self.front_pending()?
            .admitted
            .as_ref()?
            .row_limit
            .as_ref()
            .map(|l| l.max)
    }

    /// Whether the server message `tag`, about to be read, belongs to the gateway's own
    /// exchange rather than the client's (see [`Role`]).
    pub(crate) fn front_hides(&self, tag: u8) -> bool {
        use portcullis_pgwire::tag;
        let Some(c) = self.cycles.front() else {
            return false;
        };
        match (c.role, tag) {
            (Role::Begin, _) => true,
            (Role::End, tag::COMMAND_COMPLETE) => true,
            (_, tag::READY_FOR_QUERY) => {
                c.hide_ready || (c.decides && (c.wrapped || c.exceeded.is_some()))
            }
            _ => false,
        }
    }

    /// Whether the statement at the front of the response stream may be masked: it has a
    /// masker, or the gateway has no decision for it (then the session's fallback applies).
    pub(crate) fn front_masked(&self) -> bool {
        self.front_pending()
            .is_some_and(|p| p.admitted.as_ref().is_none_or(|a| a.masker.is_some()))
    }

    /// The masker of the statement at the front of the response stream, for the errors and
    /// notices it causes: `Some(masker)` when the gateway decided it (`masker` is `None` when
    /// its answers pass unmasked), `None` when no statement it decided is running.
    pub(crate) fn front_masker(&self) -> Option<Option<Masker>> {
        let admitted = self.front_pending()?.admitted.as_ref()?;
        Some(admitted.masker.clone())
    }

    /// The lineage of the statement at the front of the response stream, if it has one.
    pub(crate) fn front_lineage(&self) -> Option<Followed> {
        self.front_pending()?.admitted.as_ref()?.followed()
    }

    fn front_pending(&self) -> Option<&Pending> {
        self.cycles.front()?.results.front()
    }

    /// A RowDescription (`Some`) or NoData (`None`) answered the front Describe.
    pub(crate) fn described(&mut self, fields: Option<Arc<[FieldDescription]>>) {
        let Some(target) = self.answered().and_then(|c| c.describes.pop_front()) else {
            return;
        };
        let Some(fields) = fields else { return };
        let _ = match target {
            Describing::Statement(Some(p)) => p.described.set(fields),
            Describing::Portal(Some(p)) => p.described.set(fields),
            _ => Ok(()),
        };
    }

    /// The result columns of the statement at the front of the response stream, from the
    /// Describe of its portal or statement (extended protocol).
    pub(crate) fn front_columns(&self) -> Option<Arc<[FieldDescription]>> {
        let portal = self.front_pending()?.portal.as_ref()?;
        portal
            .described
            .get()
            .or_else(|| portal.statement.as_ref().and_then(|s| s.described.get()))
            .cloned()
    }

    /// How to mask the rows now arriving, for the statement at the front of the response
    /// stream. `simple` is the RowDescription a simple-query statement sent. Rows of a
    /// statement the gateway did not decide (a portal it never saw bound: a cursor a function
    /// opened) are masked with `fallback`, the session's masking for what no decision owns.
    pub(crate) fn rows_plan(
        &self,
        simple: Option<&[FieldDescription]>,
        fallback: impl FnOnce() -> Option<Masker>,
    ) -> RowsPlan {
        let (masker, lineage) = match self.front_pending() {
            Some(Pending {
                admitted: Some(a), ..
            }) => (a.masker.clone(), a.followed()),
            Some(Pending { admitted: None, .. }) | None => (fallback(), None),
        };
        let Some(masker) = masker else {
            return RowsPlan::Clear;
        };
        let Some(pending) = self.front_pending() else {
            return RowsPlan::Masked(Arc::new(ResultPlan::blind(masker, None)));
        };
        let plan = match (simple, &pending.portal) {
            (Some(fields), None) => ResultPlan::new(masker, fields, None, lineage),
            (_, Some(portal)) => match (
                portal.described.get(),
                portal.statement.as_ref().and_then(|s| s.described.get()),
            ) {
                (Some(fields), _) => ResultPlan::new(masker, fields, None, lineage),
                (None, Some(fields)) => {
                    ResultPlan::new(masker, fields, Some(&portal.formats), lineage)
                }
                (None, None) => ResultPlan::blind(masker, lineage),
            },
            (None, None) => ResultPlan::blind(masker, lineage),
        };
        RowsPlan::Masked(Arc::new(plan))
    }

    /// An ErrorResponse arrived: the rest of the cycle did not happen. Returns the denial to
    /// show instead when this is the error the injected statement provoked.
    pub(crate) fn error(&mut self, fields: &ErrorFields) -> Option<Denial> {
        let mut cycle = self.cycles.pop_front()?;
        self.undo(&mut cycle);
        // The bounded Execute awaited is in this cycle: it failed, or will be skipped.
        let bounded = |p: &Pending| {
            p.portal.is_some() && p.admitted.as_ref().is_some_and(|a| a.row_limit.is_some())
        };
        if matches!(self.awaiting, Awaiting::Execute) && cycle.results.iter().any(bounded) {
            self.awaiting = Awaiting::Decided(Verdict {
                exceeded: None,
                status: self.status,
                copied: cycle.copy_in_seen,
            });
        }
        // An extended message failed before the Query that followed it could run.
        cycle.skips_to_sync |= cycle.then_query && cycle.unanswered > 0;
        let denial = if is_marker(fields) {
            cycle.denial.take()
        } else {
            None
        };
        self.cycles.push_front(cycle);
        denial
    }

    /// CopyInResponse: the server is in copy-in mode.
    pub(crate) fn copy_in(&mut self) {
        if let Some(c) = self.cycles.front_mut() {
            c.copy_in_seen = true;
        }
    }

    /// ReadyForQuery ends the front cycle. If the server was in copy-in mode there, the Syncs
    /// the client sent meanwhile were swallowed, so the cycles they seemed to close are part
    /// of this one and end here too. If it was skipping to a Sync (an extended message failed
    /// before a Query), the cycles up to the one that Sync closes were skipped and end here.
    pub(crate) fn ready(&mut self, status: TransactionStatus) {
        self.status = status;
        if let Some(c) = self.cycles.front_mut()
            && c.decides
        {
            self.awaiting = Awaiting::Decided(Verdict {
                exceeded: c.exceeded.take(),
                status,
                copied: c.copy_in_seen,
            });
        }
        let mut in_copy = false;
        let mut skipping = false;
        while let Some(mut cycle) = self.cycles.pop_front() {
            self.queued = self.queued.saturating_sub(1 + cycle.unanswered);
            self.undo(&mut cycle);
            in_copy |= cycle.copy_in_seen;
            skipping |= cycle.skips_to_sync;
            let closed_by_sync = !cycle.simple && !cycle.then_query;
            let more = (in_copy && cycle.swallowable) || (skipping && !closed_by_sync);
            // The open extended cycle has not sent its Sync: nothing of it was answered.
            let next_open = self.open_extended && self.cycles.len() == 1;
            if !more || next_open {
                break;
            }
        }
        if self.cycles.is_empty() {
            self.open_extended = false;
            self.quiet_since = tokio::time::Instant::now();
        }
    }

    /// A ParameterStatus from the server. The door follows client_encoding and the encoding
    /// of the database; a value it cannot follow ends the session (this is also the backstop
    /// for a change the door did not see coming, e.g. inside a function).
    pub(crate) fn parameter_status(&mut self, name: &str, value: &str) -> Result<(), PgError> {
        let unreadable = || PgError::EncodingChanged(format!("{name} = {value}"));
        match name {
            "client_encoding" => {
                self.encoding = ClientEncoding::lookup(value)
                    .filter(|e| e.is_safe())
                    .ok_or_else(unreadable)?;
            }
            "server_encoding" => {
                self.server_encoding = ClientEncoding::lookup(value)
                    .filter(|e| e.is_safe())
                    .ok_or_else(unreadable)?;
            }
            // Off, `'\'` would end a string for the server but not for the parser here.
            "standard_conforming_strings" if value != "on" => return Err(unreadable()),
            "default_transaction_read_only" if self.read_only && value != "on" => {
                return Err(PgError::ReadOnlyUndone(format!("{name} = {value}")));
            }
            _ => {}
        }
        Ok(())
    }

    fn undo(&mut self, cycle: &mut Cycle) {
        let pending: Vec<Change> = cycle
            .parses
            .drain(..)
            .chain(cycle.closes.drain(..))
            .chain(cycle.commands.drain(..))
            .flatten()
            .collect();
        for change in pending.into_iter().rev() {
            for (name, old) in change.into_iter().rev() {
                match old {
                    Some(v) => self.statements.insert(name, v),
                    None => self.statements.remove(&name),
                };
            }
        }
    }
}

/// The syntax error the injected statement provokes. The SQLSTATE is fixed and the message,
/// in any server language, quotes the offending token.
pub(crate) fn is_marker(fields: &ErrorFields) -> bool {
    fields.code() == Some(b"42601")
        && fields
            .message()
            .is_some_and(|m| m.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()))
}
