//! Codec tests from fixed byte transcripts (as libpq and PostgreSQL 15 write them), plus a
//! no-panic run over random input.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

use crate::encode::{backend as eb, frontend as ef};
use crate::*;

/// Hands out its bytes `step` at a time, to exercise partial reads.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let end = (self.at + self.step)
            .min(self.data.len())
            .min(self.at + buf.remaining());
        let chunk = self.data[self.at..end].to_vec();
        buf.put_slice(&chunk);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

fn reader(data: &[u8], side: Side, step: usize) -> FrameReader<Trickle> {
    let t = Trickle {
        data: data.to_vec(),
        at: 0,
        step,
    };
    FrameReader::new(t, side, Limits::default())
}

async fn frames(data: &[u8], side: Side, step: usize) -> Result<Vec<Frame>, WireError> {
    let mut r = reader(data, side, step);
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().await? {
        out.push(f);
    }
    Ok(out)
}

fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// psycopg's extended-protocol round trip for `SELECT $1::int` with one text parameter.
fn extended_transcript() -> Vec<u8> {
    let mut v = msg(b'P', b"s1\0SELECT $1::int\0\0\x01\0\0\0\x17");
    v.extend(msg(
        b'B',
        b"p1\0s1\0\0\x01\0\0\0\x01\0\0\0\x0242\0\x01\0\x01",
    ));
    v.extend(msg(b'D', b"Pp1\0"));
    v.extend(msg(b'E', b"p1\0\0\0\0\0"));
    v.extend(msg(b'C', b"Ss1\0"));
    v.extend(msg(b'S', b""));
    v
}

#[tokio::test]
async fn extended_protocol_transcript_parses_at_any_read_size() {
    for step in [1, 3, 7, 4096] {
        let fs = frames(&extended_transcript(), Side::Frontend, step)
            .await
            .unwrap();
        let parsed: Vec<Frontend> = fs.iter().map(|f| parse_frontend(f).unwrap()).collect();
        assert_eq!(parsed.len(), 6);
        let Frontend::Parse(p) = &parsed[0] else {
            panic!("{:?}", parsed[0])
        };
        assert_eq!(
            (&p.name[..], &p.query[..], &p.param_types[..]),
            (&b"s1"[..], &b"SELECT $1::int"[..], &[23u32][..])
        );
        let Frontend::Bind(b) = &parsed[1] else {
            panic!()
        };
        assert_eq!(&b.portal[..], b"p1");
        assert_eq!(&b.statement[..], b"s1");
        assert_eq!(b.params, vec![Some(Bytes::from_static(b"42"))]);
        assert_eq!(b.result_formats, vec![1]);
        assert_eq!(
            parsed[2],
            Frontend::Describe {
                kind: ObjectKind::Portal,
                name: Bytes::from_static(b"p1")
            }
        );
        assert_eq!(
            parsed[3],
            Frontend::Execute {
                portal: Bytes::from_static(b"p1"),
                max_rows: 0
            }
        );
        assert_eq!(
            parsed[4],
            Frontend::Close {
                kind: ObjectKind::Statement,
                name: Bytes::from_static(b"s1")
            }
        );
        assert_eq!(parsed[5], Frontend::Sync);
    }
}

#[tokio::test]
async fn reader_tells_whether_a_complete_frame_is_buffered() {
    let mut data = msg(b'Q', b"SELECT 1\0");
    data.extend(msg(b'X', b""));
    let mut r = reader(&data, Side::Frontend, 4096);
    assert!(!r.has_complete_frame());
    let q = r.next_frame().await.unwrap().unwrap();
    assert_eq!(
        parse_frontend(&q).unwrap(),
        Frontend::Query {
            sql: Bytes::from_static(b"SELECT 1")
        }
    );
    assert!(r.has_complete_frame(), "Terminate came in the same read");
    assert_eq!(
        parse_frontend(&r.next_frame().await.unwrap().unwrap()).unwrap(),
        Frontend::Terminate
    );
    assert!(!r.has_complete_frame());
    assert!(
        r.next_frame().await.unwrap().is_none(),
        "clean end of stream"
    );
}

#[tokio::test]
async fn bad_lengths_and_tags_are_refused_before_buffering() {
    let limits = Limits::default();
    let over = (limits.max_message_bytes + 1) as i32;
    let mut huge = vec![b'Q'];
    huge.extend(over.to_be_bytes());
    assert!(matches!(
        frames(&huge, Side::Frontend, 4096).await,
        Err(WireError::TooLarge { tag: 'Q', .. })
    ));
    let sync_too_big = [b'S', 0, 0, 0x27, 0x15]; // 10,005 bytes for a Sync
    assert!(matches!(
        frames(&sync_too_big, Side::Frontend, 4096).await,
        Err(WireError::TooLarge { tag: 'S', .. })
    ));
    let short = [b'S', 0, 0, 0, 3];
    assert!(matches!(
        frames(&short, Side::Frontend, 4096).await,
        Err(WireError::BadLength { len: 3 })
    ));
    let negative = [b'Q', 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        frames(&negative, Side::Frontend, 4096).await,
        Err(WireError::BadLength { len: -1 })
    ));
    let unknown = msg(b'z', b"");
    assert!(matches!(
        frames(&unknown, Side::Frontend, 4096).await,
        Err(WireError::UnknownTag { tag: 'z' })
    ));
    let backend_row_ok = msg(b'D', b"\0\0");
    assert_eq!(
        frames(&backend_row_ok, Side::Backend, 4096)
            .await
            .unwrap()
            .len(),
        1
    );
    let truncated = &msg(b'Q', b"SELECT 1\0")[..7];
    assert!(matches!(
        frames(truncated, Side::Frontend, 4096).await,
        Err(WireError::UnexpectedEof)
    ));
    let err = frames(&huge, Side::Frontend, 4096).await.unwrap_err();
    assert_eq!(err.kind(), WireErrorKind::Protocol);
}

#[tokio::test]
async fn initial_packets() {
    // libpq: SSLRequest, then a startup packet for user alice, database test.
    let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
    let mut startup = vec![0, 0, 0, 0, 0, 3, 0, 0];
    startup.extend_from_slice(b"user\0alice\0database\0test\0application_name\0psql\0\0");
    let n = startup.len() as i32;
    startup[..4].copy_from_slice(&n.to_be_bytes());
    let mut data = ssl.to_vec();
    data.extend(&startup);
    let mut r = reader(&data, Side::Frontend, 5);
    assert_eq!(r.read_initial().await.unwrap(), Some(Initial::SslRequest));
    let Some(Initial::Startup(s)) = r.read_initial().await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (s.minor, s.param("user"), s.param("database")),
        (0, Some("alice"), Some("test"))
    );
    assert!(
        !format!("{s:?}").contains("alice"),
        "Debug shows names only"
    );
    assert_eq!(r.read_initial().await.unwrap(), None);

    let cancel = [0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 7, 1, 2, 3, 4];
    let mut r = reader(&cancel, Side::Frontend, 4096);
    assert_eq!(
        r.read_initial().await.unwrap(),
        Some(Initial::Cancel {
            pid: 7,
            secret: Bytes::from_static(&[1, 2, 3, 4])
        })
    );
    let gss = [0, 0, 0, 8, 4, 210, 22, 48];
    assert_eq!(
        reader(&gss, Side::Frontend, 1)
            .read_initial()
            .await
            .unwrap(),
        Some(Initial::GssEncRequest)
    );

    let v2 = [0, 0, 0, 9, 0, 2, 0, 0, 0];
    assert!(matches!(
        reader(&v2, Side::Frontend, 64).read_initial().await,
        Err(WireError::UnsupportedVersion { major: 2, .. })
    ));
    let huge = [0, 0, 0x27, 0x11, 0, 3, 0, 0];
    assert!(matches!(
        reader(&huge, Side::Frontend, 64).read_initial().await,
        Err(WireError::BadLength { .. })
    ));
    let tls_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    assert!(
        reader(&tls_hello, Side::Frontend, 64)
            .read_initial()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn tls_upgrade_refuses_bytes_sent_ahead_of_the_handshake() {
    let mut data = vec![0, 0, 0, 8, 4, 210, 22, 47];
    data.extend(msg(b'Q', b"SELECT 1\0"));
    let mut r = reader(&data, Side::Frontend, 4096);
    assert_eq!(r.read_initial().await.unwrap(), Some(Initial::SslRequest));
    assert!(matches!(r.into_inner(), Err(WireError::BufferedBeforeTls)));
    let mut r = reader(&data[..8], Side::Frontend, 4096);
    r.read_initial().await.unwrap();
    assert!(r.into_inner().is_ok());
}

#[tokio::test]
async fn backend_transcript() {
    // A PostgreSQL 15 answer to a SCRAM client, then the startup tail.
    let mut data = msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
    data.extend(msg(b'R', b"\0\0\0\x05\x01\x02\x03\x04"));
    data.extend(msg(b'R', b"\0\0\0\x0br=abc"));
    data.extend(msg(b'R', b"\0\0\0\0"));
    data.extend(msg(b'S', b"client_encoding\0UTF8\0"));
    data.extend(msg(b'K', b"\0\0\x30\x39\xde\xad\xbe\xef"));
    data.extend(msg(b'C', b"DELETE 3\0"));
    data.extend(msg(
        b'E',
        b"SERROR\0VERROR\0C42601\0Msyntax error at or near \"X\"\0P1\0\0",
    ));
    data.extend(msg(b'G', b"\0\0\x01\0\0"));
    data.extend(msg(b'Z', b"E"));
    let fs = frames(&data, Side::Backend, 2).await.unwrap();
    let got: Vec<Backend> = fs.iter().map(|f| parse_backend(f).unwrap()).collect();
    assert_eq!(
        got[0],
        Backend::Authentication(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
        })
    );
    assert_eq!(
        got[1],
        Backend::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] })
    );
    assert_eq!(
        got[2],
        Backend::Authentication(Authentication::SaslContinue(Bytes::from_static(b"r=abc")))
    );
    assert_eq!(got[3], Backend::Authentication(Authentication::Ok));
    assert_eq!(
        got[4],
        Backend::ParameterStatus {
            name: "client_encoding".into(),
            value: "UTF8".into()
        }
    );
    assert_eq!(
        got[5],
        Backend::BackendKeyData {
            pid: 12345,
            secret: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])
        }
    );
    assert_eq!(
        got[6],
        Backend::CommandComplete {
            tag: Bytes::from_static(b"DELETE 3")
        }
    );
    let Backend::ErrorResponse(e) = &got[7] else {
        panic!()
    };
    assert_eq!(
        (e.code(), e.severity()),
        (Some(&b"42601"[..]), Some(Severity::Error))
    );
    assert_eq!(got[8], Backend::CopyInResponse { format: 0 });
    assert_eq!(got[9], Backend::ReadyForQuery(TransactionStatus::Failed));
}

#[test]
fn encoders_write_exact_bytes() {
    let mut b = BytesMut::new();
    eb::error_response(
        &mut b,
        &eb::Report {
            severity: Severity::Fatal,
            code: "28P01",
            message: "no\0pe",
            detail: None,
            hint: Some("h"),
        },
    );
    assert_eq!(
        &b[..],
        &msg(b'E', b"SFATAL\0VFATAL\0C28P01\0Mnope\0Hh\0\0")[..]
    );
    let mut b = BytesMut::new();
    eb::ready_for_query(&mut b, TransactionStatus::InTransaction);
    eb::authentication_cleartext_password(&mut b);
    eb::authentication_ok(&mut b);
    eb::backend_key_data(&mut b, 1, -1);
    eb::parameter_status(&mut b, "TimeZone", "UTC").unwrap();
    let mut want = msg(b'Z', b"T");
    want.extend(msg(b'R', &[0, 0, 0, 3]));
    want.extend(msg(b'R', &[0, 0, 0, 0]));
    want.extend(msg(b'K', &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]));
    want.extend(msg(b'S', b"TimeZone\0UTC\0"));
    assert_eq!(&b[..], &want[..]);

    let mut b = BytesMut::new();
    ef::query(&mut b, "PORTCULLIS_DENIED").unwrap();
    ef::parse_unnamed(&mut b, "X").unwrap();
    ef::sync(&mut b);
    ef::terminate(&mut b);
    ef::password(&mut b, b"md5abc").unwrap();
    let mut want = msg(b'Q', b"PORTCULLIS_DENIED\0");
    want.extend(msg(b'P', b"\0X\0\0\0"));
    want.extend(msg(b'S', b""));
    want.extend(msg(b'X', b""));
    want.extend(msg(b'p', b"md5abc\0"));
    assert_eq!(&b[..], &want[..]);

    let mut b = BytesMut::new();
    ef::startup(&mut b, [("user", "u"), ("database", "d")]).unwrap();
    assert_eq!(&b[..], b"\0\0\0\x1b\0\x03\0\0user\0u\0database\0d\0\0");
    let mut b = BytesMut::new();
    ef::cancel_request(&mut b, 9, &[1, 2, 3, 4]).unwrap();
    assert_eq!(
        &b[..],
        &[0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 9, 1, 2, 3, 4]
    );
    let mut b = BytesMut::from(&b"keep"[..]);
    assert!(ef::query(&mut b, "a\0b").is_err());
    assert_eq!(&b[..], b"keep", "a failed encode leaves nothing behind");
}

#[tokio::test]
async fn writer_batches_and_keeps_order() {
    let small = Frame::new(b'Z', b"I").unwrap();
    let big = Frame::new(b'D', &vec![7u8; 40_000]).unwrap();
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut w = FrameWriter::new(a);
    w.push(&small);
    w.push(&big);
    w.push(&small);
    assert_eq!(w.buffered(), 6 + 40_005 + 6);
    w.flush().await.unwrap();
    assert_eq!(w.buffered(), 0);
    drop(w);
    let mut r = FrameReader::new(b, Side::Backend, Limits::default());
    let mut got = Vec::new();
    while let Some(f) = r.next_frame().await.unwrap() {
        got.push(f);
    }
    assert_eq!(got, vec![small.clone(), big, small]);
}

/// A small deterministic generator, so failures reproduce.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test]
async fn random_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let tags = b"QPBDECSHXFdcfpRKZ12ETGSAvtn";
    for round in 0..3000 {
        let len = (xorshift(&mut seed) % 64) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        if round % 2 == 0 {
            // Plausible headers reach the body parsers more often than pure noise does.
            let t = tags[(xorshift(&mut seed) % tags.len() as u64) as usize];
            let mut framed = msg(t, &data);
            framed.extend(msg(t, &data[..len / 2]));
            data = framed;
        }
        for side in [Side::Frontend, Side::Backend] {
            let mut r = reader(&data, side, 1 + round % 5);
            while let Ok(Some(f)) = r.next_frame().await {
                let _ = parse_frontend(&f);
                let _ = parse_backend(&f);
            }
        }
        let _ = reader(&data, Side::Frontend, 3).read_initial().await;
        let mut startup = ((len + 8) as i32).to_be_bytes().to_vec();
        startup.extend([0, 3, 0, 0]);
        startup.extend(&data);
        let _ = reader(&startup, Side::Frontend, 64).read_initial().await;
    }
}

#[test]
fn data_rows_round_trip_and_row_descriptions_parse() {
    let values: Vec<Option<&[u8]>> = vec![Some(b"a@b.example"), None, Some(b"")];
    let raw = crate::encode_data_row(values.clone().into_iter()).expect("encode");
    let frame = Frame::new(raw[0], &raw[5..]).expect("frame");
    let back = crate::parse_data_row(&frame).expect("parse");
    let back: Vec<Option<&[u8]>> = back.iter().map(|v| v.as_deref()).collect();
    assert_eq!(back, values);
    // A count larger than the body can hold is an error, not an allocation.
    let forged = Frame::new(b'D', &[0x7f, 0xff, 0, 0, 0, 1, b'x']).expect("frame");
    assert!(crate::parse_data_row(&forged).is_err());

    let mut body = vec![0u8, 1];
    body.extend_from_slice(b"email\0");
    body.extend_from_slice(&16384u32.to_be_bytes());
    body.extend_from_slice(&2i16.to_be_bytes());
    body.extend_from_slice(&25u32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    let fields =
        crate::parse_row_description(&Frame::new(b'T', &body).expect("frame")).expect("parse");
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (
            fields[0].name.as_str(),
            fields[0].type_oid,
            fields[0].format
        ),
        ("email", 25, 1)
    );
    assert!(
        crate::parse_row_description(&Frame::new(b'T', &body[..body.len() - 1]).expect("frame"))
            .is_err()
    );
}

mod deadlines {
    //! The frontend's mid-message deadline, on tokio's paused clock.

    use std::time::Duration;

    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio::time::Instant;

    use super::msg;
    use crate::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn pair(side: Side) -> (DuplexStream, FrameReader<DuplexStream>) {
        let (peer, ours) = tokio::io::duplex(64 * 1024);
        let limits = Limits {
            message_timeout: Some(TIMEOUT),
            ..Limits::default()
        };
        (peer, FrameReader::new(ours, side, limits))
    }

    fn query() -> Vec<u8> {
        msg(b'Q', b"SELECT 1\0")
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_mid_message_is_cut_off_but_an_idle_one_is_not() {
        let (mut peer, mut r) = pair(Side::Frontend);
        // Between messages there is no deadline: an hour of silence is not a stall.
        let idle = tokio::time::timeout(Duration::from_secs(3600), r.next_frame()).await;
        assert!(idle.is_err(), "{idle:?}");
        let q = query();
        peer.write_all(&q[..3]).await.unwrap();
        let t0 = Instant::now();
        let err = r.next_frame().await.unwrap_err();
        assert!(
            matches!(err, WireError::Stalled { after } if after == TIMEOUT),
            "{err:?}"
        );
        assert_eq!(t0.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_must_finish_the_whole_message_in_time() {
        let (mut peer, mut r) = pair(Side::Frontend);
        let q = query();
        // Each byte well within the timeout, the whole message not (slowloris).
        let writer = tokio::spawn(async move {
            for b in q {
                if peer.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
        let t0 = Instant::now();
        let err = r.next_frame().await.unwrap_err();
        assert!(matches!(err, WireError::Stalled { .. }), "{err:?}");
        assert_eq!(t0.elapsed(), TIMEOUT);
        writer.abort();

        // A message that arrives in pieces, but whole within the timeout, is read.
        let (mut peer, mut r) = pair(Side::Frontend);
        let q = query();
        let writer = tokio::spawn(async move {
            for chunk in q.chunks(4) {
                peer.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_secs(9)).await;
            }
            peer
        });
        let f = r.next_frame().await.unwrap().unwrap();
        assert_eq!(f.as_bytes().as_ref(), query().as_slice());
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_caller_spends_between_calls_is_not_charged_to_the_peer() {
        let (mut peer, mut r) = pair(Side::Frontend);
        let q = query();
        let mut both = q.clone();
        both.extend_from_slice(&q[..2]);
        peer.write_all(&both).await.unwrap();
        assert!(r.next_frame().await.unwrap().is_some());
        // The caller is busy (a statement held for approval) far longer than the timeout,
        // with the start of the next message already buffered.
        tokio::time::sleep(TIMEOUT * 4).await;
        let rest = q[2..].to_vec();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(TIMEOUT / 2).await;
            peer.write_all(&rest).await.unwrap();
            peer
        });
        let f = r.next_frame().await.unwrap().unwrap();
        assert_eq!(f.as_bytes().as_ref(), q.as_slice());
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_up_phase_has_the_deadline_and_servers_do_not() {
        let (mut peer, mut r) = pair(Side::Frontend);
        // Half of an SSLRequest's length field.
        peer.write_all(&[0, 0]).await.unwrap();
        let err = r.read_initial().await.unwrap_err();
        assert!(matches!(err, WireError::Stalled { .. }), "{err:?}");

        let (mut peer, mut r) = pair(Side::Backend);
        peer.write_all(&msg(b'Z', b"I")[..3]).await.unwrap();
        let waited = tokio::time::timeout(TIMEOUT * 10, r.next_frame()).await;
        assert!(
            waited.is_err(),
            "a server's message has no deadline: {waited:?}"
        );
    }
}
