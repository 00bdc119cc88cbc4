//! The shape of `portcullis.toml`. Every table rejects unknown keys; every field has a
//! default that makes the embedded setup (SQLite, local files, dev issuer) work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::SecretRef;
use crate::approvals::{ApprovalsConfig, RecordingConfig};
use crate::bounded;
use crate::masking::MaskingConfig;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub postgres: PostgresConfig,
    #[serde(default)]
    pub masking: MaskingConfig,
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    #[serde(default)]
    pub recording: RecordingConfig,
    #[serde(default)]
    pub exec: ExecConfig,
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
}

/// A loaded config: the file's content with relative paths resolved against its folder.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub identity: IdentityConfig,
    pub policy: PolicyConfig,
    pub audit: AuditConfig,
    pub postgres: PostgresConfig,
    pub masking: MaskingConfig,
    pub approvals: ApprovalsConfig,
    pub recording: RecordingConfig,
    pub exec: ExecConfig,
    pub connections: Vec<ConnectionConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// API, health, metrics and dev-issuer listener.
    pub listen: String,
    /// Keys, SQLite state and recordings. Relative to the config file.
    pub state_dir: PathBuf,
    /// Groups allowed to call admin endpoints are decided by policy (`admin` actions);
    /// this only bounds request bodies.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7070".into(),
            state_dir: PathBuf::from("portcullis-data"),
            max_body_bytes: 1 << 20,
        }
    }
}

/// `[exec]`: how much of a result the exec API and the MCP tools return (the command runs
/// whole; rows past either limit are counted, not returned, and `truncated` says so).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    pub max_rows: usize,
    /// Bytes of values (not counting JSON framing).
    pub max_bytes: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            max_rows: 1000,
            max_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    /// Default: `sqlite://{state_dir}/state.db`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub dev_issuer: DevIssuerConfig,
    pub issuers: Vec<IssuerConfig>,
    pub static_groups: Vec<StaticGroupsConfig>,
    pub revocations: RevocationsConfig,
    /// Tokens larger than this are refused before any parsing.
    pub max_token_bytes: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            dev_issuer: DevIssuerConfig::default(),
            issuers: Vec::new(),
            static_groups: Vec::new(),
            revocations: RevocationsConfig::default(),
            max_token_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevIssuerConfig {
    pub enabled: bool,
    /// The `iss` of minted tokens. Default: `http://{server.listen}`.
    pub issuer: Option<String>,
    pub audience: String,
    /// The longest `--ttl` that `token mint` accepts.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
}

impl Default for DevIssuerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: None,
            audience: "portcullis".into(),
            max_ttl: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalType {
    #[default]
    Machine,
    Human,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exact `iss`; discovery at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub audiences: Vec<String>,
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[serde(default = "default_max_lifetime", with = "humantime_serde")]
    pub max_token_lifetime: Duration,
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    #[serde(default = "default_refetch", with = "humantime_serde")]
    pub jwks_refetch_min_interval: Duration,
    /// Whether this issuer's tokens name machines or humans.
    #[serde(default)]
    pub principal_type: PrincipalType,
    /// A claim whose value `"human"` marks a human principal.
    #[serde(default)]
    pub kind_claim: Option<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_max_lifetime() -> Duration {
    Duration::from_secs(3600)
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_refetch() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticGroupsConfig {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationsConfig {
    pub subjects: Vec<String>,
    pub client_ids: Vec<String>,
    pub token_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Glob patterns of Cedar files, relative to the config file.
    pub files: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            files: vec!["policies/*.cedar".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// This gateway's chain name; each node of a cluster keeps its own chain.
    pub node: String,
    /// Sign a checkpoint after this many events...
    pub checkpoint_every_events: u64,
    /// ...or after this long with new events, whichever comes first.
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// When a command's decision event counts as durable, before the command runs:
    /// `fsync` (on disk, fsynced) or `crash` (handed to the OS, surviving a crash or kill -9
    /// of the gateway; fsynced within `sync_every`).
    pub durability: Durability,
    /// At `crash`: the longest an acknowledged event waits for its fsync.
    #[serde(deserialize_with = "bounded::duration::<_, 1, 10_000>")]
    pub sync_every: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            node: "local".into(),
            checkpoint_every_events: 1000,
            checkpoint_every: Duration::from_secs(60),
            durability: Durability::Fsync,
            sync_every: Duration::from_millis(100),
        }
    }
}

/// `[audit] durability` (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Fsync,
    Crash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Postgres,
    Mysql,
    Http,
    Kubernetes,
    Ssh,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "postgres",
            ConnectionKind::Mysql => "mysql",
            ConnectionKind::Http => "http",
            ConnectionKind::Kubernetes => "kubernetes",
            ConnectionKind::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub name: String,
    pub kind: ConnectionKind,
    /// `host:port` of the target.
    pub upstream: String,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Free-form labels, visible to policy as Cedar tags on the connection.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// TLS to the target: `disable` (default), `require` (encrypt, no verification) or
    /// `verify-full` (verify the certificate and host name against `ca_file` or the system roots).
    #[serde(default)]
    pub upstream_tls: UpstreamTlsMode,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The masking profile every answer from this connection passes through; policies add
    /// theirs with `@mask("...")`. `None`: only the policies' profiles.
    #[serde(default)]
    pub masking: Option<String>,
    /// User functions (`schema.name` or `name`) the operator declares harmless: a call of one
    /// that is VOLATILE, SECURITY DEFINER or not in SQL is then not taken as able to write.
    #[serde(default)]
    pub safe_functions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTlsMode {
    #[default]
    Disable,
    Require,
    VerifyFull,
}

/// The PostgreSQL door.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    pub enabled: bool,
    pub listen: String,
    /// PEM certificate chain and key; without them a self-signed pair is generated into
    /// `state_dir` on first start.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept the token over plaintext from a loopback peer (no network to sniff).
    pub allow_plaintext_loopback: bool,
    /// The largest Query, Parse, Bind or CopyData message accepted from a client.
    pub max_message_bytes: usize,
    /// Classified statements kept by SQL text, and as many kept by shape (statements that
    /// differ only in literals), so a repeated statement costs a lookup.
    pub statement_cache: usize,
    /// Audit statements with literals replaced by placeholders (the default); `false`
    /// keeps the text as sent, values included.
    pub redact_literals: bool,
    /// Idle server connections kept per connection for the next session (reset with
    /// `DISCARD ALL`, as pgbouncer's session mode does); 0 opens one per session.
    pub pool_size: usize,
    /// An idle server connection older than this is closed, not reused.
    #[serde(with = "humantime_serde")]
    pub pool_idle: Duration,
    /// Sessions one principal (issuer and subject) may have open at once, across the door's
    /// connections; more are refused at start-up (53300, `session_limit_principal`).
    #[serde(deserialize_with = "bounded::count::<_, 1, 100_000>")]
    pub max_sessions_per_principal: usize,
    /// Sessions one connection may have open at once, all principals together; more are
    /// refused at start-up (53300, `session_limit_connection`).
    #[serde(deserialize_with = "bounded::count::<_, 1, 100_000>")]
    pub max_sessions_per_connection: usize,
    /// Server connections one connection may have open at once, in use and idle in the pool.
    #[serde(deserialize_with = "bounded::count::<_, 1, 10_000>")]
    pub max_server_connections: usize,
    /// How long a session waits for a server connection when all of them are taken, before
    /// it ends (53300, `server_connections_exhausted`).
    #[serde(deserialize_with = "bounded::duration::<_, 1, 600_000>")]
    pub server_connection_wait: Duration,
    /// Once the first byte of a client's message has arrived, the whole message must arrive
    /// within this (08P01, `client_stalled`).
    #[serde(deserialize_with = "bounded::duration::<_, 100, 3_600_000>")]
    pub message_timeout: Duration,
    /// A session that sends nothing for this long, outside a transaction and with nothing
    /// running, ends (57P05, `idle_timeout`).
    #[serde(deserialize_with = "bounded::duration::<_, 1_000, 2_592_000_000>")]
    pub idle_session_timeout: Duration,
    /// The same inside a transaction block, which is rolled back (25P03,
    /// `idle_in_transaction_timeout`).
    #[serde(deserialize_with = "bounded::duration::<_, 1_000, 86_400_000>")]
    pub idle_in_transaction_timeout: Duration,
    /// Answers a client may be owed (response cycles: a simple Query, or extended-protocol
    /// messages up to a Sync; and each extended message not yet answered) before the door
    /// reads no more of it until the server's answers come back. Bounds the door's memory
    /// per session without refusing any pipeline.
    #[serde(deserialize_with = "bounded::count::<_, 1, 1_000_000>")]
    pub max_pipeline_depth: usize,
    /// How long the door keeps a connection's catalog (relations, views, functions,
    /// triggers, rules) before reading it again; DDL through the gateway and `portcullis
    /// connections refresh` read it again sooner.
    #[serde(deserialize_with = "bounded::duration::<_, 1_000, 86_400_000>")]
    pub catalog_refresh: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:15432".into(),
            tls_cert: None,
            tls_key: None,
            allow_plaintext_loopback: true,
            max_message_bytes: 64 << 20,
            statement_cache: 10_000,
            redact_literals: true,
            pool_size: 8,
            pool_idle: Duration::from_secs(60),
            // An agent rarely needs more than a few sessions at once (a driver's pool is 5 to
            // 20); 100 leaves room for that and stops one runaway agent (a retry loop, a
            // leak) from taking a connection's whole capacity.
            max_sessions_per_principal: 100,
            // Each session costs the gateway a task and its buffers, and holds a server
            // connection while it lives; the sessions beyond `max_server_connections` wait
            // for one, and this bounds how many may wait.
            max_sessions_per_connection: 500,
            // Half of PostgreSQL's default `max_connections` (100, 3 of them reserved for
            // superusers): room for other clients, maintenance and a second gateway node.
            max_server_connections: 50,
            // Absorbs a burst of short sessions (an exec call takes milliseconds) and stays
            // below the connect timeouts clients commonly use.
            server_connection_wait: Duration::from_secs(10),
            // A client that started a message and sent nothing more for 30 s has stalled or
            // is holding the gateway's buffer on purpose (slowloris); 30 s still carries a
            // 64 MiB message at about 2 MB/s.
            message_timeout: Duration::from_secs(30),
            // Frees the sessions (and server connections) of agents that forgot to close;
            // PostgreSQL's own `idle_session_timeout` is off by default, but a gateway that
            // holds a server connection per session runs out of them that way.
            idle_session_timeout: Duration::from_secs(3600),
            // An open transaction holds its locks and stops vacuum; an agent that went away
            // in the middle of one is the classic cause.
            idle_in_transaction_timeout: Duration::from_secs(600),
            // Far above what pipelining drivers keep in flight (hundreds); a cycle costs the
            // gateway a few hundred bytes, so a session stays within a few megabytes.
            max_pipeline_depth: 10_000,
            catalog_refresh: Duration::from_secs(60),
        }
    }
}

impl Config {
    pub(crate) fn from_file(raw: FileConfig, path: PathBuf, base: PathBuf) -> Self {
        let mut c = Config {
            path,
            server: raw.server,
            store: raw.store,
            identity: raw.identity,
            policy: raw.policy,
            audit: raw.audit,
            postgres: raw.postgres,
            masking: raw.masking,
            approvals: raw.approvals,
            recording: raw.recording,
            exec: raw.exec,
            connections: raw.connections,
        };
        for p in [&mut c.postgres.tls_cert, &mut c.postgres.tls_key]
            .into_iter()
            .flatten()
        {
            *p = anchor(&base, p);
        }
        c.server.state_dir = anchor(&base, &c.server.state_dir);
        c.recording.dir = anchor(&c.server.state_dir, &c.recording.dir);
        c.policy.files = c
            .policy
            .files
            .iter()
            .map(|f| anchor(&base, Path::new(f)).to_string_lossy().into_owned())
            .collect();
        c.store.url = Some(match c.store.url.take() {
            Some(u) => anchor_store_url(&base, &u),
            None => format!("sqlite://{}", c.server.state_dir.join("state.db").display()),
        });
        for conn in &mut c.connections {
            if let Some(p) = &mut conn.password {
                p.anchor(&base);
            }
            if let Some(ca) = &mut conn.ca_file {
                *ca = anchor(&base, ca);
            }
        }
        c
    }

    /// The store URL, with SQLite paths made absolute.
    pub fn store_url(&self) -> &str {
        self.store.url.as_deref().unwrap_or_default()
    }

    /// The dev issuer's `iss`: configured, or `http://{server.listen}`.
    pub fn dev_issuer_url(&self) -> String {
        self.identity
            .dev_issuer
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.listen))
    }

    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }
}

fn anchor(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn anchor_store_url(base: &Path, url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(':') => {
            format!("sqlite://{}", base.join(rest).display())
        }
        _ => url.to_string(),
    }
}
