//! The classifier's output: what each statement is, and the facts the policy sees.

use serde::Serialize;
use serde_json::{Value, json};

/// The classification of one SQL input (one simple-query message or one `Parse`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// False when PostgreSQL's grammar rejects the input; the one statement is then `sql.admin`.
    pub parsed: bool,
    /// One entry per statement, in input order. Empty for empty input or only comments.
    pub statements: Vec<Statement>,
    /// The parser's message when `parsed` is false (its own position info, nothing more).
    pub error: Option<String>,
}

/// One statement of the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// The Cedar action id (see [`crate::ids`]).
    pub action: &'static str,
    /// Tables read or written, schema-qualified when written so; CTE names excluded. Sorted.
    pub tables: Vec<String>,
    /// For UPDATE/DELETE (including data-modifying CTEs and upserts): every such write has a
    /// WHERE that can limit the rows of its target, read from the expression (crate docs,
    /// "Bounded writes"): `WHERE true`, `WHERE id = id`, `WHERE id IS NOT NULL`,
    /// `WHERE true OR id = 1` or a join condition alone do not count, and neither does a
    /// WHERE whose meaning the text cannot settle (fail closed); `WHERE CURRENT OF c` does.
    /// Inside an OR only positive restrictions count (`id = 1 OR id <> 1` and `id < 5 OR
    /// id > 5` do not, `a = 1 OR b = 2` does); IN, ANY/ALL and patterns must test the column
    /// side against values (`1 IN (1, id)` does not count); orders and other non-equalities
    /// need a bare column (`greatest(id, 0) >= 0` does not count); `IN (subquery)` is a join
    /// with the subquery's relations, bounded only when those are restricted
    /// (`customer_id IN (SELECT id FROM customers)` does not count).
    /// `TRUNCATE` has none. For other statements (SELECT, INSERT, MERGE, EXPLAIN, ...): the
    /// top-level statement has a WHERE clause at all, as written.
    pub has_where: bool,
    /// Every function called, lower-case, schema-qualified when written so. Sorted.
    pub functions: Vec<String>,
    /// Every operator used (`+`, `##`, the parts of `OPERATOR(s.##)`), as written. A
    /// user-defined operator runs its function, which only the catalog knows. Sorted.
    pub operators: Vec<String>,
    /// The later parts of multi-part column references (`t.f`), lower-case: PostgreSQL
    /// reads `t.f` as the call `f(t)` when `t` has no column `f`, so the catalog checks them
    /// against one-argument user functions. Sorted.
    pub attribute_calls: Vec<String>,
    /// Whether running the statement can change the database (see `Action::modifies_data`).
    pub modifies_data: bool,
    /// The statement's own text, without the leading comments and the separating `;`.
    pub text: String,
    /// The text with literals replaced by `$n`, for audit redaction and approval hashing.
    pub normalized: String,
    /// `PREPARE name AS ...`: the name. The action is the inner statement's.
    pub prepare_name: Option<String>,
    /// `EXECUTE name`: the name. The action is `sql.admin` until the door resolves it.
    pub execute_name: Option<String>,
    /// `DEALLOCATE name`: the name; `None` for `DEALLOCATE ALL`.
    pub deallocate_name: Option<String>,
    /// `DEALLOCATE ALL` / `DEALLOCATE PREPARE ALL`: every prepared statement is dropped.
    pub deallocate_all: bool,
    /// What running the statement may do to the session's `client_encoding`, which decides
    /// how the server reads every later message; `None` when it leaves it alone.
    /// `SET [SESSION|LOCAL] client_encoding`, `SET NAMES` and `set_config('client_encoding',
    /// 'x', ...)` give the value as written (encoding names are the door's to normalise);
    /// `RESET client_encoding`, `RESET ALL` and `DISCARD ALL` give `Default`; a `set_config`
    /// whose setting name or value is not a string constant, a write to `pg_settings` (whose
    /// rules call `set_config`), `DO`, `CALL` and `EXECUTE` (code that may run `SET`) give
    /// `Unknown`, and so does input that could not be parsed. With
    /// several effects the last one counts, but `Unknown` wins over all. Plain `EXPLAIN` runs
    /// nothing, so it has none; `PREPARE` and `DECLARE` carry what their query does when it
    /// runs, as they carry its action. Functions and triggers that run `SET` themselves need
    /// the catalog and are not seen (DESIGN.md §5).
    pub client_encoding: Option<SettingChange>,
    /// The statement turns `standard_conforming_strings` off: a `SET [SESSION|LOCAL]` of it,
    /// or a `set_config` of it with constant arguments, to anything but a clear `on`. The
    /// parser here reads `'\'` as PostgreSQL does only while it is on, so the door refuses
    /// these before the server sees them (a change it does not see coming, through code the
    /// text does not show, still ends the session when the server reports it).
    pub conforming_strings_off: bool,
    /// `CREATE DATABASE`, `DROP DATABASE`, `ALTER DATABASE ... RENAME`: statements the server
    /// refuses while other sessions use the database involved (a CREATE's template), so the
    /// door closes its idle pooled server connections before forwarding one.
    pub database_wide: bool,
    /// The SQL cursor the statement declares, reads, moves or closes, so that the door can
    /// follow it (a client may also run a cursor as a portal at the protocol level).
    pub cursor: Option<CursorOp>,
    /// The server's CommandComplete count for this statement is every row it changes (the
    /// trigger-free, rule-free case): a single INSERT, UPDATE, DELETE or MERGE (directly or
    /// through PREPARE) with no other write in it, or a COPY FROM. A row limit can be
    /// enforced only on such a statement.
    pub counts_rows: bool,
    /// What a transaction-control statement does to the transaction (`None`: not one).
    pub transaction: Option<TransactionOp>,
    /// Where the rows it returns come from: read with [`Statement::lineage`], which computes
    /// it on first use (it costs about as much as the parse, and only masked statements need
    /// it).
    #[serde(skip)]
    pub lineage: LazyLineage,
}

/// A statement's lineage, computed from its text on first use and kept. Clones share it:
/// a clone is the same statement, or one of the same shape whose classification read no
/// literal ([`crate::Shape`]), and lineage reads no literal of such a statement.
#[derive(Debug, Clone, Default)]
pub struct LazyLineage(std::sync::Arc<std::sync::OnceLock<Option<std::sync::Arc<crate::Lineage>>>>);

impl PartialEq for LazyLineage {
    /// Derived from the text, which the statement compares already.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Statement {
    /// Where the rows it returns come from, column by column, and every column it reads
    /// (`crate::Lineage`); `None` for statements that return no rows of their own or whose
    /// text does not parse.
    pub fn lineage(&self) -> Option<std::sync::Arc<crate::Lineage>> {
        self.lineage
            .0
            .get_or_init(|| crate::lineage_of(&self.text).map(std::sync::Arc::new))
            .clone()
    }
}

/// A change of a session setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SettingChange {
    /// Set to this value, spelled as in the statement.
    Value(String),
    /// Back to the session's default (the value the connection started with).
    Default,
    /// Possibly changed, to a value the text does not tell.
    Unknown,
}

impl SettingChange {
    /// `previous` followed by `next`: the later change counts, but once the value is
    /// unknown it stays unknown.
    pub(crate) fn then(previous: Option<Self>, next: Self) -> Self {
        match previous {
            Some(Self::Unknown) => Self::Unknown,
            _ => next,
        }
    }
}

/// What a transaction-control statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransactionOp {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// Makes changes permanent: `COMMIT`/`END` (also `AND CHAIN`), `PREPARE TRANSACTION`,
    /// `COMMIT PREPARED`.
    Commit,
    /// `ROLLBACK`/`ABORT` (also `AND CHAIN`).
    Rollback,
    /// Neither ends nor starts one: `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `ROLLBACK
    /// PREPARED` (of another, prepared transaction).
    Within,
}

/// What a statement does to an SQL cursor (`DECLARE`, `FETCH`, `MOVE`, `CLOSE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CursorOp {
    /// `DECLARE name ... CURSOR [WITH HOLD] FOR query`; `hold` outlives the transaction.
    Declare { name: String, hold: bool },
    /// `FETCH ... [FROM|IN] name`.
    Fetch { name: String },
    /// `MOVE ... [FROM|IN] name`.
    Move { name: String },
    /// `CLOSE name`, or `CLOSE ALL` (`name: None`).
    Close { name: Option<String> },
}

impl Classification {
    /// The policy context for the whole input:
    /// `{"sql": {parsed, has_where, statement_count, tables, functions, modifies_data}}`.
    ///
    /// `has_where` is the AND over the statements that are UPDATE or DELETE; when there are
    /// none, the AND over the SELECTs; otherwise true. This way a bounded DELETE batched with
    /// an unfiltered SELECT is still seen as bounded, and a read-only batch still tells
    /// whether every read is filtered.
    pub fn facts(&self) -> Value {
        json!({
            "sql": {
                "parsed": self.parsed,
                "has_where": self.has_where(),
                "statement_count": self.statements.len(),
                "tables": union(self.statements.iter().map(|s| &s.tables)),
                "functions": union(self.statements.iter().map(|s| &s.functions)),
                "modifies_data": self.statements.iter().any(|s| s.modifies_data),
            }
        })
    }

    /// The policy facts of statement `i` alone (its own tables, functions and `has_where`),
    /// with `statement_count` and `parsed` of the whole input. Doors decide each statement
    /// with these, so a denial names the statement that caused it.
    pub fn statement_facts(&self, i: usize) -> Value {
        let Some(s) = self.statements.get(i) else {
            return self.facts();
        };
        json!({
            "sql": {
                "parsed": self.parsed,
                "has_where": s.has_where,
                "statement_count": self.statements.len(),
                "tables": s.tables,
                "functions": s.functions,
                "modifies_data": s.modifies_data,
            }
        })
    }

    fn has_where(&self) -> bool {
        let with_notion = |actions: &[&str]| {
            let mut matching = self
                .statements
                .iter()
                .filter(|s| actions.contains(&s.action));
            matching
                .clone()
                .next()
                .map(|_| matching.all(|s| s.has_where))
        };
        with_notion(&[crate::ids::UPDATE, crate::ids::DELETE])
            .or_else(|| with_notion(&[crate::ids::SELECT]))
            .unwrap_or(true)
    }
}

fn union<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.flatten().cloned().collect();
    all.sort_unstable();
    all.dedup();
    all
}
