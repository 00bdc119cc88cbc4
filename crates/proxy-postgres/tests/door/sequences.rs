//! The message sequences PostgreSQL accepts, each sent as one write to the server directly
//! and through the door: the client must see the same answers (message types, SQLSTATEs and
//! transaction status) and keep its session. See the module docs of the door's relay state
//! for the list.

use bytes::BytesMut;
use portcullis_pgwire::{
    Backend, Frame, FrameReader, Limits, Side, encode_frontend as ef, parse_backend, tag,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::raw::{Raw, bind, errors, execute, msg, parse, query, sync};
use crate::support::{self, Gateway};

fn flush() -> Vec<u8> {
    msg(b'H', b"")
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    msg(b'D', &body)
}

fn close(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    msg(b'C', &body)
}

/// Bind of `statement` to the portal `portal`.
fn bind_portal(portal: &str, statement: &str) -> Vec<u8> {
    msg(
        b'B',
        format!("{portal}\0{statement}\0\0\0\0\0\0\0").as_bytes(),
    )
}

fn execute_portal(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut body = portal.as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&max_rows.to_be_bytes());
    msg(b'E', &body)
}

/// A raw session straight to the system PostgreSQL (trust auth).
async fn direct() -> Raw {
    let stream = TcpStream::connect("127.0.0.1:5432").await.unwrap();
    let (r, w) = stream.into_split();
    let mut raw = Raw {
        reader: FrameReader::new(r, Side::Backend, Limits::default()),
        writer: w,
    };
    let mut b = BytesMut::new();
    ef::startup(&mut b, [("user", "postgres"), ("database", "test")]).unwrap();
    raw.send(&b).await;
    raw.until_ready().await;
    raw
}

/// What a client sees of an answer, in a form to compare: the message types (ParameterStatus,
/// notices and notifications left out: they come and go with the server's state), with each
/// error's SQLSTATE and each ReadyForQuery's status.
fn seen(frames: &[Frame]) -> String {
    let mut out = String::new();
    for f in frames {
        match f.tag() {
            tag::PARAMETER_STATUS | tag::NOTICE_RESPONSE | tag::NOTIFICATION_RESPONSE => {}
            tag::ERROR_RESPONSE => {
                out.push_str(&format!("E[{}]", errors(std::slice::from_ref(f))[0]));
            }
            tag::READY_FOR_QUERY => match parse_backend(f) {
                Ok(Backend::ReadyForQuery(s)) => out.push_str(&format!("Z[{}]", s.byte() as char)),
                _ => out.push('?'),
            },
            t => out.push(char::from(t)),
        }
    }
    out
}

/// Sends `input` in one write and collects the answers up to the `readies`-th ReadyForQuery.
async fn answers(raw: &mut Raw, input: &[u8], readies: usize) -> String {
    raw.send(input).await;
    let mut frames = Vec::new();
    for _ in 0..readies {
        frames.extend(raw.until_ready().await);
    }
    seen(&frames)
}

/// `input` answered alike directly and through the door, followed by `SELECT 1` in the same
/// session (it is still usable).
async fn alike(gw: &Gateway, name: &str, input: &[u8], readies: usize) -> String {
    let mut d = direct().await;
    let mut g = Raw::connect(gw).await;
    let want = answers(&mut d, input, readies).await;
    let got = answers(&mut g, input, readies).await;
    assert_eq!(got, want, "{name}: through the door vs directly");
    let after = answers(&mut g, &query("SELECT 1"), 1).await;
    assert_eq!(after, "TDCZ[I]", "{name}: the session is usable afterwards");
    want
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[tokio::test]
async fn every_sequence_the_server_accepts_is_answered_as_the_server_answers_it() {
    let gw = support::start().await;
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "libpq pipeline end: Sync then Flush, then a simple Query",
            cat(&[
                parse("", "SELECT 1"),
                bind(""),
                execute(),
                sync(),
                flush(),
                query("SELECT 2"),
            ]),
            2,
        ),
        (
            "Flush between every message",
            cat(&[
                parse("", "SELECT 1"),
                flush(),
                bind(""),
                flush(),
                describe(b'P', ""),
                flush(),
                execute(),
                flush(),
                sync(),
                flush(),
            ]),
            1,
        ),
        ("an empty Sync", sync(), 1),
        ("three empty Syncs", cat(&[sync(), sync(), sync()]), 3),
        (
            "Describe of a named statement and of a named portal, Close of both",
            cat(&[
                parse("s1", "SELECT $1::int + 1 AS n"),
                describe(b'S', "s1"),
                msg(b'B', b"p1\0s1\0\0\0\0\x01\0\0\0\x012\0\0"),
                describe(b'P', "p1"),
                execute_portal("p1", 0),
                close(b'P', "p1"),
                close(b'S', "s1"),
                sync(),
            ]),
            1,
        ),
        (
            "Describe of statements and portals that do not exist",
            cat(&[
                describe(b'S', "nosuch"),
                sync(),
                describe(b'P', "nosuch"),
                sync(),
            ]),
            2,
        ),
        (
            "Execute with a row limit, then the rest of the portal",
            cat(&[
                parse("", "SELECT generate_series(1, 5)"),
                bind_portal("p", ""),
                execute_portal("p", 2),
                execute_portal("p", 2),
                execute_portal("p", 0),
                sync(),
            ]),
            1,
        ),
        (
            "a simple Query inside an unfinished extended sequence",
            cat(&[
                parse("", "SELECT 1"),
                bind(""),
                execute(),
                query("SELECT 2; SELECT 3"),
                parse("", "SELECT 4"),
                bind(""),
                execute(),
                sync(),
            ]),
            2,
        ),
        (
            "a simple Query after a failed extended message is skipped up to the Sync",
            cat(&[
                parse("", "SELECT 1/0"),
                bind(""),
                execute(),
                query("SELECT 2"),
                query("SELECT 3"),
                parse("", "SELECT 4"),
                bind(""),
                execute(),
                sync(),
                query("SELECT 5"),
            ]),
            2,
        ),
        (
            "a failing simple Query inside an extended sequence",
            cat(&[
                parse("", "SELECT 1"),
                bind(""),
                execute(),
                query("SELECT 1/0"),
                parse("", "SELECT 4"),
                bind(""),
                execute(),
                sync(),
            ]),
            2,
        ),
        (
            "a transaction block opened by a Query inside an extended sequence",
            cat(&[
                parse("", "SELECT 1"),
                bind(""),
                execute(),
                query("BEGIN"),
                parse("", "SELECT 2"),
                bind(""),
                execute(),
                sync(),
                query("COMMIT"),
            ]),
            3,
        ),
        (
            "an error in a pipeline fails its cycle only",
            cat(&[
                parse("", "SELECT 1/0"),
                bind(""),
                execute(),
                sync(),
                parse("", "SELECT 2"),
                bind(""),
                execute(),
                sync(),
            ]),
            2,
        ),
        (
            "Execute of a portal that does not exist",
            cat(&[execute_portal("nosuch", 0), sync()]),
            1,
        ),
    ];
    for (name, input, readies) in cases {
        alike(&gw, name, &input, readies).await;
    }
}

/// A denial inside a pipeline fails that statement and everything up to the next Sync,
/// exactly as a server error would, also when a simple Query follows inside the sequence.
#[tokio::test]
async fn a_denial_inside_a_pipeline_fails_up_to_the_next_sync() {
    let gw = support::start().await;
    let table = support::table("seq_denied", 3).await;
    let delete_all = format!("DELETE FROM {table}");
    let input = cat(&[
        parse("", "SELECT 1"),
        bind(""),
        execute(),
        sync(),
        parse("", &delete_all),
        bind(""),
        execute(),
        query(&format!("DELETE FROM {table} WHERE id = 1")),
        sync(),
        flush(),
        parse("", "SELECT 2"),
        bind(""),
        execute(),
        sync(),
    ]);
    let mut g = Raw::connect(&gw).await;
    let got = answers(&mut g, &input, 3).await;
    assert_eq!(got, "12DCZ[I]E[42501]Z[I]12DCZ[I]");
    assert_eq!(support::count(&table).await, 3, "nothing was deleted");
    // A denied simple Query inside an extended sequence fails like a failing Query there.
    let input = cat(&[
        parse("", "SELECT 1"),
        bind(""),
        execute(),
        query(&delete_all),
        parse("", "SELECT 2"),
        bind(""),
        execute(),
        sync(),
    ]);
    let got = answers(&mut g, &input, 2).await;
    assert_eq!(got, "12DCE[42501]Z[I]12DCZ[I]");
    assert_eq!(support::count(&table).await, 3, "nothing was deleted");
    support::drop_table(&table).await;
}

/// Pipelines deeper than the session's bound are not refused: the door reads the client
/// only as fast as the server answers.
#[tokio::test]
async fn a_pipeline_deeper_than_the_bound_is_answered_in_full() {
    let gw = support::start_with(|s| s.limits.max_pipeline_depth = 50).await;
    let raw = Raw::connect(&gw).await;
    let (mut reader, mut writer) = (raw.reader, raw.writer);
    const CYCLES: usize = 3_000;
    let mut input = parse("s", "SELECT $1::int");
    for i in 0..CYCLES {
        let v = i.to_string();
        let mut body = b"\0s\0\0\0\0\x01".to_vec();
        body.extend_from_slice(&(v.len() as i32).to_be_bytes());
        body.extend_from_slice(v.as_bytes());
        body.extend_from_slice(b"\0\0");
        input.extend(msg(b'B', &body));
        input.extend(execute());
        input.extend(sync());
    }
    // Written while the answers are read, as a pipelining driver does.
    let send = tokio::spawn(async move {
        writer.write_all(&input).await.unwrap();
        writer
    });
    let mut rows = 0;
    let mut readies = 0;
    while readies < CYCLES {
        let f = reader.next_frame().await.unwrap().unwrap();
        match f.tag() {
            tag::DATA_ROW => rows += 1,
            tag::READY_FOR_QUERY => readies += 1,
            tag::ERROR_RESPONSE => panic!("{:?}", errors(&[f])),
            _ => {}
        }
    }
    assert_eq!(rows, CYCLES);
    let _writer = send.await.unwrap();
}

/// Clients see the server's own backend pid: what `pg_backend_pid()` returns, what
/// notifications from the session itself carry; cancel still works through the door.
#[tokio::test]
async fn clients_see_the_real_backend_pid() {
    let gw = support::start().await;
    // LISTEN and NOTIFY are sql.admin, which "dbas" may run.
    let token = gw.token(&["agents", "dbas"]);
    let (client, conn) = gw
        .config("test", &token)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut conn = conn;
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        use futures::StreamExt;
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.process_id());
            }
        }
    });
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let listed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND datname = 'test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(listed, 1);
    client
        .batch_execute("LISTEN seq_pid; NOTIFY seq_pid, 'x'")
        .await
        .unwrap();
    let from = tokio::time::timeout(std::time::Duration::from_secs(5), notes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        from as i32, pid,
        "a notification of the session itself carries its pid"
    );

    // BackendKeyData carries the same pid as pg_backend_pid().
    let (mut raw, hello) = Raw::connect_hello(&gw).await;
    let key = hello
        .iter()
        .find_map(|f| match parse_backend(f).ok()? {
            Backend::BackendKeyData { pid, .. } => Some(pid),
            _ => None,
        })
        .unwrap();
    raw.send(&query("SELECT pg_backend_pid()")).await;
    let frames = raw.until_ready().await;
    let row = frames.iter().find(|f| f.tag() == tag::DATA_ROW).unwrap();
    let values = portcullis_pgwire::parse_data_row(row).unwrap();
    let raw_pid: i32 = std::str::from_utf8(values[0].as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(key, raw_pid, "BackendKeyData names the server's backend");
    assert_ne!(raw_pid, pid, "two sessions, two backends");

    // A cancel with the key the client was given still goes through the door.
    let cancel = client.cancel_token();
    let sleeping = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(30)").await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), sleeping)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(support::code(&err), "57014");
}

/// What the client sees after sending `input` and then reading to the end of the stream,
/// with how long the end took to come.
async fn to_the_end(raw: &mut Raw, input: &[u8]) -> (String, std::time::Duration) {
    let t0 = std::time::Instant::now();
    raw.send(input).await;
    let mut frames = Vec::new();
    let read_all = async {
        while let Ok(Some(f)) = raw.reader.next_frame().await {
            frames.push(f);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_all)
        .await
        .expect("the session ends");
    (seen(&frames), t0.elapsed())
}

/// PostgreSQL reads a Terminate only after the messages before it: a write sent just before
/// Terminate runs to its end (whether or not the client still reads) and the session then
/// ends. Extended messages without a Sync get no answer (the server sends its output at a
/// ReadyForQuery or a Flush; an error goes out at once) and commit nothing. The door does the
/// same: it forwards the Terminate and relays until the server closes.
#[tokio::test]
async fn statements_sent_before_terminate_finish_as_on_the_server() {
    let gw = support::start().await;
    let t = support::table("before_terminate", 0).await;
    let terminate = msg(b'X', b"");
    let slow_insert = |id: i32| {
        query(&format!(
            "INSERT INTO {t} SELECT {id}, 'x' FROM pg_sleep(0.3)"
        ))
    };
    let rows = |ids: &str| format!("SELECT count(*) FROM {t} WHERE id IN ({ids})");
    let db = support::direct().await;
    let count = |sql: String| {
        let db = &db;
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let mut answers = Vec::new();
    for (who, base) in [("direct", 0), ("door", 100)] {
        let connect = || async {
            if who == "direct" {
                direct().await
            } else {
                Raw::connect(&gw).await
            }
        };
        // 1. A client that writes, hangs up and reads nothing: its INSERT still commits.
        let mut raw = connect().await;
        raw.send(&cat(&[slow_insert(base + 1), terminate.clone()]))
            .await;
        drop(raw);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while count(rows(&(base + 1).to_string())).await != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "{who}: the INSERT was lost"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // 2. A client that reads: it gets the answers, then the end of the stream.
        let mut raw = connect().await;
        let (seen, took) =
            to_the_end(&mut raw, &cat(&[slow_insert(base + 2), terminate.clone()])).await;
        assert_eq!(seen, "CZ[I]", "{who}");
        assert!(
            took >= std::time::Duration::from_millis(300),
            "{who}: {took:?}"
        );
        // 3. Extended messages without a Sync: nothing committed, no wait for a
        // ReadyForQuery that never comes.
        let mut raw = connect().await;
        let insert = format!("INSERT INTO {t} VALUES ({}, 'x')", base + 3);
        let (seen, took) = to_the_end(
            &mut raw,
            &cat(&[parse("", &insert), bind(""), execute(), terminate.clone()]),
        )
        .await;
        answers.push((who, "no sync", seen));
        assert!(took < std::time::Duration::from_secs(3), "{who}: {took:?}");
        // 4. The same with an error, which the server sends at once; it then skips to a
        // Sync that never comes.
        let mut raw = connect().await;
        let (seen, took) = to_the_end(
            &mut raw,
            &cat(&[
                parse("", "SELECT 1 / 0"),
                bind(""),
                execute(),
                terminate.clone(),
            ]),
        )
        .await;
        answers.push((who, "no sync, error", seen));
        assert!(took < std::time::Duration::from_secs(3), "{who}: {took:?}");
    }
    let (direct, door) = answers.split_at(answers.len() / 2);
    for ((_, case, want), (_, _, got)) in direct.iter().zip(door) {
        assert_eq!(got, want, "{case}: through the door vs directly");
    }
    assert_eq!(direct[0].2, "", "no answer without a Sync or Flush");
    assert!(direct[1].2.ends_with("E[22012]"), "{direct:?}");
    let all = count(format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(all, 4, "ids 1, 2, 101, 102; never 3 or 103");
    support::drop_table(&t).await;
}
