//! A stand-alone PostgreSQL door for measurements (not the product binary): a real pipeline
//! (SQLite audit in a temporary directory, dev issuer, a permissive read/write policy) in
//! front of `PCX_UPSTREAM` (default 127.0.0.1:5432), user postgres, database `PCX_DATABASE`
//! (default test), which is also the connection's name.
//!
//! Prints `<port> <token>` on stdout, then serves until stdin closes:
//!
//! ```sh
//! cargo run --release -p portcullis-proxy-postgres --example door_bench | {
//!   read port token; PGPASSWORD=$token pgbench -h 127.0.0.1 -p $port -U agent -S test; }
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_audit::{AuditSettings, Auditor, SigningKey};
use portcullis_identity::{DevIssuer, IdentitySettings, MintRequest, Validator};
use portcullis_pipeline::Pipeline;
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource};
use portcullis_proxy_postgres::{PgDoor, PgDoorSettings, PgTarget, UpstreamTls};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

const POLICY: &str = r#"
@id("connect") permit (principal in Group::"agents", action == Action::"connect", resource);
@id("sql") permit (principal in Group::"agents",
  action in [Action::"sql.read", Action::"sql.write", Action::"sql.transaction", Action::"sql.session"],
  resource);
@id("no-unbounded-writes") @reason("no WHERE") @hint("add a WHERE clause")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource)
when { !context.sql.has_where };
"#;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
    let key = SigningKey::load_or_create(dir.path()).unwrap();
    let auditor = Auditor::start(store, key, AuditSettings::default())
        .await
        .unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), "http://127.0.0.1:1/dev").unwrap();
    let validator = Validator::new(IdentitySettings {
        issuers: vec![dev.issuer_settings(vec!["portcullis".into()])],
        static_groups: Vec::new(),
        max_token_bytes: 16 * 1024,
        cache_capacity: 1000,
    })
    .unwrap();
    let source = PolicySource {
        name: "bench.cedar".into(),
        text: POLICY.into(),
    };
    let engine = PolicyEngine::compile(&[source]).unwrap();
    let pipeline = Arc::new(Pipeline::new(validator, engine, auditor));
    if std::env::var_os("PCX_DECIDE_ONLY").is_some() {
        return decide_only(pipeline, &dev).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let database = std::env::var("PCX_DATABASE").unwrap_or_else(|_| "test".into());
    let target = PgTarget {
        info: ConnectionInfo {
            name: database.clone(),
            kind: "postgres".into(),
            labels: Default::default(),
        },
        upstream: std::env::var("PCX_UPSTREAM").unwrap_or_else(|_| "127.0.0.1:5432".into()),
        database,
        user: "postgres".into(),
        password: None,
        tls: UpstreamTls::Disable,
        // `PCX_MASKING=default` measures the cost of masking every result.
        masking: std::env::var("PCX_MASKING").ok(),
        safe_functions: Vec::new(),
    };
    let settings = PgDoorSettings::new(addr, dir.path().to_owned());
    let engine = std::sync::Arc::new(portcullis_pipeline::Engine::new(
        pipeline,
        portcullis_pipeline::EngineSettings::default(),
    ));
    let door = PgDoor::new(settings, engine, vec![target]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let token = dev
        .mint(
            &MintRequest {
                subject: "bench".into(),
                groups: vec!["agents".into()],
                audience: "portcullis".into(),
                ttl: Duration::from_secs(3600),
                ..MintRequest::default()
            },
            now.as_secs() as i64,
        )
        .unwrap();
    println!("{} {token}", addr.port());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        stop.cancel();
    });
    door.serve(listener, shutdown).await.unwrap();
}

/// `PCX_DECIDE_ONLY=1`: how many audited decisions per second the pipeline alone sustains
/// with 8 concurrent callers, the ceiling for statements through the door.
async fn decide_only(pipeline: Arc<Pipeline>, dev: &DevIssuer) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let req = MintRequest {
        subject: "bench".into(),
        groups: vec!["agents".into()],
        audience: "portcullis".into(),
        ttl: Duration::from_secs(3600),
        ..MintRequest::default()
    };
    let token = dev.mint(&req, now.as_secs() as i64).unwrap();
    let origin = portcullis_pipeline::Origin {
        protocol: "postgres",
        ..Default::default()
    };
    let principal = pipeline.authenticate(&token, &origin).await.unwrap();
    let info = ConnectionInfo {
        name: "test".into(),
        kind: "postgres".into(),
        labels: Default::default(),
    };
    let facts = serde_json::json!({"sql": {"parsed": true, "has_where": true}});
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (pipeline, principal, info, facts, origin) = (
            pipeline.clone(),
            principal.clone(),
            info.clone(),
            facts.clone(),
            origin.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(5) {
                let ask = portcullis_pipeline::Ask {
                    action: "sql.select",
                    target: portcullis_policy::Target::Connection(&info),
                    facts: &facts,
                    command: Some("SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
                };
                pipeline.decide(&principal, &ask, &origin).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    println!(
        "decisions/s with 8 callers: {:.0}",
        total as f64 / started.elapsed().as_secs_f64()
    );
}
