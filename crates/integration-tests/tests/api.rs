//! The API door end to end against the real binary: admin endpoints decided by policy,
//! revocation effective at once and persisted, policy reload (API and SIGHUP, good and bad),
//! problem+json everywhere, metrics and OpenAPI, and no secret in any output.

use std::time::Duration;

use anyhow::Result;
use portcullis_integration_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

const POLICY: &str = r#"
@id("admins") permit (principal in Group::"admins", action in Action::"admin", resource == Gateway::"self");
@id("agents-read") permit (principal in Group::"agents", action in Action::"sql.read", resource is Connection);
"#;

async fn post(gw: &Gateway, path: &str, token: &str, body: Value) -> Result<(u16, Value)> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let v: Value = resp.json().await?;
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{v}");
        assert!(v["code"].is_string() && v["hint"].is_string(), "{v}");
    }
    Ok((status, v))
}

fn export(gw: &Gateway) -> Result<Vec<Value>> {
    let out = gw.cli(["audit", "export", "--format", "jsonl"])?;
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[tokio::test]
async fn revocation_is_decided_by_policy_effective_at_once_and_persisted() -> Result<()> {
    let mut gw = GatewayBuilder::new().policy("p", POLICY).start().await?;
    let admin = gw.mint("alice", &["admins"], "10m")?;
    let agent = gw.mint("agent-7", &["agents"], "10m")?;
    assert_eq!(gw.whoami(&agent).await?.status, 200);

    // An agent may not revoke: default deny, as a problem with the policy's words.
    let (st, body) = post(
        &gw,
        "/v1/revocations",
        &agent,
        json!({"kind": "subject", "value": "alice"}),
    )
    .await?;
    assert_eq!(
        (st, body["code"].as_str()),
        (403, Some("policy_default_deny")),
        "{body}"
    );

    let (st, body) = post(
        &gw,
        "/v1/revocations",
        &admin,
        json!({"kind": "subject", "value": "agent-7", "reason": "leaked"}),
    )
    .await?;
    assert_eq!(st, 201, "{body}");
    // The same token was cached as valid a moment ago; revocation wins at once.
    let r = gw.whoami(&agent).await?;
    assert_eq!(
        (r.status, r.problem_code().as_deref()),
        (401, Some("revoked_subject")),
        "{}",
        r.summary()
    );

    let (st, body) = post(
        &gw,
        "/v1/revocations",
        &admin,
        json!({"kind": "planet", "value": "x"}),
    )
    .await?;
    assert_eq!(
        (st, body["code"].as_str()),
        (400, Some("body_invalid")),
        "{body}"
    );

    gw.restart().await?;
    let r = gw.whoami(&agent).await?;
    assert_eq!(
        r.problem_code().as_deref(),
        Some("revoked_subject"),
        "not persisted: {}",
        r.summary()
    );
    let listed = gw.get("/v1/revocations", Some(&admin)).await?.json()?;
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.contains(&json!({"kind": "subject", "value": "agent-7"}))),
        "{listed}"
    );

    let events = export(&gw)?;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"]["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"revocation"), "{kinds:?}");
    let denied = events.iter().any(|e| {
        e["event"]["kind"] == "decision"
            && e["event"]["action"] == "admin.revoke"
            && e["event"]["outcome"] == "deny"
            && e["event"]["who"]["subject"] == "agent-7"
    });
    assert!(denied, "the denied admin call left no decision event");
    Ok(())
}

#[tokio::test]
async fn reload_keeps_old_policies_on_error_and_applies_good_ones() -> Result<()> {
    let gw = GatewayBuilder::new().policy("p", POLICY).start().await?;
    let admin = gw.mint("alice", &["admins"], "10m")?;
    let policies = |r: Value| r["policies"].as_u64();
    assert_eq!(policies(gw.get("/readyz", None).await?.json()?), Some(2));

    let bad = gw.dir().join("policies/bad.cedar");
    std::fs::write(
        &bad,
        "@id(\"typo\")\npermit (principal, action == Action::\"sql.selectt\", resource);\n",
    )?;
    let (st, body) = post(&gw, "/v1/admin/reload", &admin, json!({})).await?;
    assert_eq!(
        (st, body["code"].as_str()),
        (422, Some("reload_failed")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("bad.cedar:2"),
        "{body}"
    );
    // The old set is still in force: the admin can still call admin endpoints.
    assert_eq!(gw.get("/v1/revocations", Some(&admin)).await?.status, 200);
    assert_eq!(policies(gw.get("/readyz", None).await?.json()?), Some(2));

    std::fs::write(
        &bad,
        "@id(\"extra\")\npermit (principal in Group::\"ops\", action == Action::\"sql.select\", resource);\n",
    )?;
    let (st, body) = post(&gw, "/v1/admin/reload", &admin, json!({})).await?;
    assert_eq!((st, body["policies"].as_u64()), (200, Some(3)), "{body}");

    // SIGHUP reloads too.
    std::fs::write(
        gw.dir().join("policies/more.cedar"),
        "@id(\"more\")\nforbid (principal, action == Action::\"sql.delete\", resource);\n",
    )?;
    let pid = gw.pid().expect("running");
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()?
            .success()
    );
    let mut n = None;
    for _ in 0..50 {
        n = policies(gw.get("/readyz", None).await?.json()?);
        if n == Some(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, Some(4), "SIGHUP did not reload");
    let reloads = export(&gw)?
        .into_iter()
        .filter(|e| e["event"]["kind"] == "config.reload")
        .map(|e| {
            e["event"]["outcome"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect::<Vec<_>>();
    assert_eq!(reloads, ["error", "ok", "ok"]);
    Ok(())
}

#[tokio::test]
async fn problems_metrics_openapi_and_health() -> Result<()> {
    let gw = GatewayBuilder::new().policy("p", POLICY).start().await?;
    assert_eq!(gw.get("/healthz", None).await?.status, 200);
    let r = gw.get("/v1/whoami", None).await?;
    assert_eq!(
        (r.status, r.problem_code().as_deref()),
        (401, Some("token_missing"))
    );
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    let r = gw.get("/v1/nope", None).await?;
    assert_eq!(
        (r.status, r.problem_code().as_deref()),
        (404, Some("not_found"))
    );

    let spec = gw.get("/v1/openapi.json", None).await?.json()?;
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/whoami"]["get"].is_object());

    let agent = gw.mint("agent-metrics", &["agents"], "10m")?;
    gw.whoami(&agent).await?;
    gw.whoami("a.b.c").await?;
    let m = gw.get("/metrics", None).await?.body;
    assert!(
        m.contains("portcullis_token_validations_total{result=\"ok\",reason=\"valid\"} 1"),
        "{m}"
    );
    assert!(m.contains("reason=\"token_malformed\""), "{m}");
    assert!(
        !m.contains("agent-metrics") && !m.contains(&agent),
        "metrics leak identities: {m}"
    );
    Ok(())
}

#[tokio::test]
async fn secrets_never_reach_logs_audit_metrics_or_errors() -> Result<()> {
    let secret = "pw-7f3a9c1e-never-print-me";
    let gw = GatewayBuilder::new()
        .policy("p", POLICY)
        .env("TEST_DB_PASSWORD", secret)
        .extra_toml(
            "[[connections]]\nname = \"db\"\nkind = \"postgres\"\nupstream = \"127.0.0.1:5432\"\ndatabase = \"test\"\nuser = \"postgres\"\npassword = { env = \"TEST_DB_PASSWORD\" }\n",
        )
        .start()
        .await?;
    let token = gw.mint("agent-s", &["agents"], "10m")?;
    let tampered = format!("{}x", &token[..token.len() - 1]);
    for t in [&token, &tampered] {
        let r = gw.whoami(t).await?;
        assert!(!r.body.contains(t.as_str()), "a response echoes the token");
    }
    let mut outputs = vec![
        gw.get("/metrics", None).await?.body,
        serde_json::to_string(&export(&gw)?)?,
    ];
    for args in [
        vec!["config", "check"],
        vec!["config", "check", "--output", "json"],
    ] {
        let out = gw.cli(&args)?;
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    for entry in std::fs::read_dir(gw.dir())? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "log") {
            outputs.push(std::fs::read_to_string(&p)?);
        }
    }
    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(secret),
            "output {i} leaks the upstream password"
        );
        assert!(
            !text.contains(&token) && !text.contains(&tampered),
            "output {i} leaks a token"
        );
    }
    Ok(())
}

#[tokio::test]
async fn cli_config_check_and_policy_check() -> Result<()> {
    let gw = GatewayBuilder::new()
        .policy("p", r#"
@id("no-bare-delete") @reason("DELETE without WHERE") @hint("add a WHERE clause")
forbid (principal, action == Action::"sql.delete", resource) when { !context.sql.has_where };
@id("write") permit (principal in Group::"agents", action in Action::"sql.write", resource is Connection);
@id("prod-approval") @approval("dba") @approvals("2")
permit (principal in Group::"agents", action == Action::"sql.update", resource is Connection)
when { resource.hasTag("environment") && resource.getTag("environment") == "prod" };
"#)
        .extra_toml("[[connections]]\nname = \"prod\"\nkind = \"postgres\"\nupstream = \"127.0.0.1:5432\"\ndatabase = \"test\"\nuser = \"postgres\"\nlabels = { environment = \"prod\" }\n")
        .start()
        .await?;
    let check = |action: &str, ctx: &str| -> Result<(i32, Value)> {
        let out = gw.cli([
            "policy",
            "check",
            "--subject",
            "a",
            "--groups",
            "agents",
            "--connection",
            "prod",
            "--action",
            action,
            "--context",
            ctx,
            "--output",
            "json",
        ])?;
        Ok((
            out.status.code().unwrap_or(-1),
            serde_json::from_slice(&out.stdout)?,
        ))
    };
    let (code, d) = check("sql.delete", r#"{"sql":{"has_where":false}}"#)?;
    assert_eq!(
        (code, d["outcome"].as_str(), d["policies"][0].as_str()),
        (3, Some("deny"), Some("no-bare-delete")),
        "{d}"
    );
    assert_eq!(d["hint"], "add a WHERE clause");
    let (code, d) = check("sql.delete", r#"{"sql":{"has_where":true}}"#)?;
    assert_eq!((code, d["outcome"].as_str()), (0, Some("allow")), "{d}");
    let (code, d) = check("sql.update", r#"{"sql":{"has_where":true}}"#)?;
    assert_eq!(
        (code, d["outcome"].as_str(), d["approvals"].as_u64()),
        (4, Some("approval_required"), Some(2)),
        "{d}"
    );

    // A config with an unknown key names file, line and key; --config works after the verb.
    let bad = gw.dir().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:0\"\nstate_dirr = \"x\"\n",
    )?;
    let out = std::process::Command::new(gw.binary())
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml:3:1") && err.contains("state_dirr"),
        "{err}"
    );

    // A policy typo is a problem with file and line, and config check exits non-zero.
    std::fs::write(
        gw.dir().join("policies/typo.cedar"),
        "\n\npermit (principal, action, resource) when { context.sql.has_wher };\n",
    )?;
    let out = gw.cli(["config", "check"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("typo.cedar:3"), "{text}");
    Ok(())
}
