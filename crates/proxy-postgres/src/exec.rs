//! The exec API's PostgreSQL door (`POST /v1/exec` on a postgres connection): the command
//! runs through this door exactly as a client's would, because it *is* a client's: an
//! in-memory PostgreSQL session (tokio-postgres over a duplex pipe) presenting the caller's
//! token. Authentication, classification, the decision, the hold for approval, the injected
//! credentials, masking, the recording and the audit are the door's own; nothing here
//! decides anything.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use portcullis_pipeline::{ExecDoor, ExecOutcome, ExecRefusal, ExecRequest};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

use crate::door::Door;

/// Runs single commands through the door; cheap to clone.
#[derive(Clone)]
pub struct PgExec {
    door: Arc<Door>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for PgExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgExec").finish_non_exhaustive()
    }
}

/// A notice from the door that names a review (the statement is held).
struct Held {
    review_id: String,
    message: String,
    hint: String,
}

impl PgExec {
    pub(crate) fn new(door: Arc<Door>, shutdown: CancellationToken) -> Self {
        Self { door, shutdown }
    }

    /// An in-memory client connection to the door, as `peer`, for the agent's run and call.
    fn pipe(&self, peer: SocketAddr, local: crate::session::Local) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(crate::session::run(
            self.door.clone(),
            server,
            peer,
            self.shutdown.child_token(),
            Some(local),
        ));
        client
    }
}

#[async_trait]
impl ExecDoor for PgExec {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn serves(&self, connection: &str) -> bool {
        self.door.targets.contains_key(connection)
    }

    fn connections(&self) -> Vec<String> {
        let mut names: Vec<String> = self.door.targets.keys().cloned().collect();
        names.sort();
        names
    }

    fn connection_info(&self, connection: &str) -> Option<portcullis_policy::ConnectionInfo> {
        self.door
            .targets
            .get(connection)
            .map(|t| t.target.info.clone())
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        let mut config = tokio_postgres::Config::new();
        config
            .user("exec")
            .dbname(&req.connection)
            .password(req.token.expose_secret())
            .application_name("portcullis-exec");
        let local = crate::session::Local {
            run_id: req.run_id.clone(),
            tool_call_id: req.tool_call_id.clone(),
        };
        let (client, mut connection) = config
            .connect_raw(self.pipe(req.peer, local.clone()), tokio_postgres::NoTls)
            .await
            .map_err(|e| refusal(&e, None))?;
        let session_id = connection
            .parameter("portcullis_session_id")
            .map(str::to_owned);
        let (held_tx, mut held_rx) = mpsc::channel::<Held>(4);
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notice(n) = message
                    && let Some(held) = held_notice(&n)
                {
                    let _ = held_tx.send(held).await;
                }
            }
        });
        let run = run_query(&client, &req, session_id.clone());
        tokio::select! {
            // Waited the whole hold without a decision: still pending, not a failure.
            result = run => match (result, held_rx.try_recv()) {
                (Err(r), Ok(held)) if r.code == "approval_pending" => Ok(ExecOutcome::Pending {
                    session_id,
                    review_id: held.review_id,
                    message: r.message,
                    hint: r.hint,
                }),
                (result, _) => result,
            },
            Some(held) = held_rx.recv(), if !req.wait => {
                // Answer at once: cancel the hold (through the door's own CancelRequest
                // path), so this session cannot run the command later; the review stays
                // pending, and the same command after approval runs once.
                let cancel = client.cancel_token();
                if let Err(e) = cancel.cancel_query_raw(self.pipe(req.peer, local), tokio_postgres::NoTls).await {
                    tracing::warn!(error = %e, "could not cancel a held exec command");
                }
                Ok(ExecOutcome::Pending {
                    session_id,
                    review_id: held.review_id,
                    message: held.message,
                    hint: held.hint,
                })
            }
        }
    }
}

async fn run_query(
    client: &tokio_postgres::Client,
    req: &ExecRequest,
    session_id: Option<String>,
) -> Result<ExecOutcome, ExecRefusal> {
    let stream = client
        .simple_query_raw(&req.input)
        .await
        .map_err(|e| refusal(&e, session_id.clone()))?;
    tokio::pin!(stream);
    let (mut columns, mut rows, mut bytes) = (Vec::new(), Vec::new(), 0usize);
    let (mut row_count, mut truncated) = (0u64, false);
    while let Some(message) = stream.next().await {
        match message.map_err(|e| refusal(&e, session_id.clone()))? {
            SimpleQueryMessage::RowDescription(cols) => {
                // A new result: the last one is what the caller gets.
                columns = cols.iter().map(|c| c.name().to_owned()).collect();
                rows.clear();
                (bytes, truncated) = (0, false);
            }
            SimpleQueryMessage::Row(row) => {
                let values: Vec<Option<String>> = (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect();
                let size: usize = values.iter().flatten().map(String::len).sum();
                if rows.len() < req.max_rows && bytes + size <= req.max_bytes {
                    bytes += size;
                    rows.push(values);
                } else {
                    truncated = true;
                }
            }
            SimpleQueryMessage::CommandComplete(n) => row_count = n,
            _ => {}
        }
    }
    Ok(ExecOutcome::Done {
        session_id,
        columns,
        rows,
        row_count,
        truncated,
    })
}

/// The review a door notice names (`review: rv_...` in its detail).
fn held_notice(n: &tokio_postgres::error::DbError) -> Option<Held> {
    let detail = n.detail()?;
    let id = detail.strip_prefix("review: ")?.split(';').next()?.trim();
    Some(Held {
        review_id: id.to_owned(),
        message: n.message().to_owned(),
        hint: n.hint().unwrap_or_default().to_owned(),
    })
}

/// A failure as the exec API reports it: the door's own words, never the server's raw
/// error text beyond what the door already sent its client.
fn refusal(e: &tokio_postgres::Error, session_id: Option<String>) -> ExecRefusal {
    let Some(db) = e.as_db_error() else {
        return ExecRefusal {
            code: "door_unavailable".into(),
            status: 503,
            message: "the PostgreSQL door closed the session".into(),
            hint: "retry; if it persists, tell the gateway operator".into(),
            policies: Vec::new(),
            protocol_code: None,
            session_id,
        };
    };
    let sqlstate = db.code().code();
    // The door puts `code: <reason>` in the detail of its own refusals.
    let reason = detail_field(db, "code");
    let policies = detail_field(db, "policies")
        .map(|p| p.split(", ").map(str::to_owned).collect())
        .unwrap_or_default();
    let (status, code) = match sqlstate {
        "28P01" | "28000" => (401, token_code(db.message())),
        "3D000" => (404, "connection_unknown".to_owned()),
        "42501" => (403, reason.unwrap_or_else(|| "denied".into())),
        "57P01" => (401, "token_expired".into()),
        "58000" | "08006" => (503, reason.unwrap_or_else(|| "unavailable".into())),
        _ => (422, "statement_failed".to_owned()),
    };
    ExecRefusal {
        code,
        status,
        message: db.message().to_owned(),
        hint: db.hint().unwrap_or_default().to_owned(),
        policies,
        protocol_code: Some(sqlstate.to_owned()),
        session_id,
    }
}

/// A `name: value` field of the door's DETAIL (`action: ...; code: ...; policies: a, b`).
fn detail_field(db: &tokio_postgres::error::DbError, name: &str) -> Option<String> {
    db.detail()?
        .split("; ")
        .find_map(|f| f.strip_prefix(name)?.strip_prefix(": "))
        .map(str::to_owned)
}

/// `token rejected: token_expired` → `token_expired`.
fn token_code(message: &str) -> String {
    message
        .strip_prefix("token rejected: ")
        .unwrap_or("token_rejected")
        .to_owned()
}
