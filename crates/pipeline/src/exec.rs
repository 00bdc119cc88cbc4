//! The exec API's door interface (`POST /v1/exec`): one command, run through a door's own
//! path (authenticate, classify, decide, hold, inject credentials, mask, record, audit), so
//! that the exec API never grows a second pipeline. Each door that can run a command from
//! text implements [`ExecDoor`]; the API picks the door by the connection's kind.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;

/// One command to run.
pub struct ExecRequest {
    /// The caller's bearer token, presented to the door like any client's.
    pub token: SecretString,
    pub connection: String,
    /// The command: SQL text for SQL connections.
    pub input: String,
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
    },
    /// It waits for approval.
    Pending {
        session_id: Option<String>,
        review_id: String,
        message: String,
        hint: String,
    },
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
}
