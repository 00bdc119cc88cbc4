//! SQL classification for the PostgreSQL door: turns the text of a simple query or a `Parse`
//! message into one Cedar action per statement plus the facts the policy needs (DESIGN.md §5).
//!
//! Statements are parsed with libpg_query, which is PostgreSQL's own grammar, so the gateway
//! and the server cannot disagree about where a statement ends, what a dollar-quoted string
//! hides, or which statement a leading comment belongs to.
//!
//! The crate is pure (no I/O, no clock) and total: any input, including invalid UTF-8 turned
//! into text, NUL bytes and absurd nesting, yields a [`Classification`]. Input the grammar
//! rejects is one `sql.admin` statement with `parsed = false`, so it fails closed.
//!
//! Mapping, in short (the corpus in `tests/corpus.toml` has a case for each rule):
//! - reads (`SELECT`, `VALUES`, `TABLE`, cursors) are `sql.select`; writes are
//!   `sql.insert`/`update`/`delete`/`merge`, `TRUNCATE` is a `sql.delete` without WHERE;
//! - a data-modifying statement anywhere inside (CTEs, `COPY (... RETURNING) TO`) makes the
//!   statement that write, the strongest one winning (delete > update > merge > insert);
//! - a call to a function of [`Options::side_effect_functions`] anywhere makes it `sql.admin`,
//!   in any spelling PostgreSQL resolves to a call: `f(x)` (qualified, quoted, Unicode-escaped,
//!   in any clause) and the attribute notation `x.f` / `(x).f`, which is `f(x)` when `x` has
//!   no field `f` (a field name of `(x).f` is always listed among the functions; a later part
//!   of a column reference `t.f` only when it is on the list, since it is nearly always a
//!   column; which one the server picks needs the catalog);
//! - a write to a system relation is `sql.admin`: INSERT/UPDATE/DELETE/MERGE anywhere
//!   (data-modifying CTEs and `PREPARE` included), `TRUNCATE` and `COPY ... FROM` whose
//!   target is in schema `pg_catalog` or `information_schema`, or is unqualified and named
//!   `pg_...` (PostgreSQL searches `pg_catalog` first unless `search_path` places it later),
//!   names compared without case. Only a superuser-like role can write a catalog, and
//!   `pg_settings`' rules make an UPDATE a `set_config()` call, so a write to `pg_settings`
//!   (unqualified or `pg_catalog.`) also reports `client_encoding` as unknown;
//! - `EXPLAIN ANALYZE` is the statement it runs; plain `EXPLAIN` is `sql.explain`;
//! - `SELECT INTO`/`CREATE TABLE AS` and schema changes are `sql.ddl`; rights, roles,
//!   maintenance, code (`DO`, `CALL`, functions), server files and anything unknown are
//!   `sql.admin`;
//! - transaction control is `sql.transaction` and settings are `sql.session`, except the
//!   escapes from read-only mode or the session's role, which are `sql.admin`;
//! - `PREPARE` takes its statement's action and `EXECUTE` is `sql.admin` until the door
//!   resolves the name.
//!
//! Each statement also tells the door what it does to session state the door follows:
//! `client_encoding`, `DEALLOCATE ALL` and SQL cursors (see [`Statement`]).
//!
//! # Bounded writes (`has_where`)
//!
//! For UPDATE and DELETE, [`Statement::has_where`] says whether every UPDATE and DELETE in
//! the statement (data-modifying CTEs included) and every `ON CONFLICT DO UPDATE` has a
//! WHERE that can limit the rows of its target. It is read from the expression tree, not
//! from the presence of a clause, and what the text cannot settle counts as unbounded:
//!
//! - The target is the written relation, named by its alias when it has one (an alias hides
//!   the name). `FROM`/`USING` items, and the FROM items of subqueries read as joins (below),
//!   are other relations, a second reference to the target table included.
//! - An atom (a comparison or pattern operator, IN, ANY/ALL, BETWEEN, `IS [NOT] DISTINCT FROM`)
//!   restricts a relation R when it compares an expression over R's columns with a value
//!   that depends on no column (a constant, `$n`, a scalar subquery that neither reads the
//!   target nor refers to the row being tested), or two disjoint sets of R's columns
//!   (`a = b`). Nothing is restricted by an atom with a column on both sides (`id = id`,
//!   `id = id + 0`), a side holding a predicate of its own (`(id = id) = true`, CASE,
//!   `nullif`), a column read twice in one side (`id - id`), arithmetic that can erase a
//!   column (`*`, `/`, `%`, bitwise operators), `tableoid`, or no column at all (`true`,
//!   `1 = 1`, `now() > '2000-01-01'`, an uncorrelated EXISTS).
//! - Which side is which matters. `IN (list)`, `op ANY|ALL (array)` and the pattern
//!   operators test their left operand: it must read columns and the list, array or pattern
//!   none (`1 IN (1, id)` and `1 = ANY (ARRAY[1, id])` hold for every row). Equality in
//!   effect (`=`, `IN`, `= ANY`, `IS NOT DISTINCT FROM`, a matching pattern) may test an
//!   expression of the columns (`lower(email) = 'x'`); every other comparison (`<`, `<=`,
//!   `>`, `>=`, `BETWEEN`, `<>`, `NOT IN`, `<> ALL`, `IS DISTINCT FROM`, `NOT LIKE`) needs each
//!   operand that reads columns to be a bare column, optionally cast, since all of an
//!   expression's values may lie on one side of the constant (`greatest(id, 0) >= 0`,
//!   `abs(id) <> -1`, `length(email) >= 0`). An array a subquery computes (`= ANY ((SELECT
//!   array_agg(id) FROM t))`) may hold every row's value, so it restricts nothing.
//! - `x IS NULL`, `x IS UNKNOWN`, `x IS [NOT] TRUE|FALSE` and a bare boolean column
//!   (`WHERE active`, `WHERE NOT active`) restrict when `x` is a column; `IS NOT NULL` (a
//!   column is assumed never null when unsure, as `ctid` or a key is), `IS NOT UNKNOWN` and
//!   `IS DISTINCT FROM NULL` do not.
//! - LIKE, ILIKE, SIMILAR TO and regular expressions restrict unless the pattern matches
//!   everything (it has no character every match needs: `'%'`, `''`, `'.*'`, `'x?'`) or is
//!   an expression the text does not give (`'%' || ''`); a parameter counts as a value.
//! - ALL over anything but a written non-empty array, `NOT IN (subquery)`, `<> ANY`, a
//!   pattern under ANY or ALL, `NOT BETWEEN` bounds other than ordered number constants
//!   (`NOT BETWEEN 10 AND 1`), and `IS DISTINCT FROM` a parameter or subquery (which may be
//!   NULL) can hold for every row, so they restrict nothing.
//! - AND restricts what any part restricts. NOT is pushed down (De Morgan: `NOT (x IS
//!   NULL)` is `x IS NOT NULL`, `NOT (a AND b)` an OR). OR restricts what every part
//!   restricts by a *positive* restriction: an equality-like atom (`=`, `IN (values)`, `=
//!   ANY|ALL (values)`, `IS NOT DISTINCT FROM`, `IS NULL`, `IS TRUE|FALSE|UNKNOWN`, a bare
//!   boolean column, a matching pattern with a required character, `BETWEEN` two values, an
//!   `EXISTS` or `IN (subquery)` read as below), or an AND holding one. Negative and
//!   open-ended atoms (`<>`, `NOT IN`, `<> ALL`, `IS DISTINCT FROM`, `NOT LIKE`, `NOT
//!   BETWEEN`, `<`, `<=`, `>`, `>=`, `NOT active`, `IS NOT TRUE|FALSE`, any other operator
//!   such as `@>`) restrict nothing inside an OR, though they do alone or in an AND: whether
//!   parts complete each other to every row (`id = 1 OR id <> '1'`, `id + 0 = 1 OR id <>
//!   1`, `id BETWEEN 1 AND 10 OR id NOT BETWEEN 2 AND 5`) cannot be told in general, so an OR
//!   fails closed. Positive parts can still cover both values of a boolean (`active OR active
//!   IS FALSE`, `active IN (true, false)`, `active = 't' OR active = 'f'`): those restrict
//!   nothing, a string counting as a boolean whenever PostgreSQL's boolean input reads it so,
//!   and columns being compared by name.
//! - Joins: an atom comparing columns of two relations links them, and a relation linked
//!   through any chain of links in one conjunction to a restricted relation is restricted.
//!   A join condition alone restricts nothing: every target row with a partner changes. A
//!   `VALUES` list of constants in FROM is restricted by what it is, and so is a CTE visible
//!   from the write whose body is one, or is a plain SELECT over one relation that its WHERE
//!   bounds as it would bound a write to it (`WITH x AS (SELECT id FROM customers WHERE
//!   email = $1)`; a CTE read inside that body counts as unrestricted). `EXISTS (subquery)`,
//!   `x IN (subquery)`, `x = ANY (subquery)` and `x = ANY (ARRAY(subquery))`, correlated or
//!   not, add the subquery's FROM items and WHERE to the conjunction, and IN adds the
//!   equality of each tested value with the output column at its place (a link): `EXISTS
//!   (SELECT 1 FROM items i WHERE i.order_id = orders.id AND i.qty > 5)` and `customer_id IN
//!   (SELECT c.id FROM customers c WHERE c.email = 'x')` restrict `orders`; without `i.qty >
//!   5` or `c.email = 'x'` they do not (every order with a partner changes). The outputs of
//!   IN must be columns. `NOT EXISTS`, `NOT IN (subquery)`, operators other than `= ANY` over
//!   a subquery, and subqueries with an aggregate (one row whatever their WHERE), GROUP BY, a
//!   set operation, LIMIT/OFFSET or a WITH of their own restrict nothing (fail closed).
//! - A scalar subquery that reads the target table (or a CTE that does) is no independent
//!   value. An unqualified name inside a subquery that the other side also reads (`id IN
//!   (SELECT id FROM other)`, `id = (SELECT id FROM other)`) may be the outer row's column,
//!   so it restricts nothing (`id = id`).
//! - Unqualified columns belong to the target when the write has no other relation. Next to
//!   other relations they could be anyone's and never count as the target's: multi-relation
//!   writes must qualify their columns to count as bounded. Inside a merged subquery with
//!   one relation, an unqualified column is that relation's or the target's (when the
//!   subquery's tables lack it), and counts only when the target is the one relation
//!   outside; otherwise it could be any outer relation's.
//! - In `ON CONFLICT DO UPDATE`, `excluded.col` is a column of the target (the row that
//!   conflicted with it), so only comparisons of target columns with values restrict.
//! - `WHERE CURRENT OF c` is bounded (the cursor's row); TRUNCATE never is; MERGE and INSERT
//!   have no such notion.
//!
//! The reading is syntactic. What needs the database (views or functions that read the
//! target, column nullability, value ranges such as `id > -1`, an IN list naming every value
//! of an enum, a function constant over its argument's values as in `substr(name, 1, 0) =
//! ''`, which of `t.f` is a column) is left to the catalog-aware classification of DESIGN.md
//! §5, with the server's own row count as the backstop.

mod action;
mod classify;
mod head;
mod lineage;
mod literal;
mod model;
mod options;
mod pg;
mod restrict;
mod session;
mod shape;
mod system;
mod visit;
mod walk;

pub use action::ids;
pub use classify::classify;
pub use shape::{Shape, classify_shaped};

/// The lineage of the first statement of `sql` (see [`Statement::lineage`]), without the rest
/// of its classification: for measuring and for tools.
pub fn lineage_of(sql: &str) -> Option<Lineage> {
    let parsed = pg::parse(sql).ok()?;
    let node = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    lineage::lineage(node)
}
pub use lineage::{CopyFormat, Lineage, OutputColumn, SourceColumn, Sources, Stored};
pub use model::{Classification, CursorOp, LazyLineage, SettingChange, Statement, TransactionOp};
pub use options::{DEFAULT_SIDE_EFFECT_FUNCTIONS, Options};
