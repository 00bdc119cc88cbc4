//! A minimal PostgreSQL frontend over a plain TCP socket that keeps every byte the server (or
//! the gateway) sends: it sees what drivers hide (ParameterStatus, notifications, every field
//! of an error) and can send what drivers never do, such as an Execute of a portal that was
//! never bound (a cursor declared in SQL is a portal).
//!
//! Protocol: <https://www.postgresql.org/docs/current/protocol-message-formats.html>.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::capture::Capture;
use crate::cases::{Case, Step, Transport};

/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message accepted (results here are small).
const MAX_MESSAGE: usize = 16 << 20;

/// One backend message: its tag and body.
pub type Message = (u8, Vec<u8>);

/// What one exchange brought back.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Every byte received, as received.
    pub bytes: Vec<u8>,
    pub messages: Vec<Message>,
    /// The connection ended (or stalled) before ReadyForQuery.
    pub lost: Option<String>,
}

impl Exchange {
    /// The SQLSTATEs of the ErrorResponses received.
    pub fn sqlstates(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter(|(t, _)| *t == b'E')
            .filter_map(|(_, body)| fields(body).into_iter().find(|(f, _)| *f == b'C'))
            .map(|(_, v)| v)
            .collect()
    }

    /// The messages as text: rows, every error and notice field, COPY data, notifications,
    /// parameter changes (the bytes alone interleave values with length prefixes).
    pub fn rendered(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, body) in &self.messages {
            match tag {
                b'D' => {
                    let values: Vec<String> = data_row(body)
                        .into_iter()
                        .map(|v| v.map_or("NULL".into(), |v| lossy(&v)))
                        .collect();
                    out.extend_from_slice(values.join(" | ").as_bytes());
                }
                b'E' | b'N' => {
                    for (f, v) in fields(body) {
                        out.extend_from_slice(format!("{}: {v}\n", f as char).as_bytes());
                    }
                }
                b'd' => out.extend_from_slice(body),
                b'A' => out.extend_from_slice(&cstrings(body.get(4..).unwrap_or_default())),
                b'S' => out.extend_from_slice(&cstrings(body)),
                _ => continue,
            }
            out.push(b'\n');
        }
        out
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// NUL-terminated strings joined by spaces.
fn cstrings(body: &[u8]) -> Vec<u8> {
    body.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(&b' ')
}

/// The fields of an ErrorResponse or NoticeResponse.
fn fields(body: &[u8]) -> Vec<(u8, String)> {
    body.split(|b| *b == 0)
        .filter_map(|f| f.split_first())
        .map(|(t, v)| (*t, lossy(v)))
        .collect()
}

fn data_row(body: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut values = Vec::new();
    let mut at = 2;
    let count = body
        .get(..2)
        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    for _ in 0..count {
        let Some(len) = body.get(at..at + 4) else {
            break;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len < 0 {
            values.push(None);
            continue;
        }
        let end = at + len as usize;
        values.push(body.get(at..end).map(<[u8]>::to_vec));
        at = end;
    }
    values
}

/// A session over a plain TCP socket (no TLS).
pub struct RawSession {
    stream: TcpStream,
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

impl RawSession {
    /// Start-up as `user` on `database`, answering a cleartext password request with
    /// `password` (the gateway asks for the token so); trust needs none.
    pub async fn connect(
        addr: &str,
        user: &str,
        database: &str,
        password: &str,
    ) -> Result<RawSession> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("raw connect to {addr}"))?;
        let mut s = RawSession { stream };
        let mut body = 196_608_i32.to_be_bytes().to_vec();
        for p in [
            "user",
            user,
            "database",
            database,
            "client_encoding",
            "UTF8",
        ] {
            body.extend(cstr(p));
        }
        body.push(0);
        let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        startup.extend(body);
        s.send(&startup).await?;
        loop {
            let (tag, body) = s.read_message(&mut Vec::new()).await?;
            match (tag, body.get(..4)) {
                (b'R', Some([0, 0, 0, 0])) => {}
                (b'R', Some([0, 0, 0, 3])) => s.send(&message(b'p', &cstr(password))).await?,
                (b'R', _) => bail!("raw session: unsupported authentication request {body:?}"),
                (b'E', _) => bail!("raw session refused: {:?}", fields(&body)),
                (b'Z', _) => return Ok(s),
                _ => {}
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// One message, bounded; every byte also appended to `raw`.
    async fn read_message(&mut self, raw: &mut Vec<u8>) -> Result<Message> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head).await?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .filter(|l| *l <= MAX_MESSAGE)
            .with_context(|| format!("bad message length {len} for tag {}", head[0]))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await?;
        raw.extend_from_slice(&head);
        raw.extend_from_slice(&body);
        Ok((head[0], body))
    }

    /// Reads until ReadyForQuery (or the end of the connection, or a stall).
    async fn until_ready(&mut self) -> Exchange {
        let mut ex = Exchange::default();
        let read = async {
            loop {
                let m = self.read_message(&mut ex.bytes).await?;
                let ready = m.0 == b'Z';
                ex.messages.push(m);
                if ready {
                    return Ok::<(), anyhow::Error>(());
                }
            }
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ex.lost = Some(format!("connection lost: {e:#}")),
            Err(_) => ex.lost = Some(format!("no ReadyForQuery within {EXCHANGE_TIMEOUT:?}")),
        }
        ex
    }

    /// A simple Query.
    pub async fn query(&mut self, sql: &str) -> Exchange {
        match self.send(&message(b'Q', &cstr(sql))).await {
            Ok(()) => self.until_ready().await,
            Err(e) => Exchange {
                lost: Some(format!("cannot send: {e:#}")),
                ..Exchange::default()
            },
        }
    }

    /// Describe and Execute of `portal` (all rows) and Sync, with no Bind: the portal is a
    /// cursor the session declared in SQL.
    pub async fn execute_portal(&mut self, portal: &str) -> Exchange {
        let mut describe = vec![b'P'];
        describe.extend(cstr(portal));
        let mut execute = cstr(portal);
        execute.extend_from_slice(&0i32.to_be_bytes());
        let mut bytes = message(b'D', &describe);
        bytes.extend(message(b'E', &execute));
        bytes.extend(message(b'S', &[]));
        match self.send(&bytes).await {
            Ok(()) => self.until_ready().await,
            Err(e) => Exchange {
                lost: Some(format!("cannot send: {e:#}")),
                ..Exchange::default()
            },
        }
    }

    /// Terminate, politely.
    pub async fn close(mut self) {
        let _ = self.send(&message(b'X', &[])).await;
    }
}

/// Where a raw session connects, and as whom.
pub struct Target<'a> {
    pub addr: String,
    pub user: &'a str,
    pub database: &'a str,
    pub password: &'a str,
}

/// Runs `cases` over raw sessions (one, reopened when lost), as transport `t`. `control`
/// runs every case, a driver cursor as DECLARE and FETCH, straight against the server: what
/// each case shows a client nothing masks.
pub async fn run(
    target: &Target<'_>,
    cases: &[Case],
    t: Transport,
    control: bool,
) -> Result<Vec<Capture>> {
    let mut session: Option<RawSession> = None;
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if !control && !case.runs_on(t) {
            continue;
        }
        let mut s = match session.take() {
            Some(s) => s,
            None => {
                RawSession::connect(&target.addr, target.user, target.database, target.password)
                    .await?
            }
        };
        let mut cap = Capture::new(t, i);
        let mut alive = true;
        let mut in_transaction = false;
        for step in case.steps_for(t) {
            let ex = match &step {
                Step::Portal(p) => s.execute_portal(p).await,
                Step::Cursor(q) => {
                    let sql = format!(
                        "BEGIN; DECLARE leak_control CURSOR FOR {q}; FETCH ALL FROM leak_control; COMMIT"
                    );
                    s.query(&sql).await
                }
                other => s.query(&other.sql().unwrap_or_default()).await,
            };
            for code in ex.sqlstates() {
                cap.outcome.fail(code);
            }
            cap.blobs.push(ex.rendered());
            cap.blobs.push(ex.bytes.clone());
            if let Some(why) = ex.lost {
                cap.outcome.lose(why);
                alive = false;
                break;
            }
            in_transaction = step_left_transaction(&ex);
        }
        if alive {
            // The next case starts outside any transaction, whatever this one left.
            if in_transaction {
                s.query("ROLLBACK").await;
            }
            session = Some(s);
        }
        out.push(cap);
    }
    if let Some(s) = session {
        s.close().await;
    }
    Ok(out)
}

/// Whether the exchange ended inside a transaction (ReadyForQuery status T or E).
fn step_left_transaction(ex: &Exchange) -> bool {
    matches!(ex.messages.last(), Some((b'Z', body)) if body.first().is_some_and(|s| *s != b'I'))
}
