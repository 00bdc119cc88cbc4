//! Real PostgreSQL clients pointed at any host/port/database/user/password: the gateway in
//! door tests (where the password is an OIDC token, ~1 KB), or a [`crate::PgServer`] directly.
//!
//! - [`psql`]: the real `psql` (simple protocol, `\copy`), environment cleaned of `PG*`
//!   variables and set from a [`PgConn`].
//! - [`python`], [`psycopg_run`], [`asyncpg_run`]: the scripts in `tests/python/` run with
//!   `.venv/bin/python` (psycopg 3: extended protocol; asyncpg: binary format, prepared
//!   statements). The JSON contract is in `tests/python/pgrun_common.py`.
//! - [`tokio_pg_connect`]: tokio-postgres, without TLS or with rustls (a self-signed server
//!   certificate is accepted unless a root certificate and `verify-ca`/`verify-full` are set).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

pub use tokio_postgres;

/// How long one client run may take before it is killed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling (`disable`, `verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and as whom a client connects. `Debug` shows the password's length only.
#[derive(Clone)]
pub struct PgConn {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    /// The password (for the gateway: the OIDC token).
    pub password: Option<String>,
    pub sslmode: SslMode,
    /// `sslrootcert`: the CA to verify the server with (`verify-ca`/`verify-full`).
    pub root_cert: Option<PathBuf>,
    pub application_name: Option<String>,
    /// `connect_timeout` (whole seconds; default 10).
    pub connect_timeout: Duration,
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field(
                "password",
                &self
                    .password
                    .as_ref()
                    .map(|p| format!("<{} bytes>", p.len())),
            )
            .field("sslmode", &self.sslmode)
            .field("root_cert", &self.root_cert)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PgConn {
    /// No password, `sslmode=disable`, 10 s connect timeout.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        dbname: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            dbname: dbname.into(),
            user: user.into(),
            password: None,
            sslmode: SslMode::Disable,
            root_cert: None,
            application_name: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn no_password(mut self) -> Self {
        self.password = None;
        self
    }

    pub fn sslmode(mut self, mode: SslMode) -> Self {
        self.sslmode = mode;
        self
    }

    pub fn root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_cert = Some(path.into());
        self
    }

    pub fn dbname(mut self, db: impl Into<String>) -> Self {
        self.dbname = db.into();
        self
    }

    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    fn timeout_secs(&self) -> u64 {
        self.connect_timeout.as_secs().max(1)
    }

    /// A libpq keyword/value string: `host=... port=... dbname=... user=... password=...
    /// sslmode=...` (values quoted as libpq wants). Contains the password.
    pub fn dsn(&self) -> String {
        let mut parts = vec![
            kv("host", &self.host),
            kv("port", &self.port.to_string()),
            kv("dbname", &self.dbname),
            kv("user", &self.user),
        ];
        if let Some(p) = &self.password {
            parts.push(kv("password", p));
        }
        parts.push(kv("sslmode", self.sslmode.as_str()));
        if let Some(c) = &self.root_cert {
            parts.push(kv("sslrootcert", &c.to_string_lossy()));
        }
        if let Some(a) = &self.application_name {
            parts.push(kv("application_name", a));
        }
        parts.push(kv("connect_timeout", &self.timeout_secs().to_string()));
        parts.join(" ")
    }

    /// A `postgresql://` URI (asyncpg takes only these). Contains the password.
    pub fn url(&self) -> String {
        let mut u = String::from("postgresql://");
        u.push_str(&pct(&self.user));
        if let Some(p) = &self.password {
            u.push(':');
            u.push_str(&pct(p));
        }
        u.push('@');
        if self.host.contains(':') {
            u.push_str(&format!("[{}]", self.host));
        } else {
            u.push_str(&pct(&self.host));
        }
        u.push_str(&format!(":{}/{}", self.port, pct(&self.dbname)));
        u.push_str(&format!("?sslmode={}", self.sslmode.as_str()));
        if let Some(c) = &self.root_cert {
            u.push_str(&format!("&sslrootcert={}", pct(&c.to_string_lossy())));
        }
        if let Some(a) = &self.application_name {
            u.push_str(&format!("&application_name={}", pct(a)));
        }
        u.push_str(&format!("&connect_timeout={}", self.timeout_secs()));
        u
    }

    /// The libpq environment for this connection (`PGHOST`, `PGPASSWORD`, `PGSSLMODE`, ...).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PGHOST".to_string(), self.host.clone()),
            ("PGPORT".to_string(), self.port.to_string()),
            ("PGDATABASE".to_string(), self.dbname.clone()),
            ("PGUSER".to_string(), self.user.clone()),
            ("PGSSLMODE".to_string(), self.sslmode.as_str().to_string()),
            (
                "PGCONNECT_TIMEOUT".to_string(),
                self.timeout_secs().to_string(),
            ),
            // No ~/.pgpass: a missing file is ignored silently (/dev/null draws a warning).
            (
                "PGPASSFILE".to_string(),
                "/nonexistent/portcullis-no-pgpass".to_string(),
            ),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD".to_string(), p.clone()));
        }
        if let Some(c) = &self.root_cert {
            env.push((
                "PGSSLROOTCERT".to_string(),
                c.to_string_lossy().into_owned(),
            ));
        }
        if let Some(a) = &self.application_name {
            env.push(("PGAPPNAME".to_string(), a.clone()));
        }
        env
    }
}

fn kv(key: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("{key}='{escaped}'")
}

fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// stdout, stderr and the exit status of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `psql` binary: the server's bin dir, else `psql` on PATH.
fn psql_binary() -> PathBuf {
    crate::postgres::find_bin_dir()
        .ok()
        .map(|d| d.join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

async fn run(mut cmd: tokio::process::Command, stdin: Option<&[u8]>, what: &str) -> Result<Output> {
    use tokio::io::AsyncWriteExt as _;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A client that exits early closes its stdin: not an error here, its output says why.
        let _ = pipe.write_all(data).await;
        drop(pipe);
    }
    tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("{what} did not finish within {CLIENT_TIMEOUT:?} (killed)"))?
        .with_context(|| format!("{what} failed to run"))
}

/// Runs `psql -X -w <args>` against `conn` (libpq environment from [`PgConn::env`]; every
/// inherited `PG*` variable removed), feeding `stdin` if given. Add `-v ON_ERROR_STOP=1`,
/// `-At`, `-c SQL`, `-f -` as the test needs. Killed after [`CLIENT_TIMEOUT`].
pub async fn psql(conn: &PgConn, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut cmd = tokio::process::Command::new(psql_binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(conn.env())
        .env("PGCLIENTENCODING", "UTF8")
        .arg("-X")
        .arg("-w")
        .args(args);
    run(cmd, stdin.map(str::as_bytes), "psql").await
}

/// `psql -X -w -At -v ON_ERROR_STOP=<0|1> -f -` with `sql` on stdin.
pub async fn psql_sql(conn: &PgConn, sql: &str, on_error_stop: bool) -> Result<Output> {
    let stop = if on_error_stop {
        "ON_ERROR_STOP=1"
    } else {
        "ON_ERROR_STOP=0"
    };
    psql(conn, &["-At", "-v", stop, "-f", "-"], Some(sql)).await
}

/// The folder of the Python scripts: `tests/python`.
pub fn python_dir() -> PathBuf {
    crate::repo_root().join("tests").join("python")
}

/// The venv interpreter `.venv/bin/python` at the repo root.
pub fn venv_python() -> Result<PathBuf> {
    let py = crate::repo_root().join(".venv").join("bin").join("python");
    if py.is_file() {
        Ok(py)
    } else {
        bail!(
            "{} not found: create the venv with `scripts/setup-test-deps.sh` (or `python3 -m \
             venv .venv && .venv/bin/pip install -r tests/python/requirements.txt` at the repo \
             root)",
            py.display()
        )
    }
}

/// Runs `tests/python/<script> <args>` with the venv interpreter. Killed after
/// [`CLIENT_TIMEOUT`].
pub async fn python(script: &str, args: &[&str]) -> Result<Output> {
    let py = venv_python()?;
    let path = python_dir().join(script);
    if !path.is_file() {
        bail!("no script {}", path.display());
    }
    let mut cmd = tokio::process::Command::new(&py);
    cmd.arg(&path)
        .args(args)
        .current_dir(python_dir())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    run(cmd, None, &format!("{} {}", py.display(), path.display())).await
}

/// Runs a script that prints one JSON object on stdout and returns it. Fails (with stdout and
/// stderr) if the script exits non-zero or prints no JSON.
pub async fn python_json(script: &str, args: &[&str]) -> Result<Value> {
    let out = python(script, args).await?;
    let text = stdout(&out);
    let parsed = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    match parsed {
        Some(v) if out.status.success() => Ok(v),
        _ => bail!("{script} failed or printed no JSON:\n{}", describe(&out)),
    }
}

/// `tests/python/psycopg_run.py <dsn> <spec>`: psycopg 3 (extended protocol). `spec` is a JSON
/// list of statements or `{"statements": [...], "autocommit": bool, ...}`; the answer is
/// `{"connected", "error", "results": [{"ok", "rows", "rowcount", "status", "error"}...]}`.
pub async fn psycopg_run(conn: &PgConn, spec: &Value) -> Result<Value> {
    python_json("psycopg_run.py", &[&conn.dsn(), &spec.to_string()]).await
}

/// `tests/python/asyncpg_run.py <url> <spec>`: asyncpg (binary format, prepared statements);
/// the same JSON contract as [`psycopg_run`], with `$1` placeholders.
pub async fn asyncpg_run(conn: &PgConn, spec: &Value) -> Result<Value> {
    python_json("asyncpg_run.py", &[&conn.url(), &spec.to_string()]).await
}

/// The tokio-postgres connection task: ends when the connection closes.
pub type PgConnection = tokio::task::JoinHandle<std::result::Result<(), tokio_postgres::Error>>;

/// Connects with tokio-postgres and spawns the connection task. `sslmode=disable` uses
/// `NoTls`; any other mode uses rustls (aws-lc-rs): with `verify-ca`/`verify-full` and a
/// `root_cert` the server certificate is verified against it (hostname included), otherwise
/// any certificate is accepted (a self-signed gateway certificate). A refused login's
/// SQLSTATE: [`tokio_pg_sqlstate`].
pub async fn tokio_pg_connect(conn: &PgConn) -> Result<(tokio_postgres::Client, PgConnection)> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&conn.host)
        .port(conn.port)
        .dbname(&conn.dbname)
        .user(&conn.user)
        .connect_timeout(conn.connect_timeout)
        .ssl_mode(match conn.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
    if let Some(p) = &conn.password {
        cfg.password(p);
    }
    if let Some(a) = &conn.application_name {
        cfg.application_name(a);
    }
    let what = format!(
        "tokio-postgres connect to {}:{} db={} user={} sslmode={}",
        conn.host, conn.port, conn.dbname, conn.user, conn.sslmode
    );
    if conn.sslmode == SslMode::Disable {
        let (client, connection) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| anyhow::Error::new(e).context(what))?;
        Ok((client, tokio::spawn(connection)))
    } else {
        let tls = rustls_connector(conn)?;
        let (client, connection) = cfg
            .connect(tls)
            .await
            .map_err(|e| anyhow::Error::new(e).context(what))?;
        Ok((client, tokio::spawn(connection)))
    }
}

/// The SQLSTATE of a database error inside `err` (a tokio-postgres error anywhere in its
/// chain), e.g. `28P01` for a refused password.
pub fn tokio_pg_sqlstate(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::as_db_error)
        .map(|db| db.code().code().to_string())
}

/// A rustls `ClientConfig` (aws-lc-rs) for `conn`: verifying against `root_cert` for
/// `verify-ca`/`verify-full`, accepting any server certificate otherwise.
pub fn rustls_client_config(conn: &PgConn) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?;
    let verify = matches!(conn.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    let config = match (&conn.root_cert, verify) {
        (Some(ca), true) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_pem_certs(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("bad CA certificate in {}", ca.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (None, true) => bail!(
            "sslmode={} needs a root certificate (PgConn::root_cert)",
            conn.sslmode
        ),
        (_, false) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

fn rustls_connector(conn: &PgConn) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        rustls_client_config(conn)?,
    ))
}

fn read_pem_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject as _;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// Accepts any server certificate (the handshake signature is still checked): for a gateway
/// with a self-signed certificate, like `sslmode=require` in libpq.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
