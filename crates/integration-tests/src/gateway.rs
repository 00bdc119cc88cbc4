//! The `portcullis` binary, started with a generated config in a temp dir.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::http::{self, Reply};
use crate::proc::Managed;

/// One `[[identity.issuers]]` entry.
#[derive(Debug, Clone)]
pub struct IssuerSpec {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub groups_claim: String,
    pub max_token_lifetime: String,
    pub leeway: String,
    pub jwks_refetch_min_interval: String,
}

impl IssuerSpec {
    /// The defaults the JWT matrix is written against: audience `portcullis`, RS256 and
    /// ES256, groups in `groups`, 1 h maximum lifetime, 30 s leeway, 1 s refetch interval.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec!["portcullis".into()],
            algorithms: vec!["RS256".into(), "ES256".into()],
            groups_claim: "groups".into(),
            max_token_lifetime: "1h".into(),
            leeway: "30s".into(),
            jwks_refetch_min_interval: "1s".into(),
        }
    }
}

/// The policy written when a builder names none (the config requires at least one file).
pub const DEFAULT_POLICY: &str = r#"// Written by the integration-test harness.
@id("test-admins-admin-api")
permit (principal in Group::"admins", action in Action::"admin", resource == Gateway::"self");
"#;

/// What to write into the gateway's temp dir.
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    issuers: Vec<IssuerSpec>,
    dev_issuer: bool,
    revoked_subjects: Vec<String>,
    revoked_client_ids: Vec<String>,
    revoked_token_ids: Vec<String>,
    extra_toml: String,
    policies: Vec<(String, String)>,
    env: Vec<(String, String)>,
    postgres_door: bool,
    /// `key = value` lines of the `[postgres]` table.
    postgres_keys: Vec<String>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            dev_issuer: true,
            revoked_subjects: vec!["revoked-agent".into()],
            revoked_client_ids: Vec::new(),
            revoked_token_ids: vec!["revoked-jti".into()],
            extra_toml: String::new(),
            policies: Vec::new(),
            env: Vec::new(),
            postgres_door: true,
            postgres_keys: Vec::new(),
        }
    }
}

impl GatewayBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `issuer` with the defaults of [`IssuerSpec::new`].
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(IssuerSpec::new(issuer));
        self
    }

    /// Trusts an issuer configured in full.
    pub fn issuer_spec(mut self, spec: IssuerSpec) -> Self {
        self.issuers.push(spec);
        self
    }

    /// Enables the embedded dev issuer (default: enabled).
    pub fn dev_issuer(mut self, enabled: bool) -> Self {
        self.dev_issuer = enabled;
        self
    }

    /// `[identity.revocations]` (default: subject `revoked-agent`, token id `revoked-jti`).
    pub fn revocations(
        mut self,
        subjects: &[&str],
        client_ids: &[&str],
        token_ids: &[&str],
    ) -> Self {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        self.revoked_subjects = own(subjects);
        self.revoked_client_ids = own(client_ids);
        self.revoked_token_ids = own(token_ids);
        self
    }

    /// TOML appended verbatim after the generated tables.
    pub fn extra_toml(mut self, toml: impl AsRef<str>) -> Self {
        self.extra_toml.push('\n');
        self.extra_toml.push_str(toml.as_ref());
        self.extra_toml.push('\n');
        self
    }

    /// A Cedar file `policies/<name>` (`.cedar` is appended if missing). Without any, the
    /// harness writes [`DEFAULT_POLICY`].
    pub fn policy(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        let mut name = name.into();
        if !name.ends_with(".cedar") {
            name.push_str(".cedar");
        }
        self.policies.push((name, text.into()));
        self
    }

    /// Adds a `[[connections]]` entry for a harness PostgreSQL server, logging in as its `app`
    /// role with the password passed through an environment variable (never the config).
    pub fn pg_connection(
        self,
        name: &str,
        server: &crate::postgres::PgServer,
        labels: &[(&str, &str)],
    ) -> Self {
        self.pg_connection_with(name, server, labels, &[])
    }

    /// [`GatewayBuilder::pg_connection`] with more keys of the `[[connections]]` entry, each
    /// value written as TOML: `("safe_functions", "[\"f\"]")`.
    pub fn pg_connection_with(
        self,
        name: &str,
        server: &crate::postgres::PgServer,
        labels: &[(&str, &str)],
        keys: &[(&str, &str)],
    ) -> Self {
        let var = format!("PG_PASSWORD_{}", name.to_uppercase().replace('-', "_"));
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k} = {}", toml_str(v)))
            .collect();
        let toml = format!(
            "[[connections]]\nname = {}\nkind = \"postgres\"\nupstream = {}\ndatabase = {}\nuser = {}\npassword = {{ env = {} }}\nlabels = {{ {} }}\n",
            toml_str(name),
            toml_str(&format!("127.0.0.1:{}", server.port())),
            toml_str(server.app_db()),
            toml_str(server.app_user()),
            toml_str(&var),
            labels.join(", ")
        );
        let keys: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        self.env(var, server.app_password())
            .extra_toml(toml + &keys)
    }

    /// Turns the PostgreSQL door off (default: on, at 127.0.0.1:0).
    pub fn postgres_door(mut self, enabled: bool) -> Self {
        self.postgres_door = enabled;
        self
    }

    /// A key of the `[postgres]` table, its value written as TOML: `postgres_key("pool_size",
    /// "1")`, `postgres_key("message_timeout", "\"1s\"")`.
    pub fn postgres_key(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.postgres_keys
            .push(format!("{key} = {}", value.as_ref()));
        self
    }

    /// The shipped example policies of `examples/quickstart/policies/`, as a user gets them.
    pub fn quickstart_policies(mut self) -> Result<Self> {
        let dir = crate::repo_root().join("examples/quickstart/policies");
        for name in ["agents.cedar", "admins.cedar"] {
            let text = std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("cannot read the quickstart policy {name}"))?;
            self = self.policy(name, text);
        }
        Ok(self)
    }

    /// An environment variable for the gateway process (and its CLI runs).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes the files and starts the gateway.
    pub async fn start(self) -> Result<Gateway> {
        Gateway::start(self).await
    }

    fn render(&self, state_dir: &Path, policies_dir: &Path) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "[server]");
        let _ = writeln!(t, "listen = \"127.0.0.1:0\"");
        let _ = writeln!(t, "state_dir = {}", toml_str(&state_dir.to_string_lossy()));
        let _ = writeln!(t, "\n[store]");
        let _ = writeln!(
            t,
            "url = {}",
            toml_str(&format!(
                "sqlite://{}",
                state_dir.join("state.db").display()
            ))
        );
        let _ = writeln!(t, "\n[identity.dev_issuer]");
        let _ = writeln!(t, "enabled = {}", self.dev_issuer);
        for i in &self.issuers {
            let _ = writeln!(t, "\n[[identity.issuers]]");
            let _ = writeln!(t, "issuer = {}", toml_str(&i.issuer));
            let _ = writeln!(t, "audiences = {}", toml_list(&i.audiences));
            let _ = writeln!(t, "algorithms = {}", toml_list(&i.algorithms));
            let _ = writeln!(t, "groups_claim = {}", toml_str(&i.groups_claim));
            let _ = writeln!(
                t,
                "max_token_lifetime = {}",
                toml_str(&i.max_token_lifetime)
            );
            let _ = writeln!(t, "leeway = {}", toml_str(&i.leeway));
            let _ = writeln!(
                t,
                "jwks_refetch_min_interval = {}",
                toml_str(&i.jwks_refetch_min_interval)
            );
        }
        let _ = writeln!(t, "\n[identity.revocations]");
        let _ = writeln!(t, "subjects = {}", toml_list(&self.revoked_subjects));
        let _ = writeln!(t, "client_ids = {}", toml_list(&self.revoked_client_ids));
        let _ = writeln!(t, "token_ids = {}", toml_list(&self.revoked_token_ids));
        let _ = writeln!(t, "\n[postgres]");
        let _ = writeln!(t, "enabled = {}", self.postgres_door);
        let _ = writeln!(t, "listen = \"127.0.0.1:0\"");
        for line in &self.postgres_keys {
            let _ = writeln!(t, "{line}");
        }
        let _ = writeln!(t, "\n[policy]");
        let _ = writeln!(
            t,
            "files = [{}]",
            toml_str(&policies_dir.join("*.cedar").to_string_lossy())
        );
        t.push_str(&self.extra_toml);
        t
    }
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// Where the `portcullis` binary is: `$PORTCULLIS_BIN`, or `target/<profile>/portcullis` next
/// to the running test executable (`target/<profile>/deps/<test>-<hash>`).
pub fn gateway_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PORTCULLIS_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("PORTCULLIS_BIN={} is not a file", p.display());
    }
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("test executable {} has no profile dir", exe.display()))?;
    let bin = profile_dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        bail!(
            "gateway binary {} not found: build it with `cargo build -p portcullis` \
             (same profile as the tests), or set PORTCULLIS_BIN",
            bin.display()
        )
    }
}

/// A running gateway. SIGKILLed on drop; its temp dir (config, state, logs) goes with it.
#[derive(Debug)]
pub struct Gateway {
    proc: Option<Managed>,
    url: String,
    postgres: Option<std::net::SocketAddr>,
    bin: PathBuf,
    config_path: PathBuf,
    state_dir: PathBuf,
    env: Vec<(String, String)>,
    runs: u32,
    dir: TempDir,
}

impl Gateway {
    /// Writes `portcullis.toml`, the policies and the state dir, spawns
    /// `portcullis serve --config <file>`, reads the `listening` line and waits for `/readyz`.
    pub async fn start(builder: GatewayBuilder) -> Result<Gateway> {
        let bin = gateway_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-gw-")
            .tempdir()
            .context("cannot create temp dir")?;
        let state_dir = dir.path().join("data");
        let policies_dir = dir.path().join("policies");
        std::fs::create_dir_all(&state_dir).context("cannot create state dir")?;
        std::fs::create_dir_all(&policies_dir).context("cannot create policies dir")?;
        let default_policy = [("default.cedar".to_string(), DEFAULT_POLICY.to_string())];
        let policies = if builder.policies.is_empty() {
            &default_policy[..]
        } else {
            &builder.policies[..]
        };
        for (name, text) in policies {
            std::fs::write(policies_dir.join(name), text)
                .with_context(|| format!("cannot write policy {name}"))?;
        }
        let config_path = dir.path().join("portcullis.toml");
        std::fs::write(&config_path, builder.render(&state_dir, &policies_dir))
            .context("cannot write portcullis.toml")?;
        let mut gw = Gateway {
            proc: None,
            url: String::new(),
            postgres: None,
            bin,
            config_path,
            state_dir,
            env: builder.env,
            runs: 0,
            dir,
        };
        gw.spawn().await?;
        Ok(gw)
    }

    async fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env_remove("PORTCULLIS_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if std::env::var_os("RUST_LOG").is_none() && !self.env.iter().any(|(k, _)| k == "RUST_LOG")
        {
            cmd.env("RUST_LOG", "info");
        }
        let name = format!("gateway-{}", self.runs);
        let mut proc = Managed::spawn(&name, cmd, self.dir.path(), false, Some(self.dir.path()))?;
        let (api, postgres) = proc.wait_line(Duration::from_secs(60), |line| {
            let v: Value = serde_json::from_str(line).ok()?;
            if v.get("event")?.as_str()? != "listening" {
                return None;
            }
            let api = v.get("api")?.as_str()?.trim_end_matches('/').to_string();
            let pg = v
                .get("postgres")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            Some((api, pg))
        })?;
        self.url = api;
        self.postgres = postgres;
        self.proc = Some(proc);
        self.wait_ready(Duration::from_secs(60)).await
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let url = format!("{}/readyz", self.url);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            match http::get(&url, None).await {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = r.summary(),
                Err(e) => last = format!("{e:#}"),
            }
            if let Some(p) = self.proc.as_mut()
                && let Some(status) = p.try_status()
            {
                bail!(
                    "gateway exited ({status}) before /readyz answered 200\n{}",
                    p.logs_tail()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "GET {url} not 200 within {timeout:?}; last: {last}\n{}",
                    self.logs_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT` (the API listener; changes on restart).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PostgreSQL door's address (changes on restart), when enabled.
    pub fn postgres_addr(&self) -> Option<std::net::SocketAddr> {
        self.postgres
    }

    /// A client connection to connection `name` through the PostgreSQL door, with `token`
    /// as the password (`sslmode=disable`: loopback plaintext is allowed by default).
    pub fn pg_conn(&self, name: &str, token: &str) -> Result<crate::clients::PgConn> {
        let addr = self
            .postgres
            .ok_or_else(|| anyhow!("the PostgreSQL door is not enabled"))?;
        Ok(
            crate::clients::PgConn::new(addr.ip().to_string(), addr.port(), name, "agent")
                .password(token),
        )
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The temp dir holding config, policies, state and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary in use.
    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Managed::pid)
    }

    /// A `Command` for the same binary with this gateway's config: `portcullis <args>
    /// --config <file>`.
    pub fn cli_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env_remove("PORTCULLIS_CONFIG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary with `args` and this gateway's config; waits for it.
    pub fn cli<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.cli_command(args);
        cmd.output().with_context(|| format!("cannot run {cmd:?}"))
    }

    /// `GET {url}{path}` with an optional bearer token.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Result<Reply> {
        http::get(&format!("{}{}", self.url, path), bearer).await
    }

    /// `GET /v1/whoami` with `Authorization: Bearer <token>`.
    pub async fn whoami(&self, token: &str) -> Result<Reply> {
        self.get("/v1/whoami", Some(token)).await
    }

    /// `portcullis token mint --subject S --groups a,b --ttl T`: the minted token.
    pub fn mint(&self, subject: &str, groups: &[&str], ttl: &str) -> Result<String> {
        let mut args = vec!["token", "mint", "--subject", subject, "--ttl", ttl];
        let joined = groups.join(",");
        if !groups.is_empty() {
            args.extend(["--groups", joined.as_str()]);
        }
        let out = self.cli(&args)?;
        if !out.status.success() {
            bail!(
                "token mint failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .map(str::trim)
            .rfind(|l| l.split('.').count() == 3 && !l.contains(' '))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("token mint printed no token: {text}"))
    }

    /// SIGKILL, no grace.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        self.proc.as_mut().and_then(Managed::kill9)
    }

    /// SIGTERM (with the `kill` command); SIGKILL after 20 s. Returns the exit status, or an
    /// error if the gateway ignored SIGTERM for 20 s.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let proc = self
            .proc
            .as_mut()
            .ok_or_else(|| anyhow!("gateway not running"))?;
        let (status, graceful) = proc.terminate(Duration::from_secs(20))?;
        if !graceful {
            bail!(
                "gateway ignored SIGTERM for 20 s (killed)\n{}",
                proc.logs_tail()
            );
        }
        Ok(status)
    }

    /// Starts the gateway again with the same config and state (SIGTERM first if it is still
    /// running). The URL changes (the listener binds port 0).
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(p) = self.proc.as_mut()
            && p.try_status().is_none()
        {
            let _ = p.terminate(Duration::from_secs(20));
        }
        self.proc = None;
        self.spawn().await
    }

    /// Everything the current run has written to stdout and stderr (stderr holds the logs).
    pub fn output(&self) -> String {
        let read = |stream: &str| {
            let file = format!("gateway-{}.{stream}.log", self.runs);
            std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
        };
        format!("{}{}", read("stdout"), read("stderr"))
    }

    /// The stdout/stderr tails of the current run.
    pub fn logs_tail(&self) -> String {
        self.proc
            .as_ref()
            .map(Managed::logs_tail)
            .unwrap_or_else(|| "(gateway not running)".into())
    }
}
