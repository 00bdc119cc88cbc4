//! The test door (`line_door/door.rs`, a line protocol over TCP) on the real session engine:
//! one test for each thing a door gets from the engine rather than writes itself:
//! authentication, decisions, refusals, holds approved through the CLI, masking of streamed
//! output, the recording, revocation ending the session, and the audit trail.
//!
//! Everything runs in this process except the CLI: a SQLite store, the auditor, the dev
//! issuer, the pipeline and engine, the review service, recordings, and the gateway's own
//! HTTP API (for `portcullis reviews approve` and revocations) on 127.0.0.1:0.

mod line_door {
    pub mod door;
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use line_door::door::LineDoor;
use portcullis_audit::{AuditSettings, Auditor, SigningKey};
use portcullis_identity::{DevIssuer, IdentitySettings, MintRequest, Validator};
use portcullis_pipeline::{Engine, EngineSettings, Pipeline};
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource};
use portcullis_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const POLICY: &str = r#"
@id("admins-revoke")
permit(principal in Group::"portcullis-admins", action == Action::"admin.revoke", resource);

@id("agents-connect")
permit(principal in Group::"agents", action == Action::"connect", resource);

@id("agents-echo")
permit(principal in Group::"agents", action == Action::"ssh.exec", resource)
when { context.ssh.command like "echo *" || context.ssh.command like "printf *" };

@id("no-rm")
@reason("agents never remove files")
@hint("leave the file in place and ask an operator")
forbid(principal, action == Action::"ssh.exec", resource)
when { context.ssh.command like "rm *" };

@id("touch-needs-dba")
@approval("dba")
permit(principal in Group::"agents", action == Action::"ssh.exec", resource)
when { context.ssh.command like "touch *" };
"#;

struct Rig {
    door: SocketAddr,
    api: String,
    store: Arc<dyn Store>,
    dev: Arc<DevIssuer>,
    recordings: std::path::PathBuf,
    dir: tempfile::TempDir,
}

async fn rig() -> Result<Rig> {
    rig_with(false).await
}

async fn rig_with(terminal: bool) -> Result<Rig> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = portcullis_store::open(&url).await?;
    let key = SigningKey::load_or_create(dir.path())?;
    let auditor = Auditor::start(store.clone(), key, AuditSettings::default()).await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", api_listener.local_addr()?);
    let dev = Arc::new(DevIssuer::load_or_create(
        dir.path(),
        &format!("{api}/dev"),
    )?);
    let validator = Validator::new(IdentitySettings {
        issuers: vec![dev.issuer_settings(vec!["portcullis".into()])],
        static_groups: Vec::new(),
        max_token_bytes: 16 * 1024,
        cache_capacity: 100,
    })?;
    let source = PolicySource {
        name: "line.cedar".into(),
        text: POLICY.into(),
    };
    let policy = PolicyEngine::compile(&[source]).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let pipeline = Arc::new(Pipeline::new(validator, policy, auditor));
    let reviews = portcullis_reviews::Reviews::new(
        store.clone(),
        portcullis_reviews::ReviewSettings::default(),
        Arc::new(portcullis_reviews::NoSink),
    );
    let recordings_dir = dir.path().join("recordings");
    let recordings = portcullis_recording::Recordings::start(
        portcullis_recording::RecordingSettings::new(&recordings_dir),
    )?;
    let settings = EngineSettings {
        hold: Duration::from_secs(30),
        ..EngineSettings::default()
    };
    let engine = Engine::new(pipeline.clone(), settings)
        .with_reviews(reviews.clone())
        .with_recordings(recordings);
    let door = Arc::new(LineDoor {
        engine: Arc::new(engine),
        connection: ConnectionInfo {
            name: "shell".into(),
            kind: "ssh".into(),
            labels: Default::default(),
        },
        terminal,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let door_addr = listener.local_addr()?;
    tokio::spawn(door.serve(listener));
    let state = portcullis_api::AppState {
        pipeline,
        store: store.clone(),
        dev_issuer: Some(dev.clone()),
        reload: Arc::new(|| Box::pin(async { Err(vec!["no reload here".to_owned()]) })),
        max_body_bytes: 1 << 20,
        reviews: Some(reviews),
        recordings_dir: Some(recordings_dir.clone()),
        exec: Vec::new(),
        exec_limits: (100, 1 << 20),
    };
    let app = portcullis_api::router(state);
    tokio::spawn(async move {
        let _ = axum::serve(
            api_listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(Rig {
        door: door_addr,
        api,
        store,
        dev,
        recordings: recordings_dir,
        dir,
    })
}

impl Rig {
    fn token(&self, subject: &str, groups: &[&str]) -> Result<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let req = MintRequest {
            subject: subject.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            audience: "portcullis".into(),
            ttl: Duration::from_secs(600),
            ..MintRequest::default()
        };
        Ok(self.dev.mint(&req, now.as_secs() as i64)?)
    }

    /// Every audit event so far, as JSON, oldest first.
    async fn events(&self) -> Result<Vec<serde_json::Value>> {
        let mut all = Vec::new();
        for node in self.store.audit_nodes().await? {
            for row in self.store.audit_page(&node, 0, 100_000).await? {
                // The stored record wraps the event with its place in the chain.
                let record: serde_json::Value = serde_json::from_str(&row.body)?;
                let mut event = record["event"].clone();
                event["seq"] = record["seq"].clone();
                all.push(event);
            }
        }
        Ok(all)
    }

    /// Waits for an event of `kind` about `session` (a decision: about a command).
    async fn event(&self, kind: &str, session: &str) -> Result<serde_json::Value> {
        for _ in 0..100 {
            let found = self.events().await?.into_iter().find(|e| {
                e["kind"] == kind
                    && e["session_id"].as_str() == Some(session)
                    && e["action"] != "connect"
            });
            if let Some(e) = found {
                return Ok(e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("no {kind} event for session {session}")
    }
}

/// A client of the door.
struct Client {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(rig: &Rig, connection: &str, token: &str) -> Result<(Client, String)> {
        let (read, write) = TcpStream::connect(rig.door).await?.into_split();
        let mut c = Client {
            read: BufReader::new(read),
            write,
        };
        c.send(&format!("AUTH {connection} {token}")).await?;
        let first = c.line().await?;
        Ok((c, first))
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        self.write.write_all(format!("{line}\n").as_bytes()).await?;
        Ok(())
    }

    async fn line(&mut self) -> Result<String> {
        let mut s = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), self.read.read_line(&mut s));
        read.await.context("the door said nothing")??;
        Ok(s.trim_end_matches('\n').to_owned())
    }

    /// Runs a command: its output lines up to `END n`, and n.
    async fn run(&mut self, command: &str) -> Result<(Vec<String>, i32)> {
        self.send(command).await?;
        let mut lines = Vec::new();
        loop {
            let l = self.line().await?;
            if let Some(status) = l.strip_prefix("END ") {
                return Ok((lines, status.parse()?));
            }
            lines.push(l);
        }
    }
}

fn session_of(ok: &str) -> Result<String> {
    ok.strip_prefix("OK ")
        .map(str::to_owned)
        .with_context(|| format!("not admitted: {ok}"))
}

#[tokio::test]
async fn authentication_admits_a_valid_token_and_refuses_others_with_their_code() -> Result<()> {
    let rig = rig().await?;
    let (_, bad) = Client::connect(&rig, "shell", "not-a-jwt").await?;
    assert!(bad.starts_with("ERR token_malformed "), "{bad}");
    let token = rig.token("agent-1", &["agents"])?;
    let (_, unknown) = Client::connect(&rig, "nowhere", &token).await?;
    assert!(unknown.starts_with("ERR connection_unknown "), "{unknown}");
    let stranger = rig.token("stranger", &["visitors"])?;
    let (_, denied) = Client::connect(&rig, "shell", &stranger).await?;
    assert!(denied.starts_with("ERR policy_default_deny "), "{denied}");
    let (_, ok) = Client::connect(&rig, "shell", &token).await?;
    session_of(&ok)?;
    let rejected = rig.events().await?;
    assert!(rejected.iter().any(|e| e["kind"] == "token.rejected"));
    Ok(())
}

#[tokio::test]
async fn an_allowed_command_runs_and_its_decision_is_audited_first() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    let (out, status) = c.run("echo hello from the target").await?;
    assert_eq!((out, status), (vec!["hello from the target".to_owned()], 0));
    let decision = rig.event("decision", &session).await?;
    assert_eq!(decision["action"], "ssh.exec");
    assert_eq!(decision["outcome"], "allow");
    assert_eq!(decision["command"], "echo hello from the target");
    let result = rig.event("statement.result", &session).await?;
    assert_eq!(result["data"]["decision_seq"], decision["seq"]);
    Ok(())
}

#[tokio::test]
async fn a_forbidden_command_is_refused_with_the_policy_reason_and_hint() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    let victim = rig.dir.path().join("keep-me");
    std::fs::write(&victim, "x")?;
    let (out, status) = c.run(&format!("rm {}", victim.display())).await?;
    assert_eq!(status, 126);
    assert!(out[0].starts_with("ERR policy_forbid "), "{out:?}");
    assert!(out[0].contains("agents never remove files") && out[0].contains("[no-rm]"));
    assert_eq!(out[1], "HINT leave the file in place and ask an operator");
    assert!(victim.exists(), "the target is unchanged");
    let decision = rig.event("decision", &session).await?;
    assert_eq!(decision["outcome"], "deny");
    assert_eq!(decision["reason_code"], "policy_forbid");
    Ok(())
}

#[tokio::test]
async fn a_held_command_runs_once_a_reviewer_approves_it_from_the_cli() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    session_of(&ok)?;
    let file = rig.dir.path().join("approved");
    c.send(&format!("touch {}", file.display())).await?;
    let held = c.line().await?;
    let review = held
        .strip_prefix("HELD ")
        .and_then(|h| h.split_whitespace().next())
        .with_context(|| format!("not held: {held}"))?
        .to_owned();
    assert!(held.contains("needs approval by dba"), "{held}");
    assert!(!file.exists(), "nothing runs before the approval");
    let dba = rig.token("dba-1", &["dba"])?;
    let bin = portcullis_integration_tests::gateway::gateway_binary()?;
    // Not a blocking wait: the API it calls is served by this test's runtime.
    let cli = tokio::process::Command::new(bin)
        .args(["reviews", "approve", &review, "--token", &dba])
        .args(["--comment", "fine", "--output", "json", "--url", &rig.api])
        .output()
        .await?;
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let (_, status) = c.run_rest().await?;
    assert_eq!(status, 0);
    assert!(file.exists(), "the approved command ran");
    Ok(())
}

impl Client {
    /// The rest of an answer already started.
    async fn run_rest(&mut self) -> Result<(Vec<String>, i32)> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await?;
            if let Some(status) = l.strip_prefix("END ") {
                return Ok((lines, status.parse()?));
            }
            lines.push(l);
        }
    }
}

#[tokio::test]
async fn output_is_masked_as_it_streams_even_across_chunks() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    // The address and the card arrive in two writes each, so in separate chunks.
    let (out, status) = c
        .run("printf 'mail jane.doe@'; sleep 0.3; printf 'example.com card 4111 1111 '; sleep 0.3; printf '1111 1111 done\\n'")
        .await?;
    assert_eq!(status, 0);
    let text = out.join("\n");
    assert!(
        !text.contains("jane.doe") && !text.contains("4111 1111 1111 1111"),
        "{text}"
    );
    assert!(text.contains("[EMAIL]") && text.ends_with("done"), "{text}");
    let result = rig.event("statement.result", &session).await?;
    assert_eq!(result["data"]["masked"]["EMAIL"], 1, "{result}");
    Ok(())
}

#[tokio::test]
async fn the_session_is_recorded_and_the_audit_vouches_for_the_file() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    c.run("echo recorded; printf 'jane.doe@%s\\n' example.com")
        .await?;
    c.send("QUIT").await?;
    let close = rig.event("session.close", &session).await?;
    assert_eq!(close["data"]["ended"], "client_terminate");
    let path = rig.recordings.join(format!("{session}.jsonl"));
    let text = std::fs::read_to_string(&path)?;
    assert!(text.contains("\"protocol\":\"line\"") && text.contains("recorded"));
    assert!(
        !text.contains("jane.doe@example.com") && text.contains("[EMAIL]"),
        "the recording holds what the client saw: {text}"
    );
    let sha = portcullis_recording::sha256_file(&path)?;
    assert_eq!(close["data"]["recording"]["sha256"], sha, "{close}");
    Ok(())
}

#[tokio::test]
async fn a_terminal_session_is_recorded_as_asciicast_with_masked_output() -> Result<()> {
    let rig = rig_with(true).await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    c.run("printf 'to jane.doe@%s\\n' example.com").await?;
    c.send("QUIT").await?;
    let close = rig.event("session.close", &session).await?;
    let path = rig.recordings.join(format!("{session}.cast"));
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap_or_default())?;
    assert_eq!(
        (header["version"].as_u64(), header["width"].as_u64()),
        (Some(2), Some(80))
    );
    let events: Vec<serde_json::Value> =
        lines.map(serde_json::from_str).collect::<Result<_, _>>()?;
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert_eq!(
        output, "to [EMAIL]\n",
        "the terminal shows what the client saw"
    );
    assert_eq!(
        events.last().map(|e| e[2].clone()),
        Some("portcullis:ended:client_terminate".into())
    );
    assert_eq!(
        close["data"]["recording"]["sha256"],
        portcullis_recording::sha256_file(&path)?
    );
    Ok(())
}

#[tokio::test]
async fn revoking_the_identity_ends_its_open_session() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-9", &["agents"])?).await?;
    let session = session_of(&ok)?;
    c.run("echo before").await?;
    let admin = rig.token("admin", &["portcullis-admins"])?;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/revocations", rig.api))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"kind": "subject", "value": "agent-9"}))
        .send()
        .await?;
    assert!(resp.status().is_success(), "{}", resp.text().await?);
    assert_eq!(c.line().await?, "BYE revoked_subject");
    let close = rig.event("session.close", &session).await?;
    assert_eq!(close["data"]["ended"], "revoked");
    Ok(())
}

#[tokio::test]
async fn a_session_leaves_open_decision_result_and_close_events() -> Result<()> {
    let rig = rig().await?;
    let (mut c, ok) = Client::connect(&rig, "shell", &rig.token("agent-1", &["agents"])?).await?;
    let session = session_of(&ok)?;
    c.run("echo one").await?;
    c.run("rm nothing").await?;
    c.send("QUIT").await?;
    rig.event("session.close", &session).await?;
    let kinds: Vec<String> = rig
        .events()
        .await?
        .into_iter()
        .filter(|e| e["session_id"].as_str() == Some(session.as_str()))
        .map(|e| {
            let kind = e["kind"].as_str().unwrap_or_default();
            match e["action"].as_str() {
                Some(action) => format!("{kind} {action}"),
                None => kind.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "decision connect",
            "session.open",
            "decision ssh.exec",
            // Masking obligations: whether this identity may see raw values, asked once.
            "decision data.unmask",
            "statement.result ssh.exec",
            "decision ssh.exec",
            "session.close"
        ],
        "connect, open, the allowed command and its result, the refused one, close"
    );
    let close = rig.event("session.close", &session).await?;
    assert_eq!(close["data"]["statements"], 2);
    assert_eq!(close["data"]["denied"], 1);
    Ok(())
}
