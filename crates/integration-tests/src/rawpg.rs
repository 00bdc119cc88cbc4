//! A raw PostgreSQL frontend for tests that must control every byte a client sends (several
//! messages in one TCP write, text in another encoding, invalid byte sequences) and see every
//! byte the gateway sends back, which drivers hide or refuse to produce.
//!
//! Messages are written with [`msg`] helpers into one buffer and sent with one `write_all`;
//! answers are read as `(tag, body)` pairs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one message before it fails.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Message {
    /// The fields of an ErrorResponse or NoticeResponse, as `(field type, text)`.
    pub fn fields(&self) -> Vec<(u8, String)> {
        let mut out = Vec::new();
        let mut rest = self.body.as_slice();
        while let Some((&t, tail)) = rest.split_first() {
            if t == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            out.push((t, String::from_utf8_lossy(&tail[..end]).into_owned()));
            rest = tail.get(end + 1..).unwrap_or_default();
        }
        out
    }

    /// One field of an ErrorResponse or NoticeResponse.
    pub fn field(&self, t: u8) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(f, _)| *f == t)
            .map(|(_, v)| v)
    }

    /// The `code: ...` reason the gateway puts in its DETAIL.
    pub fn reason(&self) -> Option<String> {
        let detail = self.field(b'D')?;
        detail
            .split("; ")
            .find_map(|f| f.strip_prefix("code: ").map(str::to_owned))
    }

    pub fn is_error(&self) -> bool {
        self.tag == b'E'
    }
}

/// Encoders for the frontend messages the tests need.
pub mod msg {
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn cstr(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(s);
        out.push(0);
    }

    /// A simple Query with `sql` as raw bytes (any encoding).
    pub fn query(sql: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        cstr(&mut body, sql);
        message(b'Q', &body)
    }

    /// Parse of the statement `name` from raw bytes, no parameter types.
    pub fn parse(name: &str, sql: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        cstr(&mut body, name.as_bytes());
        cstr(&mut body, sql);
        body.extend_from_slice(&0i16.to_be_bytes());
        message(b'P', &body)
    }

    /// Bind of statement `statement` to portal `portal`, no parameters, text results.
    pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
        let mut body = Vec::new();
        cstr(&mut body, portal.as_bytes());
        cstr(&mut body, statement.as_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        message(b'B', &body)
    }

    /// Describe of portal `portal`.
    pub fn describe_portal(portal: &str) -> Vec<u8> {
        let mut body = vec![b'P'];
        cstr(&mut body, portal.as_bytes());
        message(b'D', &body)
    }

    /// Execute of portal `portal`, all rows.
    pub fn execute(portal: &str) -> Vec<u8> {
        let mut body = Vec::new();
        cstr(&mut body, portal.as_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        message(b'E', &body)
    }

    pub fn sync() -> Vec<u8> {
        message(b'S', &[])
    }

    pub fn terminate() -> Vec<u8> {
        message(b'X', &[])
    }
}

/// A logged-in raw session.
pub struct RawSession {
    stream: TcpStream,
    /// Everything the server sent, in order, since the last [`RawSession::take_received`].
    received: Vec<Message>,
}

impl RawSession {
    /// Connects to `addr` as `user` to `database` with `token` as the password, with extra
    /// startup parameters. On a refusal at start-up, returns the server's ErrorResponse.
    pub async fn connect(
        addr: std::net::SocketAddr,
        database: &str,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<std::result::Result<RawSession, Message>> {
        let stream = TcpStream::connect(addr).await?;
        let mut s = RawSession {
            stream,
            received: Vec::new(),
        };
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (k, v) in [("user", "agent"), ("database", database)]
            .iter()
            .chain(params.iter())
        {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut startup = (body.len() as i32 + 4).to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        s.send(&startup).await?;
        loop {
            let m = s.read().await?;
            match m.tag {
                b'E' => return Ok(Err(m)),
                b'R' if m.body.get(..4) == Some(&3i32.to_be_bytes()) => {
                    let mut pw = token.as_bytes().to_vec();
                    pw.push(0);
                    let mut out = vec![b'p'];
                    out.extend_from_slice(&(pw.len() as i32 + 4).to_be_bytes());
                    out.extend_from_slice(&pw);
                    s.send(&out).await?;
                }
                b'Z' => break,
                _ => {}
            }
        }
        s.received.clear();
        Ok(Ok(s))
    }

    /// Sends bytes in one write.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads one message.
    pub async fn read(&mut self) -> Result<Message> {
        let mut head = [0u8; 5];
        tokio::time::timeout(READ_TIMEOUT, self.stream.read_exact(&mut head))
            .await
            .context("waiting for a message")??;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if !(4..=64 << 20).contains(&len) {
            bail!("bad message length {len}");
        }
        let mut body = vec![0u8; len as usize - 4];
        tokio::time::timeout(READ_TIMEOUT, self.stream.read_exact(&mut body))
            .await
            .context("reading a message body")??;
        let m = Message { tag: head[0], body };
        self.received.push(m.clone());
        Ok(m)
    }

    /// Reads until `n` ReadyForQuery messages have arrived, or the connection ends (then the
    /// messages so far are returned; the last is typically a FATAL).
    pub async fn until_ready(&mut self, n: usize) -> Result<Vec<Message>> {
        let mut got = Vec::new();
        let mut ready = 0;
        while ready < n {
            match self.read().await {
                Ok(m) => {
                    ready += usize::from(m.tag == b'Z');
                    got.push(m);
                }
                Err(_) if got.last().is_some_and(|m: &Message| m.tag == b'E') => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Every message received so far (since connecting), and forgets them.
    pub fn take_received(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.received)
    }

    /// Sends Terminate and closes.
    pub async fn close(mut self) {
        let _ = self.send(&msg::terminate()).await;
        let _ = self.stream.shutdown().await;
    }
}

/// The errors among `messages`.
pub fn errors(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.is_error()).collect()
}
