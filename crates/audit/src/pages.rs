//! Reading the records of a period a page at a time, in `(ts_ms, node, seq)` order, so that
//! memory stays bounded however many events the period holds.

use portcullis_store::{AuditRow, Store};

use crate::error::AuditError;

const PAGE: i64 = 1000;

/// A cursor over the records with `since_ms <= ts_ms < until_ms`.
pub(crate) struct Pages {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    after: Option<(String, i64)>,
    done: bool,
}

impl Pages {
    pub(crate) fn new(since_ms: Option<i64>, until_ms: Option<i64>) -> Self {
        Self {
            since_ms,
            until_ms,
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` once the period is exhausted.
    pub(crate) async fn next(
        &mut self,
        store: &dyn Store,
    ) -> Result<Option<Vec<AuditRow>>, AuditError> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .audit_between(self.since_ms, self.until_ms, self.after.take(), PAGE)
            .await?;
        match page.last() {
            Some(last) => self.after = Some((last.node.clone(), last.seq)),
            None => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

/// Parses a stored body as JSON; a body that is not JSON was altered after it was written.
pub(crate) fn parse(row: &AuditRow) -> Result<serde_json::Value, AuditError> {
    serde_json::from_str(&row.body).map_err(|_| AuditError::Export {
        node: row.node.clone(),
        seq: row.seq,
        problem: "the stored body is not JSON",
    })
}
