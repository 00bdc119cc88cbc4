//! A gateway on 127.0.0.1:0 in front of the system PostgreSQL (127.0.0.1:5432, trust auth,
//! user `postgres`, database `test`), with a real pipeline: SQLite store and audit chain in a
//! temporary directory, the dev issuer for tokens, and Cedar policies from the shipped schema.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_audit::{AuditSettings, Auditor, SigningKey};
use portcullis_identity::{DevIssuer, IdentitySettings, MintRequest, Validator};
use portcullis_pipeline::Pipeline;
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource};
use portcullis_proxy_postgres::{PgDoor, PgDoorSettings, PgTarget, UpstreamTls};
use portcullis_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const AUDIENCE: &str = "portcullis";

/// Agents may connect, read, write with WHERE, use transactions, settings and DDL, and
/// "dbas" may also run `sql.admin`, "readers" only read; the quickstart's forbids for unbounded writes and
/// unparsed SQL apply.
pub const POLICY: &str = r#"
@id("agents-connect")
permit (principal in Group::"agents", action == Action::"connect", resource is Connection);

@id("agents-sql")
permit (principal in Group::"agents",
        action in [Action::"sql.read", Action::"sql.write", Action::"sql.transaction",
                   Action::"sql.session", Action::"sql.ddl"],
        resource is Connection);

// "readers" may only read: their sessions run read-only in the server.
@id("readers")
permit (principal in Group::"readers",
        action in [Action::"connect", Action::"sql.read", Action::"sql.transaction",
                   Action::"sql.session"],
        resource is Connection);

// Locks, sequences and other side effects are sql.admin: the group "dbas" may run them.
@id("dbas-admin")
permit (principal in Group::"dbas", action == Action::"sql.admin", resource is Connection);

@id("no-unbounded-writes")
@reason("UPDATE or DELETE without a WHERE clause would change every row of the table")
@hint("add a WHERE clause that selects only the rows you mean to change")
forbid (principal, action in [Action::"sql.update", Action::"sql.delete"], resource)
when { !context.sql.has_where };

@id("no-unparsed-sql")
@reason("the SQL statement could not be parsed")
@hint("rewrite the statement in plain SQL")
forbid (principal, action, resource)
when { context has sql && !context.sql.parsed };
"#;

pub struct Gateway {
    pub addr: SocketAddr,
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<dyn Store>,
    pub dev: DevIssuer,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    pub serving: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub fn engine(policy: &str) -> PolicyEngine {
    let source = PolicySource {
        name: "test.cedar".into(),
        text: policy.into(),
    };
    PolicyEngine::compile(&[source]).expect("policies compile")
}

pub async fn start() -> Gateway {
    start_with(|_| {}).await
}

/// The system PostgreSQL as connection `test`.
pub fn local_target() -> PgTarget {
    PgTarget {
        info: ConnectionInfo {
            name: "test".into(),
            kind: "postgres".into(),
            labels: Default::default(),
        },
        upstream: "127.0.0.1:5432".into(),
        database: "test".into(),
        user: "postgres".into(),
        password: None,
        tls: UpstreamTls::Disable,
        masking: None,
        safe_functions: Vec::new(),
    }
}

pub async fn start_with(tune: impl FnOnce(&mut PgDoorSettings)) -> Gateway {
    start_full(tune, local_target()).await
}

pub async fn start_full(tune: impl FnOnce(&mut PgDoorSettings), target: PgTarget) -> Gateway {
    start_targets(tune, vec![target]).await
}

pub async fn start_targets(
    tune: impl FnOnce(&mut PgDoorSettings),
    targets: Vec<PgTarget>,
) -> Gateway {
    start_policy(POLICY, tune, targets).await
}

/// A gateway deciding with `policy` instead of [`POLICY`].
pub async fn start_policy(
    policy: &str,
    tune: impl FnOnce(&mut PgDoorSettings),
    targets: Vec<PgTarget>,
) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = portcullis_store::open(&url).await.unwrap();
    let key = SigningKey::load_or_create(dir.path()).unwrap();
    let auditor = Auditor::start(store.clone(), key, AuditSettings::default())
        .await
        .unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), "http://127.0.0.1:1/dev").unwrap();
    let mut issuer = dev.issuer_settings(vec![AUDIENCE.into()]);
    // A session lives until `exp` plus the leeway: short, so that expiry tests stay fast.
    issuer.leeway = Duration::from_secs(1);
    let validator = Validator::new(IdentitySettings {
        issuers: vec![issuer],
        static_groups: Vec::new(),
        max_token_bytes: 16 * 1024,
        cache_capacity: 1000,
    })
    .unwrap();
    let pipeline = Arc::new(Pipeline::new(validator, engine(policy), auditor));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = PgDoorSettings::new(addr, dir.path().to_owned());
    tune(&mut settings);
    let engine = Arc::new(portcullis_pipeline::Engine::new(
        pipeline.clone(),
        portcullis_pipeline::EngineSettings::default(),
    ));
    let door = PgDoor::new(settings, engine, targets).unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let serving = tokio::spawn(async move { door.serve(listener, token).await.unwrap() });
    Gateway {
        addr,
        pipeline,
        store,
        dev,
        dir,
        shutdown,
        serving: std::sync::Mutex::new(Some(serving)),
    }
}

impl Gateway {
    pub fn token(&self, groups: &[&str]) -> String {
        self.token_for(groups, Duration::from_secs(300))
    }

    pub fn token_for(&self, groups: &[&str], ttl: Duration) -> String {
        let req = MintRequest {
            subject: "agent-7".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            audience: AUDIENCE.into(),
            ttl,
            ..MintRequest::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.dev.mint(&req, now).unwrap()
    }

    pub fn config(&self, database: &str, password: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.addr.port())
            .user("agent")
            .password(password)
            .dbname(database);
        c
    }

    /// A tokio-postgres client with a valid agent token.
    pub async fn client(&self) -> tokio_postgres::Client {
        self.client_in(&["agents"]).await
    }

    /// A tokio-postgres client on connection `test` for a principal in `groups`.
    pub async fn client_in(&self, groups: &[&str]) -> tokio_postgres::Client {
        self.connect("test", &self.token(groups)).await.unwrap()
    }

    pub async fn connect(
        &self,
        database: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = self
            .config(database, password)
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Every audit event so far, oldest first.
    pub async fn events(&self) -> Vec<Value> {
        let rows = self.store.audit_page("local", 0, 100_000).await.unwrap();
        rows.iter()
            .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["event"].clone())
            .collect()
    }

    /// Waits until an event satisfying `f` is in the audit (session.close is written after
    /// the client has already seen the connection end).
    pub async fn wait_event(&self, f: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            if let Some(e) = self.events().await.into_iter().find(|e| f(e)) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no such audit event in {:#?}", self.events().await);
    }
}

/// A direct connection to the test database, to check what really happened there.
pub async fn direct() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (trust, user postgres, db test)");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A table with rows 1..=n, unique to the calling test.
pub async fn table(name: &str, n: i32) -> String {
    let table = format!("pcx_{name}_{}", std::process::id());
    let db = direct().await;
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int primary key, v text);
         INSERT INTO {table} SELECT g, 'v' || g FROM generate_series(1, {n}) g;"
    ))
    .await
    .unwrap();
    table
}

pub async fn count(table: &str) -> i64 {
    direct()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

pub async fn drop_table(table: &str) {
    let _ = direct()
        .await
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await;
}

/// The SQLSTATE of a tokio-postgres error.
pub fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no code: {e}"))
}
