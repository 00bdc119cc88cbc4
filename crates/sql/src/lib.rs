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
//!   that depends on no column (a constant, `$n`, a subquery that neither reads the target
//!   nor refers to the row being tested), or two disjoint sets of R's columns (`a = b`).
//!   Nothing is restricted by an atom with a column on both sides (`id = id`, `id = id + 0`),
//!   a side holding a predicate of its own (`(id = id) = true`, CASE, `nullif`), a column read
//!   twice in one side (`id - id`), arithmetic that can erase a column (`*`, `/`, `%`, bitwise
//!   operators), `tableoid`, or no column at all (`true`, `1 = 1`, `now() > '2000-01-01'`, an
//!   uncorrelated EXISTS).
//! - `x IS NULL`, `x IS UNKNOWN`, `x IS [NOT] TRUE|FALSE` and a bare boolean column
//!   (`WHERE active`, `WHERE NOT active`) restrict when `x` is a column; `IS NOT NULL` (a
//!   column is assumed never null when unsure, as `ctid` or a key is), `IS NOT UNKNOWN` and
//!   `IS DISTINCT FROM NULL` do not.
//! - LIKE, ILIKE, SIMILAR TO and regular expressions restrict unless the pattern matches
//!   everything (it has no character every match needs: `'%'`, `''`, `'.*'`, `'x?'`) or is
//!   an expression the text does not give (`'%' || ''`); a parameter counts as a value.
//! - ALL over anything but a written non-empty array, `NOT IN (subquery)`, `<> ANY`,
//!   `NOT BETWEEN` bounds other than ordered number constants (`NOT BETWEEN 10 AND 1`), and
//!   `IS DISTINCT FROM` a parameter or subquery (which may be NULL) can hold for every row,
//!   so they restrict nothing.
//! - AND restricts what any part restricts. OR restricts what every part restricts, and
//!   nothing when its parts are complementary (`a = 1 OR a <> 1`, `a < 5 OR a >= 5`,
//!   `x OR NOT x`). NOT is pushed down (De Morgan: `NOT (x IS NULL)` is `x IS NOT NULL`).
//! - Joins: an atom comparing columns of two relations links them, and a relation linked
//!   through any chain of links in one conjunction to a restricted relation is restricted.
//!   A join condition alone restricts nothing: every target row with a partner changes. A
//!   `VALUES` list of constants in FROM is restricted by what it is. A correlated `EXISTS`
//!   or `IN (subquery)` adds its FROM items and WHERE to the conjunction: `EXISTS (SELECT 1
//!   FROM items i WHERE i.order_id = orders.id AND i.qty > 5)` restricts `orders`, and
//!   without `i.qty > 5` it does not. `NOT EXISTS` and subqueries that aggregate (one row
//!   whatever their WHERE) restrict nothing.
//! - A subquery that reads the target table (or a CTE that does) is no independent value:
//!   `id IN (SELECT id FROM orders)` on `orders` counts only as such a join, and restricts
//!   nothing. An unqualified name inside a subquery that the other side also reads (`id IN
//!   (SELECT id FROM other)`) may be the outer row's column, so it restricts nothing either.
//! - Unqualified columns belong to the target when the write has no other relation. Next to
//!   other relations they could be anyone's and never count as the target's: multi-relation
//!   writes must qualify their columns to count as bounded.
//! - In `ON CONFLICT DO UPDATE`, `excluded.col` is a column of the target (the row that
//!   conflicted with it), so only comparisons of target columns with values restrict.
//! - `WHERE CURRENT OF c` is bounded (the cursor's row); TRUNCATE never is; MERGE and INSERT
//!   have no such notion.
//!
//! The reading is syntactic. What needs the database (views or functions that read the
//! target, column nullability, value ranges such as `id > -1`, which of `t.f` is a column)
//! is left to the catalog-aware classification of DESIGN.md §5, with the server's own row
//! count as the backstop.

mod action;
mod classify;
mod head;
mod model;
mod options;
mod pg;
mod restrict;
mod session;
mod visit;
mod walk;

pub use action::ids;
pub use classify::classify;
pub use model::{Classification, CursorOp, SettingChange, Statement};
pub use options::{DEFAULT_SIDE_EFFECT_FUNCTIONS, Options};
