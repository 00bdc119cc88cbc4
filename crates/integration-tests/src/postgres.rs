//! A real PostgreSQL server of the test's own: `initdb` into a temp dir, `postgres` listening
//! only on 127.0.0.1 at a free port (and a unix socket in the temp dir), with password
//! authentication (SCRAM-SHA-256 by default, MD5 or trust on request) for TCP clients.
//!
//! The server runs as the `postgres` OS user when the tests run as root (initdb refuses root),
//! as the current user otherwise. Binaries come from `$PG_BIN` or the newest
//! `/usr/lib/postgresql/*/bin`. The postmaster is a child of the test process: stopped with
//! an immediate shutdown (SIGQUIT, then SIGKILL) when the handle drops, and killed by the
//! watchdog if the test process dies; the temp dir (data, socket, logs) goes with it.
//!
//! Every server gets role `app` (LOGIN, a random password: [`PgServer::app_password`]),
//! database `appdb` owned by `app`, and the fixture in [`FIXTURE_SQL`]: `customers` (20 rows
//! with emails, phones and one card number) and `orders`.

use std::fmt;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use tempfile::TempDir;

use crate::clients::{PgConn, SslMode};
use crate::proc::{Managed, tail};

/// The login role created in every server.
pub const APP_USER: &str = "app";
/// The database created in every server, owned by [`APP_USER`].
pub const APP_DB: &str = "appdb";
/// Rows in `customers` after the fixture.
pub const CUSTOMER_COUNT: i64 = 20;
/// Rows in `orders` after the fixture.
pub const ORDER_COUNT: i64 = 40;
/// The card number stored in the `notes` of customer 7 (a Visa test number).
pub const FIXTURE_CARD: &str = "4111 1111 1111 1111";

/// The fixture schema and rows, run as `app` in `appdb` (so `app` owns the tables).
pub const FIXTURE_SQL: &str = r#"
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text,
    phone text,
    notes text,
    balance numeric(12,2),
    tags text[],
    profile jsonb,
    meta json,
    created date
);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int REFERENCES customers,
    amount int,
    status text
);
INSERT INTO customers (name, email, phone, notes, balance, tags, profile, meta, created) VALUES
 ('Alice Martin',    'alice.martin@example.com',   '+1 415 555 0101', 'prefers email',                       1200.50, '{vip,early}',      '{"tier":"gold","age":34,"newsletter":true}',   '{"source":"web"}',      '2023-01-15'),
 ('Bob Chen',        'bob.chen@example.org',       '+1 212 555 0199', NULL,                                     0.00, '{}',               '{"tier":"basic","age":41}',                    '{"source":"referral"}', '2023-02-03'),
 ('Carla Rossi',     'carla.rossi@example.it',     '+39 02 5550 1234','called about invoice 2023-117',          87.25, '{support}',        '{"tier":"silver","langs":["it","en"]}',        '{"source":"web"}',      '2023-02-28'),
 ('Dmitri Volkov',   'd.volkov@example.net',       '+44 20 7946 0958', NULL,                                  15000.00, '{vip}',            '{"tier":"platinum","age":52}',                 '{"source":"sales"}',    '2023-03-10'),
 ('Emma Schmidt',    'emma.schmidt@example.de',    '+49 30 5550 7788', 'GDPR export requested',                 -42.10, '{gdpr}',           '{"tier":"basic","consent":false}',             '{"source":"web"}',      '2023-04-01'),
 ('Farid Haddad',    'farid.haddad@example.com',   '+33 1 55 50 12 34', NULL,                                    310.00, '{early}',          '{"tier":"silver"}',                            '{"source":"ads"}',      '2023-04-22'),
 ('Grace Okafor',    'grace.okafor@example.com',   '+234 1 555 0147',  'card 4111 1111 1111 1111 exp 12/29',     999.99, '{vip,card}',       '{"tier":"gold","card_last4":"1111"}',          '{"source":"web"}',      '2023-05-05'),
 ('Hiro Tanaka',     'hiro.tanaka@example.jp',     '+81 3 5550 0000',  NULL,                                     55.00, '{}',               '{"tier":"basic","langs":["ja"]}',              '{"source":"partner"}',  '2023-05-30'),
 ('Isabel García',   'isabel.garcia@example.es',   '+34 91 555 0123',  'name has an accent: García',            430.75, '{support,early}',  '{"tier":"silver","nickname":"Isa"}',           '{"source":"web"}',      '2023-06-14'),
 ('Jack O''Brien',   'jack.obrien@example.ie',     '+353 1 555 0166',  'apostrophe in name',                      0.01, '{}',               '{"tier":"basic"}',                             '{"source":"web"}',      '2023-07-02'),
 ('Kim Nguyen',      'kim.nguyen@example.com',     '+1 206 555 0142',  NULL,                                   2750.00, '{vip}',            '{"tier":"gold","age":29}',                     '{"source":"sales"}',    '2023-07-19'),
 ('Lars Eriksson',   'lars.eriksson@example.se',   '+46 8 555 012 34', 'SSN on file: 19800101-1234',             120.00, '{pii}',            '{"tier":"basic"}',                             '{"source":"web"}',      '2023-08-08'),
 ('Maya Patel',      'maya.patel@example.in',      '+91 22 5550 1111', NULL,                                    640.40, '{early}',          '{"tier":"silver","age":38}',                   '{"source":"ads"}',      '2023-08-30'),
 ('Noah Williams',   'noah.w@example.com',         '+1 312 555 0177',  'closed account',                          0.00, '{closed}',         '{"tier":"basic","active":false}',              '{"source":"web"}',      '2023-09-12'),
 ('Olivia Brown',    'olivia.brown@example.co.uk', '+44 161 555 0190', NULL,                                   8100.00, '{vip,support}',    '{"tier":"platinum"}',                          '{"source":"sales"}',    '2023-10-01'),
 ('Pedro Alves',     'pedro.alves@example.br',     '+55 11 5555 0123', NULL,                                     77.70, '{}',               '{"tier":"basic","langs":["pt"]}',              '{"source":"partner"}',  '2023-10-27'),
 ('Quinn Taylor',    NULL,                         NULL,               'no contact details',                      5.00, NULL,               NULL,                                           NULL,                    '2023-11-11'),
 ('Rosa Lima',       'rosa.lima@example.com',      '+1 646 555 0111',  'multi
line note',                                                                                                      250.00, '{early}',          '{"tier":"silver","notes":["a","b"]}',          '{"source":"web"}',      '2023-12-05'),
 ('Sven Müller',     'sven.mueller@example.de',    '+49 89 5550 4321', NULL,                                   3333.33, '{vip}',            '{"tier":"gold"}',                              '{"source":"web"}',      '2024-01-09'),
 ('Tara Singh',      'tara.singh@example.com',     '+1 408 555 0155',  'tab	inside',                          19.99, '{support}',        '{"tier":"basic","age":23}',                    '{"source":"ads"}',      '2024-02-14');
INSERT INTO orders (customer_id, amount, status)
SELECT 1 + (g * 7) % 20, 10 * g + (g % 3), (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4]
FROM generate_series(1, 40) AS g;
"#;

/// See [`PgServer::fingerprint`]; one text column, for a test that runs it on a session of
/// its own. Table contents are read generically with `query_to_xml`, each table's rows
/// ordered by their text.
pub const FINGERPRINT_SQL: &str = r#"
SELECT concat_ws(E'\n',
  (SELECT coalesce(string_agg(format('%I.%I', table_schema, table_name) || ' ' || md5(
            query_to_xml(format('SELECT * FROM %I.%I AS t ORDER BY t::text', table_schema,
                                table_name), true, false, '')::text),
          ',' ORDER BY table_schema, table_name), '')
     FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')),
  (SELECT string_agg(concat_ws(':', n.nspname, c.relname, c.relkind, c.relowner::regrole, c.relacl,
                             c.relrowsecurity), ',' ORDER BY n.nspname, c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')),
  (SELECT coalesce(string_agg(n.nspname || '.' || p.proname || ':' || md5(p.prosrc), ','
                              ORDER BY n.nspname, p.proname), '')
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')),
  (SELECT string_agg(concat_ws(':', nspname, nspacl), ',' ORDER BY nspname) FROM pg_namespace),
  (SELECT string_agg(concat_ws(':', rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin),
          ',' ORDER BY rolname) FROM pg_roles),
  (SELECT string_agg(r.rolname || '>' || m.rolname, ',' ORDER BY r.rolname, m.rolname)
     FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member),
  (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT coalesce(string_agg(concat_ws('=', name, setting), ',' ORDER BY name), '')
     FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'),
  (SELECT coalesce(string_agg(concat_ws(':', setdatabase, setrole, setconfig), ','), '')
     FROM pg_db_role_setting),
  (SELECT string_agg(concat_ws(':', datname, datacl), ',' ORDER BY datname) FROM pg_database),
  (SELECT coalesce(string_agg(concat_ws(':', sequencename, last_value), ',' ORDER BY sequencename), '')
     FROM pg_sequences)
)
"#;

/// How TCP clients authenticate (`pg_hba.conf` and `password_encryption`). Unix-socket
/// connections are always trusted (that is how the harness itself gets in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `scram-sha-256` in `pg_hba.conf`, passwords stored as SCRAM verifiers.
    Scram,
    /// `md5` in `pg_hba.conf`, passwords stored as MD5 hashes (so the server asks for MD5).
    Md5,
    /// `trust`: any password, or none, is accepted.
    Trust,
}

impl Auth {
    fn hba_method(self) -> &'static str {
        match self {
            Auth::Scram => "scram-sha-256",
            Auth::Md5 => "md5",
            Auth::Trust => "trust",
        }
    }

    fn password_encryption(self) -> &'static str {
        match self {
            Auth::Md5 => "md5",
            Auth::Scram | Auth::Trust => "scram-sha-256",
        }
    }
}

/// How the postmaster is asked to stop (the modes of `pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: refuse new connections, wait for sessions to end.
    Smart,
    /// SIGINT: terminate sessions (57P01 `admin_shutdown`), checkpoint, exit.
    Fast,
    /// SIGQUIT: kill every backend at once, no checkpoint (crash recovery on the next start).
    Immediate,
}

impl Shutdown {
    fn signal(self) -> &'static str {
        match self {
            Shutdown::Smart => "-TERM",
            Shutdown::Fast => "-INT",
            Shutdown::Immediate => "-QUIT",
        }
    }
}

/// What to start: see [`PgServer::builder`].
#[derive(Debug, Clone)]
pub struct PgServerBuilder {
    auth: Auth,
    tls: bool,
    require_tls: bool,
    log_statements: bool,
    max_connections: u32,
    extra_conf: Vec<String>,
}

impl Default for PgServerBuilder {
    fn default() -> Self {
        Self {
            auth: Auth::Scram,
            tls: false,
            require_tls: false,
            log_statements: true,
            max_connections: 200,
            extra_conf: Vec::new(),
        }
    }
}

impl PgServerBuilder {
    /// TCP authentication (default [`Auth::Scram`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// `ssl = on` with a server certificate for `localhost` and `127.0.0.1` signed by a CA
    /// generated in the temp dir ([`PgServer::ca_cert_path`]). Needs `openssl` on PATH.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Implies [`tls`](Self::tls): TCP clients without TLS are rejected by `pg_hba.conf`.
    pub fn require_tls(mut self, on: bool) -> Self {
        self.require_tls = on;
        if on {
            self.tls = true;
        }
        self
    }

    /// `log_statement = 'all'` plus connection/disconnection logging (default on), so a test
    /// can read in [`PgServer::log`] what reached the server. Off for load tests.
    pub fn log_statements(mut self, on: bool) -> Self {
        self.log_statements = on;
        self
    }

    /// `max_connections` (default 200).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// A line appended verbatim to `postgresql.conf`.
    pub fn conf(mut self, line: impl Into<String>) -> Self {
        self.extra_conf.push(line.into());
        self
    }

    /// initdb, start, create `app`/`appdb` and the fixture.
    pub async fn start(self) -> Result<PgServer> {
        PgServer::start_builder(self).await
    }
}

/// A running PostgreSQL server of the test's own. Stopped (immediate shutdown, then SIGKILL)
/// on drop; its temp dir goes with it.
pub struct PgServer {
    proc: Option<Managed>,
    port: u16,
    auth: Auth,
    app_password: String,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_dir: PathBuf,
    ca_cert: Option<PathBuf>,
    run_as: Option<(u32, u32)>,
    runs: u32,
    dir: TempDir,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .field("auth", &self.auth)
            .field("dir", &self.dir.path())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// Attempts at a free port before giving up (another process may take the port between the
/// probe and the postmaster's bind).
const PORT_ATTEMPTS: u32 = 8;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl PgServer {
    /// A SCRAM-SHA-256 server with the fixture: `PgServer::builder().start()`.
    pub async fn start() -> Result<PgServer> {
        Self::builder().start().await
    }

    /// A server whose TCP clients authenticate with `auth`.
    pub async fn start_with(auth: Auth) -> Result<PgServer> {
        Self::builder().auth(auth).start().await
    }

    /// An MD5 server: `start_with(Auth::Md5)`.
    pub async fn md5() -> Result<PgServer> {
        Self::start_with(Auth::Md5).await
    }

    /// Options: auth, TLS, statement logging, extra `postgresql.conf` lines.
    pub fn builder() -> PgServerBuilder {
        PgServerBuilder::default()
    }

    async fn start_builder(b: PgServerBuilder) -> Result<PgServer> {
        let bin_dir = find_bin_dir()?;
        let run_as = postgres_ids()?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-pg-")
            .tempdir()
            .context("cannot create temp dir")?;
        let data_dir = dir.path().join("data");
        let socket_dir = dir.path().join("sock");
        let log_dir = dir.path().join("logs");
        std::fs::create_dir_all(&socket_dir).context("cannot create socket dir")?;
        std::fs::create_dir_all(&log_dir).context("cannot create log dir")?;
        if let Some((uid, gid)) = run_as {
            for d in [dir.path(), socket_dir.as_path()] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))
                    .with_context(|| format!("cannot chown {} to postgres", d.display()))?;
            }
        }
        let app_password = random_password()?;
        let mut server = PgServer {
            proc: None,
            port: 0,
            auth: b.auth,
            app_password,
            bin_dir,
            data_dir,
            socket_dir,
            log_dir,
            ca_cert: None,
            run_as,
            runs: 0,
            dir,
        };
        server.initdb(&b).await?;
        if b.tls {
            server.make_certs()?;
        }
        server.write_config(&b)?;
        server.spawn_on_free_port().await?;
        server.create_fixture().await?;
        Ok(server)
    }

    async fn initdb(&self, b: &PgServerBuilder) -> Result<()> {
        let mut cmd = tokio::process::Command::new(self.bin_dir.join("initdb"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                &format!("--auth-host={}", b.auth.hba_method()),
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .context("initdb did not finish in 120 s")?
            .with_context(|| format!("cannot run {}/initdb", self.bin_dir.display()))?;
        std::fs::write(self.log_dir.join("initdb.log"), render_output(&out)).ok();
        if !out.status.success() {
            bail!("initdb failed ({}):\n{}", out.status, render_output(&out));
        }
        Ok(())
    }

    /// A CA and a server certificate (`localhost`, `127.0.0.1`) with `openssl`.
    fn make_certs(&mut self) -> Result<()> {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).context("cannot create tls dir")?;
        std::fs::write(
            tls.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .context("cannot write server.ext")?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "3",
                    "-subj",
                    "/CN=Portcullis test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "3",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(&tls)
                .stdin(Stdio::null())
                .output()
                .context("cannot run openssl (install it: scripts/setup-test-deps.sh)")?;
            if !out.status.success() {
                bail!("openssl {args:?} failed:\n{}", render_output(&out));
            }
        }
        // The server key must belong to the server's user and be private.
        let key = tls.join("server.key");
        if let Some((uid, gid)) = self.run_as {
            for f in ["server.key", "server.crt", "ca.crt"] {
                std::os::unix::fs::chown(tls.join(f), Some(uid), Some(gid))
                    .with_context(|| format!("cannot chown {f}"))?;
            }
            std::os::unix::fs::chown(&tls, Some(uid), Some(gid)).context("cannot chown tls")?;
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .context("cannot chmod server.key")?;
        self.ca_cert = Some(tls.join("ca.crt"));
        Ok(())
    }

    fn write_config(&self, b: &PgServerBuilder) -> Result<()> {
        let mut conf = String::from("\n# --- portcullis integration-test harness ---\n");
        let _ = writeln!(conf, "listen_addresses = '127.0.0.1'");
        let _ = writeln!(
            conf,
            "unix_socket_directories = '{}'",
            conf_escape(&self.socket_dir.to_string_lossy())
        );
        let _ = writeln!(conf, "unix_socket_permissions = 0777");
        let _ = writeln!(conf, "max_connections = {}", b.max_connections);
        let _ = writeln!(conf, "shared_buffers = '32MB'");
        let _ = writeln!(conf, "fsync = off");
        let _ = writeln!(conf, "full_page_writes = off");
        let _ = writeln!(
            conf,
            "password_encryption = '{}'",
            b.auth.password_encryption()
        );
        let _ = writeln!(conf, "log_line_prefix = '%m [%p] %q%u@%d '");
        let _ = writeln!(conf, "log_min_messages = warning");
        if b.log_statements {
            let _ = writeln!(conf, "log_statement = 'all'");
            let _ = writeln!(conf, "log_connections = on");
            let _ = writeln!(conf, "log_disconnections = on");
        }
        if let Some(ca) = &self.ca_cert {
            let tls = ca.parent().unwrap_or(Path::new("."));
            let _ = writeln!(conf, "ssl = on");
            let _ = writeln!(
                conf,
                "ssl_cert_file = '{}'",
                conf_escape(&tls.join("server.crt").to_string_lossy())
            );
            let _ = writeln!(
                conf,
                "ssl_key_file = '{}'",
                conf_escape(&tls.join("server.key").to_string_lossy())
            );
        }
        for line in &b.extra_conf {
            let _ = writeln!(conf, "{line}");
        }
        let conf_path = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)
            .with_context(|| format!("cannot read {}", conf_path.display()))?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text)
            .with_context(|| format!("cannot write {}", conf_path.display()))?;

        let method = b.auth.hba_method();
        let tcp = if b.require_tls { "hostssl" } else { "host" };
        let mut hba = String::from("# Written by the portcullis integration-test harness.\n");
        let _ = writeln!(hba, "local all all trust");
        if b.require_tls {
            let _ = writeln!(hba, "hostnossl all all 0.0.0.0/0 reject");
        }
        let _ = writeln!(hba, "{tcp} all all 127.0.0.1/32 {method}");
        std::fs::write(self.data_dir.join("pg_hba.conf"), hba).context("cannot write pg_hba")?;
        Ok(())
    }

    async fn spawn_on_free_port(&mut self) -> Result<()> {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_port()?;
            match self.spawn().await {
                Ok(()) => return Ok(()),
                Err(SpawnError::PortTaken(log)) => last = log,
                Err(SpawnError::Other(e)) => return Err(e),
            }
        }
        bail!("no free port for postgres after {PORT_ATTEMPTS} attempts; last log:\n{last}")
    }

    async fn spawn(&mut self) -> std::result::Result<(), SpawnError> {
        self.runs += 1;
        let name = format!("postgres-{}", self.runs);
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .current_dir(self.dir.path())
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt as _;
            cmd.uid(uid).gid(gid);
        }
        let proc = Managed::spawn(&name, cmd, &self.log_dir, false, Some(self.dir.path()))
            .map_err(SpawnError::Other)?;
        self.proc = Some(proc);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(p) = self.proc.as_mut()
                && let Some(status) = p.try_status()
            {
                let logs = p.logs_tail();
                self.proc = None;
                if logs.contains("Address already in use") || logs.contains("could not bind") {
                    return Err(SpawnError::PortTaken(logs));
                }
                return Err(SpawnError::Other(anyhow!(
                    "postgres exited ({status}) before accepting connections\n{logs}"
                )));
            }
            if self.is_ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SpawnError::Other(anyhow!(
                    "postgres not accepting connections on 127.0.0.1:{} after {READY_TIMEOUT:?}\n{}",
                    self.port,
                    self.logs_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `pg_isready` on both the socket and TCP.
    async fn is_ready(&self) -> bool {
        for host in [self.socket_dir.to_string_lossy().into_owned(), self.host()] {
            let status = tokio::process::Command::new(self.bin_dir.join("pg_isready"))
                .args(["-q", "-t", "2", "-U", "postgres", "-d", "postgres", "-h"])
                .arg(&host)
                .arg("-p")
                .arg(self.port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await;
            if !matches!(status, Ok(s) if s.success()) {
                return false;
            }
        }
        true
    }

    async fn create_fixture(&self) -> Result<()> {
        let pw = self.app_password.replace('\'', "''");
        // log_statement off for the statement carrying the password.
        self.superuser_sql(
            "postgres",
            &format!(
                "SET log_statement = 'none';\n\
                 CREATE ROLE {APP_USER} LOGIN PASSWORD '{pw}';\n\
                 CREATE DATABASE {APP_DB} OWNER {APP_USER};"
            ),
        )
        .await
        .context("cannot create role and database")?;
        self.psql_socket(APP_USER, APP_DB, FIXTURE_SQL)
            .await
            .context("cannot load the fixture")?;
        Ok(())
    }

    /// The TCP port (the same across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> String {
        "127.0.0.1".to_string()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How TCP clients authenticate.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// The password of role `app` (random per server; URL-safe characters).
    pub fn app_password(&self) -> &str {
        &self.app_password
    }

    /// The role name: [`APP_USER`].
    pub fn app_user(&self) -> &str {
        APP_USER
    }

    /// The database: [`APP_DB`].
    pub fn app_db(&self) -> &str {
        APP_DB
    }

    /// Direct connection parameters for `app` in `appdb` over TCP (no TLS), for the real
    /// clients in [`crate::clients`].
    pub fn app_conn(&self) -> PgConn {
        PgConn::new(self.host(), self.port, APP_DB, APP_USER)
            .password(self.app_password.clone())
            .sslmode(SslMode::Disable)
    }

    /// The CA that signed the server certificate, when started with TLS.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// The CA certificate (PEM), when started with TLS.
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.ca_cert
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
    }

    /// The folder of the unix socket (a libpq `host`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The temp dir holding data, socket, certificates and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The folder of the server binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The postmaster's pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Managed::pid)
    }

    /// Whether the postmaster is running.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.try_status().is_none())
    }

    /// Runs `sql` (any number of statements) in `db` as superuser `postgres` over the unix
    /// socket with `psql -X -At -v ON_ERROR_STOP=1` and returns its stdout (rows one per line,
    /// columns separated by `|`, without the final newline). Fails with psql's stderr and the
    /// server log if any statement fails.
    pub async fn superuser_sql(&self, db: &str, sql: &str) -> Result<String> {
        self.psql_socket("postgres", db, sql).await
    }

    /// [`superuser_sql`](Self::superuser_sql) for a query that returns one value.
    pub async fn query_one(&self, db: &str, sql: &str) -> Result<String> {
        let out = self.superuser_sql(db, sql).await?;
        let mut lines = out.lines();
        match (lines.next(), lines.next()) {
            (Some(v), None) => Ok(v.to_string()),
            _ => bail!("expected one value from {sql:?}, got {out:?}"),
        }
    }

    /// A fingerprint of `db` and the cluster, to prove a test left them as they were: the
    /// rows of every table (all schemas but the system ones), relations with owners and
    /// privileges, functions, schemas, roles and memberships, extensions, large objects,
    /// `ALTER SYSTEM` and per-role settings, databases, sequence positions.
    pub async fn fingerprint(&self, db: &str) -> Result<String> {
        self.superuser_sql(db, FINGERPRINT_SQL).await
    }

    async fn psql_socket(&self, user: &str, db: &str, sql: &str) -> Result<String> {
        use tokio::io::AsyncWriteExt as _;
        let mut cmd = tokio::process::Command::new(self.psql_path());
        cmd.args(["-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-f", "-"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C.UTF-8")
            .env("PGCLIENTENCODING", "UTF8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.psql_path().display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .await
                .context("cannot write to psql")?;
        }
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .with_context(|| format!("psql did not finish in 120 s: {sql}"))?
            .context("psql failed to run")?;
        if !out.status.success() {
            bail!(
                "psql as {user} in {db} failed ({}):\n{}\nSQL: {sql}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.logs_tail()
            );
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    fn psql_path(&self) -> PathBuf {
        let p = self.bin_dir.join("psql");
        if p.is_file() {
            p
        } else {
            PathBuf::from("psql")
        }
    }

    /// Stops the server with `mode` and waits for the postmaster to exit (SIGKILL after 30 s).
    pub async fn stop_with(&mut self, mode: Shutdown) -> Result<()> {
        let Some(mut proc) = self.proc.take() else {
            bail!("postgres is not running");
        };
        if proc.try_status().is_some() {
            bail!("postgres had already exited\n{}", proc.logs_tail());
        }
        let pid = proc
            .pid()
            .ok_or_else(|| anyhow!("postgres has no pid"))?
            .to_string();
        let sent = tokio::process::Command::new("kill")
            .args([mode.signal(), &pid])
            .status()
            .await
            .context("cannot run kill")?;
        if !sent.success() {
            proc.kill9();
            bail!("kill {} {pid} failed", mode.signal());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while proc.try_status().is_none() {
            if Instant::now() >= deadline {
                let logs = proc.logs_tail();
                proc.kill9();
                bail!("postgres did not stop ({mode:?}) within {STOP_TIMEOUT:?}\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        proc.kill9(); // reaps it and stops the watchdog
        Ok(())
    }

    /// Fast shutdown (what `pg_ctl stop` does): sessions are terminated with SQLSTATE 57P01,
    /// then a checkpoint.
    pub async fn stop(&mut self) -> Result<()> {
        self.stop_with(Shutdown::Fast).await
    }

    /// Immediate shutdown (`pg_ctl stop -m immediate`): backends are killed at once, no
    /// checkpoint; the next start runs crash recovery. The quickest way to lose the server
    /// under a live session.
    pub async fn stop_fast(&mut self) -> Result<()> {
        self.stop_with(Shutdown::Immediate).await
    }

    /// SIGKILL to the postmaster (its backends exit when they notice).
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub async fn start_again(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("postgres is already running");
        }
        self.proc = None;
        // The port was ours a moment ago; give a racing process a few chances to let go.
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn().await {
                Ok(()) => return Ok(()),
                Err(SpawnError::PortTaken(log)) => last = log,
                Err(SpawnError::Other(e)) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!(
            "port {} is taken by another process; last log:\n{last}",
            self.port
        )
    }

    /// `pg_ctl restart` (fast mode): stops and starts on the same port with the same data.
    pub async fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            self.stop().await?;
        }
        self.start_again().await
    }

    /// The whole server log (stderr) of the current or last run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(
            self.log_dir
                .join(format!("postgres-{}.stderr.log", self.runs)),
        )
        .unwrap_or_default()
    }

    /// The server log of every run so far, in order.
    pub fn log_all(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                std::fs::read_to_string(self.log_dir.join(format!("postgres-{n}.stderr.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The last lines of the server log, for error messages.
    pub fn logs_tail(&self) -> String {
        let path = self
            .log_dir
            .join(format!("postgres-{}.stderr.log", self.runs));
        format!(
            "--- postgres log ({}) ---\n{}",
            path.display(),
            tail(&path, 60)
        )
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate shutdown so the backends go too; Managed's drop SIGKILLs if that stalls.
        if let Some(mut p) = self.proc.take()
            && p.try_status().is_none()
            && let Some(pid) = p.pid()
        {
            let sent = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if matches!(sent, Ok(s) if s.success()) {
                let deadline = Instant::now() + Duration::from_secs(5);
                while p.try_status().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

enum SpawnError {
    PortTaken(String),
    Other(anyhow::Error),
}

/// A port that was free a moment ago (bound on 127.0.0.1:0 and released).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(l.local_addr().context("no local addr")?.port())
}

/// `$PG_BIN`, or the newest `/usr/lib/postgresql/<major>/bin` holding `initdb` and `postgres`.
pub fn find_bin_dir() -> Result<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(p) = std::env::var_os("PG_BIN") {
        let p = PathBuf::from(p);
        if has_all(&p) {
            return Ok(p);
        }
        bail!("PG_BIN={} has no initdb/postgres/pg_isready", p.display());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).ok_or_else(|| {
        anyhow!(
            "no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin: \
             run scripts/setup-test-deps.sh, or set PG_BIN"
        )
    })
}

/// The uid/gid of the `postgres` OS user when running as root (initdb refuses root); `None`
/// when not root (the server runs as the current user).
fn postgres_ids() -> Result<Option<(u32, u32)>> {
    let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))?;
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            let uid = f[2].parse().context("bad uid for postgres")?;
            let gid = f[3].parse().context("bad gid for postgres")?;
            return Ok(Some((uid, gid)));
        }
    }
    bail!(
        "running as root but there is no `postgres` OS user to run initdb/postgres as \
         (install the postgresql package: scripts/setup-test-deps.sh)"
    )
}

/// 24 random bytes from /dev/urandom, base64url (32 characters).
fn random_password() -> Result<String> {
    use std::io::Read as _;
    let mut buf = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

fn conf_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

fn render_output(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
