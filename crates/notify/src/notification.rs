//! What is delivered ([`Notification`]) and what is reported when it is not
//! ([`DeliveryFailure`]).

/// The event names the approvals workflow emits.
pub mod events {
    pub const REQUESTED: &str = "review.requested";
    pub const APPROVED: &str = "review.approved";
    pub const DENIED: &str = "review.denied";
    pub const EXPIRED: &str = "review.expired";
    pub const EXECUTED: &str = "review.executed";
}

/// One notification about one review. Serialized as is for [`Format::Generic`] hooks.
///
/// [`Format::Generic`]: crate::Format::Generic
#[derive(Clone, Debug, serde::Serialize)]
pub struct Notification {
    /// One of [`events`], e.g. `review.requested`.
    pub event: String,
    /// Unique per notification and kept across retries, for receivers' de-duplication.
    pub id: String,
    pub review_id: String,
    /// The reviewer groups it concerns, which select the hooks it goes to.
    pub groups: Vec<String>,
    /// One human line, e.g. `autogen-analyst wants to run sql.delete on billing: DELETE …`.
    pub summary: String,
    /// The command a reviewer runs to approve, e.g. `portcullis reviews approve rv_abc`.
    pub approve_hint: String,
    /// The full review object.
    pub review: serde_json::Value,
}

impl Notification {
    /// A notification with a fresh (UUID v4) id.
    pub fn new(
        event: impl Into<String>,
        review_id: impl Into<String>,
        groups: Vec<String>,
        summary: impl Into<String>,
        approve_hint: impl Into<String>,
        review: serde_json::Value,
    ) -> Self {
        Notification {
            event: event.into(),
            id: uuid::Uuid::new_v4().to_string(),
            review_id: review_id.into(),
            groups,
            summary: summary.into(),
            approve_hint: approve_hint.into(),
            review,
        }
    }
}

/// A delivery that gave up (or never started), for the caller to audit.
#[derive(Clone, Debug)]
pub struct DeliveryFailure {
    /// The hook's URL without userinfo, query or fragment.
    pub url: String,
    pub event: String,
    pub review_id: String,
    /// Attempts made; 0 when the notification was dropped before any (queue full, shut down).
    pub attempts: u32,
    /// What went wrong last. Never contains the hook's secret or the redacted URL parts.
    pub error: String,
}
