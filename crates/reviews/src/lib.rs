//! Just-in-time approval of one exact command (DESIGN.md §7).
//!
//! When the policy answers `RequireApproval`, the door asks [`Reviews::request`] for a
//! review bound to the exact command as it will run ([`binding`]: requester, connection,
//! command text and parameters). Reviewers from the policy's groups approve or deny it;
//! once enough distinct reviewers approved, the command runs exactly once
//! ([`Reviews::consume`] or the next [`Reviews::request`] of the same command). Nothing but
//! that exact command can use the approval, so there is no gap between what was checked
//! and what runs.
//!
//! Rules ([`rules`](crate::rules) holds them as pure functions): a reviewer must be in one
//! of the review's groups, may not review their own request (same issuer and subject, or
//! same client id), and counts once; a denial by any eligible reviewer is final; pending
//! reviews expire after [`ReviewSettings::ttl`], by the sweeper or lazily when touched.
//!
//! Persistence goes through [`portcullis_store::Store`], so reviews survive a restart and
//! gateways sharing a PostgreSQL store share them. Every change is a compare-and-set on
//! the whole stored review (a lost race is decided again on the newer state, so no
//! concurrent approval is lost), then one call of the [`ReviewSink`] (audit and
//! notifications, wired by the caller), then a wake-up of in-process waiters. Waiters on
//! other gateway nodes see the change by polling the store.
//!
//! This crate knows no HTTP, no wire protocol and no policy: the door hands it the
//! reviewer groups and approval count that the policy decided.

mod binding;
mod error;
mod model;
mod request;
mod row;
mod rules;
mod service;
mod slots;
#[cfg(test)]
mod tests;
mod wait;

pub use binding::binding;
pub use error::ReviewError;
pub use model::{
    Change, NewReview, NoSink, Requested, Requester, Review, ReviewSettings, ReviewSink, Reviewer,
    Status, UnknownStatus, Verdict,
};
pub use service::Reviews;
pub use wait::wall_clock_ms;
