//! What the binary hands the door: its listener settings and the configured targets.

use std::net::SocketAddr;
use std::path::PathBuf;

use portcullis_policy::ConnectionInfo;
use secrecy::SecretString;

/// The door's own settings (`[postgres]` in `portcullis.toml`).
#[derive(Debug, Clone)]
pub struct PgDoorSettings {
    /// Where the binary binds the listener it hands to [`crate::PgDoor::serve`].
    pub listen: SocketAddr,
    /// The certificate and key clients see. `None`: a self-signed pair is generated into
    /// `state_dir` on first start and reused afterwards.
    pub tls: Option<TlsFiles>,
    /// Where the self-signed pair lives: `pg-tls-cert.pem` and `pg-tls-key.pem` (0600).
    pub state_dir: PathBuf,
    /// Accept a token over plaintext from a loopback peer, where there is no network to sniff.
    pub allow_plaintext_loopback: bool,
    /// The largest Query, Parse, Bind, FunctionCall, CopyData or CopyFail a client may send.
    pub max_message_bytes: usize,
    /// Classified statements kept by SQL text (0 disables the cache).
    pub statement_cache: usize,
    /// Write statements to the audit with their literals replaced by placeholders (`$1`),
    /// so values in SQL text (often personal data) never reach the trail.
    pub redact_literals: bool,
    /// How many rows of each result a session recording keeps (0: none, only counts).
    pub record_rows: usize,
    /// Idle server connections kept per target (and forwarded start-up parameters) for the
    /// next session, reset with `DISCARD ALL`; 0 opens a new one for every session.
    pub pool_size: usize,
    /// An idle server connection older than this is closed rather than reused.
    pub pool_idle: std::time::Duration,
    /// Sessions, server connections, timeouts and the pipeline depth.
    pub limits: crate::SessionLimits,
    pub sql: portcullis_sql::Options,
    /// How long a connection's catalog is kept before it is read again.
    pub catalog_refresh: std::time::Duration,
}

impl PgDoorSettings {
    /// Defaults for everything but where to listen and keep state.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        Self {
            listen,
            tls: None,
            state_dir,
            allow_plaintext_loopback: true,
            max_message_bytes: 64 << 20,
            statement_cache: 10_000,
            redact_literals: true,
            record_rows: 10,
            pool_size: 8,
            pool_idle: std::time::Duration::from_secs(60),
            limits: crate::SessionLimits::default(),
            sql: portcullis_sql::Options::default(),
            catalog_refresh: std::time::Duration::from_secs(60),
        }
    }
}

/// A PEM certificate chain and its PEM private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A configured PostgreSQL connection the door can open.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// The connection as policy sees it: name (what clients put in `database`), kind, labels.
    pub info: ConnectionInfo,
    /// `host:port` of the server.
    pub upstream: String,
    /// The database on the server.
    pub database: String,
    /// The role the gateway logs in as; agents never learn it or its password.
    pub user: String,
    pub password: Option<SecretString>,
    pub tls: UpstreamTls,
    /// The masking profile every result from this connection passes through.
    pub masking: Option<String>,
    /// User functions declared harmless (`[[connections]] safe_functions`).
    pub safe_functions: Vec<String>,
}

/// TLS from the gateway to the server, like libpq's `sslmode`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UpstreamTls {
    #[default]
    Disable,
    /// Encrypt, but accept any certificate (`sslmode=require`).
    Require,
    /// Verify the chain against `ca_file` (or the WebPKI roots when `None`) and the host name.
    VerifyFull { ca_file: Option<PathBuf> },
}
