//! The PostgreSQL door (issue 3, DESIGN.md §2, §5, §10): agents connect with `psql`,
//! psycopg, asyncpg or any libpq-compatible client; the password is their OIDC token; the
//! database name selects a configured connection. The door authenticates the token, asks
//! policy about `connect` before it opens anything upstream, logs in to the server with
//! credentials only the gateway holds, and then relays the session message by message,
//! classifying every SQL statement and asking the policy about each one.
//!
//! Protocol: <https://www.postgresql.org/docs/current/protocol.html>, spoken through the
//! [`portcullis_pgwire`] codec. Where the code goes:
//!
//! - `door`: shared state and the accept loop; `session`: one session from accept to
//!   admission, opened and closed on the session engine (`portcullis_pipeline::session`,
//!   which owns the audit events, the recording, holds and masking obligations); `live`:
//!   upstream login, greeting, relay and how it ends;
//! - `startup`: TLS/GSS negotiation, startup parameters, the token exchange;
//! - `upstream`, `upstream_auth`: the gateway's own login (trust, cleartext, MD5, SCRAM);
//! - `relay`: the per-message relay and the denial mechanics (read its docs first);
//! - `enforce`: statement decisions through the pipeline; `cache`: classification cache;
//! - `cancel`: the gateway's cancel keys; `tls`: certificates both ways;
//! - `respond`: the only place errors become ErrorResponses (SQLSTATEs);
//! - `limits`: sessions per principal and connection, idle timeouts, pipeline depth.
//!
//! Architecture Invariant: the door never evaluates policy; it classifies and obeys
//! `Pipeline::decide`, and a statement that is not allowed never reaches the server.

mod cache;
mod cancel;
mod catalog;
mod door;
mod encoding;
mod enforce;
mod error;
mod exec;
mod hold;
mod limits;
mod live;
mod mask;
mod pool;
mod record;
mod relay;
mod respond;
mod session;
mod settings;
mod startup;
mod stream;
mod tls;
mod upstream;
mod upstream_auth;

pub use door::PgDoor;
pub use error::{ErrorKind, PgError};
pub use exec::PgExec;
pub use limits::{Exceeded, SessionLimits};
pub use respond::sqlstate;
pub use settings::{PgDoorSettings, PgTarget, TlsFiles, UpstreamTls};
