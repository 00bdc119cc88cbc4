//! A real OpenID provider: `node tests/idp/server.mjs` (oidc-provider).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::http;
use crate::proc::Managed;

/// The client secret of `agent-1` and `agent-2`.
pub const CLIENT_SECRET: &str = "portcullis-test-secret-0123456789";

/// Serializes `npm ci` between tests of one process.
static NPM_LOCK: Mutex<()> = Mutex::new(());

/// A running oidc-provider. Killed on drop.
#[derive(Debug)]
pub struct Idp {
    issuer: String,
    proc: Managed,
    logs: TempDir,
}

impl Idp {
    /// The folder of the Node project.
    pub fn project_dir() -> PathBuf {
        crate::repo_root().join("tests").join("idp")
    }

    /// Installs the Node dependencies if missing, spawns the provider and waits until its
    /// discovery document answers.
    pub async fn start() -> Result<Idp> {
        let dir = Self::project_dir();
        ensure_node_modules(&dir)?;
        let logs = tempfile::Builder::new()
            .prefix("portcullis-idp-")
            .tempdir()
            .context("cannot create temp dir")?;
        let mut cmd = Command::new("node");
        cmd.arg("server.mjs")
            .current_dir(&dir)
            .env("IDP_CLIENT_SECRET", CLIENT_SECRET)
            .env("IDP_HOST", "127.0.0.1");
        let mut proc = Managed::spawn("idp", cmd, logs.path(), true, Some(logs.path()))
            .context("cannot start the test IdP (is `node` on PATH?)")?;
        let issuer = proc.wait_line(Duration::from_secs(30), |line| {
            let v: Value = serde_json::from_str(line).ok()?;
            v.get("issuer")?.as_str().map(str::to_string)
        })?;
        let idp = Idp { issuer, proc, logs };
        let discovery = format!("{}/.well-known/openid-configuration", idp.issuer);
        http::wait_status(&discovery, 200, Duration::from_secs(20))
            .await
            .with_context(|| idp.proc.logs_tail())?;
        Ok(idp)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The folder holding this provider's logs.
    pub fn log_dir(&self) -> &Path {
        self.logs.path()
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Result<Value> {
        let r = http::get(
            &format!("{}/.well-known/openid-configuration", self.issuer),
            None,
        )
        .await?;
        if r.status != 200 {
            bail!("discovery failed: {}", r.summary());
        }
        r.json()
    }

    /// Runs the real client-credentials grant against the token endpoint from discovery
    /// (form-encoded, HTTP basic client authentication) and returns the access token.
    pub async fn client_credentials(&self, client_id: &str, secret: &str) -> Result<String> {
        let discovery = self.discovery().await?;
        let endpoint = discovery
            .get("token_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("discovery has no token_endpoint: {discovery}"))?;
        let r = http::post_form(
            endpoint,
            &[("grant_type", "client_credentials")],
            Some((client_id, secret)),
        )
        .await?;
        if r.status != 200 {
            bail!("token endpoint refused {client_id}: {}", r.summary());
        }
        let v = r.json()?;
        v.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("token response has no access_token: {v}"))
    }

    /// Signs `claims` with `key` (`"rs"`, `"es"`, `"old-rs"`, `"old-es"`). `header` is merged
    /// over the defaults `{alg, kid, typ: "JWT"}` (a `null` value removes a default);
    /// `alg: "none"` gives an unsigned token, an `HS*` alg an HMAC keyed with the key's public
    /// PEM (algorithm confusion).
    pub async fn sign(&self, header: Value, claims: Value, key: &str) -> Result<String> {
        let r = http::post_json(
            &format!("{}/_test/sign", self.issuer),
            &json!({ "header": header, "claims": claims, "key": key }),
        )
        .await?;
        if r.status != 200 {
            bail!("/_test/sign failed: {}", r.summary());
        }
        let v = r.json()?;
        v.get("token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("/_test/sign answered no token: {v}"))
    }

    /// Replaces the signing keys (the rotated-out keys stay available as `old-rs`/`old-es`).
    /// Returns `{"kids":[...],"old_kids":[...]}`.
    pub async fn rotate(&self) -> Result<Value> {
        let r = http::post_json(&format!("{}/_test/rotate", self.issuer), &json!({})).await?;
        if r.status != 200 {
            bail!("/_test/rotate failed: {}", r.summary());
        }
        r.json()
    }

    /// The current public keys: `{"keys":[JWK...],"pem":{"rs":"...","es":"..."}}`.
    pub async fn public_jwks(&self) -> Result<Value> {
        let r = http::get(&format!("{}/_test/public", self.issuer), None).await?;
        if r.status != 200 {
            bail!("/_test/public failed: {}", r.summary());
        }
        r.json()
    }

    /// The kid of the current key `"rs"` or `"es"`.
    pub async fn kid(&self, key: &str) -> Result<String> {
        let alg = match key {
            "rs" => "RS256",
            "es" => "ES256",
            other => bail!("no current key {other}"),
        };
        let jwks = self.public_jwks().await?;
        jwks.get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|k| k.get("alg").and_then(Value::as_str) == Some(alg))
            .and_then(|k| k.get("kid"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no {alg} key in {jwks}"))
    }

    /// The provider's stdout and stderr tails.
    pub fn logs_tail(&self) -> String {
        self.proc.logs_tail()
    }

    /// Kills the provider (SIGKILL). Its port stops answering.
    pub fn kill(&mut self) {
        self.proc.kill9();
    }
}

/// Runs `npm ci` in `dir` when `node_modules` is missing.
fn ensure_node_modules(dir: &Path) -> Result<()> {
    let _guard = NPM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("node_modules").join("oidc-provider").is_dir()
        && dir.join("node_modules").join("jose").is_dir()
    {
        return Ok(());
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `npm ci` in {}", dir.display()))?;
    if !out.status.success() {
        bail!(
            "`npm ci` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
