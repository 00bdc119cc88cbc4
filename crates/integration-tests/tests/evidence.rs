//! Audit evidence from a real run: `audit export` as JSONL and OCSF (every line parses and
//! carries OCSF's required fields), and `audit report` as Markdown and as self-contained
//! HTML opened in headless Chromium (Debian's, driven by playwright-core), whose screenshot is
//! kept as a test artifact in `target/test-artifacts/`.

use anyhow::{Context, Result};
use portcullis_integration_tests::clients;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{GatewayBuilder, repo_root};
use serde_json::Value;

#[tokio::test]
async fn exports_parse_and_the_html_report_renders_in_chromium() -> Result<()> {
    let pg = PgServer::start().await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .start()
        .await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let script = "SELECT email FROM customers LIMIT 2;\nDELETE FROM orders;\n\
                  UPDATE orders SET status = 'x' WHERE id = 1;\n";
    clients::psql(&conn, &["-X", "-f", "-"], Some(script)).await?;
    let _ = gw.whoami("not-a-token").await?;

    let jsonl = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    let records: Vec<Value> = jsonl
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("every JSONL line parses")?;
    assert!(records.len() >= 8, "{}", records.len());

    let ocsf = clients::stdout(&gw.cli(["audit", "export", "--format", "ocsf"])?);
    let events: Vec<Value> = ocsf
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("every OCSF line parses")?;
    assert_eq!(events.len(), records.len());
    for e in &events {
        for field in [
            "class_uid",
            "category_uid",
            "activity_id",
            "type_uid",
            "time",
            "severity_id",
            "metadata",
        ] {
            assert!(!e[field].is_null(), "{field} missing: {e}");
        }
        assert_eq!(e["metadata"]["product"]["name"], "Portcullis");
        let class = e["class_uid"].as_i64().unwrap_or_default();
        assert_eq!(
            e["type_uid"].as_i64(),
            Some(class * 100 + e["activity_id"].as_i64().unwrap_or_default())
        );
    }
    let classes: Vec<i64> = events
        .iter()
        .filter_map(|e| e["class_uid"].as_i64())
        .collect();
    assert!(
        classes.contains(&6005),
        "SQL as Datastore Activity: {classes:?}"
    );
    assert!(
        classes.contains(&3002),
        "the rejected token as Authentication: {classes:?}"
    );

    let md = clients::stdout(&gw.cli(["audit", "report", "--format", "md", "--since", "1h"])?);
    assert!(
        md.contains("autogen-analyst") && md.contains("EMAIL"),
        "{md}"
    );

    let artifacts = repo_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let html = artifacts.join("evidence-report.html");
    let png = artifacts.join("evidence-report.png");
    let out = gw.cli([
        "audit",
        "report",
        "--format",
        "html",
        "--since",
        "1h",
        "-o",
        &html.to_string_lossy(),
    ])?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let page = std::fs::read_to_string(&html)?;
    // Self-contained: nothing is loaded from anywhere (issuer URLs appear only as text).
    for asset in ["src=", "href=", "url(", "<script", "<link"] {
        assert!(!page.contains(asset), "{asset} in the report");
    }
    assert!(page.contains("<svg"));

    let script = repo_root()
        .join("tests")
        .join("browser")
        .join("screenshot.mjs");
    let shot = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&html)
        .arg(&png)
        .output()
        .await
        .context("node")?;
    let said = String::from_utf8_lossy(&shot.stdout);
    assert!(
        shot.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let result: Value = serde_json::from_str(said.lines().last().unwrap_or("{}"))?;
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["tables"].as_u64().unwrap_or(0) >= 3, "{result}");
    assert!(std::fs::metadata(&png)?.len() > 10_000, "a real screenshot");
    Ok(())
}
