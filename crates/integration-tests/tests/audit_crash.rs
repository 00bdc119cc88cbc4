//! A gateway killed with SIGKILL in the middle of a stream of rejected tokens, or of a
//! 64-client write load through the PostgreSQL door, loses no acknowledged audit event and
//! leaves a chain that verifies; after a restart it goes on appending to a chain that still
//! verifies.
//!
//! Needs `target/<profile>/portcullis` (`cargo build -p portcullis`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_integration_tests::clients;
use portcullis_integration_tests::postgres::{self, PgServer};
use portcullis_integration_tests::{Gateway, GatewayBuilder, http};
use serde_json::Value;

const TASKS: usize = 8;

/// Fires invalid-token whoami requests from `TASKS` tasks until `stop` is set or `limit`
/// passes; returns the number of 401s received (each one acknowledges an audit write).
fn spawn_stream(
    url: String,
    limit: Duration,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..TASKS)
        .map(|t| {
            let url = url.clone();
            let stop = stop.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let client = match http::client() {
                    Ok(c) => c,
                    Err(e) => panic!("client: {e:#}"),
                };
                let started = Instant::now();
                let mut n = 0u64;
                let mut mine = 0u64;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
                    n += 1;
                    // Three segments of garbage: malformed, never a valid token.
                    let token = format!("bad{t}x{n}.not-a-payload.not-a-signature");
                    let res = client
                        .get(format!("{url}/v1/whoami"))
                        .bearer_auth(&token)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().as_u16() == 401 => {
                            // Count only once the whole answer arrived.
                            if r.bytes().await.is_ok() {
                                mine += 1;
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(r) => panic!("invalid token answered {}", r.status()),
                        Err(_) => {
                            // The gateway is gone (or going); don't spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                mine
            })
        })
        .collect()
}

fn verify(gw: &Gateway, when: &str) -> Value {
    let out = gw
        .cli(["audit", "verify", "--output", "json"])
        .unwrap_or_else(|e| panic!("[{when}] {e:#}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "[{when}] audit verify printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && report["ok"] == true,
        "[{when}] audit verify failed (exit {}): {report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for node in report["nodes"].as_array().into_iter().flatten() {
        assert!(
            node["first_break"].is_null(),
            "[{when}] broken chain: {node}"
        );
    }
    report
}

fn count_rejected(gw: &Gateway, when: &str) -> u64 {
    let out = gw
        .cli(["audit", "export", "--format", "jsonl"])
        .unwrap_or_else(|e| panic!("[{when}] {e:#}"));
    assert!(
        out.status.success(),
        "[{when}] audit export failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("[{when}] export line is not JSON ({e}): {line}"));
        assert_eq!(rec["v"], 1, "[{when}] {rec}");
        if rec["event"]["kind"] == "token.rejected" {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_keeps_every_acknowledged_rejection() {
    sigkill_mid_stream("").await;
}

/// At `durability = "crash"` an acknowledged event is in the OS, not yet fsynced: a SIGKILL
/// of the gateway (not a power loss) still loses none. The fsync interval is long, so the
/// kill lands between syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_crash_durability_keeps_every_acknowledged_rejection() {
    sigkill_mid_stream("[audit]\ndurability = \"crash\"\nsync_every = \"5s\"\n").await;
}

async fn sigkill_mid_stream(toml: &str) {
    let mut gw = GatewayBuilder::new()
        .extra_toml(toml)
        .start()
        .await
        .unwrap_or_else(|e| panic!("gateway failed to start: {e:#}"));

    // Round 1: stream for ~2 s, SIGKILL at ~1 s.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let tasks = spawn_stream(
        gw.url().to_string(),
        Duration::from_secs(2),
        stop.clone(),
        acked.clone(),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let at_kill = acked.load(Ordering::Relaxed);
    gw.kill9();
    for t in tasks {
        t.await.expect("stream task");
    }
    let acked1 = acked.load(Ordering::Relaxed);
    eprintln!("round 1: {acked1} acknowledged 401s ({at_kill} when SIGKILL was sent)");
    assert!(at_kill > 0, "no 401 before the kill: the stream never ran");

    let report = verify(&gw, "after SIGKILL");
    eprintln!("verify after SIGKILL: {report}");
    let rejected1 = count_rejected(&gw, "after SIGKILL");
    assert!(
        rejected1 >= acked1,
        "after SIGKILL: {rejected1} token.rejected events in the audit < {acked1} acknowledged 401s"
    );

    // Round 2: restart on the same state, stream again, verify while it runs.
    gw.restart()
        .await
        .unwrap_or_else(|e| panic!("restart failed: {e:#}"));
    let stop2 = Arc::new(AtomicBool::new(false));
    let acked2 = Arc::new(AtomicU64::new(0));
    let tasks = spawn_stream(
        gw.url().to_string(),
        Duration::from_secs(1),
        stop2.clone(),
        acked2.clone(),
    );
    for t in tasks {
        t.await.expect("stream task");
    }
    let acked2 = acked2.load(Ordering::Relaxed);
    eprintln!("round 2: {acked2} acknowledged 401s");
    assert!(acked2 > 0, "no 401 after restart");
    verify(&gw, "after restart");
    let rejected2 = count_rejected(&gw, "after restart");
    assert!(
        rejected2 >= acked1 + acked2,
        "after restart: {rejected2} token.rejected events < {} acknowledged",
        acked1 + acked2
    );

    // A graceful stop leaves a chain that verifies too.
    let status = gw.stop().unwrap_or_else(|e| panic!("SIGTERM stop: {e:#}"));
    assert!(
        status.success(),
        "gateway exited {status} on SIGTERM\n{}",
        gw.logs_tail()
    );
    verify(&gw, "after SIGTERM");
    assert!(count_rejected(&gw, "after SIGTERM") >= acked1 + acked2);
    stop.store(true, Ordering::Relaxed);
}

/// 64 clients write through the PostgreSQL door at `durability = "crash"` when the gateway is
/// killed with SIGKILL: after a restart every INSERT a client saw succeed has its decision
/// event in the trail, and the chain verifies. Each INSERT carries a marker in a comment,
/// which survives the literal-free audited text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_a_64_client_write_load_keeps_every_acknowledged_decision() {
    sigkill_under_write_load("crash").await;
}

/// The same at `durability = "fsync"`, where a commit takes long enough that a gateway
/// answering before its decision event is durable would lose some to the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_a_64_client_write_load_at_fsync_keeps_every_acknowledged_decision() {
    sigkill_under_write_load("fsync").await;
}

async fn sigkill_under_write_load(durability: &str) {
    const CLIENTS: i64 = 64;
    let pg = PgServer::builder()
        .log_statements(false)
        .max_connections(200)
        .start()
        .await
        .unwrap_or_else(|e| panic!("postgres: {e:#}"));
    pg.superuser_sql(
        postgres::APP_DB,
        "CREATE TABLE crash_load (id bigint PRIMARY KEY, client int); \
         GRANT ALL ON crash_load TO app",
    )
    .await
    .unwrap_or_else(|e| panic!("table: {e:#}"));
    let mut gw = GatewayBuilder::new()
        .quickstart_policies()
        .unwrap()
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .postgres_key("max_server_connections", "100")
        .postgres_key("max_sessions_per_principal", "100")
        .postgres_key("max_sessions_per_connection", "100")
        .extra_toml(format!(
            "[audit]\ndurability = \"{durability}\"\n{}",
            if durability == "crash" {
                "sync_every = \"5s\"\n"
            } else {
                ""
            }
        ))
        .start()
        .await
        .unwrap_or_else(|e| panic!("gateway failed to start: {e:#}"));
    let token = gw.mint("load-agent", &["agents"], "15m").unwrap();
    let conn = gw.pg_conn("appdb", &token).unwrap();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(clients::tokio_pg_connect(&conn).await.unwrap());
    }

    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(0..)
        .map(|((client, _connection), c)| {
            let acked = acked.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let marker = format!("load_{c}_{n}");
                    let id = c * 10_000_000 + n;
                    let sql = format!("INSERT INTO crash_load /* {marker} */ VALUES ({id}, {c})");
                    if client.simple_query(&sql).await.is_err() {
                        break;
                    }
                    acked.lock().unwrap().push(marker);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_kill = acked.lock().unwrap().len();
    gw.kill9();
    for t in tasks {
        t.await.expect("load task");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "{} INSERTs acknowledged ({at_kill} when SIGKILL was sent)",
        acked.len()
    );
    assert!(
        at_kill >= CLIENTS as usize,
        "only {at_kill} INSERTs before the kill: the load never ran"
    );

    gw.restart()
        .await
        .unwrap_or_else(|e| panic!("restart failed: {e:#}"));
    verify(&gw, "after SIGKILL under write load");
    let out = gw
        .cli(["audit", "export", "--format", "jsonl"])
        .unwrap_or_else(|e| panic!("export: {e:#}"));
    let mut audited = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let ev = &rec["event"];
        if ev["kind"] == "decision" && ev["outcome"] == "allow" && ev["action"] == "sql.insert" {
            let command = ev["command"].as_str().unwrap_or_default();
            if let Some(at) = command.find("load_") {
                let marker: String = command[at..]
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                    .collect();
                audited.insert(marker);
            }
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|m| !audited.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged INSERTs have no decision event after the restart, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // And the server has every acknowledged row: the clients were not answered by the door.
    let rows: usize = pg
        .query_one(postgres::APP_DB, "SELECT count(*) FROM crash_load")
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        rows >= acked.len(),
        "{rows} rows < {} acknowledged",
        acked.len()
    );
}
