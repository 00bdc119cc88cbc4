//! Masking streams: a masked result is rewritten one DataRow at a time, so the gateway's
//! memory does not grow with the size of a result (DESIGN.md §6). A 1 MB value and a
//! multi-million-row result pass through with bounded memory, read by a client that consumes
//! rows as they arrive (tokio-postgres `query_raw`).
//!
//! `PORTCULLIS_STREAM_ROWS` sets the row count (default 10 million, about 570 MB of rows).

use anyhow::{Context, Result};
use futures::{StreamExt, pin_mut};
use portcullis_integration_tests::GatewayBuilder;
use portcullis_integration_tests::clients;
use portcullis_integration_tests::postgres::PgServer;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

#[tokio::test]
async fn large_values_and_long_results_stream_with_bounded_memory() -> Result<()> {
    let rows: i64 = std::env::var("PORTCULLIS_STREAM_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let pg = PgServer::start().await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .start()
        .await?;
    let pid = gw.pid().context("gateway pid")?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let (client, _conn) = clients::tokio_pg_connect(&gw.pg_conn("appdb", &token)?).await?;

    // A 1 MB text value with an address at its end is masked whole, in one piece.
    let row = client
        .query_one(
            "SELECT repeat('lorem ipsum ', 87382) || 'write to ada@example.com' AS v",
            &[],
        )
        .await?;
    let v: String = row.get(0);
    assert!(v.len() > 1_000_000, "{}", v.len());
    assert!(v.ends_with("write to [EMAIL]"), "{}", &v[v.len() - 40..]);

    let before = peak_kib(pid)?;
    let sql = "SELECT g, 'user' || g || '@example.com' AS email, repeat('x', 20) AS pad \
               FROM generate_series(1, $1::int8) AS g";
    let stream = client.query_raw(sql, [rows]).await?;
    pin_mut!(stream);
    let mut seen = 0i64;
    while let Some(row) = stream.next().await {
        let row = row?;
        seen += 1;
        if seen % 100_000 == 1 {
            let email: &str = row.get(1);
            assert_eq!(email, "[EMAIL]", "row {seen}");
        }
    }
    assert_eq!(seen, rows);
    let after = peak_kib(pid)?;
    // About 60 bytes per row went through: the result is far larger than what the gateway
    // may grow by.
    let result_kib = (rows as u64 * 60) / 1024;
    let grown = after.saturating_sub(before);
    eprintln!("peak RSS {before} KiB -> {after} KiB over a {result_kib} KiB result");
    assert!(
        grown < 32 * 1024 && grown < result_kib / 2,
        "the gateway grew by {grown} KiB streaming a {result_kib} KiB result"
    );
    Ok(())
}
