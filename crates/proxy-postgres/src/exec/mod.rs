//! The exec API's PostgreSQL door (`POST /v1/exec` and the MCP tools on a postgres
//! connection): the command runs through this door exactly as a client's would, because it
//! *is* a client's: an in-memory PostgreSQL session ([`client`]) presenting the caller's
//! token. Authentication, classification, the decision, the hold for approval, the injected
//! credentials, masking, the recording and the audit are the door's own; nothing here
//! decides anything. The decisions the session took come back as audit receipts
//! ([`Receipts`]), so the answer can name its audit events.

mod client;
mod describe;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_pgwire::ErrorFields;
use portcullis_pipeline::{
    Described, ExecDoor, ExecOutcome, ExecRefusal, ExecRequest, Receipt, Receipts,
};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use self::client::{Answer, Client, Failure, Limit};
use crate::door::Door;

/// The most bound parameters one command may carry (Bind counts them in an Int16).
const MAX_PARAMETERS: usize = i16::MAX as usize;

/// How long an answer waits for its session to end after the command.
const SESSION_END: std::time::Duration = std::time::Duration::from_secs(5);

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

impl PgExec {
    pub(crate) fn new(door: Arc<Door>, shutdown: CancellationToken) -> Self {
        Self { door, shutdown }
    }

    /// An in-memory client connection to the door, as `peer`, for the agent's run and call.
    /// The session's task ends once the door has closed the session (audited, recorded, its
    /// server connection reset for the next or closed).
    fn pipe(
        &self,
        peer: SocketAddr,
        local: crate::session::Local,
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(crate::session::run(
            self.door.clone(),
            server,
            peer,
            self.shutdown.child_token(),
            Some(local),
        ));
        (client, session)
    }

    /// Runs one command in its own session; the answer and the decisions it took.
    async fn answer(
        &self,
        req: &ExecRequest,
        input: &str,
        limit: Limit,
    ) -> Result<(Answer, Option<String>, Vec<Receipt>), ExecRefusal> {
        let receipts = Receipts::default();
        let local = crate::session::Local {
            run_id: req.run_id.clone(),
            tool_call_id: req.tool_call_id.clone(),
            receipts: Some(receipts.clone()),
        };
        let (pipe, session) = self.pipe(req.peer, local.clone());
        let mut client =
            Client::connect(pipe, &req.connection, req.token.expose_secret().as_bytes())
                .await
                .map_err(|f| refusal(f, None, receipts.take()))?;
        let session_id = client.session_id.clone();
        // Without `wait`, a held command is answered at once: its hold is ended through the
        // door's own CancelRequest path (so this session cannot run it later); the review
        // stays pending, and the same command after approval runs once.
        let cancel_pipe = {
            let (exec, peer) = (self.clone(), req.peer);
            move || exec.pipe(peer, local.clone()).0
        };
        let cancel: Option<&(dyn Fn() -> tokio::io::DuplexStream + Send + Sync)> =
            if req.wait { None } else { Some(&cancel_pipe) };
        let params = text_params(&req.parameters);
        let answer = client.run(input, &params, limit, cancel).await;
        client.close().await;
        // Answer once the session is over: its close is in the audit and its server
        // connection is back in the pool for the next call.
        if tokio::time::timeout(SESSION_END, session).await.is_err() {
            tracing::warn!("an exec session did not end in time");
        }
        let answer = answer.map_err(|f| refusal(f, session_id.clone(), receipts.take()))?;
        Ok((answer, session_id, receipts.take()))
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

    fn describes(&self) -> bool {
        true
    }

    async fn refresh(&self, connection: &str) -> Result<serde_json::Value, ExecRefusal> {
        let Some(target) = self.door.targets.get(connection) else {
            return Err(ExecRefusal::unknown_connection(connection));
        };
        match target.catalog.reload(target, self.door.limits).await {
            Ok(c) => {
                let (relations, functions) = c.counts();
                Ok(serde_json::json!({
                    "connection": connection,
                    "refreshed": true,
                    "relations": relations,
                    "user_functions": functions,
                }))
            }
            Err(e) => {
                tracing::warn!(connection, error = %e, "refreshing the catalog failed");
                Err(ExecRefusal::new(
                    "catalog_unavailable",
                    503,
                    "the connection's catalog could not be read".to_owned(),
                    "check that the database server is up; the gateway log says why",
                ))
            }
        }
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        // The protocol counts parameters in an Int16.
        if req.parameters.len() > MAX_PARAMETERS {
            return Err(ExecRefusal::bad_request(
                "parameters_too_many",
                format!(
                    "{} parameters; PostgreSQL takes at most {MAX_PARAMETERS}",
                    req.parameters.len()
                ),
                "send the values in fewer statements, or as one array or JSON parameter",
            ));
        }
        let limit = Limit {
            rows: req.max_rows,
            bytes: req.max_bytes,
        };
        let (a, session_id, decisions) = self.answer(&req, &req.input, limit).await?;
        match (a.error, a.held) {
            (None, _) => Ok(ExecOutcome::Done {
                session_id,
                columns: a.columns,
                rows: a.rows,
                row_count: a.row_count,
                truncated: a.truncated,
                decisions,
            }),
            // Held, then canceled (no `wait`) or still undecided when the hold ended.
            (Some(e), Some(held)) if is_still_pending(&e) => {
                // The door's words without its prefix and without the hold it no longer does.
                let message = held
                    .message
                    .strip_prefix("portcullis: ")
                    .unwrap_or(&held.message);
                let needs = message
                    .split(crate::hold::HOLDING)
                    .next()
                    .unwrap_or(message);
                Ok(ExecOutcome::Pending {
                    message: format!("{needs}; review {} is pending", held.review_id),
                    session_id,
                    review_id: held.review_id,
                    hint: held.hint,
                    decisions,
                })
            }
            (Some(e), _) => Err(refusal(Failure::Door(e), session_id, decisions)),
        }
    }

    async fn describe(&self, req: ExecRequest) -> Result<Described, ExecRefusal> {
        describe::describe(self, req).await
    }
}

/// Whether the door's error after a hold means the review is still pending: the hold was
/// canceled or timed out.
fn is_still_pending(e: &ErrorFields) -> bool {
    matches!(
        field(e, "code").as_deref(),
        Some("approval_canceled" | "approval_pending")
    )
}

/// JSON parameters as PostgreSQL text values: strings as they are, numbers and booleans in
/// their JSON spelling (which PostgreSQL reads), objects and arrays as JSON text (for json
/// and jsonb parameters; an SQL array is given as a string such as `"{1,2}"`), null as NULL.
fn text_params(params: &[serde_json::Value]) -> Vec<Option<String>> {
    use serde_json::Value;
    params
        .iter()
        .map(|p| match p {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect()
}

fn text(e: &ErrorFields, t: u8) -> String {
    String::from_utf8_lossy(e.get(t).unwrap_or_default()).into_owned()
}

/// A `name: value` field of the door's DETAIL.
fn field(e: &ErrorFields, name: &str) -> Option<String> {
    crate::respond::detail_field(&text(e, b'D'), name).map(str::to_owned)
}

/// A failure as the exec API reports it: the door's own words and reason code (every
/// refusal of the door's carries `code:` in its DETAIL), never the server's raw error text
/// beyond what the door already sent its client.
fn refusal(f: Failure, session_id: Option<String>, decisions: Vec<Receipt>) -> ExecRefusal {
    let Failure::Door(e) = f else {
        return ExecRefusal {
            code: "door_unavailable".into(),
            status: 503,
            message: "the PostgreSQL door closed the session".into(),
            hint: "retry; if it persists, tell the gateway operator".into(),
            policies: Vec::new(),
            protocol_code: None,
            session_id,
            decisions,
        };
    };
    let sqlstate = text(&e, b'C');
    let message = text(&e, b'M');
    let message = message
        .strip_prefix("portcullis: ")
        .map(str::to_owned)
        .unwrap_or(message);
    let policies = field(&e, "policies")
        .map(|p| p.split(", ").map(str::to_owned).collect())
        .unwrap_or_default();
    // Only the server's own errors come without a reason code.
    let code = field(&e, "code").unwrap_or_else(|| "statement_failed".into());
    let status = match (sqlstate.as_str(), code.as_str()) {
        // The caller's own sessions are at their limit: it can wait for one to end.
        (_, "session_limit_principal") => 429,
        (
            _,
            "gateway_shutdown"
            | "upstream_unavailable"
            | "audit_unavailable"
            | "recording_unavailable"
            | "session_limit_connection"
            | "server_connections_exhausted",
        ) => 503,
        ("28P01" | "28000" | "57P01", _) => 401,
        ("3D000", _) => 404,
        ("42501", _) => 403,
        _ => 422,
    };
    ExecRefusal {
        code,
        status,
        message,
        hint: text(&e, b'H'),
        policies,
        protocol_code: Some(sqlstate),
        session_id,
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parameters_become_text() {
        let p = serde_json::json!(["a'b", 42, 1.5, true, null, {"k": [1]}, [1, 2]]);
        let got = text_params(p.as_array().unwrap());
        assert_eq!(
            got,
            [
                Some("a'b".into()),
                Some("42".into()),
                Some("1.5".into()),
                Some("true".into()),
                None,
                Some(r#"{"k":[1]}"#.into()),
                Some("[1,2]".into()),
            ]
        );
    }
}
