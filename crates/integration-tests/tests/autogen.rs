//! Real AutoGen through the real gateway: `clients/python`'s pytest suite runs an
//! `AssistantAgent` (scripted by `ReplayChatCompletionClient`) against this gateway, with
//! tokens from the real `oidc-provider` (client credentials) and a real PostgreSQL behind
//! the door. This test is the human in the loop: it approves the agent's held UPDATE
//! through the CLI while the agent waits in `wait_for_review`. Afterwards it checks the
//! audit (each tool call's run and tool-call ids) and that the upstream password appears
//! nowhere the agent could see (the transcript pytest writes: tool results, errors,
//! its environment).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{GatewayBuilder, Idp, clients, http, idp, repo_root};
use serde_json::{Value, json};

/// The run id the pytest suite gives its agent runs (a prefix; each test adds its own).
const RUN_PREFIX: &str = "autogen-e2e";

#[tokio::test]
async fn an_autogen_agent_works_through_the_gateway() -> Result<()> {
    let pg = PgServer::start().await?;
    let idp = Idp::start().await?;
    let gw = GatewayBuilder::new()
        .issuer(idp.issuer())
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .pg_connection("billing", &pg, &[("environment", "prod")])
        .start()
        .await?;
    let token_url = idp.discovery().await?["token_endpoint"]
        .as_str()
        .context("token endpoint")?
        .to_owned();
    let dba = gw.mint("dana", &["dba"], "15m")?;

    let root = repo_root();
    let work = tempfile::tempdir()?;
    let transcript = work.path().join("transcript.jsonl");
    let python = root.join(".venv/bin/python");
    let mut pytest = tokio::process::Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(root.join("clients/python/tests"))
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .env("PORTCULLIS_URL", gw.url())
        .env("PORTCULLIS_TOKEN_URL", &token_url)
        .env("PORTCULLIS_CLIENT_ID", "agent-1")
        .env("PORTCULLIS_CLIENT_SECRET", idp::CLIENT_SECRET)
        .env("PORTCULLIS_RUN_PREFIX", RUN_PREFIX)
        .env("PORTCULLIS_TRANSCRIPT", &transcript)
        // The end-to-end tests fail rather than skip when something above is missing.
        .env("PORTCULLIS_E2E_REQUIRED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = pytest.spawn().with_context(|| {
        format!(
            "cannot run {} (scripts/setup-test-deps.sh)",
            python.display()
        )
    })?;
    let run = tokio::spawn(child.wait_with_output());

    // The human in the loop: approve the agent's held UPDATE once it shows up.
    let approved = approve_when_pending(&gw, &dba, &run).await?;
    let out = run.await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "pytest failed ({}):\n{stdout}\n{stderr}\ngateway log:\n{}",
            out.status,
            gw.logs_tail()
        );
    }
    assert!(approved.is_some(), "the agent never asked for approval");

    // Everything the agent saw, and none of it carries the upstream password.
    let seen = std::fs::read_to_string(&transcript).context("pytest wrote no transcript")?;
    assert!(seen.contains("[EMAIL]"), "transcript lacks the masked rows");
    assert!(
        seen.contains("policy_forbid"),
        "transcript lacks the denial"
    );
    assert!(
        !seen.contains(pg.app_password()),
        "the upstream password reached the agent"
    );
    assert!(!stdout.contains(pg.app_password()) && !stderr.contains(pg.app_password()));

    // Each tool call left its run id and tool-call id on the audit events it caused.
    let export = String::from_utf8(gw.cli(["audit", "export", "--format", "jsonl"])?.stdout)?;
    let events: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["event"].clone())
        .filter(|e| {
            e["run_id"]
                .as_str()
                .is_some_and(|r| r.starts_with(RUN_PREFIX))
        })
        .collect();
    let decision = |action: &str, outcome: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "decision" && e["action"] == action && e["outcome"] == outcome)
    };
    for (action, outcome) in [
        ("sql.select", "allow"),
        ("sql.delete", "deny"),
        ("sql.update", "approval_required"),
    ] {
        let e = decision(action, outcome)
            .with_context(|| format!("no {action} {outcome} decision with a run id"))?;
        assert!(
            e["tool_call_id"].as_str().is_some_and(|t| !t.is_empty()),
            "{e}"
        );
        assert_eq!(e["who"]["subject"], "agent-1", "{e}");
    }
    let review_id = approved.unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "review.requested" && e["data"]["review_id"] == review_id),
        "review.requested lacks the run id: {}",
        json!(events)
    );
    assert!(!export.contains(pg.app_password()));
    Ok(())
}

/// Polls the pending reviews as the DBA; approves the first through the CLI. `None` when
/// pytest ends first.
async fn approve_when_pending(
    gw: &portcullis_integration_tests::Gateway,
    dba: &str,
    run: &tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
) -> Result<Option<String>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline && !run.is_finished() {
        let reply = http::get(
            &format!("{}/v1/reviews?status=pending", gw.url()),
            Some(dba),
        )
        .await?;
        let id = reply
            .json()
            .ok()
            .and_then(|v| v["reviews"][0]["id"].as_str().map(str::to_owned));
        if let Some(id) = id {
            // Let the agent reach wait_for_review before the verdict lands.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let out = gw.cli([
                "reviews",
                "approve",
                &id,
                "--token",
                dba,
                "--comment",
                "refund ok",
                "--url",
                gw.url(),
            ])?;
            if !out.status.success() {
                bail!("approve failed: {}", clients::describe(&out));
            }
            return Ok(Some(id));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(None)
}
