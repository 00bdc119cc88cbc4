//! The encoding-switch class of bypasses, through the real PostgreSQL door with a raw client
//! (issue [7], item 1): the door must classify every statement in the client_encoding the
//! server will read it in. Each case sends its messages in ONE TCP write, so nothing the
//! server says between them can reach the door before it has read them all; after every
//! case, the database is fingerprinted and must be unchanged.
//!
//! The classic attack: `SET client_encoding = 'SJIS'` followed by
//! `SELECT E'<0xC4 0x81>\' ; DELETE FROM orders; --'`. In UTF-8 the backslash escapes the
//! quote and the SELECT is one statement; in SJIS the bytes 0x81 0x5C are one character, the
//! quote ends the string and the DELETE is a second statement.

use anyhow::{Context, Result};
use portcullis_integration_tests::postgres::PgServer;
use portcullis_integration_tests::rawpg::{self, Message, RawSession, msg};
use portcullis_integration_tests::{Gateway, GatewayBuilder};

/// The SJIS attack's SELECT: harmless as UTF-8, a DELETE as SJIS.
fn sjis_attack() -> Vec<u8> {
    b"SELECT E'\xc4\x81\\' ; DELETE FROM orders; --'".to_vec()
}

/// Agents read and write (dev); the group "dbas" may also run `sql.admin`.
const DBA_POLICY: &str = r#"
@id("dbas-admin")
permit (principal in Group::"dbas", action, resource is Connection);
"#;

struct Fixture {
    pg: PgServer,
    gw: Gateway,
    agent: String,
    dba: String,
    baseline: String,
}

impl Fixture {
    async fn start() -> Result<Self> {
        let pg = PgServer::builder().log_statements(false).start().await?;
        let gw = GatewayBuilder::new()
            .quickstart_policies()?
            .policy("dbas.cedar", DBA_POLICY)
            .pg_connection("appdb", &pg, &[("environment", "dev")])
            .start()
            .await?;
        let agent = gw.mint("enc-agent", &["agents"], "15m")?;
        let dba = gw.mint("enc-dba", &["agents", "dbas"], "15m")?;
        let baseline = pg.fingerprint("appdb").await?;
        Ok(Self {
            pg,
            gw,
            agent,
            dba,
            baseline,
        })
    }

    async fn session(&self, token: &str, params: &[(&str, &str)]) -> Result<RawSession> {
        let addr = self.gw.postgres_addr().context("the postgres door")?;
        match RawSession::connect(addr, "appdb", token, params).await? {
            Ok(s) => Ok(s),
            Err(e) => anyhow::bail!("start-up refused: {:?}", e.fields()),
        }
    }

    async fn refused_at_startup(&self, params: &[(&str, &str)]) -> Result<Message> {
        let addr = self.gw.postgres_addr().context("the postgres door")?;
        match RawSession::connect(addr, "appdb", &self.agent, params).await? {
            Ok(_) => anyhow::bail!("start-up with {params:?} was accepted"),
            Err(e) => Ok(e),
        }
    }

    async fn assert_unchanged(&self, case: &str) -> Result<()> {
        let now = self.pg.fingerprint("appdb").await?;
        assert_eq!(now, self.baseline, "{case}: the database changed");
        Ok(())
    }
}

fn reasons(messages: &[Message]) -> Vec<String> {
    rawpg::errors(messages)
        .iter()
        .map(|m| {
            m.reason()
                .unwrap_or_else(|| m.field(b'C').unwrap_or_default())
        })
        .collect()
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[tokio::test]
async fn encoding_switches_are_refused_or_followed() -> Result<()> {
    let f = Fixture::start().await?;

    // 1. Every way to ask for an unsafe encoding is refused, pipelined or not.
    let sets: &[&[u8]] = &[
        b"SET client_encoding = 'SJIS'",
        b"SET client_encoding TO sjis",
        b"SET SESSION client_encoding = 'Shift_JIS'",
        b"BEGIN; SET LOCAL client_encoding = 'BIG5'",
        b"SET NAMES 'GBK'",
        b"set names 'win936'",
        b"/* c */ SET client_encoding = 'UHC'",
        b"SELECT set_config('client_encoding', 'GB18030', false)",
        b"SELECT pg_catalog.set_config('CLIENT_ENCODING', 'johab', true)",
        b"SET client_encoding = 'no-such-encoding'",
        b"SET client_encoding = 'mskanji'; SELECT 1",
    ];
    for set in sets {
        let mut s = f.session(&f.dba, &[]).await?;
        s.send(&concat(&[msg::query(set), msg::query(&sjis_attack())]))
            .await?;
        let got = s.until_ready(2).await?;
        let why = reasons(&got);
        assert_eq!(
            why.first().map(String::as_str),
            Some("client_encoding_forbidden"),
            "{}: {why:?}",
            String::from_utf8_lossy(set)
        );
        f.assert_unchanged(&String::from_utf8_lossy(set)).await?;
        s.close().await;
    }

    // 2. At start-up: the parameter, `options` in every spelling.
    for params in [
        vec![("client_encoding", "SJIS")],
        vec![("client_encoding", "Windows-950")],
        vec![("options", "-c client_encoding=SJIS")],
        vec![("options", "-cclient_encoding=GBK")],
        vec![("options", "--client-encoding=big5")],
    ] {
        let e = f.refused_at_startup(&params).await?;
        assert_eq!(
            e.reason().as_deref(),
            Some("client_encoding_forbidden"),
            "{params:?}"
        );
    }

    // 3. A safe switch is followed: the pipelined statement is read as LATIN1 (its 0xE9 is
    // not UTF-8, so reading it as UTF-8 would refuse it).
    let mut s = f.session(&f.agent, &[]).await?;
    s.send(&concat(&[
        msg::query(b"SET client_encoding = 'LATIN1'"),
        msg::query(b"SELECT 'caf\xe9' AS word"),
        msg::query(b"RESET client_encoding"),
        msg::query(b"SELECT 'caf\xc3\xa9' AS word"),
    ]))
    .await?;
    let got = s.until_ready(4).await?;
    assert!(reasons(&got).is_empty(), "{:?}", reasons(&got));
    let rows: Vec<&Message> = got.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].body.ends_with(b"caf\xe9"), "LATIN1 answer");
    assert!(rows[1].body.ends_with("café".as_bytes()), "UTF8 answer");
    s.close().await;

    // 4. Bytes that are not valid in the session's encoding are refused before anything is
    // classified, with the server's own SQLSTATE for it.
    let mut s = f.session(&f.dba, &[]).await?;
    s.send(&msg::query(b"SELECT '\xc3' ; DELETE FROM orders"))
        .await?;
    let got = s.until_ready(1).await?;
    let e = rawpg::errors(&got);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].field(b'C').as_deref(), Some("22021"));
    assert_eq!(e[0].reason().as_deref(), Some("invalid_encoding"));
    f.assert_unchanged("invalid UTF-8").await?;
    s.close().await;

    // 5. A change the text does not tell (a computed set_config, allowed to a DBA): the
    // pipelined attack waits for the server's answer, which reports SJIS, and the session
    // ends before the attack is read.
    let mut s = f.session(&f.dba, &[]).await?;
    s.send(&concat(&[
        msg::query(b"SELECT set_config('client_' || 'encoding', 'SJ' || 'IS', false)"),
        msg::query(&sjis_attack()),
    ]))
    .await?;
    let got = s.until_ready(2).await?;
    let fatal = got.last().context("an answer")?;
    assert_eq!(fatal.field(b'V').as_deref(), Some("FATAL"), "{got:?}");
    assert_eq!(fatal.reason().as_deref(), Some("client_encoding_changed"));
    f.assert_unchanged("computed set_config").await?;

    // 6. Extended protocol: in one unfinished sequence, a known SET decides how the rest is
    // read; an unknown one refuses the rest.
    let mut s = f.session(&f.dba, &[]).await?;
    s.send(&concat(&[
        msg::parse("", b"SET client_encoding = 'LATIN1'"),
        msg::bind("", ""),
        msg::execute(""),
        msg::parse("", b"SELECT 'caf\xe9'"),
        msg::bind("", ""),
        msg::execute(""),
        msg::sync(),
        msg::query(b"RESET client_encoding"),
    ]))
    .await?;
    let got = s.until_ready(2).await?;
    assert!(reasons(&got).is_empty(), "{:?}", reasons(&got));
    s.send(&concat(&[
        msg::parse(
            "",
            b"SELECT set_config('client_' || 'encoding', 'UTF8', false)",
        ),
        msg::bind("", ""),
        msg::execute(""),
        msg::parse("", &sjis_attack()),
        msg::bind("", ""),
        msg::execute(""),
        msg::sync(),
    ]))
    .await?;
    let got = s.until_ready(1).await?;
    assert_eq!(reasons(&got), ["client_encoding_pipelined"]);
    f.assert_unchanged("extended").await?;
    s.close().await;

    // 7. A role default the door cannot follow refuses the session at start-up.
    f.pg.superuser_sql("appdb", "ALTER ROLE app SET client_encoding = 'SJIS'")
        .await?;
    // Other start-up parameters than before, so no pooled server connection is reused.
    let e = f
        .refused_at_startup(&[("application_name", "role-default")])
        .await;
    f.pg.superuser_sql("appdb", "ALTER ROLE app RESET client_encoding")
        .await?;
    let e = e?;
    assert_eq!(e.reason().as_deref(), Some("client_encoding_changed"));

    // Every refusal is in the audit with its reason code.
    let out = f.gw.cli(["audit", "export", "--format", "jsonl"])?;
    let audit = String::from_utf8_lossy(&out.stdout);
    for code in [
        "client_encoding_forbidden",
        "invalid_encoding",
        "client_encoding_pipelined",
    ] {
        assert!(
            audit.contains(&format!("\"reason_code\":\"{code}\"")),
            "{code} not audited"
        );
    }
    Ok(())
}
