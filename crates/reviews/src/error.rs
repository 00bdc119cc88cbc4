//! Review errors: each has a stable code for APIs and audit, and a hint that says what to
//! do next. None carries a secret: store errors are already scrubbed of passwords.

use portcullis_store::StoreError;

use crate::Status;

/// Why a review operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no review with this id")]
    NotFound,

    #[error("the review is {status}, no longer pending")]
    NotPending { status: Status },

    /// `groups` are the review's reviewer groups, of which the caller is in none.
    #[error("only members of {} may review this request", groups.join(", "))]
    NotAReviewer { groups: Vec<String> },

    #[error("nobody may review their own request")]
    SelfApproval,

    #[error("this reviewer has already approved this request")]
    AlreadyReviewed,

    #[error("the review expired before it was decided")]
    Expired,

    #[error("review store: {0}")]
    Store(#[from] StoreError),
}

impl ReviewError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::NotFound => "review_not_found",
            ReviewError::NotPending { .. } => "review_not_pending",
            ReviewError::NotAReviewer { .. } => "reviewer_not_in_group",
            ReviewError::SelfApproval => "self_approval",
            ReviewError::AlreadyReviewed => "duplicate_reviewer",
            ReviewError::Expired => "review_expired",
            ReviewError::Store(_) => "review_store",
        }
    }

    /// What the caller can do about it.
    pub fn hint(&self) -> String {
        match self {
            ReviewError::NotFound => {
                "check the review id (portcullis reviews list shows the current ones)".into()
            }
            ReviewError::NotPending { status } => format!(
                "the review was already {status}; if the command still has to run, run it again \
                 to request a new review"
            ),
            ReviewError::NotAReviewer { groups } => format!(
                "ask a member of {} to review it, or have the policy's @approval name a group \
                 you belong to",
                groups.join(" or ")
            ),
            ReviewError::SelfApproval => {
                "another member of the reviewer groups has to review this request".into()
            }
            ReviewError::AlreadyReviewed => {
                "your approval is counted; another reviewer has to approve too".into()
            }
            ReviewError::Expired => {
                "run the command again to request a new review, and review it before it \
                 expires"
                    .into()
            }
            ReviewError::Store(_) => {
                "the gateway's state store is unavailable; retry shortly, and check the store \
                 (readiness at /readyz)"
                    .into()
            }
        }
    }

    /// A store failure that did not come from the database: a stored body that does not
    /// decode, or a change that kept losing races.
    pub(crate) fn internal(op: &'static str, message: impl Into<String>) -> Self {
        ReviewError::Store(StoreError::Query {
            op,
            message: message.into(),
        })
    }
}
