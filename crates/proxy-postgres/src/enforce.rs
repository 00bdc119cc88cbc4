//! Takes each statement through the session engine (decide, audit, hold, masking) and turns
//! its answer into what the relay does: forward, or replace with a denial. The door never
//! evaluates policy itself; what it adds is SQL's: the catalog's reading of a statement,
//! writes that would launder sensitive values, and whether a row limit can be enforced.

use std::borrow::Cow;
use std::sync::Arc;

use portcullis_pipeline::session::{Command, Exact, NeedsReview, Ran, Session};
use portcullis_pipeline::{Code, Refusal};
use portcullis_policy::RowLimit;
use portcullis_sql::Statement;
use serde_json::Value;

use portcullis_masking::Masker;

use crate::cache::Classified;
use crate::hold::Holder;
use crate::relay::state::Finished;

/// What the client is told in place of a statement that does not run: the engine's typed
/// refusal, rendered as an ErrorResponse in one place (`respond.rs`).
pub(crate) type Denial = Refusal;

/// Shared so a Parse-time decision can be carried to the Bind that runs it.
pub(crate) type Need = Arc<NeedsReview>;

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

/// Everything a decision needs about the session.
pub(crate) struct Enforcer<'a> {
    /// The engine's session: decisions, audit, holds, masking obligations.
    pub(crate) session: &'a Session,
    /// Write statements to the audit with literals replaced by placeholders.
    pub(crate) redact_literals: bool,
    /// How a held statement's client is told and cancels.
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
        let Ok(Some(masker)) = self
            .session
            .masker(self.session.masks_of(portcullis_sql::ids::SELECT, facts))
            .await
        else {
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
        Some(Refusal::new(
            Code::SensitiveCopy,
            format!(
                "portcullis: this statement would store values made of a sensitive column{into}, \
                 where masking could not follow them"
            ),
            "write values that do not come from sensitive columns, or store them only in \
             columns that are sensitive themselves",
        ))
    }

    /// Holds the command if one of its statements needs approval. One review covers one
    /// command, so a string with several such statements is refused rather than guessed at.
    async fn hold_any(&self, admitted: &[Arc<Admitted>], exact: &Exact<'_>) -> Result<(), Denial> {
        let mut needs = admitted.iter().filter_map(|a| a.review.as_ref());
        let Some(need) = needs.next() else {
            return Ok(());
        };
        if needs.next().is_some() {
            return Err(Refusal::new(
                Code::ApprovalOneAtATime,
                "portcullis: more than one statement of this command needs approval",
                "send each statement that needs approval on its own",
            ));
        }
        self.hold(need, exact).await
    }

    /// Holds a statement decided earlier (at its Parse) now that it is about to run.
    pub(crate) async fn hold(&self, need: &NeedsReview, exact: &Exact<'_>) -> Result<(), Denial> {
        self.session.hold(need, exact, &self.holder).await
    }

    async fn one(
        &self,
        statement: &Statement,
        facts: &Value,
        command: &str,
        catalog: Option<Arc<crate::catalog::Catalog>>,
    ) -> Result<Arc<Admitted>, Denial> {
        use portcullis_sql::ids;
        // Data leaves through every statement, not only reads: the rows a write RETURNs, and
        // the text of any statement's error (`UPDATE t SET n = email::int` quotes the
        // email). So a statement that is not a read is masked at least as a read with the
        // same facts would be.
        let reads = matches!(statement.action, ids::SELECT | ids::COPY_TO | ids::EXPLAIN);
        let ask = Command {
            action: statement.action,
            facts,
            audit: command,
            display: &statement.normalized,
            noun: "statement",
            masked_as: (!reads).then_some(ids::SELECT),
        };
        let admission = self
            .session
            .decide(&ask)
            .await
            .map_err(|r| r.with_context(detail(statement)))?;
        // A bound matters only where rows change; where the server's count would not be
        // every row changed, the statement is refused rather than run unbounded.
        let row_limit = admission.row_limit.filter(|_| statement.modifies_data);
        if let Some(limit) = &row_limit
            && !countable(statement, facts)
        {
            let denial = row_limit_unenforceable(limit);
            return Err(self.refuse(statement.action, command, denial).await);
        }
        let masker = admission.masker;
        Ok(Arc::new(Admitted {
            seq: admission.seq,
            command: command.to_owned(),
            action: statement.action,
            // Lineage costs about a parse: only a masked statement needs it.
            lineage: masker.as_ref().and_then(|_| statement.lineage()),
            masker,
            review: admission.review,
            catalog,
            row_limit,
        }))
    }

    /// The masker for what the server says that no statement of the session owns: a NOTIFY
    /// from another session, a notice or error between statements, the rows of a portal the
    /// gateway never saw bound (one a function opened): every profile this session was
    /// masked with, the connection's own and what a plain read would get.
    pub(crate) fn fallback_masker(&self) -> Option<Masker> {
        let plain_read = serde_json::json!({"sql": {
            "parsed": true, "has_where": false, "statement_count": 1, "tables": [],
            "functions": [], "modifies_data": false,
        }});
        self.session
            .fallback_masker((portcullis_sql::ids::SELECT, &plain_read))
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
        let refused = done.exceeded.as_ref().map(|limit| {
            let facts = serde_json::json!({"row_limit": {
                "max": limit.max, "policy": limit.policy, "count": done.rows,
            }});
            (Code::RowLimitExceeded, facts)
        });
        let ran = Ran {
            seq: done.admitted.as_ref().map(|a| a.seq),
            action: done.admitted.as_ref().map(|a| a.action),
            rows: done.rows,
            bytes: done.bytes,
            duration: done.duration,
            error_key: "sqlstate",
            error: done.sqlstate,
            masked: done.masked,
            refused,
        };
        self.session.result(&ran).await;
    }

    /// The FunctionCall message runs a function by OID, bypassing SQL text entirely: the
    /// gateway cannot classify it, so it is always refused (audited like every refusal).
    pub(crate) async fn function_call(&self, oid: u32) -> Denial {
        self.refuse(
            "sql.function_call",
            &format!("FunctionCall oid={oid}"),
            Refusal::new(
                Code::FunctionCallForbidden,
                "portcullis: the FunctionCall message is not allowed",
                "call the function from a SQL statement instead, e.g. SELECT f(...)",
            )
            .with_context(format!("function oid {oid}")),
        )
        .await
    }

    /// A refusal of the gateway's own, before any policy is asked (the statement cannot be
    /// read as the server would read it, or would switch the session to an encoding the
    /// gateway cannot follow): audited by the engine as a denied decision with its code.
    pub(crate) async fn refuse(&self, action: &str, command: &str, denial: Denial) -> Denial {
        self.session.refuse(action, command, denial).await
    }
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
    Refusal::new(
        Code::RowLimitUnenforceable,
        format!(
            "portcullis: policy {} allows at most {} changed rows per statement, and the server \
             cannot count every row this statement would change",
            limit.policy, limit.max
        ),
        "write it as one plain INSERT, UPDATE, DELETE, MERGE or COPY FROM (no write in a \
         WITH clause, no EXPLAIN ANALYZE, no function, trigger or rule that writes), \
         executed whole",
    )
    .with_policies(vec![limit.policy.clone()])
}

/// The refusal of a statement that changed more rows than its bound: the change is rolled
/// back before the client sees its result.
pub(crate) fn row_limit_exceeded(limit: &RowLimit, count: u64) -> Denial {
    Refusal::new(
        Code::RowLimitExceeded,
        format!(
            "portcullis: this statement would change {count} rows; policy {} allows at most {} \
             (the change was not kept)",
            limit.policy, limit.max
        ),
        format!(
            "narrow the WHERE clause, or change the rows in batches of at most {}",
            limit.max
        ),
    )
    .with_policies(vec![limit.policy.clone()])
}

/// A statement that names something the connection's catalog must show, which could never be
/// read (fail closed).
fn catalog_unavailable() -> Denial {
    Refusal::new(
        Code::CatalogUnavailable,
        "portcullis: the connection's catalog could not be read, so what this statement \
         reaches cannot be checked",
        "retry shortly; if it persists, tell the operator (the gateway log says why)",
    )
}

/// Statements after which the catalog may hold something new.
fn changes_schema(action: &str) -> bool {
    matches!(
        action,
        portcullis_sql::ids::DDL | portcullis_sql::ids::ADMIN
    )
}
