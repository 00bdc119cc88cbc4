//! The upstream's catalog, read with the connection's own credentials, so that the door
//! decides what a statement really does rather than what its text looks like: a view is the
//! tables under it, a call of a user function that may write is not a read, and a write to a
//! table with triggers or rules does what they do too.
//!
//! One [`Catalog`] snapshot per connection, loaded on first need over a server connection of
//! the target's pool, kept for `[postgres] catalog_refresh`, marked stale by DDL the gateway
//! let through, and reloaded once when a statement names a relation the snapshot does not
//! hold. Names are resolved without the session's `search_path`: an unqualified name stands
//! for every relation or function of that name in any schema (a schema placed first in the
//! path cannot shadow an allowed name with a view of its own, and a forbidden table is found
//! whichever schema holds it). Lookups are hash lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use portcullis_pgwire::{Backend, encode_frontend, parse_backend, parse_data_row, tag};
use portcullis_sql::{Options, Statement, ids};
use tokio::sync::Mutex;

use crate::door::TargetRt;
use crate::error::PgError;
use crate::upstream::Upstream;

/// How long one catalog read may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How deep views over views and functions are followed.
const MAX_DEPTH: usize = 16;

/// A relation of the catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct Relation {
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    /// A view's definition, classified.
    pub(crate) view: Option<Arc<Statement>>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) rules: Vec<Rule>,
    /// User functions a write runs through its column defaults and check constraints.
    pub(crate) write_functions: Vec<String>,
    /// User functions any access runs through its row-level security policies.
    pub(crate) read_functions: Vec<String>,
    /// Columns marked sensitive by their comment (`portcullis:sensitive[=ENTITY]`), with the
    /// entity label when one is given.
    pub(crate) sensitive: HashMap<String, Option<String>>,
}

impl Relation {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) name: String,
    /// The trigger function, `schema.name`.
    pub(crate) function: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    /// What the rule's actions do, classified (`CREATE RULE ... DO [ALSO|INSTEAD] ...`).
    pub(crate) actions: Vec<Statement>,
}

/// A function outside `pg_catalog` and `information_schema`.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) schema: String,
    pub(crate) name: String,
    /// `i` immutable, `s` stable, `v` volatile.
    pub(crate) volatility: char,
    pub(crate) security_definer: bool,
    pub(crate) language: String,
    /// How many arguments it takes (attribute notation `t.f` calls only one-argument ones).
    pub(crate) arguments: u16,
    /// The role that owns it (whose rights a SECURITY DEFINER function runs with).
    pub(crate) owner: String,
}

impl Function {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Able to write and run anything: VOLATILE, SECURITY DEFINER, or code in a language
    /// other than SQL.
    fn may_write(&self) -> bool {
        self.volatility == 'v' || self.security_definer || self.language != "sql"
    }
}

/// One snapshot of a connection's catalog.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// By relation name (no schema): every relation of that name.
    relations: HashMap<String, Vec<Arc<Relation>>>,
    /// By function name (no schema): every function of that name.
    functions: HashMap<String, Vec<Function>>,
    /// The names of the built-in functions (`pg_catalog`, `information_schema`).
    builtins: HashSet<String>,
    /// User-defined operators by name: the functions they run (`schema.name`).
    operators: HashMap<String, Vec<String>>,
    /// The names of the system relations (`pg_catalog`, `information_schema`): known, so a
    /// driver's introspection does not read the catalog again, and not expanded.
    system: HashSet<String>,
    loaded_at: Option<Instant>,
}

/// What the catalog adds to a statement's classification.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Every relation the statement reaches, schema-qualified and bare: the candidates of each
    /// name, the tables under its views (recursively), the relations its rules write.
    pub(crate) tables: Vec<String>,
    /// User functions it calls, directly, through views, rules and triggers (`schema.name`).
    pub(crate) user_functions: Vec<String>,
    /// The roles that own those functions.
    pub(crate) function_owners: Vec<String>,
    /// Those of them that may write or run anything, and that the connection does not list
    /// as safe: the statement is then `sql.admin`.
    pub(crate) writing_functions: Vec<String>,
    /// A STABLE or IMMUTABLE SQL function is called: it reads tables the text does not name.
    pub(crate) opaque_reads: bool,
    /// Triggers and rules of the relations it writes (`table.name`).
    pub(crate) triggers: Vec<String>,
    pub(crate) rules: Vec<String>,
    /// The action the statement takes with all of the above (`None`: its own).
    pub(crate) action: Option<&'static str>,
    /// A relation or function the statement names that the catalog does not hold (neither a
    /// system relation nor a built-in function): it may be newer than the snapshot.
    pub(crate) unknown: bool,
}

impl Catalog {
    /// The relations a name as written stands for (`orders`, `public.orders`,
    /// `db.public.orders`).
    pub(crate) fn relations(&self, written: &str) -> Vec<&Arc<Relation>> {
        candidates(&self.relations, written, |r| &r.schema)
    }

    fn functions(&self, written: &str) -> Vec<&Function> {
        candidates(&self.functions, written, |f| &f.schema)
    }

    /// What `statement` reaches through the catalog. `safe` lists functions the connection
    /// declares harmless (`schema.name` or `name`).
    pub(crate) fn resolve(&self, statement: &Statement, safe: &[String]) -> Resolved {
        let mut r = Walk {
            catalog: self,
            safe,
            out: Resolved::default(),
            tables: HashSet::new(),
            functions: HashSet::new(),
            rank: rank(statement.action),
        };
        r.statement(statement, statement.modifies_data, 0);
        let mut out = r.out;
        let mut tables: Vec<String> = r.tables.into_iter().collect();
        tables.sort_unstable();
        out.tables = tables;
        for list in [
            &mut out.user_functions,
            &mut out.function_owners,
            &mut out.writing_functions,
            &mut out.triggers,
            &mut out.rules,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        let own = rank(statement.action);
        let mut strongest = r.rank;
        if !out.writing_functions.is_empty() {
            strongest = strongest.max(rank(ids::ADMIN));
        }
        if strongest > own {
            out.action = Some(action_of(strongest));
        }
        out
    }

    /// How many relations and user functions it holds.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.relations.values().map(Vec::len).sum(),
            self.functions.values().map(Vec::len).sum(),
        )
    }
}

struct Walk<'a> {
    catalog: &'a Catalog,
    safe: &'a [String],
    out: Resolved,
    tables: HashSet<String>,
    functions: HashSet<String>,
    rank: u8,
}

impl Walk<'_> {
    fn statement(&mut self, s: &Statement, writes: bool, depth: usize) {
        if depth > MAX_DEPTH {
            // Too deep to follow: what it may do is unknown.
            self.out
                .writing_functions
                .push("(nesting too deep)".to_owned());
            return;
        }
        for t in &s.tables {
            self.table(t, writes, depth);
        }
        for f in &s.functions {
            let (_, name) = split(f);
            if !self.function(f) && !self.catalog.builtins.contains(name) {
                self.out.unknown = true;
            }
        }
        // `t.f` is `f(t)` when `t` has no column `f`: a one-argument user function of that
        // name counts as called (a column of the same name makes this err on the safe side).
        for field in &s.attribute_calls {
            let called = self
                .catalog
                .functions(field)
                .iter()
                .any(|f| f.arguments == 1);
            if called {
                self.function(field);
            }
        }
        for op in &s.operators {
            let functions = self.catalog.operators.get(op).cloned().unwrap_or_default();
            for f in &functions {
                self.function(f);
            }
        }
    }

    fn table(&mut self, written: &str, writes: bool, depth: usize) {
        let (_, bare) = split(written);
        self.tables.insert(bare.to_owned());
        let found = self.catalog.relations(written);
        if found.is_empty() {
            self.tables.insert(written.to_owned());
            self.out.unknown |= !self.catalog.system.contains(bare);
            return;
        }
        for rel in found {
            let qualified = rel.qualified();
            if !self.tables.insert(qualified.clone()) && depth > 0 {
                continue;
            }
            for f in &rel.read_functions {
                self.function(f);
            }
            if let Some(view) = &rel.view {
                // A view reads what its query reads; writing through it writes its tables.
                let view = view.clone();
                self.statement(&view, writes, depth + 1);
            }
            if !writes {
                continue;
            }
            for f in &rel.write_functions {
                self.function(f);
            }
            for t in &rel.triggers {
                self.out.triggers.push(format!("{qualified}.{}", t.name));
                self.function(&t.function);
            }
            for rule in &rel.rules {
                self.out.rules.push(format!("{qualified}.{}", rule.name));
                for action in &rule.actions {
                    self.rank = self.rank.max(rank(action.action));
                    self.statement(action, action.modifies_data, depth + 1);
                }
            }
        }
    }

    /// Counts a call of `written`; whether a user function of that name exists.
    fn function(&mut self, written: &str) -> bool {
        if !self.functions.insert(written.to_owned()) {
            return true;
        }
        let found = self.catalog.functions(written);
        let known = !found.is_empty();
        for f in found {
            let qualified = f.qualified();
            self.out.user_functions.push(qualified.clone());
            self.out.function_owners.push(f.owner.clone());
            let safe = self
                .safe
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&qualified) || s.eq_ignore_ascii_case(&f.name));
            if f.may_write() && !safe {
                self.out.writing_functions.push(qualified);
            } else if !safe {
                self.out.opaque_reads = true;
            }
        }
        known
    }
}

/// `[db.]schema.name` → (`Some(schema)`, `name`); `name` → (`None`, `name`).
fn split(written: &str) -> (Option<&str>, &str) {
    let mut parts = written.rsplitn(3, '.');
    let name = parts.next().unwrap_or(written);
    (parts.next(), name)
}

/// The entries of `map` a name as written stands for: every schema's when it names none.
fn candidates<'a, T>(
    map: &'a HashMap<String, Vec<T>>,
    written: &str,
    schema: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    let (wanted, name) = split(written);
    map.get(name)
        .map(|all| {
            all.iter()
                .filter(|e| wanted.is_none_or(|w| w == schema(e)))
                .collect()
        })
        .unwrap_or_default()
}

/// How much an action can do, for taking the strongest of a statement and what it sets off.
fn rank(action: &str) -> u8 {
    match action {
        ids::INSERT | ids::COPY_FROM => 2,
        ids::MERGE => 3,
        ids::UPDATE => 4,
        ids::DELETE => 5,
        ids::DDL => 6,
        ids::ADMIN => 7,
        _ => 1,
    }
}

fn action_of(rank: u8) -> &'static str {
    match rank {
        2 => ids::INSERT,
        3 => ids::MERGE,
        4 => ids::UPDATE,
        5 => ids::DELETE,
        6 => ids::DDL,
        _ => ids::ADMIN,
    }
}

/// A statement's catalog reading, applied to what the policy sees.
impl Resolved {
    /// The statement as decided: its action raised to what it sets off.
    pub(crate) fn statement(&self, statement: &Statement) -> Statement {
        let mut s = statement.clone();
        if let Some(action) = self.action {
            s.action = action;
            s.modifies_data = true;
        }
        s
    }

    /// The statement's facts with the catalog's: every relation reached (as written, bare and
    /// schema-qualified), the user functions, triggers and rules.
    pub(crate) fn facts(&self, facts: &serde_json::Value) -> serde_json::Value {
        let mut facts = facts.clone();
        let Some(sql) = facts
            .get_mut("sql")
            .and_then(serde_json::Value::as_object_mut)
        else {
            return facts;
        };
        let r = self;
        let mut tables: Vec<String> = sql
            .get("tables")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .chain(r.tables.iter().cloned())
            .collect();
        tables.sort_unstable();
        tables.dedup();
        sql.insert("tables".into(), tables.into());
        sql.insert("user_functions".into(), r.user_functions.clone().into());
        sql.insert("function_owners".into(), r.function_owners.clone().into());
        sql.insert(
            "writing_functions".into(),
            r.writing_functions.clone().into(),
        );
        sql.insert("opaque_reads".into(), r.opaque_reads.into());
        sql.insert("triggers".into(), r.triggers.clone().into());
        sql.insert("rules".into(), r.rules.clone().into());
        if r.action.is_some() {
            sql.insert("modifies_data".into(), true.into());
        }
        facts
    }
}

/// The catalog of one connection: the current snapshot and when to read it again.
pub(crate) struct CatalogCache {
    /// Read by every statement that names something, without a lock.
    current: ArcSwapOption<Catalog>,
    stale: AtomicBool,
    /// One read at a time.
    loading: Mutex<()>,
    refresh: Duration,
}

/// A name the snapshot does not know reads the catalog again at most this often.
const UNKNOWN_RELOAD: Duration = Duration::from_secs(1);

impl CatalogCache {
    pub(crate) fn new(refresh: Duration) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            stale: AtomicBool::new(false),
            loading: Mutex::new(()),
            refresh,
        }
    }

    /// The next statement that needs the catalog reads it again first (DDL ran, or
    /// `portcullis connections refresh`).
    pub(crate) fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    pub(crate) fn snapshot(&self) -> Option<Arc<Catalog>> {
        self.current.load_full()
    }

    /// Whether a read is due: none yet, invalidated, older than the refresh interval, or
    /// (`unknown`) a name it does not know and at least a second old.
    fn due(&self, unknown: bool) -> bool {
        let Some(c) = &*self.current.load() else {
            return true;
        };
        let age = c.loaded_at.map_or(Duration::MAX, |at| at.elapsed());
        self.stale.load(Ordering::Acquire)
            || age >= self.refresh
            || (unknown && age >= UNKNOWN_RELOAD)
    }

    /// Reads the catalog with `read` (one read at a time; `when` says whether one is still
    /// due once it is this caller's turn) and keeps it; a failure keeps the last snapshot
    /// and leaves a read due.
    async fn read_with<F>(
        &self,
        when: impl Fn() -> bool,
        read: F,
    ) -> Option<Result<Arc<Catalog>, PgError>>
    where
        F: std::future::Future<Output = Result<Catalog, PgError>>,
    {
        let _one = self.loading.lock().await;
        if !when() {
            return None;
        }
        self.stale.store(false, Ordering::Release);
        let loaded = tokio::time::timeout(LOAD_TIMEOUT, read)
            .await
            .unwrap_or_else(|_| Err(PgError::Catalog("reading the catalog timed out".into())));
        Some(match loaded {
            Ok(c) => {
                let c = Arc::new(c);
                self.current.store(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the connection's catalog failed; keeping the last one read");
                self.invalidate();
                Err(e)
            }
        })
    }

    /// At session start, on the session's own server connection (so reading it never waits
    /// for one): reads the catalog when a read is due.
    pub(crate) async fn load_on(&self, up: &mut Upstream) {
        if self.due(false) {
            self.read_with(|| self.due(false), read(up)).await;
        }
    }

    /// Reads the catalog now (`portcullis connections refresh`), over a connection of the
    /// target's pool.
    pub(crate) async fn reload(
        &self,
        target: &TargetRt,
        limits: portcullis_pgwire::Limits,
    ) -> Result<Arc<Catalog>, PgError> {
        self.read_with(|| true, load(target, limits))
            .await
            .unwrap_or_else(|| Err(PgError::Catalog("no read happened".into())))
    }

    /// The snapshot to decide with, read again first (over a connection of the target's
    /// pool) when a read is due; a failed read keeps the last snapshot. `None`: none could
    /// ever be read.
    pub(crate) async fn current(
        &self,
        target: &TargetRt,
        limits: portcullis_pgwire::Limits,
        unknown: bool,
    ) -> Option<Arc<Catalog>> {
        if self.due(unknown) {
            self.read_with(|| self.due(unknown), load(target, limits))
                .await;
        }
        self.snapshot()
    }
}

const RELATIONS: &str = "SELECT n.nspname, c.relname, \
     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END, \
     (SELECT array_to_json(array_agg(a.attname ORDER BY a.attnum))::text FROM pg_attribute a \
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'";

const FUNCTIONS: &str = "SELECT n.nspname, p.proname, p.provolatile::text, p.prosecdef::text, \
     l.lanname, p.pronargs, pg_get_userbyid(p.proowner)::text \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
     JOIN pg_language l ON l.oid = p.prolang \
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')";

const SYSTEM_RELATIONS: &str = "SELECT DISTINCT c.relname FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname IN ('pg_catalog', 'information_schema')";

const BUILTINS: &str = "SELECT DISTINCT p.proname FROM pg_proc p \
     JOIN pg_namespace n ON n.oid = p.pronamespace \
     WHERE n.nspname IN ('pg_catalog', 'information_schema')";

/// User operators and the functions they run.
const OPERATORS: &str = "SELECT o.oprname, pn.nspname || '.' || p.proname \
     FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace \
     JOIN pg_proc p ON p.oid = o.oprcode JOIN pg_namespace pn ON pn.oid = p.pronamespace \
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// User functions a relation's defaults and check constraints (`w`) and its row-level
/// security policies (`r`) depend on.
const DEPENDS: &str = "SELECT n.nspname, c.relname, pn.nspname || '.' || p.proname, k.kind \
     FROM (SELECT ad.adrelid AS rel, d.refobjid AS fn, 'w' AS kind FROM pg_depend d \
           JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid \
           WHERE d.refclassid = 'pg_proc'::regclass \
           UNION ALL SELECT co.conrelid, d.refobjid, 'w' FROM pg_depend d \
           JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND d.objid = co.oid \
           WHERE d.refclassid = 'pg_proc'::regclass \
           UNION ALL SELECT po.polrelid, d.refobjid, 'r' FROM pg_depend d \
           JOIN pg_policy po ON d.classid = 'pg_policy'::regclass AND d.objid = po.oid \
           WHERE d.refclassid = 'pg_proc'::regclass) k \
     JOIN pg_class c ON c.oid = k.rel JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_proc p ON p.oid = k.fn JOIN pg_namespace pn ON pn.oid = p.pronamespace \
     WHERE pn.nspname NOT IN ('pg_catalog', 'information_schema')";

/// Column comments that mark a column sensitive: `COMMENT ON COLUMN t.c IS '...
/// portcullis:sensitive=CREDIT_CARD ...'` (the entity optional).
const LABELS: &str = "SELECT n.nspname, c.relname, a.attname, \
     substring(d.description from 'portcullis:sensitive(?:=([A-Za-z_]+))?') \
     FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid \
     WHERE d.objsubid > 0 AND d.description LIKE '%portcullis:sensitive%'";

const TRIGGERS: &str = "SELECT n.nspname, c.relname, t.tgname, pn.nspname || '.' || p.proname \
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace \
     WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'";

const RULES: &str = "SELECT n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid) \
     FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE r.rulename <> '_RETURN' AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// Reads the catalog over a server connection of the target's pool (given back afterwards).
async fn load(target: &TargetRt, limits: portcullis_pgwire::Limits) -> Result<Catalog, PgError> {
    let mut up = target.connect(&[], limits).await?;
    let catalog = read(&mut up).await;
    match catalog {
        Ok(_) => target.pool.give_back(&[], up).await,
        Err(_) => crate::pool::terminate(up).await,
    }
    catalog
}

/// Reads the catalog over `up`, which is idle and stays so.
async fn read(up: &mut Upstream) -> Result<Catalog, PgError> {
    Ok(build(Reads {
        relations: query(up, RELATIONS).await?,
        functions: query(up, FUNCTIONS).await?,
        triggers: query(up, TRIGGERS).await?,
        rules: query(up, RULES).await?,
        builtins: query(up, BUILTINS).await?,
        operators: query(up, OPERATORS).await?,
        depends: query(up, DEPENDS).await?,
        labels: query(up, LABELS).await?,
        system: query(up, SYSTEM_RELATIONS).await?,
    }))
}

type Rows = Vec<Vec<Option<String>>>;

/// What each catalog query returned, a row per entry in the queries' column order.
#[derive(Default)]
struct Reads {
    relations: Rows,
    functions: Rows,
    triggers: Rows,
    rules: Rows,
    builtins: Rows,
    operators: Rows,
    depends: Rows,
    labels: Rows,
    system: Rows,
}

/// Column `i` of a row (`None`: SQL NULL or no such column).
fn cell(row: &[Option<String>], i: usize) -> Option<String> {
    row.get(i).cloned().flatten()
}

fn text(row: &[Option<String>], i: usize) -> String {
    cell(row, i).unwrap_or_default()
}

fn build(reads: Reads) -> Catalog {
    let opts = Options::default();
    let mut by_key: HashMap<(String, String), Relation> = HashMap::new();
    for row in &reads.relations {
        let view = cell(row, 2).map(|def| {
            let c = portcullis_sql::classify(&def, &opts);
            Arc::new(c.statements.into_iter().next().unwrap_or_else(|| {
                // An empty definition reads nothing.
                portcullis_sql::classify("SELECT", &opts)
                    .statements
                    .remove(0)
            }))
        });
        let rel = Relation {
            schema: text(row, 0),
            name: text(row, 1),
            columns: serde_json::from_str(&text(row, 3)).unwrap_or_default(),
            view,
            ..Relation::default()
        };
        by_key.insert((rel.schema.clone(), rel.name.clone()), rel);
    }
    // Every other per-relation query starts with the relation's schema and name.
    let mut each = |rows: &Rows, add: &mut dyn FnMut(&mut Relation, &[Option<String>])| {
        for row in rows {
            if let Some(rel) = by_key.get_mut(&(text(row, 0), text(row, 1))) {
                add(rel, row);
            }
        }
    };
    each(&reads.triggers, &mut |rel, row| {
        rel.triggers.push(Trigger {
            name: text(row, 2),
            function: text(row, 3),
        });
    });
    each(&reads.rules, &mut |rel, row| {
        rel.rules.push(Rule {
            name: text(row, 2),
            actions: rule_actions(&text(row, 3), &opts),
        });
    });
    each(
        &reads.depends,
        &mut |rel, row| match text(row, 3).as_str() {
            "r" => rel.read_functions.push(text(row, 2)),
            _ => rel.write_functions.push(text(row, 2)),
        },
    );
    each(&reads.labels, &mut |rel, row| {
        rel.sensitive.insert(text(row, 2), cell(row, 3));
    });
    let firsts = |rows: Rows| -> HashSet<String> {
        rows.into_iter().filter_map(|row| cell(&row, 0)).collect()
    };
    let mut catalog = Catalog {
        loaded_at: Some(Instant::now()),
        builtins: firsts(reads.builtins),
        system: firsts(reads.system),
        ..Catalog::default()
    };
    for rel in by_key.into_values() {
        catalog
            .relations
            .entry(rel.name.clone())
            .or_default()
            .push(Arc::new(rel));
    }
    for row in &reads.functions {
        let f = Function {
            schema: text(row, 0),
            name: text(row, 1),
            volatility: text(row, 2).chars().next().unwrap_or('v'),
            security_definer: text(row, 3) == "true",
            language: text(row, 4),
            arguments: text(row, 5).parse().unwrap_or(0),
            owner: text(row, 6),
        };
        catalog
            .functions
            .entry(f.name.to_lowercase())
            .or_default()
            .push(f);
    }
    for row in &reads.operators {
        catalog
            .operators
            .entry(text(row, 0))
            .or_default()
            .push(text(row, 1));
    }
    catalog
}

/// The statements a rule runs: `CREATE RULE r AS ON INSERT TO t DO ALSO (a; b)` gives `a` and
/// `b`, classified; `DO INSTEAD NOTHING` gives none. What cannot be read is `sql.admin`.
fn rule_actions(definition: &str, opts: &Options) -> Vec<Statement> {
    let upper = definition.to_ascii_uppercase();
    let Some(at) = [" DO ALSO ", " DO INSTEAD ", " DO "]
        .iter()
        .find_map(|k| upper.find(k).map(|i| i + k.len()))
    else {
        return portcullis_sql::classify("DO $$ $$", opts).statements;
    };
    let body = definition[at..].trim().trim_end_matches(';').trim();
    if body.eq_ignore_ascii_case("NOTHING") {
        return Vec::new();
    }
    let body = body
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or(body);
    portcullis_sql::classify(body, opts).statements
}

/// Runs one simple query and returns its rows as text.
async fn query(up: &mut Upstream, sql: &str) -> Result<Rows, PgError> {
    let mut buf = BytesMut::new();
    encode_frontend::query(&mut buf, sql).map_err(|e| PgError::Catalog(e.to_string()))?;
    up.writer.push_bytes(buf.freeze());
    up.writer
        .flush()
        .await
        .map_err(|e| PgError::Catalog(e.to_string()))?;
    let mut rows = Vec::new();
    let mut failed = None;
    loop {
        let frame = up
            .reader
            .next_frame()
            .await
            .map_err(|e| PgError::Catalog(e.to_string()))?
            .ok_or_else(|| PgError::Catalog("the server closed the connection".into()))?;
        if frame.tag() == tag::DATA_ROW {
            let values = parse_data_row(&frame).map_err(|e| PgError::Catalog(e.to_string()))?;
            rows.push(
                values
                    .into_iter()
                    .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    .collect(),
            );
            continue;
        }
        match parse_backend(&frame).map_err(|e| PgError::Catalog(e.to_string()))? {
            Backend::ErrorResponse(fields) => {
                failed = Some(
                    fields
                        .message()
                        .map(|m| String::from_utf8_lossy(m).into_owned())
                        .unwrap_or_default(),
                );
            }
            Backend::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    match failed {
        Some(message) => Err(PgError::Catalog(message)),
        None => Ok(rows),
    }
}

#[cfg(test)]
mod tests;
