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
    Code, Described, ExecDoor, ExecOutcome, ExecRefusal, ExecRequest, Output, Receipt, Receipts,
    Refusal, ToolCall, ToolSpec,
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
                .map_err(|f| refusal(f, &receipts, None))?;
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
        let answer = client.run(input, &params, limit, cancel, &receipts).await;
        client.close().await;
        // Answer once the session is over: its close is in the audit and its server
        // connection is back in the pool for the next call.
        if tokio::time::timeout(SESSION_END, session).await.is_err() {
            tracing::warn!("an exec session did not end in time");
        }
        let mut answer = answer.map_err(|f| refusal(f, &receipts, session_id.clone()))?;
        answer.refusal = receipts.take_refusal();
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

    fn tools(&self, connection: &str) -> Vec<ToolSpec> {
        if !self.serves(connection) {
            return Vec::new();
        }
        vec![
            query_tool(connection, self.kind()),
            describe::tool(connection, self.kind()),
        ]
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
                    Code::CatalogUnavailable,
                    "the connection's catalog could not be read",
                    "check that the database server is up; the gateway log says why",
                ))
            }
        }
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal> {
        // The protocol counts parameters in an Int16.
        if req.parameters.len() > MAX_PARAMETERS {
            return Err(ExecRefusal::new(
                Code::ParametersTooMany,
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
        match (a.error, a.refusal, a.held) {
            (None, _, _) => Ok(ExecOutcome::Done {
                session_id,
                output: Output::Rows {
                    columns: a.columns,
                    rows: a.rows,
                    row_count: a.row_count,
                    truncated: a.truncated,
                },
                decisions,
            }),
            // Held, then canceled (no `wait`) or still undecided when the hold ended.
            (Some(_), Some(r), Some(held))
                if matches!(r.code, Code::ApprovalCanceled | Code::ApprovalPending) =>
            {
                Ok(ExecOutcome::Pending {
                    message: format!("{}; review {} is pending", held.needs, held.review_id),
                    session_id,
                    review_id: held.review_id,
                    hint: held.hint,
                    decisions,
                })
            }
            (Some(e), refused, _) => Err(failed(&e, refused, session_id, decisions)),
        }
    }

    async fn describe(&self, req: ExecRequest) -> Result<Described, ExecRefusal> {
        describe::describe(self, req).await
    }
}

/// `query_<connection>`: one SQL statement, with values for its `$n` placeholders.
fn query_tool(connection: &str, kind: &str) -> ToolSpec {
    ToolSpec {
        name: format!("query_{connection}"),
        title: format!("Query {connection}"),
        description: format!(
            "Run one SQL statement on the {kind} connection `{connection}` through the Portcullis gateway. \
             Policy decides; results are masked. A statement that needs approval answers \
             status \"pending\" with a review_id: call wait_for_review or check_review, then run \
             the same statement again once it is approved."
        ),
        input_schema: serde_json::json!({
            "type": "object",
            "properties": {
                "sql": {
                    "type": "string",
                    "description": "one SQL statement; $1, $2, ... for bound parameters"
                },
                "parameters": {
                    "type": "array",
                    "description": "values for $1, $2, ... in order (strings, numbers, booleans, null; JSON for json columns)",
                    "items": {}
                }
            },
            "required": ["sql"],
            "additionalProperties": false
        }),
        read_only: false,
        call: ToolCall::Run {
            input: "sql",
            parameters: Some("parameters"),
            example: "SELECT ...",
        },
    }
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

/// A session that ended before the command could run (its start-up refused, the door
/// gone): what the session told its client, typed, as the engine noted it.
fn refusal(f: Failure, noted: &Receipts, session_id: Option<String>) -> ExecRefusal {
    let decisions = noted.take();
    let e = match f {
        Failure::Door(e) => e,
        _ => ErrorFields::default(),
    };
    failed(&e, noted.take_refusal(), session_id, decisions)
}

/// A command that failed: the refusal the door told its client (typed, never read back out
/// of its text), or else the server's own error (`statement_failed`, with its SQLSTATE and
/// the words the client saw).
fn failed(
    e: &ErrorFields,
    refused: Option<Refusal>,
    session_id: Option<String>,
    decisions: Vec<Receipt>,
) -> ExecRefusal {
    let text = |t: u8| String::from_utf8_lossy(e.get(t).unwrap_or_default()).into_owned();
    let sqlstate = e.code().map(|c| String::from_utf8_lossy(c).into_owned());
    let refusal = match refused {
        Some(r) => r,
        None if sqlstate.is_none() => Refusal::new(
            Code::DoorUnavailable,
            "the PostgreSQL door closed the session",
            "retry; if it persists, tell the gateway operator",
        ),
        None => Refusal::new(Code::StatementFailed, text(b'M'), text(b'H')),
    };
    let mut refusal = refusal;
    if let Some(m) = refusal.message.strip_prefix("portcullis: ") {
        refusal.message = m.to_owned();
    }
    ExecRefusal {
        refusal,
        protocol_code: sqlstate,
        session_id,
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Today's two tools, with the SQL argument on the query tool only.
    #[test]
    fn declares_a_query_and_a_describe_tool() {
        let q = query_tool("orders", "postgres");
        assert_eq!((q.name.as_str(), q.read_only), ("query_orders", false));
        assert_eq!(q.input_schema["required"], serde_json::json!(["sql"]));
        assert!(matches!(
            q.call,
            ToolCall::Run {
                input: "sql",
                parameters: Some("parameters"),
                ..
            }
        ));
        let d = describe::tool("orders", "postgres");
        assert_eq!((d.name.as_str(), d.read_only), ("describe_orders", true));
        assert_eq!(d.call, ToolCall::Describe);
        assert!(d.input_schema["properties"].get("sql").is_none());
    }

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
