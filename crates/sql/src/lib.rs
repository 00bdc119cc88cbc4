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
//! - a call to a function of [`Options::side_effect_functions`] anywhere makes it `sql.admin`;
//! - `EXPLAIN ANALYZE` is the statement it runs; plain `EXPLAIN` is `sql.explain`;
//! - `SELECT INTO`/`CREATE TABLE AS` and schema changes are `sql.ddl`; rights, roles,
//!   maintenance, code (`DO`, `CALL`, functions), server files and anything unknown are
//!   `sql.admin`;
//! - transaction control is `sql.transaction` and settings are `sql.session`, except the
//!   escapes from read-only mode or the session's role, which are `sql.admin`;
//! - `PREPARE` takes its statement's action and `EXECUTE` is `sql.admin` until the door
//!   resolves the name.

mod action;
mod classify;
mod head;
mod model;
mod options;
mod pg;
mod session;
mod walk;

pub use action::ids;
pub use classify::classify;
pub use model::{Classification, Statement};
pub use options::{DEFAULT_SIDE_EFFECT_FUNCTIONS, Options};
