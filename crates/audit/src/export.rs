//! JSONL export of the stored records (`portcullis audit export`).
//!
//! Each line is a stored body byte for byte, so the SHA-256 of a line (without its newline)
//! is that event's hash: an auditor can check exported lines against a verified chain or a
//! checkpoint without re-encoding anything. Lines come in `(ts_ms, node, seq)` order.

use portcullis_store::Store;

use crate::error::AuditError;

const PAGE: i64 = 1000;

/// Writes the records with `since_ms <= ts_ms < until_ms` to `out`, one per line, and
/// returns how many were written. Reads a page at a time, so memory stays bounded.
pub async fn export_jsonl(
    store: &dyn Store,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, AuditError> {
    let mut written = 0u64;
    let mut after = None;
    loop {
        let page = store.audit_between(since_ms, until_ms, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.node.clone(), last.seq));
        for row in &page {
            // Canonical bodies never contain a raw newline; one that does was altered, and
            // writing it would split the line and corrupt the export.
            if row.body.contains(['\n', '\r']) {
                return Err(AuditError::Export {
                    node: row.node.clone(),
                    seq: row.seq,
                    problem: "the stored body contains a line break",
                });
            }
            out.write_all(row.body.as_bytes())?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}
