//! The exec API's door interface (`POST /v1/exec`): one command, run through a door's own
//! path (authenticate, classify, decide, hold, inject credentials, mask, record, audit), so
//! that the exec API never grows a second pipeline. Each door that can run a command from
//! text implements [`ExecDoor`]; the API picks the door by the connection's kind.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;

use crate::Receipt;

/// One command to run.
pub struct ExecRequest {
    /// The caller's bearer token, presented to the door like any client's.
    pub token: SecretString,
    pub connection: String,
    /// The command: SQL text for SQL connections.
    pub input: String,
    /// Values bound to the command's placeholders (`$1`, ...), when the door supports them.
    pub parameters: Vec<serde_json::Value>,
    /// Wait for a held command's approval (up to the door's hold time) instead of answering
    /// at once with the review id.
    pub wait: bool,
    /// Where the API request came from.
    pub peer: std::net::SocketAddr,
    /// At most this many rows and bytes of result are returned (`truncated` says so).
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
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        row_count: u64,
        truncated: bool,
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

/// Why the command did not run: a reason code, and what the door said (message, hint, the
/// protocol's own code such as a SQLSTATE).
#[derive(Debug, Clone, Serialize)]
pub struct ExecRefusal {
    /// `policy_forbid`, `approval_denied`, `token_expired`, `connection_unknown`, ...
    pub code: String,
    /// 401 (token), 403 (denied), 404 (no such connection), 409/422 (failed in the target),
    /// 503 (unavailable).
    pub status: u16,
    pub message: String,
    pub hint: String,
    /// The policies that decided a denial.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    pub protocol_code: Option<String>,
    pub session_id: Option<String>,
    /// The audited decisions taken before the refusal (the denial's own is last).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Receipt>,
}

impl ExecRefusal {
    /// A refusal with its code, HTTP status, message and hint.
    pub fn new(code: &str, status: u16, message: String, hint: &str) -> Self {
        Self {
            code: code.into(),
            status,
            message,
            hint: hint.into(),
            policies: Vec::new(),
            protocol_code: None,
            session_id: None,
            decisions: Vec::new(),
        }
    }

    /// The request itself is wrong (400).
    pub fn bad_request(code: &str, message: impl Into<String>, hint: &str) -> Self {
        Self::new(code, 400, message.into(), hint)
    }

    /// The token was refused.
    pub fn token(message: impl Into<String>) -> Self {
        Self::new(
            "token_rejected",
            401,
            message.into(),
            "get a fresh token from your identity provider and retry",
        )
    }

    /// No connection has this name.
    pub fn unknown_connection(name: &str) -> Self {
        Self::new(
            "connection_unknown",
            404,
            format!("no connection named {name:?}"),
            "list the connections you may use (MCP tools/list)",
        )
    }

    /// The door cannot do this.
    pub fn unsupported(what: &str, kind: &str) -> Self {
        Self::new(
            "unsupported",
            501,
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
    /// The names of this door's connections (the MCP server offers a tool for each).
    fn connections(&self) -> Vec<String> {
        Vec::new()
    }
    /// How policy sees `connection` (name, kind, labels), when it is one of this door's.
    fn connection_info(&self, _connection: &str) -> Option<portcullis_policy::ConnectionInfo> {
        None
    }
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutcome, ExecRefusal>;
    /// Whether [`ExecDoor::describe`] is supported.
    fn describes(&self) -> bool {
        false
    }
    /// What the caller may read on `req.connection` (`req.input` is ignored).
    async fn describe(&self, _req: ExecRequest) -> Result<Described, ExecRefusal> {
        Err(ExecRefusal::unsupported("describe", self.kind()))
    }
    /// Reads again what the door knows of `connection`'s target (a database's catalog),
    /// now; the answer says what it holds. The caller has decided `admin.refresh`.
    async fn refresh(&self, _connection: &str) -> Result<serde_json::Value, ExecRefusal> {
        Err(ExecRefusal::unsupported("refresh", self.kind()))
    }
}
