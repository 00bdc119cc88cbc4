//! Masking through the PostgreSQL door with real clients: psql (text, simple protocol and
//! `\copy`), psycopg (text and binary, extended protocol) and asyncpg (binary, prepared).
//! The quickstart `agents-read` policy asks for the `default` profile; values leave masked,
//! every client still decodes every column, and the audit counts what was masked.

use anyhow::Result;
use portcullis_integration_tests::clients;
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

/// Raw values that must never reach a masked client.
const RAW: &[&str] = &[
    "alice.martin@example.com",
    "4111111111111111",
    "ada@example.com",
    "hunter2-correct-horse",
    "078-05-1120",
    "grace@example.org",
];

const SETUP: &str = r#"
CREATE TABLE vault (
    id int PRIMARY KEY,
    owner varchar(60),
    card numeric(20,0),
    pin int,
    password text,
    doc jsonb,
    info json,
    aliases text[],
    note text
);
ALTER TABLE vault OWNER TO app;
INSERT INTO vault VALUES
 (1, 'ada@example.com', 4111111111111111, 1234, 'hunter2-correct-horse',
  '{"contact": {"email": "ada@example.com"}, "ssn": "078-05-1120", "plan": "gold"}',
  '{"email": "grace@example.org", "n": 7}',
  '{ada@example.com,"plain text"}',
  'call 078-05-1120 about it');
"#;

/// Lets members of `dpo` see raw values on every connection.
const UNMASK: &str = r#"
@id("dpo-unmask")
permit (principal in Group::"dpo", action == Action::"data.unmask", resource is Connection);
"#;

async fn setup() -> Result<(PgServer, Gateway)> {
    let pg = PgServer::start().await?;
    pg.superuser_sql("appdb", SETUP).await?;
    let gw = GatewayBuilder::new()
        .quickstart_policies()?
        .policy("unmask.cedar", UNMASK)
        .pg_connection("appdb", &pg, &[("environment", "dev")])
        .start()
        .await?;
    Ok((pg, gw))
}

fn assert_clean(what: &str, text: &str) {
    for raw in RAW {
        assert!(!text.contains(raw), "{what} leaked {raw}: {text}");
    }
}

const QUERY: &str = "SELECT id, owner, card, pin, password, doc, info, aliases, note FROM vault";

#[tokio::test]
async fn psql_sees_masked_rows_and_masked_copy() -> Result<()> {
    let (_pg, gw) = setup().await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let out = clients::psql(&conn, &["-At", "-F", "|", "-c", QUERY], None).await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let text = clients::stdout(&out);
    assert_clean("psql", &text);
    let cols: Vec<&str> = text.trim().split('|').collect();
    assert_eq!(cols[0], "1");
    assert_eq!(cols[1], "[EMAIL]", "{text}");
    assert_eq!(
        cols[2], "",
        "a card number in a numeric column becomes NULL: {text}"
    );
    assert_eq!(cols[3], "1234", "an innocent integer passes: {text}");
    assert!(
        cols[4].starts_with('['),
        "the password column is masked whole: {text}"
    );
    let doc: Value = serde_json::from_str(cols[5])?;
    assert_eq!(doc["plan"], "gold", "{doc}");
    assert_eq!(doc["contact"]["email"], "[EMAIL]", "{doc}");
    let _: Value = serde_json::from_str(cols[6])?;
    assert_eq!(cols[7], r#"{"[EMAIL]","plain text"}"#, "{text}");
    assert_eq!(cols[8], "call [US_SSN] about it", "{text}");

    // psql's \copy runs COPY ... TO STDOUT through the door: masked row by row.
    let out = clients::psql(
        &conn,
        &[
            "-c",
            r"\copy (SELECT id, email, phone FROM customers ORDER BY id) TO STDOUT",
        ],
        None,
    )
    .await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let copied = clients::stdout(&out);
    assert_eq!(copied.lines().count(), 20, "{copied}");
    let emails = copied.matches("[EMAIL]").count();
    assert!(emails >= 18, "{copied}");
    assert!(
        copied
            .lines()
            .all(|l| l.contains("[EMAIL]") || l.contains("\\N")),
        "{copied}"
    );
    assert_clean("\\copy", &copied);

    // \copy FROM STDIN is a write, allowed on a dev connection.
    let out = clients::psql(
        &conn,
        &[
            "-c",
            r"\copy orders (customer_id, amount, status) FROM STDIN",
        ],
        Some("1\t99\tnew\n2\t98\tnew\n"),
    )
    .await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    assert!(
        clients::stdout(&out).contains("COPY 2"),
        "{}",
        clients::describe(&out)
    );

    // The audit counts masked values by entity, never the values.
    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    assert_clean("the audit", &export);
    let masked: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["event"].clone())
        .filter(|e| e["kind"] == "statement.result" && !e["data"]["masked"].is_null())
        .collect();
    let vault = masked
        .iter()
        .find(|e| e["data"]["masked"]["CREDIT_CARD"] == 1)
        .unwrap_or_else(|| panic!("no masked count for the vault query: {masked:#?}"));
    assert!(
        vault["data"]["masked"]["EMAIL"].as_u64().unwrap_or(0) >= 3,
        "{vault}"
    );
    assert!(
        masked
            .iter()
            .any(|e| e["data"]["masked"]["EMAIL"] == emails),
        "the \\copy counts its {emails} e-mail addresses: {masked:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn psycopg_text_and_binary_decode_masked_values() -> Result<()> {
    let (_pg, gw) = setup().await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let spec = json!({"statements": [
        {"sql": format!("{QUERY} WHERE id = %s"), "params": [1]},
        {"sql": format!("{QUERY} WHERE id = %s"), "params": [1], "binary": true},
        {"sql": "SELECT email, phone, tags, profile FROM customers WHERE id = %s", "params": [1], "binary": true}
    ]});
    let r = clients::psycopg_run(&conn, &spec).await?;
    assert_clean("psycopg", &r.to_string());
    for (i, res) in r["results"].as_array().expect("results").iter().enumerate() {
        assert_eq!(res["ok"], true, "statement {i}: {r}");
    }
    for i in [0, 1] {
        let row = &r["results"][i]["rows"][0];
        assert_eq!(row[1], "[EMAIL]", "{row}");
        assert_eq!(row[2], Value::Null, "{row}");
        assert_eq!(row[3], 1234, "{row}");
        assert_eq!(row[5]["contact"]["email"], "[EMAIL]", "{row}");
        assert_eq!(row[7], json!(["[EMAIL]", "plain text"]), "{row}");
    }
    let customer = &r["results"][2]["rows"][0];
    assert_eq!(customer[0], "[EMAIL]", "{customer}");
    assert_eq!(customer[1], "[PHONE]", "{customer}");
    Ok(())
}

#[tokio::test]
async fn asyncpg_binary_prepared_statements_are_masked() -> Result<()> {
    let (_pg, gw) = setup().await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let q = format!("{QUERY} WHERE id = $1");
    let spec = json!({"statements": [
        {"sql": q, "params": [1]},
        {"sql": q, "params": [1]},
        {"sql": "SELECT id, email, balance FROM customers WHERE id <= $1 ORDER BY id", "params": [3]}
    ]});
    let r = clients::asyncpg_run(&conn, &spec).await?;
    assert_clean("asyncpg", &r.to_string());
    for i in [0, 1] {
        let res = &r["results"][i];
        assert_eq!(res["ok"], true, "{r}");
        let row = &res["rows"][0];
        assert_eq!(row[1], "[EMAIL]", "{row}");
        assert_eq!(row[2], Value::Null, "{row}");
        assert_eq!(row[3], 1234, "{row}");
        let doc: Value = serde_json::from_str(row[5].as_str().unwrap_or("null"))?;
        assert_eq!(doc["contact"]["email"], "[EMAIL]", "{row}");
        assert_eq!(row[7], json!(["[EMAIL]", "plain text"]), "{row}");
    }
    let rows = r["results"][2]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|row| row[1] == "[EMAIL]"), "{rows:?}");
    Ok(())
}

#[tokio::test]
async fn data_unmask_is_the_only_way_to_raw_values() -> Result<()> {
    let (_pg, gw) = setup().await?;
    let token = gw.mint("privacy-officer", &["agents", "dpo"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let out = clients::psql(&conn, &["-At", "-c", "SELECT owner, card FROM vault"], None).await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    assert_eq!(
        clients::stdout(&out).trim(),
        "ada@example.com|4111111111111111"
    );
    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    assert!(
        export
            .lines()
            .any(|l| l.contains("\"data.unmask\"") && l.contains("\"allow\"")),
        "the unmask decision is audited"
    );
    Ok(())
}

/// Reads masked with deterministic tokens: the same value gives the same token (joins and
/// counts still work), different values differ, and the key never leaves the gateway.
#[tokio::test]
async fn hmac_tokens_are_deterministic_under_the_deployment_key() -> Result<()> {
    const KEY: &str = "k3y-for-masking-tokens-0123456789";
    let pg = PgServer::start().await?;
    pg.superuser_sql("appdb", SETUP).await?;
    let policies = r#"
@id("connect") permit (principal in Group::"agents", action == Action::"connect", resource);
@id("read-tokens") @mask("tokens")
permit (principal in Group::"agents", action in Action::"sql.read", resource);
"#;
    let gw = GatewayBuilder::new()
        .policy("agents.cedar", policies)
        .pg_connection("appdb", &pg, &[])
        .extra_toml(
            "[masking]\nhmac_key = { env = \"MASKING_KEY\" }\n\
             [masking.profiles.tokens]\nstrategy = \"hmac\"\n",
        )
        .env("MASKING_KEY", KEY)
        .start()
        .await?;
    let token = gw.mint("autogen-analyst", &["agents"], "15m")?;
    let conn = gw.pg_conn("appdb", &token)?;
    let sql = "SELECT owner, doc->'contact'->>'email', info->>'email' FROM vault";
    let out = clients::psql(&conn, &["-At", "-c", sql], None).await?;
    assert!(out.status.success(), "{}", clients::describe(&out));
    let text = clients::stdout(&out);
    assert_clean("hmac tokens", &text);
    let cols: Vec<&str> = text.trim().split('|').collect();
    assert!(
        cols[0].starts_with("[EMAIL:") && cols[0].len() == "[EMAIL:]".len() + 16,
        "{text}"
    );
    assert_eq!(
        cols[0], cols[1],
        "the same address gives the same token: {text}"
    );
    assert_ne!(
        cols[0], cols[2],
        "a different address gives another token: {text}"
    );
    let export = clients::stdout(&gw.cli(["audit", "export", "--format", "jsonl"])?);
    assert!(!export.contains(KEY) && !gw.logs_tail().contains(KEY));
    Ok(())
}
