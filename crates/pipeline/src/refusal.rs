//! The one typed refusal every door renders (DESIGN.md §2): why a session or a command does
//! not run, as a closed set of reason codes with stable strings, a message, a hint, the
//! policies that decided and the review when there is one.
//!
//! A door maps a [`Refusal`] to its protocol in exactly one place (the PostgreSQL door's
//! `respond.rs`: ErrorResponse and its SQLSTATE; the API's `problem.rs`: problem+json and the
//! HTTP status). Nothing reads a refusal back out of protocol text: the exec API and MCP get
//! the typed value.

use portcullis_identity::Reason;
use portcullis_policy::DenyCode;

/// Why something did not run. The strings ([`Code::as_str`]) are part of the external
/// interface: clients, agents and the audit key on them, so they never change spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A policy refused: `policy_forbid`, `policy_default_deny`, `policy_error`, ...
    Policy(DenyCode),
    /// The token was refused, or its identity revoked: `expired`, `revoked_subject`, ...
    Token(Reason),
    /// The session's authority ended (the token's `exp` plus the issuer's leeway).
    TokenExpired,
    /// The token crossed a network in plaintext.
    TlsRequired,
    /// No connection has the name the client gave.
    ConnectionUnknown,
    /// The policy asks for approval where nothing can be held.
    ApprovalRequired,
    ApprovalDenied,
    /// The hold ended before anyone decided; the review stays pending.
    ApprovalPending,
    /// The client ended the hold; the review stays pending.
    ApprovalCanceled,
    /// The client canceled the command before it reached the target.
    QueryCanceled,
    ApprovalExpired,
    /// The approval was already used (it runs its command once).
    ApprovalUsed,
    /// More than one command of one request needs approval.
    ApprovalOneAtATime,
    /// The gateway has no review service to hold the command with.
    ApprovalsUnavailable,
    /// The review service failed while holding (its own code).
    ReviewNotFound,
    ReviewNotPending,
    ReviewExpired,
    ReviewStore,
    AuditUnavailable,
    RecordingUnavailable,
    CatalogUnavailable,
    /// The masking profiles the decision asks for cannot be built.
    MaskingUnavailable,
    /// The output cannot be masked, and it must be.
    Unmaskable,
    /// A write would store values of a sensitive column where masking cannot follow them.
    SensitiveCopy,
    RowLimitUnenforceable,
    RowLimitExceeded,
    FunctionCallForbidden,
    PreparedStatementsLimit,
    InvalidEncoding,
    ClientEncodingUnsupported,
    ClientEncodingForbidden,
    ClientEncodingPipelined,
    ClientEncodingChanged,
    StandardConformingStringsOff,
    /// A read-only session's read-only default was turned off.
    ReadOnlyUndone,
    SessionLimitPrincipal,
    SessionLimitConnection,
    ServerConnectionsExhausted,
    ClientStalled,
    IdleTimeout,
    IdleInTransactionTimeout,
    GatewayShutdown,
    UpstreamUnavailable,
    /// The target itself refused or failed the command (its own error, e.g. a SQLSTATE).
    StatementFailed,
    /// The door closed the session before answering.
    DoorUnavailable,
    /// The request names more parameters than the protocol carries.
    ParametersTooMany,
    /// The door does not offer this operation.
    Unsupported,
}

impl Code {
    /// The stable snake_case string.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Policy(c) => c.code(),
            Token(r) => r.code(),
            TokenExpired => "token_expired",
            TlsRequired => "tls_required",
            ConnectionUnknown => "connection_unknown",
            ApprovalRequired => "approval_required",
            ApprovalDenied => "approval_denied",
            ApprovalPending => "approval_pending",
            ApprovalCanceled => "approval_canceled",
            QueryCanceled => "query_canceled",
            ApprovalExpired => "approval_expired",
            ApprovalUsed => "approval_used",
            ApprovalOneAtATime => "approval_one_at_a_time",
            ApprovalsUnavailable => "approvals_unavailable",
            ReviewNotFound => "review_not_found",
            ReviewNotPending => "review_not_pending",
            ReviewExpired => "review_expired",
            ReviewStore => "review_store",
            AuditUnavailable => "audit_unavailable",
            RecordingUnavailable => "recording_unavailable",
            CatalogUnavailable => "catalog_unavailable",
            MaskingUnavailable => "masking_unavailable",
            Unmaskable => "unmaskable",
            SensitiveCopy => "sensitive_copy",
            RowLimitUnenforceable => "row_limit_unenforceable",
            RowLimitExceeded => "row_limit_exceeded",
            FunctionCallForbidden => "function_call_forbidden",
            PreparedStatementsLimit => "prepared_statements_limit",
            InvalidEncoding => "invalid_encoding",
            ClientEncodingUnsupported => "client_encoding_unsupported",
            ClientEncodingForbidden => "client_encoding_forbidden",
            ClientEncodingPipelined => "client_encoding_pipelined",
            ClientEncodingChanged => "client_encoding_changed",
            StandardConformingStringsOff => "standard_conforming_strings_off",
            ReadOnlyUndone => "read_only_undone",
            SessionLimitPrincipal => "session_limit_principal",
            SessionLimitConnection => "session_limit_connection",
            ServerConnectionsExhausted => "server_connections_exhausted",
            ClientStalled => "client_stalled",
            IdleTimeout => "idle_timeout",
            IdleInTransactionTimeout => "idle_in_transaction_timeout",
            GatewayShutdown => "gateway_shutdown",
            UpstreamUnavailable => "upstream_unavailable",
            StatementFailed => "statement_failed",
            DoorUnavailable => "door_unavailable",
            ParametersTooMany => "parameters_too_many",
            Unsupported => "unsupported",
        }
    }

    /// The code of a review service error met while holding.
    pub fn review(e: &portcullis_reviews::ReviewError) -> Code {
        use portcullis_reviews::ReviewError as E;
        match e {
            E::NotFound => Code::ReviewNotFound,
            E::NotPending { .. } => Code::ReviewNotPending,
            E::Expired => Code::ReviewExpired,
            E::Store(_) | E::NotAReviewer { .. } | E::SelfApproval | E::AlreadyReviewed => {
                Code::ReviewStore
            }
        }
    }

    /// Whether the refusal is the gateway's own trouble rather than the request's: the
    /// request may succeed later unchanged.
    pub fn is_unavailable(self) -> bool {
        use Code::*;
        matches!(
            self,
            AuditUnavailable
                | RecordingUnavailable
                | CatalogUnavailable
                | MaskingUnavailable
                | ApprovalsUnavailable
                | ReviewStore
                | GatewayShutdown
                | UpstreamUnavailable
                | DoorUnavailable
                | SessionLimitConnection
                | ServerConnectionsExhausted
        )
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A refusal: the code, what the client is told and what it can do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    pub hint: String,
    /// The policies that decided it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The review it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_id: Option<String>,
    /// What was refused, in the door's words (`action: sql.delete; tables: t`), for
    /// protocols that carry a detail.
    #[serde(skip)]
    pub context: Option<String>,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: hint.into(),
            policies: Vec::new(),
            review_id: None,
            context: None,
        }
    }

    pub fn with_policies(mut self, policies: Vec<String>) -> Self {
        self.policies = policies;
        self
    }

    pub fn with_review(mut self, id: impl Into<String>) -> Self {
        self.review_id = Some(id.into());
        self
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// The audit trail could not be written, so nothing runs.
    pub fn audit_unavailable() -> Self {
        Self::new(
            Code::AuditUnavailable,
            "the audit store did not acknowledge the event",
            AUDIT_HINT,
        )
    }

    /// A token the validator refused; the message is the validator's detail.
    pub fn token(rej: &portcullis_identity::Rejection) -> Self {
        Self::new(
            Code::Token(rej.reason),
            rej.detail.clone(),
            rej.reason.hint(),
        )
    }

    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

/// What to do when the audit is down.
pub const AUDIT_HINT: &str = "the gateway cannot write its audit trail, so it runs nothing; retry later or tell the operator";
