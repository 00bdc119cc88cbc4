//! `portcullis token mint` (offline, with the dev issuer's key) and `portcullis whoami`
//! (asks a running gateway).

use std::process::ExitCode;

use anyhow::{Context, bail};
use portcullis_identity::MintRequest;

use crate::cli::{Global, MintArgs, TokenCmd, WhoamiArgs};
use crate::output::emit;
use crate::runtime;

pub async fn run(g: &Global, cmd: &TokenCmd) -> anyhow::Result<ExitCode> {
    let TokenCmd::Mint(a) = cmd;
    let cfg = runtime::load_config(g.config.as_deref())?;
    let dev = runtime::dev_issuer(&cfg)?.context(
        "the dev issuer is disabled: set `[identity.dev_issuer] enabled = true` in the config",
    )?;
    let max = cfg.identity.dev_issuer.max_ttl;
    if a.ttl > max {
        bail!(
            "--ttl {} is longer than identity.dev_issuer.max_ttl ({})",
            humantime::format_duration(a.ttl),
            humantime::format_duration(max)
        );
    }
    let req = MintRequest {
        subject: a.subject.clone(),
        client_id: a.client_id.clone(),
        groups: a.groups.iter().filter(|g| !g.is_empty()).cloned().collect(),
        audience: a
            .audience
            .clone()
            .unwrap_or_else(|| cfg.identity.dev_issuer.audience.clone()),
        ttl: a.ttl,
        human: a.human,
        actor: a.actor.clone(),
        extra_claims: extra_claims(a)?,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let token = dev.mint(&req, now)?;
    let out = serde_json::json!({
        "token": token,
        "issuer": dev.issuer(),
        "expires_at": now + a.ttl.as_secs() as i64,
    });
    emit(g, &out, |_| token.clone());
    Ok(ExitCode::SUCCESS)
}

fn extra_claims(a: &MintArgs) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for kv in &a.claims {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--claim `{kv}` is not K=V"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

/// The API base URL: `--url`/`PORTCULLIS_URL`, else `http://{server.listen}` from the config.
pub fn api_url(g: &Global) -> anyhow::Result<String> {
    if let Some(u) = &g.url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    let cfg = runtime::load_config(g.config.as_deref())
        .context("no --url or PORTCULLIS_URL, and no config to find the gateway from")?;
    Ok(format!("http://{}", cfg.server.listen))
}

pub async fn whoami(g: &Global, a: &WhoamiArgs) -> anyhow::Result<ExitCode> {
    let url = format!("{}/v1/whoami", api_url(g)?);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&a.token)
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the gateway at {url}: is `portcullis serve` running?")
        })?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .context("the gateway's answer is not JSON")?;
    emit(g, &body, |b| {
        if status.is_success() {
            format!(
                "subject: {}\nissuer: {}\nclient_id: {}\ngroups: {}\nkind: {}\nexpires_at: {}",
                b["subject"].as_str().unwrap_or_default(),
                b["issuer"].as_str().unwrap_or_default(),
                b["client_id"].as_str().unwrap_or("-"),
                b["groups"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                b["kind"].as_str().unwrap_or_default(),
                b["expires_at"]
            )
        } else {
            format!(
                "rejected ({}): {}\nhint: {}",
                b["code"].as_str().unwrap_or("?"),
                b["detail"].as_str().unwrap_or_default(),
                b["hint"].as_str().unwrap_or_default()
            )
        }
    });
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
