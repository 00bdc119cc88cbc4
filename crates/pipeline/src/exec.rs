//! The exec API's door interface (`POST /v1/exec`): one command, run through a door's own
//! path (authenticate, classify, decide, hold, inject credentials, mask, record, audit), so
//! that the exec API never grows a second pipeline. Each door that can run a command from
//! text implements [`ExecDoor`]; the API picks the door by the connection's kind.
//!
//! Nothing here is particular to SQL: a command's result is an [`Output`] (rows, a
//! command's stdout/stderr and exit status, or an HTTP response), and each door declares the
//! MCP tools it offers on a connection ([`ToolSpec`]), with their argument schemas.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;

use crate::Receipt;
use crate::refusal::{Code, Refusal};

/// One command to run.
pub struct ExecRequest {
    /// The caller's bearer token, presented to the door like any client's.
    pub token: SecretString,
    pub connection: String,
    /// The command, in the door's language: SQL text for SQL connections, a command line for
    /// terminal doors, ...
    pub input: String,
    /// Values bound to the command's placeholders (`$1`, ...), when the door supports them.
    pub parameters: Vec<serde_json::Value>,
    /// Wait for a held command's approval (up to the door's hold time) instead of answering
    /// at once with the review id.
    pub wait: bool,
    /// Where the API request came from.
    pub peer: std::net::SocketAddr,
    /// At most this many rows and bytes of result are returned (`truncated` says so); doors
    /// without rows bound their output by `max_bytes`.
    pub max_rows: usize,
    pub max_bytes: usize,
    /// The agent run and tool call, for the audit of everything the command causes.
    pub run_id: Option<String>,
    pub tool_call_id: Option<String>,
}

/// What happened to the command.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecOutcome {
    /// It ran. Values are as the door masked them.
    Done {
        session_id: Option<String>,
        /// What the command answered; its fields sit beside `status` in the JSON, with
        /// `output` naming the kind.
        #[serde(flatten)]
        output: Output,
        /// The audited decisions the command took, in order (`connect` first).
        decisions: Vec<Receipt>,
    },
    /// It waits for approval.
    Pending {
        session_id: Option<String>,
        review_id: String,
        message: String,
        hint: String,
        decisions: Vec<Receipt>,
    },
}

impl ExecOutcome {
    /// The outcome of the command's own last decision (`allow`, `approval_required`, ...),
    /// not of the session's questions around it (`connect`, `data.unmask`).
    pub fn decision(&self) -> &str {
        let (ExecOutcome::Done { decisions, .. } | ExecOutcome::Pending { decisions, .. }) = self;
        decisions
            .iter()
            .rev()
            .find(|r| r.command)
            .map(|r| r.outcome.as_str())
            .unwrap_or("allow")
    }
}

/// What a command answered, by the kind of door that ran it. Serialized with an `output`
/// key naming the variant (`rows`, `stream`, `http`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum Output {
    /// A SQL result: column names and rows of text values (`None` is NULL).
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        /// The rows the statement produced or changed, even when fewer are returned.
        row_count: u64,
        /// Rows were left out by the gateway's limits.
        truncated: bool,
    },
    /// A command's output (terminal and command doors): what it wrote to stdout and stderr,
    /// and how it ended.
    Stream {
        stdout: String,
        stderr: String,
        /// The exit status; `None` when the command ended without one (killed by a signal,
        /// or the session closed first).
        exit_status: Option<i32>,
        /// Output was left out by the gateway's limits.
        truncated: bool,
    },
    /// An HTTP response. `status_code`, not `status`: the outcome's own `status`
    /// (`done`) sits beside these fields.
    Http {
        status_code: u16,
        /// In the order received; a repeated header appears once per value.
        headers: Vec<(String, String)>,
        /// The body: UTF-8 text as it is, or standard base64 (padded) when it is not UTF-8,
        /// as `body_encoding` says.
        body: String,
        body_encoding: BodyEncoding,
        /// The body was cut short by the gateway's limits.
        truncated: bool,
    },
}

/// How an HTTP [`Output`]'s body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    Utf8,
    Base64,
}

/// One MCP tool a door offers on a connection. The MCP server lists it (when the caller may
/// connect) and maps a call to the door as `call` says; the door declares everything
/// particular to its protocol, the server nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Unique among the gateway's tools (`query_<connection>`, ...).
    pub name: String,
    pub title: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON Schema of the call's arguments (an object schema).
    pub input_schema: serde_json::Value,
    /// The tool only reads (an MCP annotation; the door's policy still decides each call).
    pub read_only: bool,
    pub call: ToolCall,
}

/// How a call of a [`ToolSpec`] maps to its door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCall {
    /// [`ExecDoor::exec`] with the command in the string argument `input` and, when the
    /// door binds values to placeholders, the array argument `parameters`.
    Run {
        input: &'static str,
        parameters: Option<&'static str>,
        /// A sample command, for the hint of a call that lacks `input` (`SELECT ...`).
        example: &'static str,
    },
    /// [`ExecDoor::describe`]; the tool takes no arguments.
    Describe,
}

/// What a connection holds that the caller may read: for SQL connections, tables and columns.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    pub session_id: Option<String>,
    pub tables: Vec<DescribedTable>,
    /// Tables the target holds that the policy would not let the caller read.
    pub hidden: usize,
    /// The catalog was longer than the door reads.
    pub truncated: bool,
    pub decisions: Vec<Receipt>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribedTable {
    pub schema: String,
    pub name: String,
    pub columns: Vec<DescribedColumn>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribedColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Why the command did not run: the engine's typed refusal, and what the door adds (the
/// protocol's own code, such as a SQLSTATE, when the target itself failed the command).
/// The API chooses the HTTP status from the code.
#[derive(Debug, Clone, Serialize)]
pub struct ExecRefusal {
    #[serde(flatten)]
    pub refusal: Refusal,
    pub protocol_code: Option<String>,
    pub session_id: Option<String>,
    /// The audited decisions taken before the refusal (the denial's own is last).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Receipt>,
}

impl From<Refusal> for ExecRefusal {
    fn from(refusal: Refusal) -> Self {
        Self {
            refusal,
            protocol_code: None,
            session_id: None,
            decisions: Vec::new(),
        }
    }
}

impl ExecRefusal {
    /// A refusal with its code, message and hint.
    pub fn new(code: Code, message: impl Into<String>, hint: &str) -> Self {
        Refusal::new(code, message, hint).into()
    }

    pub fn code(&self) -> Code {
        self.refusal.code
    }

    /// No connection has this name.
    pub fn unknown_connection(name: &str) -> Self {
        Self::new(
            Code::ConnectionUnknown,
            format!("no connection named {name:?}"),
            "list the connections you may use (MCP tools/list)",
        )
    }

    /// The door cannot do this.
    pub fn unsupported(what: &str, kind: &str) -> Self {
        Self::new(
            Code::Unsupported,
            format!("{kind} connections do not support {what}"),
            "use the connection's query tool instead",
        )
    }
}

#[async_trait]
pub trait ExecDoor: Send + Sync {
    /// The connection kind this door serves (`postgres`, ...).
    fn kind(&self) -> &'static str;
    /// Whether `connection` is one of this door's.
    fn serves(&self, connection: &str) -> bool;
    /// The names of this door's connections (the MCP server offers each one's tools).
    fn connections(&self) -> Vec<String> {
        Vec::new()
    }
    /// The MCP tools this door offers on `connection`, one of its own. None by default: a
    /// door is reachable through MCP only with the tools it declares.
    fn tools(&self, _connection: &str) -> Vec<ToolSpec> {
        Vec::new()
    }
    /// How policy sees `connection` (name, kind, labels), when it is one of this door's.
    fn connection_info(&self, _connection: &str) -> Option<portcullis_policy::ConnectionInfo> {
        None
    }
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal>;
    /// What the caller may read on `req.connection` (`req.input` is ignored); offered
    /// through MCP by declaring a [`ToolCall::Describe`] tool.
    async fn describe(&self, _req: ExecRequest) -> Result<Described, ExecRefusal> {
        Err(ExecRefusal::unsupported("describe", self.kind()))
    }
    /// Reads again what the door knows of `connection`'s target (a database's catalog),
    /// now; the answer says what it holds. The caller has decided `admin.refresh`.
    async fn refresh(&self, _connection: &str) -> Result<serde_json::Value, ExecRefusal> {
        Err(ExecRefusal::unsupported("refresh", self.kind()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn done(output: Output) -> serde_json::Value {
        serde_json::to_value(ExecOutcome::Done {
            session_id: Some("s".into()),
            output,
            decisions: Vec::new(),
        })
        .unwrap()
    }

    /// Each output's fields sit beside `status`, named by `output`; rows keep the fields the
    /// exec API has always answered with.
    #[test]
    fn outputs_flatten_beside_the_status() {
        let rows = Output::Rows {
            columns: vec!["one".into()],
            rows: vec![vec![Some("1".into()), None]],
            row_count: 1,
            truncated: false,
        };
        assert_eq!(
            done(rows),
            json!({"status": "done", "output": "rows", "session_id": "s", "columns": ["one"],
                   "rows": [["1", null]], "row_count": 1, "truncated": false, "decisions": []})
        );
        let stream = Output::Stream {
            stdout: "hi\n".into(),
            stderr: String::new(),
            exit_status: None,
            truncated: true,
        };
        assert_eq!(
            done(stream),
            json!({"status": "done", "output": "stream", "session_id": "s", "stdout": "hi\n",
                   "stderr": "", "exit_status": null, "truncated": true, "decisions": []})
        );
        let http = Output::Http {
            status_code: 404,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: "gone".into(),
            body_encoding: BodyEncoding::Utf8,
            truncated: false,
        };
        assert_eq!(
            done(http),
            json!({"status": "done", "output": "http", "session_id": "s", "status_code": 404,
                   "headers": [["content-type", "text/plain"]], "body": "gone",
                   "body_encoding": "utf8", "truncated": false, "decisions": []})
        );
    }
}
