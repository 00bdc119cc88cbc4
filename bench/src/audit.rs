//! Durable audit appends per second on SQLite (WAL) with 64 concurrent recorders, at both
//! `[audit] durability` levels: `fsync` (synchronous=FULL) and `crash` (synchronous=NORMAL,
//! fsynced by the writer every 100 ms). Baselines: the same writer with group commit turned
//! off (one event per transaction), what a naive append-per-request audit log does; and the
//! `fsync` level for `crash`.

use std::sync::Arc;
use std::time::Instant;

use portcullis_audit::{AuditSettings, Auditor, Event, SigningKey};

use crate::{budget, row};

async fn measure(max_batch: usize, crash: bool) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let durability = if crash {
        portcullis_store::Durability::Crash
    } else {
        portcullis_store::Durability::Fsync
    };
    let store = portcullis_store::open_with(&url, durability).await?;
    let key = SigningKey::load_or_create(dir.path())?;
    let auditor = Auditor::start(
        store,
        key,
        AuditSettings {
            max_batch,
            sync_every: crash.then_some(std::time::Duration::from_millis(100)),
            journal: crash.then(|| dir.path().join("audit-journal")),
            ..AuditSettings::default()
        },
    )
    .await?;
    let deadline = Instant::now() + budget();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let a = auditor.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let e = Event {
                    kind: "decision".into(),
                    outcome: Some("allow".into()),
                    action: Some("sql.select".into()),
                    connection: Some(format!("db{}", t % 8)),
                    command: Some("SELECT id, email FROM customers WHERE id = $1".into()),
                    ..Event::default()
                };
                if a.record(e).await.is_ok() {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    auditor.shutdown().await?;
    let report = portcullis_audit::verify(store_ref(&url).await?.as_ref(), None).await?;
    anyhow::ensure!(report.ok, "the benchmark's own chain does not verify");
    Ok(rate)
}

async fn store_ref(url: &str) -> anyhow::Result<Arc<dyn portcullis_store::Store>> {
    Ok(portcullis_store::open(url).await?)
}

pub fn run() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // BENCH_AUDIT=crash measures only the crash level (for a profile of it).
    if std::env::var("BENCH_AUDIT").as_deref() == Ok("crash") {
        let crash = rt.block_on(measure(4096, true))?;
        println!("| audit appends at durability crash, SQLite, 64 recorders | {crash:.0}/s | | |");
        return Ok(());
    }
    let grouped = rt.block_on(measure(4096, false))?;
    let single = rt.block_on(measure(1, false))?;
    let crash = rt.block_on(measure(4096, true))?;
    row(
        "durable audit appends, SQLite, 64 recorders",
        grouped,
        "one event per transaction",
        single,
    );
    row(
        "audit appends at durability crash, SQLite, 64 recorders",
        crash,
        "durability fsync",
        grouped,
    );
    Ok(())
}
