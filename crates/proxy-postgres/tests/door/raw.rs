//! A raw protocol client for what ordinary drivers never send: FunctionCall, oversized or
//! malformed messages, hand-made pipelines.

use bytes::BytesMut;
use portcullis_pgwire::{
    Backend, Frame, FrameReader, Limits, Side, encode_frontend as ef, parse_backend, tag,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::support::Gateway;

pub struct Raw {
    pub reader: FrameReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

/// A message from its tag and body.
pub fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    Frame::new(t, body).unwrap().as_bytes().to_vec()
}

pub fn query(sql: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    ef::query(&mut b, sql).unwrap();
    b.to_vec()
}

pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(b'P', format!("{name}\0{sql}\0\0\0").as_bytes())
}

pub fn bind(statement: &str) -> Vec<u8> {
    msg(b'B', format!("\0{statement}\0\0\0\0\0\0\0").as_bytes())
}

pub fn execute() -> Vec<u8> {
    msg(b'E', b"\0\0\0\0\0")
}

pub fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

impl Raw {
    pub async fn connect(gw: &Gateway) -> Raw {
        Self::connect_hello(gw).await.0
    }

    /// A session and what the gateway said up to its first ReadyForQuery.
    pub async fn connect_hello(gw: &Gateway) -> (Raw, Vec<Frame>) {
        let stream = TcpStream::connect(gw.addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut raw = Raw {
            reader: FrameReader::new(r, Side::Backend, Limits::default()),
            writer: w,
        };
        let mut b = BytesMut::new();
        ef::startup(&mut b, [("user", "agent"), ("database", "test")]).unwrap();
        raw.send(&b).await;
        let auth = raw.next().await.unwrap();
        assert_eq!(auth.tag(), tag::AUTHENTICATION);
        let mut b = BytesMut::new();
        ef::password(&mut b, gw.token(&["agents"]).as_bytes()).unwrap();
        raw.send(&b).await;
        let hello = raw.until_ready().await;
        assert!(hello.iter().any(|f| f.tag() == tag::BACKEND_KEY_DATA));
        (raw, hello)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    pub async fn next(&mut self) -> Option<Frame> {
        self.reader.next_frame().await.unwrap()
    }

    /// Frames up to and including the next ReadyForQuery (or the end of the stream).
    pub async fn until_ready(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Ok(Some(f)) = self.reader.next_frame().await {
            let done = f.tag() == tag::READY_FOR_QUERY;
            out.push(f);
            if done {
                break;
            }
        }
        out
    }
}

/// The tags of `frames`, as a string such as `"1TDCZ"`.
pub fn tags(frames: &[Frame]) -> String {
    frames.iter().map(|f| char::from(f.tag())).collect()
}

/// The SQLSTATEs of the ErrorResponses among `frames`.
pub fn errors(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match parse_backend(f).ok()? {
            Backend::ErrorResponse(e) => Some(String::from_utf8_lossy(e.code()?).into_owned()),
            _ => None,
        })
        .collect()
}

/// The transaction status of the last ReadyForQuery among `frames`.
pub fn status(frames: &[Frame]) -> u8 {
    match frames.last().and_then(|f| parse_backend(f).ok()) {
        Some(Backend::ReadyForQuery(s)) => s.byte(),
        other => panic!("no ReadyForQuery at the end: {other:?}"),
    }
}
