//! A review as a store row: the JSON body plus the columns copied out of it for indexing
//! and compare-and-set.

use portcullis_store::ReviewRow;

use crate::{Review, ReviewError};

/// The row for `r`, stamped as updated at `updated_ms`.
pub(crate) fn encode(r: &Review, updated_ms: i64) -> Result<ReviewRow, ReviewError> {
    let body = serde_json::to_string(r)
        .map_err(|e| ReviewError::internal("review_encode", e.to_string()))?;
    Ok(ReviewRow {
        id: r.id.clone(),
        binding: r.binding.clone(),
        status: r.status.as_str().to_owned(),
        created_ms: r.created_ms,
        expires_ms: r.expires_ms,
        updated_ms,
        body,
    })
}

/// The review in `row`. A body that does not parse, or disagrees with its own columns, is
/// refused rather than guessed at: a review decides whether a command runs.
pub(crate) fn decode(row: &ReviewRow) -> Result<Review, ReviewError> {
    let bad =
        |why: String| ReviewError::internal("review_decode", format!("review {}: {why}", row.id));
    let r: Review = serde_json::from_str(&row.body).map_err(|e| bad(e.to_string()))?;
    if r.id != row.id || r.status.as_str() != row.status || r.binding != row.binding {
        return Err(bad(
            "the body disagrees with the row's id, status or binding".into(),
        ));
    }
    Ok(r)
}
