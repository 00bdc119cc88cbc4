//! Asks the pipeline about each statement and turns its answer into what the relay does:
//! forward, or replace with a denial. The door never evaluates policy itself.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use portcullis_audit::{Event, Who};
use portcullis_identity::Principal;
use portcullis_pipeline::{Ask, Decided, Origin, Pipeline, Refusal};
use portcullis_policy::{ConnectionInfo, Decision, RowLimit, Target};
use portcullis_sql::Statement;
use serde_json::Value;

use portcullis_masking::{Counts, Masker};

use crate::cache::Classified;
use crate::hold::{Exact, Holder, Need, NeedsReview};
use crate::mask::Maskers;
use crate::relay::state::Finished;

/// What the client is told in place of a statement that does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denial {
    pub(crate) sqlstate: &'static str,
    pub(crate) message: String,
    pub(crate) detail: Option<String>,
    pub(crate) hint: Option<String>,
}

/// The outcome of checking one client message's SQL.
#[derive(Debug)]
pub(crate) struct Checked {
    /// `None`: every statement is allowed.
    pub(crate) denial: Option<Denial>,
    /// Decisions taken (each left one audit event).
    pub(crate) decided: u64,
    /// One per statement allowed, in order (all of them when `denial` is `None`).
    pub(crate) admitted: Vec<Arc<Admitted>>,
}

/// A statement the policy allowed: what its result event refers back to.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The audit seq of the `decision` event.
    pub(crate) seq: i64,
    /// The statement as audited (literal-free unless configured otherwise).
    pub(crate) command: String,
    pub(crate) action: &'static str,
    /// How its results are masked; `None`: they pass as they are.
    pub(crate) masker: Option<Masker>,
    /// Set when the policy asked for approval and the statement was not held yet (decided
    /// at Parse): the Bind that runs it holds it, with its parameters.
    pub(crate) review: Option<Need>,
    /// Where its result columns come from, so masking follows the data (computed only for
    /// a masked statement).
    pub(crate) lineage: Option<Arc<portcullis_sql::Lineage>>,
    /// The catalog it was decided with, for following view columns.
    pub(crate) catalog: Option<Arc<crate::catalog::Catalog>>,
    /// The most rows it may change (`@max_rows`), set only on a statement that changes data:
    /// the door checks the server's count before the change can commit.
    pub(crate) row_limit: Option<RowLimit>,
}

impl Admitted {
    /// Its lineage with the catalog it was decided with, for masking its results.
    pub(crate) fn followed(&self) -> Option<crate::mask::Followed> {
        Some(crate::mask::Followed {
            lineage: self.lineage.clone()?,
            catalog: self.catalog.clone(),
        })
    }
}

/// What each statement's `EXECUTE name` or `FETCH`/`MOVE ... name` refers to, following the
/// statements of the same message in order: `DEALLOCATE q; PREPARE q AS DELETE ...; EXECUTE
/// q` runs the DELETE, not the statement `q` named before the message, and a cursor declared
/// earlier in the message is the one a FETCH reads. Names the message does not touch are
/// resolved with `resolve` (the session's map).
pub(crate) fn resolve_in_order(
    statements: &[Statement],
    resolve: impl Fn(Named<'_>) -> Option<Arc<Classified>>,
) -> Vec<Option<Arc<Classified>>> {
    use portcullis_sql::CursorOp;
    use std::collections::HashMap;
    // Changes made by earlier statements of the message: `None` is a name dropped.
    let mut prepared: HashMap<&str, Option<Arc<Classified>>> = HashMap::new();
    let mut cursors: HashMap<&str, Option<Arc<Classified>>> = HashMap::new();
    let (mut all_prepared_gone, mut all_cursors_gone) = (false, false);
    let mut out = Vec::with_capacity(statements.len());
    for s in statements {
        let lookup = |changed: &HashMap<&str, Option<Arc<Classified>>>, gone: bool, named| {
            let name = match named {
                Named::Prepared(n) | Named::Cursor(n) => n,
            };
            match changed.get(name) {
                Some(now) => now.clone(),
                None if gone => None,
                None => resolve(named),
            }
        };
        out.push(match (&s.execute_name, &s.cursor) {
            (Some(name), _) => lookup(&prepared, all_prepared_gone, Named::Prepared(name)),
            (None, Some(CursorOp::Fetch { name } | CursorOp::Move { name })) => {
                lookup(&cursors, all_cursors_gone, Named::Cursor(name))
            }
            _ => None,
        });
        let this = || Some(Arc::new(Classified::single(s.clone())));
        if let Some(name) = &s.prepare_name {
            prepared.insert(name, this());
        }
        if let Some(name) = &s.deallocate_name {
            prepared.insert(name, None);
        }
        let resets_all = s.action == portcullis_sql::ids::ADMIN
            && s.client_encoding == Some(portcullis_sql::SettingChange::Default);
        if s.deallocate_all || resets_all {
            prepared.clear();
            all_prepared_gone = true;
        }
        match &s.cursor {
            Some(CursorOp::Declare { name, .. }) => {
                cursors.insert(name, this());
            }
            Some(CursorOp::Close { name: Some(name) }) => {
                cursors.insert(name, None);
            }
            Some(CursorOp::Close { name: None }) => {
                cursors.clear();
                all_cursors_gone = true;
            }
            _ => {}
        }
    }
    out
}

/// A name a statement refers to that the session defined earlier.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Named<'a> {
    /// `EXECUTE name`: a statement prepared with `PREPARE`.
    Prepared(&'a str),
    /// `FETCH`/`MOVE ... name`: a cursor opened with `DECLARE`.
    Cursor(&'a str),
}

/// Whether a statement that needs approval is held now, for its exact text and parameters,
/// or later (a Parse: nothing runs until a Bind, which brings the parameters).
pub(crate) enum Mode<'a> {
    Defer,
    Now(Exact<'a>),
}

/// The session's masking: the door's profiles, the connection's own, and whether this
/// principal may see raw values (asked once, on first need).
pub(crate) struct Masking<'a> {
    pub(crate) maskers: &'a Maskers,
    pub(crate) profile: Option<&'a str>,
    pub(crate) unmask: tokio::sync::OnceCell<bool>,
    /// Every profile a statement of this session was masked with, for what no statement
    /// owns (see [`Enforcer::fallback_masker`]).
    pub(crate) seen: Mutex<BTreeSet<String>>,
}

impl<'a> Masking<'a> {
    pub(crate) fn new(maskers: &'a Maskers, profile: Option<&'a str>) -> Self {
        Self {
            maskers,
            profile,
            unmask: tokio::sync::OnceCell::new(),
            seen: Mutex::new(BTreeSet::new()),
        }
    }
}

/// Everything a decision needs about the session.
pub(crate) struct Enforcer<'a> {
    pub(crate) pipeline: &'a Pipeline,
    pub(crate) principal: &'a Principal,
    pub(crate) target: &'a ConnectionInfo,
    pub(crate) origin: &'a Origin,
    /// Write statements to the audit with literals replaced by placeholders.
    pub(crate) redact_literals: bool,
    pub(crate) masking: Masking<'a>,
    pub(crate) holder: Holder<'a>,
    /// The connection's catalog, for what statements really reach (`None`: decided by
    /// their text alone, as the exec door's unit tests do).
    pub(crate) catalog: Option<CatalogRef<'a>>,
    /// A schema change ran in this session: its transaction's end reads the catalog again
    /// (what a transaction created is visible to the catalog's reader only once committed).
    pub(crate) schema_changed: std::sync::atomic::AtomicBool,
}

/// Where the session's connection keeps its catalog.
pub(crate) struct CatalogRef<'a> {
    pub(crate) target: &'a crate::door::TargetRt,
    pub(crate) limits: portcullis_pgwire::Limits,
}

impl Enforcer<'_> {
    /// Decides every statement of `classified` in order, stopping at the first that is not
    /// allowed (the statements after it never reach a decision, as they never run).
    /// `resolve` maps a SQL-level `EXECUTE name` to the statement prepared under that name,
    /// and `FETCH`/`MOVE` to the query of the cursor they read, so that each is decided (and
    /// masked) as what it runs; it is called before the first await, so it may briefly take
    /// a lock.
    pub(crate) async fn check(
        &self,
        classified: &Classified,
        resolve: impl Fn(Named<'_>) -> Option<Arc<Classified>>,
        mode: Mode<'_>,
    ) -> Checked {
        let statements = &classified.classification.statements;
        let resolved = resolve_in_order(statements, resolve);
        let mut decided = 0;
        let mut admitted = Vec::with_capacity(statements.len());
        for (i, (statement, prepared)) in statements.iter().zip(resolved).enumerate() {
            let own = &classified.facts[i.min(classified.facts.len().saturating_sub(1))];
            // `EXECUTE name` is what was prepared (an unknown name stays `sql.admin`); a
            // FETCH is the cursor's query (an unknown cursor, one a function opened, stays
            // a plain read).
            let (subject, facts) = match prepared.as_deref() {
                Some(p) => match (p.classification.statements.first(), p.facts.first()) {
                    (Some(inner), Some(f)) => (inner, f),
                    _ => (statement, own),
                },
                None => (statement, own),
            };
            decided += 1;
            // Normalized: literals are replaced, so values in the SQL never reach the audit.
            let command = if self.redact_literals {
                &statement.normalized
            } else {
                &statement.text
            };
            // What the catalog says it reaches: views, user functions, triggers, rules.
            let resolved = match self.resolve(subject).await {
                Ok(r) => r,
                Err(denial) => {
                    return Checked {
                        denial: Some(denial),
                        decided,
                        admitted,
                    };
                }
            };
            let (subject, facts, catalog) = match resolved {
                Some((r, catalog)) => (
                    Cow::Owned(r.statement(subject)),
                    Cow::Owned(r.facts(facts)),
                    Some(catalog),
                ),
                None => (Cow::Borrowed(subject), Cow::Borrowed(facts), None),
            };
            if let Some(denial) = self.launders(&subject, &facts, catalog.as_deref()).await {
                let denial = self.refuse(subject.action, command, denial).await;
                return Checked {
                    denial: Some(denial),
                    decided,
                    admitted,
                };
            }
            match self.one(&subject, &facts, command, catalog).await {
                Ok(a) => admitted.push(a),
                Err(denial) => {
                    return Checked {
                        denial: Some(denial),
                        decided,
                        admitted,
                    };
                }
            }
        }
        let denial = match mode {
            Mode::Now(exact) => self.hold_any(&admitted, &exact).await.err(),
            Mode::Defer => None,
        };
        Checked {
            denial,
            decided,
            admitted,
        }
    }

    /// The catalog's reading of `statement`, `None` when there is nothing to read (no
    /// relation, function or operator named) or no catalog. A connection whose catalog cannot be read
    /// at all refuses the statements that need it (fail closed).
    async fn resolve(
        &self,
        statement: &Statement,
    ) -> Result<Option<(crate::catalog::Resolved, Arc<crate::catalog::Catalog>)>, Denial> {
        let Some(c) = &self.catalog else {
            return Ok(None);
        };
        if statement.tables.is_empty()
            && statement.functions.is_empty()
            && statement.operators.is_empty()
        {
            return Ok(None);
        }
        let (cache, safe) = (&c.target.catalog, &c.target.target.safe_functions);
        let Some(mut catalog) = cache.current(c.target, c.limits, false).await else {
            return Err(catalog_unavailable());
        };
        let mut resolved = catalog.resolve(statement, safe);
        if resolved.unknown {
            // A name it does not know: one more read (at most one a second), then the
            // statement is decided with what is known.
            if let Some(newer) = cache.current(c.target, c.limits, true).await
                && !Arc::ptr_eq(&newer, &catalog)
            {
                resolved = newer.resolve(statement, safe);
                catalog = newer;
            }
        }
        Ok(Some((resolved, catalog)))
    }

    /// A write that would store values made of a sensitive column in a column that is not
    /// one (`UPDATE notes SET body = reverse(card)`, `CREATE TABLE t AS SELECT ... ssn ...`,
    /// `INSERT INTO copy SELECT * FROM customers`) moves the data where masking cannot follow
    /// it: refused to a principal whose reads are masked, before it is decided (masked as a
    /// read with the same facts would be; one who may `data.unmask` sees the values anyway).
    async fn launders(
        &self,
        statement: &Statement,
        facts: &Value,
        catalog: Option<&crate::catalog::Catalog>,
    ) -> Option<Denial> {
        use portcullis_sql::ids;
        if !statement.modifies_data && statement.action != ids::DDL {
            return None;
        }
        // Masked as a read with these facts would be (none: nothing to launder from).
        let Ok(Some(masker)) = self.masker(self.read_masks(facts)).await else {
            return None;
        };
        let lineage = statement.lineage()?;
        let laundered = lineage.stored.iter().find(|s| {
            crate::mask::derived_plan(&masker, catalog, &s.sources).is_some()
                && !crate::mask::column_sensitive(
                    &masker,
                    catalog,
                    s.table.as_deref(),
                    s.column.as_deref(),
                )
        })?;
        let into = match (&laundered.table, &laundered.column) {
            (Some(t), Some(c)) => format!(" into {t}.{c}"),
            (Some(t), None) => format!(" into {t}"),
            _ => String::new(),
        };
        Some(Denial {
            sqlstate: "42501",
            message: format!(
                "portcullis: this statement would store values made of a sensitive column{into}, \
                 where masking could not follow them"
            ),
            detail: Some("code: sensitive_copy".into()),
            hint: Some(
                "write values that do not come from sensitive columns, or store them only in \
                 columns that are sensitive themselves"
                    .into(),
            ),
        })
    }

    /// Holds the command if one of its statements needs approval. One review covers one
    /// command, so a string with several such statements is refused rather than guessed at.
    async fn hold_any(&self, admitted: &[Arc<Admitted>], exact: &Exact<'_>) -> Result<(), Denial> {
        let mut needs = admitted.iter().filter_map(|a| a.review.as_ref());
        let Some(need) = needs.next() else {
            return Ok(());
        };
        if needs.next().is_some() {
            return Err(Denial {
                sqlstate: "42501",
                message: "portcullis: more than one statement of this command needs approval"
                    .into(),
                detail: Some("code: approval_one_at_a_time".into()),
                hint: Some("send each statement that needs approval on its own".into()),
            });
        }
        self.hold(need, exact).await
    }

    /// Holds a statement decided earlier (at its Parse) now that it is about to run.
    pub(crate) async fn hold(&self, need: &NeedsReview, exact: &Exact<'_>) -> Result<(), Denial> {
        let requester = crate::hold::requester(self.principal);
        self.holder
            .hold(need, requester, &self.target.name, self.origin, exact)
            .await
    }

    async fn one(
        &self,
        statement: &Statement,
        facts: &Value,
        command: &str,
        catalog: Option<Arc<crate::catalog::Catalog>>,
    ) -> Result<Arc<Admitted>, Denial> {
        let ask = Ask {
            action: statement.action,
            target: Target::Connection(self.target),
            facts,
            command: Some(command),
        };
        let (masks, review, seq, row_limit) = match self
            .pipeline
            .decide_audited(self.principal, &ask, self.origin)
            .await
        {
            Ok(Decided {
                decision:
                    Decision::Allow {
                        masks, max_rows, ..
                    },
                seq,
            }) => (masks, None, seq, max_rows),
            Ok(Decided {
                decision:
                    Decision::RequireApproval {
                        policies,
                        reviewers,
                        approvals,
                        masks,
                        max_rows,
                    },
                seq,
            }) if self.holder.reviews.is_some() => {
                let review = Arc::new(NeedsReview {
                    action: statement.action,
                    display: statement.normalized.clone(),
                    policies,
                    reviewers,
                    approvals,
                });
                (masks, Some(review), seq, max_rows)
            }
            Ok(d) => return Err(denied(&d.decision, statement, &self.target.name)),
            Err(refusal) => return Err(refused(&refusal)),
        };
        // A bound matters only where rows change; where the server's count would not be
        // every row changed, the statement is refused rather than run unbounded.
        let row_limit = row_limit.filter(|_| statement.modifies_data);
        if let Some(limit) = &row_limit
            && !countable(statement, facts)
        {
            let denial = row_limit_unenforceable(limit);
            return Err(self.refuse(statement.action, command, denial).await);
        }
        let masker = self
            .masker(self.with_read_masks(statement, facts, masks))
            .await?;
        Ok(Arc::new(Admitted {
            seq,
            command: command.to_owned(),
            action: statement.action,
            // Lineage costs about a parse: only a masked statement needs it.
            lineage: masker.as_ref().and_then(|_| statement.lineage()),
            masker,
            review,
            catalog,
            row_limit,
        }))
    }

    /// Data leaves through every statement, not only reads: the rows a write RETURNs, and
    /// the text of any statement's error (`UPDATE t SET n = email::int` quotes the email).
    /// So a statement that is not a read is masked at least as a read with the same facts
    /// would be: the masks the policy attaches to `sql.select` here are added to its own.
    /// This asks the policy without an audit event (`preview`): it grants nothing and only
    /// shapes what the answer shows. A principal who may not read at all gets its own
    /// decision's masks and the connection's profile.
    fn with_read_masks(
        &self,
        statement: &Statement,
        facts: &Value,
        mut masks: Vec<String>,
    ) -> Vec<String> {
        use portcullis_sql::ids;
        if matches!(statement.action, ids::SELECT | ids::COPY_TO | ids::EXPLAIN) {
            return masks;
        }
        masks.extend(self.read_masks(facts));
        masks
    }

    /// The `@mask` profiles a read with `facts` would be answered with.
    fn read_masks(&self, facts: &Value) -> Vec<String> {
        let ask = Ask {
            action: portcullis_sql::ids::SELECT,
            target: Target::Connection(self.target),
            facts,
            command: None,
        };
        match self.pipeline.preview(self.principal, &ask, self.origin) {
            Decision::Allow { masks, .. } | Decision::RequireApproval { masks, .. } => masks,
            Decision::Deny { .. } => Vec::new(),
        }
    }

    /// The masker for what the server says that no statement of the session owns: a NOTIFY
    /// from another session, a notice or error between statements, the rows of a portal the
    /// gateway never saw bound (one a function opened). It is the union of every profile
    /// this session was masked with, the connection's own and what a plain read would get;
    /// `None` when none applies or the principal may `data.unmask` here.
    pub(crate) fn fallback_masker(&self) -> Option<Masker> {
        if self.masking.unmask.get() == Some(&true) {
            return None;
        }
        let plain_read = serde_json::json!({"sql": {
            "parsed": true, "has_where": false, "statement_count": 1, "tables": [],
            "functions": [], "modifies_data": false,
        }});
        let mut names: BTreeSet<String> = self.read_masks(&plain_read).into_iter().collect();
        names.extend(self.masking.profile.map(str::to_owned));
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
        match self.masking.maskers.get(&names) {
            Ok(masker) => Some(masker),
            Err(e) => {
                tracing::error!(error = %e, "masking profiles cannot be built");
                None
            }
        }
    }

    /// The masker for a statement allowed with `masks` (the policies' `@mask` profiles) on
    /// top of the connection's profile; `None` when nothing masks it or the principal may
    /// `data.unmask` here. A profile set that cannot be built refuses the statement.
    async fn masker(&self, mut masks: Vec<String>) -> Result<Option<Masker>, Denial> {
        masks.extend(self.masking.profile.map(str::to_owned));
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
        self.masking.maskers.get(&masks).map(Some).map_err(|e| {
            tracing::error!(error = %e, "masking profiles cannot be built; refusing the statement");
            Denial {
                sqlstate: "58000",
                message: "portcullis: the masking profiles for this statement cannot be built".into(),
                detail: None,
                hint: Some("the gateway's masking configuration is broken; tell the operator (portcullis config check)".into()),
            }
        })
    }

    /// Whether the principal may see raw values on this connection: the `data.unmask`
    /// action, decided (and audited) once per session when first needed. Anything but an
    /// Allow, including an audit failure, keeps the masking on.
    async fn unmasked(&self) -> bool {
        *self
            .masking
            .unmask
            .get_or_init(|| async {
                let facts = Value::Null;
                let ask = Ask {
                    action: "data.unmask",
                    target: Target::Connection(self.target),
                    facts: &facts,
                    command: None,
                };
                matches!(
                    self.pipeline
                        .decide(self.principal, &ask, self.origin)
                        .await,
                    Ok(Decision::Allow { .. })
                )
            })
            .await
    }

    /// Queues the `statement.result` event of a statement that ran (or failed in the
    /// server). It is not waited for: the statement has already happened.
    pub(crate) async fn result(&self, done: Finished) {
        if let (Some(c), Some(a)) = (&self.catalog, &done.admitted) {
            use std::sync::atomic::Ordering;
            // What it created or dropped is read again before the next statement is decided,
            // and again when its transaction ends.
            let changed = changes_schema(a.action);
            if changed {
                self.schema_changed.store(true, Ordering::Relaxed);
            }
            let ended = a.action == portcullis_sql::ids::TRANSACTION
                && self.schema_changed.swap(false, Ordering::Relaxed);
            if changed || ended {
                c.target.catalog.invalidate();
            }
        }
        let outcome = match (&done.exceeded, &done.sqlstate) {
            (Some(_), _) => "refused",
            (None, Some(_)) => "error",
            (None, None) => "ok",
        };
        let mut data = serde_json::json!({
            "decision_seq": done.admitted.as_ref().map(|a| a.seq),
            "rows": done.rows,
            "bytes": done.bytes,
            "duration_us": u64::try_from(done.duration.as_micros()).unwrap_or(u64::MAX),
            "sqlstate": done.sqlstate,
            "masked": masked_counts(&done.masked),
        });
        if let Some(limit) = &done.exceeded {
            data["row_limit"] =
                serde_json::json!({"max": limit.max, "policy": limit.policy, "count": done.rows});
        }
        let event = Event {
            kind: "statement.result".into(),
            outcome: Some(outcome.into()),
            reason_code: done.exceeded.as_ref().map(|_| "row_limit_exceeded".into()),
            who: Some(Who::from(self.principal)),
            connection: Some(self.target.name.clone()),
            protocol: Some(self.origin.protocol.into()),
            session_id: self.origin.session_id.clone(),
            run_id: self.origin.run_id.clone(),
            tool_call_id: self.origin.tool_call_id.clone(),
            action: done.admitted.as_ref().map(|a| a.action.to_owned()),
            data: Some(data),
            ..Event::default()
        };
        self.pipeline.record_after(event).await;
    }

    /// The FunctionCall message runs a function by OID, bypassing SQL text entirely: the
    /// gateway cannot classify it, so it is always refused.
    pub(crate) async fn function_call(&self, oid: u32) -> Denial {
        self.refuse(
            "sql.function_call",
            &format!("FunctionCall oid={oid}"),
            Denial {
                sqlstate: "42501",
                message: "portcullis: the FunctionCall message is not allowed".into(),
                detail: Some(format!("function oid {oid}; code: function_call_forbidden")),
                hint: Some(
                    "call the function from a SQL statement instead, e.g. SELECT f(...)".into(),
                ),
            },
        )
        .await
    }

    /// A refusal of the gateway's own, before any policy is asked (the statement cannot be
    /// read as the server would read it, or would switch the session to an encoding the
    /// gateway cannot follow). It is audited as a denied decision with its reason code,
    /// which `denial`'s DETAIL carries as `code: ...`; an audit that cannot be written
    /// refuses the statement all the same, with that reason instead.
    pub(crate) async fn refuse(&self, action: &str, command: &str, denial: Denial) -> Denial {
        let code = denial
            .detail
            .as_deref()
            .and_then(|d| crate::respond::detail_field(d, "code"))
            .unwrap_or("gateway_refused")
            .to_owned();
        let event = Event {
            kind: "decision".into(),
            outcome: Some("deny".into()),
            who: Some(Who::from(self.principal)),
            source_ip: self.origin.source_ip.map(|i| i.to_string()),
            connection: Some(self.target.name.clone()),
            protocol: Some(self.origin.protocol.into()),
            session_id: self.origin.session_id.clone(),
            run_id: self.origin.run_id.clone(),
            tool_call_id: self.origin.tool_call_id.clone(),
            action: Some(action.to_owned()),
            command: Some(command.to_owned()),
            reason_code: Some(code),
            ..Event::default()
        };
        match self.pipeline.record(event).await {
            Ok(()) => denial,
            Err(refusal) => refused(&refusal),
        }
    }
}

/// Masked values by entity label, e.g. `{"EMAIL": 3}`; `null` when nothing was masked.
fn masked_counts(counts: &Counts) -> Value {
    if counts.is_empty() {
        return Value::Null;
    }
    counts
        .iter()
        .map(|(e, n)| (e.as_str().to_owned(), Value::from(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn detail(statement: &Statement) -> String {
    if statement.tables.is_empty() {
        format!("action: {}", statement.action)
    } else {
        format!(
            "action: {}; tables: {}",
            statement.action,
            statement.tables.join(", ")
        )
    }
}

/// Whether the server's count for `statement` is every row it changes: a plain write (see
/// [`Statement::counts_rows`]) that sets off no code which may write (trigger or called
/// function, unless the connection lists it as safe) and no rule (which adds or replaces
/// writes the count does not show).
fn countable(statement: &Statement, facts: &Value) -> bool {
    let none = |key: &str| {
        facts
            .pointer(&format!("/sql/{key}"))
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    statement.counts_rows && none("writing_functions") && none("rules")
}

fn row_limit_unenforceable(limit: &RowLimit) -> Denial {
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: policy {} allows at most {} changed rows per statement, and the server \
             cannot count every row this statement would change",
            limit.policy, limit.max
        ),
        detail: Some(format!(
            "code: row_limit_unenforceable; policies: {}",
            limit.policy
        )),
        hint: Some(
            "write it as one plain INSERT, UPDATE, DELETE, MERGE or COPY FROM (no write in a \
             WITH clause, no EXPLAIN ANALYZE, no function, trigger or rule that writes), \
             executed whole"
                .into(),
        ),
    }
}

/// The refusal of a statement that changed more rows than its bound: the change is rolled
/// back before the client sees its result.
pub(crate) fn row_limit_exceeded(limit: &RowLimit, count: u64) -> Denial {
    Denial {
        sqlstate: "42501",
        message: format!(
            "portcullis: this statement would change {count} rows; policy {} allows at most {} \
             (the change was not kept)",
            limit.policy, limit.max
        ),
        detail: Some(format!(
            "code: row_limit_exceeded; policies: {}",
            limit.policy
        )),
        hint: Some(format!(
            "narrow the WHERE clause, or change the rows in batches of at most {}",
            limit.max
        )),
    }
}

/// The client-facing message and hint for a decision other than Allow on `action`.
pub(crate) fn refusal_text(
    action: &str,
    decision: &Decision,
    connection: &str,
) -> (String, String) {
    match decision {
        Decision::Deny {
            policies,
            reason,
            hint,
            ..
        } => {
            let ids = if policies.is_empty() {
                "(default deny)".to_owned()
            } else {
                policies.join(", ")
            };
            let hint = if hint.is_empty() {
                format!("no policy permits {action} on connection {connection:?}; ask its owner for access or use a permitted statement")
            } else {
                hint.clone()
            };
            (format!("portcullis: {action} denied by policy {ids}: {reason}"), hint)
        }
        // Reached only where nothing can be held (no review service, or a connect): it does
        // not run.
        Decision::RequireApproval {
            policies,
            reviewers,
            approvals,
            ..
        } => (
            format!(
                "portcullis: {action} requires approval by {} ({approvals} needed; policy {}): approval_required",
                reviewers.join(", "),
                policies.join(", ")
            ),
            "this gateway holds nothing for review (approvals are off); ask a reviewer to run it, or the operator to enable approvals".into(),
        ),
        Decision::Allow { .. } => ("portcullis: internal error".into(), String::new()),
    }
}

/// The reason code of a decision that stops a request.
pub(crate) fn reason_code(decision: &Decision) -> &'static str {
    match decision {
        Decision::Deny { code, .. } => code.code(),
        _ => "approval_required",
    }
}

fn denied(decision: &Decision, statement: &Statement, connection: &str) -> Denial {
    let (message, hint) = refusal_text(statement.action, decision, connection);
    let code = reason_code(decision);
    // `code:` and `policies:` are machine-readable for clients (the exec API reads them).
    let mut detail = format!("{}; code: {code}", detail(statement));
    if !decision.policies().is_empty() {
        detail.push_str(&format!("; policies: {}", decision.policies().join(", ")));
    }
    Denial {
        sqlstate: "42501",
        message,
        detail: Some(detail),
        hint: Some(hint),
    }
}

/// The pipeline could not decide (the audit is down): nothing runs.
fn refused(refusal: &Refusal) -> Denial {
    Denial {
        sqlstate: "58000",
        message: format!("portcullis: statement refused: {}", refusal.code()),
        detail: None,
        hint: Some(refusal.hint().to_owned()),
    }
}

/// A statement that names something the connection's catalog must show, which could never be
/// read (fail closed).
fn catalog_unavailable() -> Denial {
    Denial {
        sqlstate: "58000",
        message: "portcullis: the connection's catalog could not be read, so what this \
                  statement reaches cannot be checked"
            .into(),
        detail: Some("code: catalog_unavailable".into()),
        hint: Some(
            "retry shortly; if it persists, tell the operator (the gateway log says why)".into(),
        ),
    }
}

/// Statements after which the catalog may hold something new.
fn changes_schema(action: &str) -> bool {
    matches!(
        action,
        portcullis_sql::ids::DDL | portcullis_sql::ids::ADMIN
    )
}
