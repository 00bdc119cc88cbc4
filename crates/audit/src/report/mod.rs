//! The evidence report (`portcullis audit report`): what happened in a period, for an
//! auditor (SOC 2 CC6/CC7-style access evidence), as Markdown or as one self-contained HTML
//! file.
//!
//! [`build_report`] makes one pass over the period's records, a page at a time. What it
//! keeps grows with the distinct identities, connections, days, reason codes, policies and
//! entity types seen, and with the reviews (each reviewer decision is a row of the report;
//! each request keeps its requester's name until it is decided), never with the number of
//! commands: a period of a billion allowed SELECTs costs what a period of ten does.
//!
//! # Definitions
//!
//! - A **command** is a `decision` event whose action is neither `connect` (counted as a
//!   connection attempt) nor `data.unmask` (the gateway's own check whether to unmask a
//!   session's results, not something the agent asked for). Its outcome makes it
//!   **allowed**, **denied** or **held** (`approval_required`).
//! - **Approved** counts reviews that reached the approved state (`review.approved` with
//!   outcome `approved`; a review needing two approvals has one such event), **rejected**
//!   counts `review.denied`, **expired** `review.expired` and **executed** `review.executed`
//!   (the held command ran once).
//! - **Identities** are the verified principals named by events (`who`), keyed by subject
//!   and issuer; the unverified subjects of rejected tokens are not identities and only
//!   count under token rejections.
//! - **Denials** are denied decisions (commands and connection attempts), counted once per
//!   determining policy.
//! - **Masking** sums the per-entity counts of `statement.result` events.
//! - Days are UTC days. The chain verification is the [`VerifyReport`] handed in: it covers
//!   every node's whole chain, not only the period.
//!
//! Every string taken from an event is escaped for the output format (HTML text and
//! attributes; Markdown table cells), and long commands are cut to
//! [`COMMAND_CHARS`] characters: the JSONL export has them whole. The HTML page has a
//! Content-Security-Policy that forbids scripts and every external load, so even a mistake
//! in escaping could not make it run code or fetch anything.

mod chart;
mod doc;
mod escape;
mod html;
mod markdown;
mod tally;

use portcullis_store::Store;
use serde::Serialize;

use crate::error::AuditError;
use crate::pages::Pages;
use crate::verify::VerifyReport;

/// Commands longer than this many characters are cut in the report.
pub const COMMAND_CHARS: usize = 400;

/// The evidence for one period, `since_ms <= ts_ms < until_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since_ms: i64,
    pub until_ms: i64,
    /// When the report was built (Unix ms).
    pub generated_ms: i64,
    /// Records in the period.
    pub events: u64,
    /// Records whose stored body is not JSON (altered; `audit verify` names them).
    pub unreadable: u64,
    /// Records by event kind.
    pub kinds: Vec<Count>,
    pub identities: Vec<Identity>,
    pub connections: Vec<Connection>,
    pub commands: Commands,
    /// Reviewer decisions (approvals and denials), in time order.
    pub reviews: Vec<ReviewDecision>,
    /// Denied decisions by reason code and policy, most frequent first.
    pub denials: Vec<Denial>,
    /// Values masked, by entity type, most frequent first.
    pub masked: Vec<Count>,
    pub sessions: SessionTotals,
    /// Rejected tokens by reason code, most frequent first.
    pub token_rejections: Vec<Count>,
    /// Commands per UTC day, for the days that had any, in order.
    pub days: Vec<Day>,
    pub verify: VerifyReport,
}

/// A key and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

/// One verified principal.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub subject: String,
    pub issuer: String,
    /// `machine` or `human` when a decision said so, else the role it appeared in
    /// (`reviewer`, `requester`).
    pub kind: String,
    pub client_id: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub events: u64,
    pub commands: u64,
    pub denied: u64,
    pub held: u64,
}

/// One target connection that events named.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub name: String,
    pub protocol: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Distinct identities that had a decision on it.
    pub identities: u64,
    pub sessions: u64,
    pub commands: u64,
    pub denied: u64,
    pub held: u64,
}

/// Command and approval totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Commands {
    pub allowed: u64,
    pub denied: u64,
    pub held: u64,
    pub approved: u64,
    pub rejected: u64,
    pub expired: u64,
    pub executed: u64,
    pub connects_allowed: u64,
    pub connects_denied: u64,
    /// Sessions whose results the policy allowed unmasked (`data.unmask` allowed).
    pub unmask_allowed: u64,
}

/// A reviewer's approval or denial of a held command.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDecision {
    pub time_ms: i64,
    pub review_id: String,
    /// `approved` or `denied`.
    pub verdict: String,
    /// The review's status after this decision (`pending` while more approvals are needed).
    pub status: String,
    pub approvals: Option<u64>,
    pub approvals_needed: Option<u64>,
    pub reviewer: String,
    /// The requester's subject, from the `review.requested` event or the stored review.
    pub requester: Option<String>,
    pub action: String,
    pub connection: String,
    /// Cut to [`COMMAND_CHARS`] characters.
    pub command: String,
    pub comment: Option<String>,
}

/// Denied decisions with one reason code and policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The reason code, or `(none)`.
    pub reason_code: String,
    /// A determining policy, or `(none)` (default deny or a gateway rule).
    pub policy: String,
    pub count: u64,
}

/// Session totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionTotals {
    pub opened: u64,
    pub closed: u64,
    /// Closed sessions by how they ended (`client_terminate`, `revoked`, ...).
    pub ended: Vec<Count>,
    pub statements: u64,
    pub denied: u64,
    pub rows: u64,
    /// Closed sessions that name a recording.
    pub recorded: u64,
}

/// Commands on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Days since 1970-01-01.
    pub day: i64,
    pub allowed: u64,
    pub denied: u64,
    pub held: u64,
}

/// Builds the report for `since_ms <= ts_ms < until_ms` in one paged pass over the records,
/// with `verify` (from [`crate::verify`]) as its integrity section.
pub async fn build_report(
    store: &dyn Store,
    since_ms: i64,
    until_ms: i64,
    verify: VerifyReport,
) -> Result<Report, AuditError> {
    let mut tally = tally::Tally::default();
    let mut pages = Pages::new(Some(since_ms), Some(until_ms));
    while let Some(page) = pages.next(store).await? {
        for row in &page {
            match serde_json::from_str(&row.body) {
                Ok(record) => tally.add(row.ts_ms, &record),
                Err(_) => tally.unreadable(),
            }
        }
    }
    let mut report = tally.finish(since_ms, until_ms, crate::writer::now_ms(), verify);
    fill_requesters(store, &mut report.reviews).await?;
    Ok(report)
}

/// Names the requester of reviews requested before the period, from the stored review.
async fn fill_requesters(
    store: &dyn Store,
    reviews: &mut [ReviewDecision],
) -> Result<(), AuditError> {
    let mut known = std::collections::HashMap::new();
    for r in reviews.iter_mut().filter(|r| r.requester.is_none()) {
        if !known.contains_key(&r.review_id) {
            let requester = store.review_get(&r.review_id).await?.and_then(|row| {
                let body: serde_json::Value = serde_json::from_str(&row.body).ok()?;
                Some(body.get("requester")?.get("subject")?.as_str()?.to_owned())
            });
            known.insert(r.review_id.clone(), requester);
        }
        r.requester = known.get(&r.review_id).cloned().flatten();
    }
    Ok(())
}

impl Report {
    /// The report as Markdown: headings and tables, every event string escaped.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// The report as one self-contained HTML page: inline CSS and SVG, no script, no
    /// external asset, every event string escaped.
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// True when every node's chain verified without a break.
    pub fn chain_ok(&self) -> bool {
        self.verify.ok
    }

    /// Checkpoints across all nodes.
    pub fn checkpoints(&self) -> u64 {
        self.verify.nodes.iter().map(|n| n.checkpoints).sum()
    }

    /// Values masked across all entity types.
    pub fn masked_total(&self) -> u64 {
        self.masked.iter().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests;
