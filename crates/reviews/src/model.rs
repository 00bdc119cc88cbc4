//! The review records: who asked, who reviews, what was decided, and the status machine
//! `Pending → Approved → Executed`, `Pending → Denied`, `Pending → Expired`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who asked (copied from the authenticated principal by the caller).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requester {
    pub subject: String,
    pub issuer: String,
    pub client_id: Option<String>,
}

/// Who reviews: their token's identity and groups.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reviewer {
    pub subject: String,
    pub issuer: String,
    pub client_id: Option<String>,
    pub groups: Vec<String>,
}

/// What the caller asks to have reviewed. The policy already decided that approval is
/// needed, by whom (`reviewers`, groups) and how many times (`approvals`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReview {
    pub requester: Requester,
    pub connection: String,
    /// The Cedar action, e.g. `sql.delete`.
    pub action: String,
    /// For display: the normalized, literal-free text. What runs is pinned by `binding`.
    pub command: String,
    /// [`crate::binding`] of the exact command as it will run.
    pub binding: String,
    /// The policies that asked for approval.
    pub policies: Vec<String>,
    /// Groups whose members may review; one is enough.
    pub reviewers: Vec<String>,
    /// Distinct approvals needed; 0 counts as 1.
    pub approvals: u32,
    pub session_id: Option<String>,
    /// The agent run and tool call that asked (exec API, MCP), for the audit.
    pub run_id: Option<String>,
    pub tool_call_id: Option<String>,
}

/// Where a review stands.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for reviewers.
    Pending,
    /// Enough approvals: the command may run once.
    Approved,
    /// A reviewer refused; final.
    Denied,
    /// Nobody decided in time; final.
    Expired,
    /// The approved command was released to run; final.
    Executed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::Executed,
    ];

    /// The lowercase name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Executed => "executed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is none of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown review status {0:?}: use pending, approved, denied, expired or executed")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// One reviewer's decision.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub reviewer: Reviewer,
    pub comment: String,
    pub at_ms: i64,
}

/// A review of one exact command. Its JSON is what the store keeps and the API shows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Review {
    /// `rv_` and 26 base32 characters: short, URL-safe and unguessable.
    pub id: String,
    pub binding: String,
    pub status: Status,
    pub requester: Requester,
    pub connection: String,
    pub action: String,
    pub command: String,
    pub policies: Vec<String>,
    /// Groups whose members may review.
    pub reviewers: Vec<String>,
    pub approvals_needed: u32,
    /// In the order given; each reviewer at most once.
    pub approvals: Vec<Verdict>,
    pub denial: Option<Verdict>,
    pub created_ms: i64,
    /// A review still pending at this instant is expired.
    pub expires_ms: i64,
    pub executed_ms: Option<i64>,
    pub session_id: Option<String>,
    /// The agent run and tool call that asked for the review, when the agent said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// The answer to [`crate::Reviews::request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    /// An approved review for this exact binding existed and was consumed now
    /// (Approved → Executed): run the command once.
    Run(Review),
    /// Wait on this review (an existing pending one for the same binding, or a new one).
    Pending(Review),
}

/// What changed, for the audit and notifications (the caller wires a [`ReviewSink`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new pending review.
    Requested,
    /// One approval; the review may still be pending if more are needed.
    Approved {
        by: Reviewer,
        comment: String,
    },
    Denied {
        by: Reviewer,
        comment: String,
    },
    Expired,
    /// The approved command was released to run.
    Executed,
}

/// Receives every stored change, after it is stored, in the order this gateway stored them.
#[async_trait::async_trait]
pub trait ReviewSink: Send + Sync {
    /// `review` is the state after the change. The change's caller waits for this call (so
    /// the audit can be durable before a command runs), and further changes to the same
    /// review on this gateway wait for it too: a slow sink should queue its slow parts.
    async fn changed(&self, review: &Review, change: &Change);
}

/// A sink that ignores every change, for tools and tests that need none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

#[async_trait::async_trait]
impl ReviewSink for NoSink {
    async fn changed(&self, _review: &Review, _change: &Change) {}
}

/// Timing of the review service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewSettings {
    /// Pending reviews expire this long after they were requested.
    pub ttl: Duration,
    /// While waiting, the store is re-read this often, so a decision taken on another
    /// gateway node is seen even without an in-process wake-up.
    pub poll: Duration,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            poll: Duration::from_secs(1),
        }
    }
}
