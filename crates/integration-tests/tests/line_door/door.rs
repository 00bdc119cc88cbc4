//! A door for tests: a line protocol over TCP, to prove that a door on the session engine is
//! small. The first line is `AUTH <connection> <token>`; each line after it is a command,
//! run by `sh -c` as the target, its output streamed back through the streaming masker and
//! ended by `END <exit status>`. Refusals are `ERR <code> <message>`, `HINT <hint>`, `END 126`;
//! a hold is announced with `HELD <review id> <what it needs>` and ended early by `CANCEL`;
//! the session ends with `BYE <code>` when its identity lapses. Everything else (the token,
//! decisions, audit, holds, masking obligations, recording, revocation) is the engine's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use portcullis_pipeline::session::{
    Close, Command, Ended, Exact, Held, HoldLine, Open, Ran, Recording, Session, Tally,
};
use portcullis_pipeline::{Engine, Origin, Refusal};
use portcullis_policy::ConnectionInfo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, mpsc};

/// The door: the engine and its one connection.
pub struct LineDoor {
    pub engine: Arc<Engine>,
    pub connection: ConnectionInfo,
    /// Record sessions as terminals (asciicast) rather than command timelines.
    pub terminal: bool,
}

impl LineDoor {
    /// Accepts clients on `listener`, one task per session.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(self.clone().session(stream, peer));
        }
    }

    async fn session(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let (read, write) = stream.into_split();
        let out = Mutex::new(write);
        let mut lines = lines(read);
        let origin = Origin::session("line", peer);
        let Some(first) = lines.recv().await else {
            return;
        };
        let session = match self.open(&first, origin).await {
            Ok(s) => s,
            Err(r) => return refuse(&out, &r).await,
        };
        let id = session.origin().session_id.clone().unwrap_or_default();
        say(&out, &format!("OK {id}\n")).await;
        let ended = tokio::select! {
            ended = self.commands(&session, &mut lines, &out) => ended,
            lapse = session.lapsed() => {
                say(&out, &format!("BYE {}\n", lapse.code())).await;
                lapse.ended()
            }
        };
        let _ = out.lock().await.shutdown().await;
        session.close(Close::ended(ended)).await;
    }

    /// `AUTH <connection> <token>`: authenticate, decide `connect`, open.
    async fn open(&self, first: &str, origin: Origin) -> Result<Session, Refusal> {
        use portcullis_pipeline::Code;
        let mut words = first.split_whitespace();
        let (Some("AUTH"), Some(name), Some(token)) = (words.next(), words.next(), words.next())
        else {
            let hint = "send AUTH first";
            return Err(Refusal::new(Code::Unsupported, "expected AUTH", hint));
        };
        let principal = self.engine.authenticate(token, &origin).await?;
        if name != self.connection.name {
            let (message, hint) = (format!("no connection {name:?}"), "name a connection");
            return Err(Refusal::new(Code::ConnectionUnknown, message, hint));
        }
        self.engine
            .connect(&principal, &self.connection, &origin)
            .await?;
        let open = Open {
            principal,
            connection: self.connection.clone(),
            origin,
            masking: Some("default".into()),
            data: Default::default(),
            recording: match self.terminal {
                true => Recording::Terminal {
                    width: 80,
                    height: 24,
                },
                false => Recording::Timeline,
            },
        };
        self.engine.open(open).await
    }

    /// Runs commands until the client leaves.
    async fn commands(
        &self,
        session: &Session,
        lines: &mut mpsc::Receiver<String>,
        out: &Mutex<OwnedWriteHalf>,
    ) -> Ended {
        while let Some(line) = lines.recv().await {
            if line == "QUIT" {
                return Ended::ClientTerminate;
            }
            Tally::add(&session.tally.commands, 1);
            let facts = serde_json::json!({"ssh": {"command": line}});
            let command = Command {
                action: "ssh.exec",
                facts: &facts,
                audit: &line,
                display: &line,
                noun: "command",
                masked_as: None,
            };
            let exact = Exact::text(&line);
            let holder = Holder {
                out,
                cancel: Notify::new(),
            };
            let admitted = {
                let admit = session.admit(&command, &exact, &holder);
                tokio::pin!(admit);
                loop {
                    tokio::select! {
                        a = &mut admit => break a,
                        l = lines.recv() => match l.as_deref() {
                            Some("CANCEL") => holder.cancel.notify_waiters(),
                            Some(_) => {}
                            None => return Ended::ClientGone,
                        },
                    }
                }
            };
            match admitted {
                Ok(a) => run(session, &line, a, out).await,
                Err(r) => {
                    Tally::add(&session.tally.denied, 1);
                    refuse(out, &r).await;
                }
            }
        }
        Ended::ClientGone
    }
}

/// Runs `line` with `sh -c`, streaming its output through the masker, and reports it.
async fn run(
    session: &Session,
    line: &str,
    a: portcullis_pipeline::session::Admission,
    out: &Mutex<OwnedWriteHalf>,
) {
    let started = Instant::now();
    let mut child = match tokio::process::Command::new("sh")
        .args(["-c", line])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return say(out, "ERR upstream_unavailable cannot run\nEND 126\n").await,
    };
    let Some(mut stdout) = child.stdout.take() else {
        return say(out, "ERR upstream_unavailable no output\nEND 126\n").await;
    };
    let mut stream = a.masker.as_ref().map(|m| m.stream());
    let mut masked = portcullis_masking::Counts::default();
    let (mut buf, mut sent) = (vec![0u8; 4096], Sent::default());
    while let Ok(n) = stdout.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let chunk = match &mut stream {
            Some(s) => s.push(&buf[..n], &mut masked),
            None => buf[..n].to_vec(),
        };
        sent.send(out, &chunk, session).await;
    }
    if let Some(s) = stream {
        sent.send(out, &s.finish(&mut masked), session).await;
    }
    let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
    let newline = if sent.open_line { "\n" } else { "" };
    say(out, &format!("{newline}END {status}\n")).await;
    let output = String::from_utf8_lossy(&sent.kept).into_owned();
    let entry = serde_json::json!({
        "command": line, "decision_seq": a.seq, "exit_status": status, "output": output,
    });
    session.record("command", entry).await;
    let ran = Ran {
        seq: Some(a.seq),
        action: Some("ssh.exec"),
        bytes: sent.bytes,
        duration: started.elapsed(),
        error_key: "exit_status",
        error: (status != 0).then(|| status.to_string()),
        masked,
        ..Ran::default()
    };
    session.result(&ran).await;
}

/// What went to the client: its size, the first 4 KiB for the recording's entry, and
/// whether its last line is open.
#[derive(Default)]
struct Sent {
    bytes: u64,
    kept: Vec<u8>,
    open_line: bool,
}

impl Sent {
    async fn send(&mut self, out: &Mutex<OwnedWriteHalf>, chunk: &[u8], session: &Session) {
        if let Some(&b) = chunk.last() {
            self.open_line = b != b'\n';
        }
        self.bytes += chunk.len() as u64;
        self.kept
            .extend(chunk.iter().take(4096usize.saturating_sub(self.kept.len())));
        if let Some(r) = session.recording() {
            r.output(chunk).await; // a terminal recording keeps what the client saw
        }
        let _ = out.lock().await.write_all(chunk).await;
    }
}

/// The client hears of a hold on its own line, and cancels with `CANCEL`.
struct Holder<'a> {
    out: &'a Mutex<OwnedWriteHalf>,
    cancel: Notify,
}

#[async_trait::async_trait]
impl HoldLine for Holder<'_> {
    async fn held(&self, held: &Held) {
        say(
            self.out,
            &format!("HELD {} {}\n", held.review_id, held.needs),
        )
        .await;
    }

    fn cancel(&self) -> &Notify {
        &self.cancel
    }
}

/// The one place a refusal becomes this protocol's words.
async fn refuse(out: &Mutex<OwnedWriteHalf>, r: &Refusal) {
    let policies = r.policies.join(",");
    let text = format!(
        "ERR {} {} [{policies}]\nHINT {}\nEND 126\n",
        r.code, r.message, r.hint
    );
    say(out, &text).await;
}

async fn say(out: &Mutex<OwnedWriteHalf>, text: &str) {
    let _ = out.lock().await.write_all(text.as_bytes()).await;
}

/// The client's lines, read by their own task so a hold can listen for `CANCEL`.
fn lines(read: tokio::net::tcp::OwnedReadHalf) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut read = BufReader::new(read).lines();
        while let Ok(Some(line)) = read.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}
