//! The PostgreSQL harness on its own, against a real server and real clients, no gateway:
//! SCRAM, MD5 and trust logins with psql, psycopg 3, asyncpg and tokio-postgres (right and
//! wrong passwords, a 1 KB password like an OIDC token), TLS with the harness CA, the fixture,
//! error reporting of the Python runners, and restarts that keep the data.
//!
//! Needs the PostgreSQL server binaries and `.venv` (scripts/setup-test-deps.sh).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test failure, with its message"
)]

use std::time::Instant;

use portcullis_integration_tests::clients::{
    self, PgConn, SslMode, describe, tokio_pg_connect, tokio_pg_sqlstate,
};
use portcullis_integration_tests::postgres::{
    Auth, CUSTOMER_COUNT, FIXTURE_CARD, ORDER_COUNT, PgServer,
};
use serde_json::{Value, json};

const COUNT_SQL: &str = "SELECT count(*) FROM customers";

async fn start(auth: Auth) -> PgServer {
    let t = Instant::now();
    let pg = PgServer::start_with(auth)
        .await
        .unwrap_or_else(|e| panic!("start {auth:?}: {e:#}"));
    eprintln!("PgServer {auth:?} on {} in {:?}", pg.addr(), t.elapsed());
    pg
}

/// psql, psycopg, asyncpg and tokio-postgres all log in as `conn` and count the customers.
async fn all_clients_succeed(conn: &PgConn) {
    let out = clients::psql(
        conn,
        &["-At", "-v", "ON_ERROR_STOP=1", "-c", COUNT_SQL],
        None,
    )
    .await
    .unwrap();
    assert!(out.status.success(), "psql: {}", describe(&out));
    assert_eq!(clients::stdout(&out).trim(), CUSTOMER_COUNT.to_string());

    let spec = json!([{ "sql": "SELECT count(*) FROM customers WHERE id > %s", "params": [0] }]);
    let v = clients::psycopg_run(conn, &spec).await.unwrap();
    assert_eq!(v["connected"], true, "psycopg: {v}");
    assert_eq!(
        v["results"][0]["rows"],
        json!([[CUSTOMER_COUNT]]),
        "psycopg: {v}"
    );

    let spec = json!([{ "sql": "SELECT count(*) FROM customers WHERE id > $1", "params": [0] }]);
    let v = clients::asyncpg_run(conn, &spec).await.unwrap();
    assert_eq!(v["connected"], true, "asyncpg: {v}");
    assert_eq!(
        v["results"][0]["rows"],
        json!([[CUSTOMER_COUNT]]),
        "asyncpg: {v}"
    );

    let (client, task) = tokio_pg_connect(conn)
        .await
        .unwrap_or_else(|e| panic!("tokio-postgres: {e:#}"));
    let row = client.query_one(COUNT_SQL, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), CUSTOMER_COUNT);
    drop(client);
    task.await.unwrap().unwrap();
}

/// Every client is refused with `28P01` (invalid_password).
async fn all_clients_refused(conn: &PgConn) {
    let out = clients::psql(conn, &["-At", "-c", "SELECT 1"], None)
        .await
        .unwrap();
    assert!(!out.status.success(), "psql got in: {}", describe(&out));
    assert!(
        clients::stderr(&out).contains("password authentication failed"),
        "psql: {}",
        describe(&out)
    );

    let v = clients::psycopg_run(conn, &json!(["SELECT 1"]))
        .await
        .unwrap();
    assert_eq!(v["connected"], false, "psycopg got in: {v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("password authentication failed"),
        "psycopg: {v}"
    );
    assert_eq!(v["error"]["severity"], "FATAL", "psycopg: {v}");

    let v = clients::asyncpg_run(conn, &json!(["SELECT 1"]))
        .await
        .unwrap();
    assert_eq!(v["connected"], false, "asyncpg got in: {v}");
    assert_eq!(v["error"]["sqlstate"], "28P01", "asyncpg: {v}");

    let err = tokio_pg_connect(conn)
        .await
        .expect_err("tokio-postgres got in");
    assert_eq!(
        tokio_pg_sqlstate(&err).as_deref(),
        Some("28P01"),
        "tokio-postgres: {err:#}"
    );
}

/// Every client fails to log in (whatever the reason).
async fn all_clients_fail(conn: &PgConn) {
    let out = clients::psql(conn, &["-At", "-c", "SELECT 1"], None)
        .await
        .unwrap();
    assert!(!out.status.success(), "psql got in: {}", describe(&out));
    let v = clients::psycopg_run(conn, &json!(["SELECT 1"]))
        .await
        .unwrap();
    assert_eq!(v["connected"], false, "psycopg got in: {v}");
    let v = clients::asyncpg_run(conn, &json!(["SELECT 1"]))
        .await
        .unwrap();
    assert_eq!(v["connected"], false, "asyncpg got in: {v}");
    assert!(
        tokio_pg_connect(conn).await.is_err(),
        "tokio-postgres got in"
    );
}

#[tokio::test]
async fn scram_logins_with_every_client() {
    let pg = start(Auth::Scram).await;
    let stored = pg
        .query_one(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'",
        )
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    all_clients_succeed(&pg.app_conn()).await;
    all_clients_refused(&pg.app_conn().password("not-the-password")).await;
    all_clients_fail(&pg.app_conn().no_password()).await;

    // A ~1 KB password, the size of an OIDC token, goes through every client.
    let long: String = (0..1100).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    pg.superuser_sql(
        "appdb",
        &format!("CREATE ROLE agent LOGIN PASSWORD '{long}'; GRANT SELECT ON customers TO agent;"),
    )
    .await
    .unwrap();
    let agent = pg.app_conn().user("agent").password(long.clone());
    all_clients_succeed(&agent).await;
    all_clients_refused(&agent.password(format!("{long}x"))).await;

    let log = pg.log();
    assert!(
        log.contains("method=scram-sha-256"),
        "no SCRAM login in the server log:\n{log}"
    );
    assert!(
        !log.contains(pg.app_password()),
        "the app password is in the server log"
    );
}

#[tokio::test]
async fn md5_logins_with_every_client() {
    let pg = start(Auth::Md5).await;
    let stored = pg
        .query_one(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'",
        )
        .await
        .unwrap();
    assert!(stored.starts_with("md5"), "{stored}");
    all_clients_succeed(&pg.app_conn()).await;
    all_clients_refused(&pg.app_conn().password("wrong")).await;
    let log = pg.log();
    assert!(
        log.contains("method=md5"),
        "no MD5 login in the log:\n{log}"
    );
}

#[tokio::test]
async fn trust_accepts_any_password() {
    let pg = start(Auth::Trust).await;
    all_clients_succeed(&pg.app_conn()).await;
    all_clients_succeed(&pg.app_conn().password("anything")).await;
    all_clients_succeed(&pg.app_conn().no_password()).await;
}

#[tokio::test]
async fn fixture_is_there_and_runners_report_server_errors() {
    let pg = start(Auth::Scram).await;
    assert_eq!(
        pg.query_one("appdb", COUNT_SQL).await.unwrap(),
        CUSTOMER_COUNT.to_string()
    );
    assert_eq!(
        pg.query_one("appdb", "SELECT count(*) FROM orders")
            .await
            .unwrap(),
        ORDER_COUNT.to_string()
    );
    let owner = pg
        .query_one(
            "appdb",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'customers'",
        )
        .await
        .unwrap();
    assert_eq!(owner, "app");
    let card = pg
        .query_one(
            "appdb",
            "SELECT email FROM customers WHERE notes LIKE '%4111 1111 1111 1111%'",
        )
        .await
        .unwrap();
    assert_eq!(card, "grace.okafor@example.com");
    assert!(FIXTURE_CARD.starts_with("4111"));
    let rows = pg
        .superuser_sql(
            "appdb",
            "SELECT id, name FROM customers ORDER BY id LIMIT 2",
        )
        .await
        .unwrap();
    assert_eq!(rows, "1|Alice Martin\n2|Bob Chen");
    let err = pg
        .superuser_sql("appdb", "SELECT * FROM nope")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");

    // Typed values, several protocol modes, and server errors with their fields.
    let conn = pg.app_conn();
    let spec = json!({
        "autocommit": true,
        "statements": [
            {"sql": "SELECT balance, tags, profile, created FROM customers WHERE id = %s", "params": [1]},
            {"sql": "SELECT nme FROM customers"},
            {"sql": "SELECT name FROM customers WHERE id = %s", "params": [2], "mode": "prepare"},
            {"sql": "SELECT 1; SELECT 2", "mode": "simple"},
            {"sql": "SELECT 1; SELECT 2"},
            {"sql": "UPDATE orders SET status = status WHERE id <= %s", "params": [3], "binary": true},
            {"sql": "INSERT INTO customers (id, name) VALUES (1, 'dup')"}
        ]
    });
    let v = clients::psycopg_run(&conn, &spec).await.unwrap();
    let r = &v["results"];
    assert_eq!(
        r[0]["rows"],
        json!([["1200.50", ["vip", "early"], {"tier": "gold", "age": 34, "newsletter": true}, "2023-01-15"]]),
        "{v}"
    );
    assert_eq!(r[1]["ok"], false, "{v}");
    assert_eq!(r[1]["error"]["sqlstate"], "42703", "{v}");
    assert!(
        r[1]["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("customers.name"),
        "{v}"
    );
    assert_eq!(r[2]["rows"], json!([["Bob Chen"]]), "{v}");
    assert_eq!(r[3]["sets"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(r[4]["error"]["sqlstate"], "42601", "extended protocol: {v}");
    assert_eq!(r[5]["rowcount"], 3, "{v}");
    assert_eq!(r[5]["status"], "UPDATE 3", "{v}");
    assert_eq!(r[6]["error"]["sqlstate"], "23505", "{v}");
    assert!(
        r[6]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("(id)=(1)"),
        "{v}"
    );

    let spec = json!([
        {"sql": "SELECT balance, tags, profile, created FROM customers WHERE id = $1", "params": [1]},
        {"sql": "SELECT nme FROM customers"},
        {"sql": "SELECT 1; SELECT 2", "mode": "execute"},
        {"sql": "SELECT created FROM customers WHERE created = $1", "params": [{"$type": "date", "value": "2023-02-03"}], "mode": "fetch"},
        {"sql": "UPDATE orders SET status = status WHERE id <= $1", "params": [3]}
    ]);
    let v = clients::asyncpg_run(&conn, &spec).await.unwrap();
    let r = &v["results"];
    assert_eq!(r[0]["rows"][0][0], "1200.50", "{v}");
    assert_eq!(r[0]["rows"][0][1], json!(["vip", "early"]), "{v}");
    let profile: Value = serde_json::from_str(r[0]["rows"][0][2].as_str().unwrap()).unwrap();
    assert_eq!(profile["tier"], "gold", "{v}");
    assert_eq!(r[1]["error"]["sqlstate"], "42703", "{v}");
    assert!(
        r[1]["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("customers.name"),
        "{v}"
    );
    assert_eq!(r[2]["ok"], true, "{v}");
    assert_eq!(r[3]["rows"], json!([["2023-02-03"]]), "{v}");
    assert_eq!(r[4]["status"], "UPDATE 3", "{v}");

    // A failed statement inside a transaction aborts it, as the server says (25P02).
    let spec = json!({"autocommit": false, "statements": [
        "UPDATE customers SET notes = 'x' WHERE id = 1", "SELECT 1/0", "SELECT 1"
    ]});
    let v = clients::psycopg_run(&conn, &spec).await.unwrap();
    assert_eq!(v["results"][1]["error"]["sqlstate"], "22012", "{v}");
    assert_eq!(v["results"][2]["error"]["sqlstate"], "25P02", "{v}");
    assert_eq!(
        pg.query_one("appdb", "SELECT notes FROM customers WHERE id = 1")
            .await
            .unwrap(),
        "prefers email"
    );

    // psql with ON_ERROR_STOP stops at the first error; \copy works.
    let out = clients::psql_sql(&conn, "SELECT 1;\nSELECT nope;\nSELECT 2;\n", true)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(clients::stdout(&out), "1\n");
    let out = clients::psql(
        &conn,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "\\copy (SELECT id, email FROM customers WHERE id <= 2 ORDER BY id) TO STDOUT WITH CSV",
        ],
        None,
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        clients::stdout(&out),
        "1,alice.martin@example.com\n2,bob.chen@example.org\n"
    );
}

#[tokio::test]
async fn tls_with_the_harness_ca() {
    let pg = PgServer::builder().require_tls(true).start().await.unwrap();
    let ca = pg.ca_cert_path().unwrap().to_path_buf();
    assert!(pg.ca_cert_pem().unwrap().contains("BEGIN CERTIFICATE"));

    // Without TLS: rejected by pg_hba.
    let plain = pg.app_conn().sslmode(SslMode::Disable);
    let out = clients::psql(&plain, &["-c", "SELECT 1"], None)
        .await
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        clients::stderr(&out).contains("no encryption"),
        "{}",
        describe(&out)
    );

    // Verified against the CA, and "require" (any certificate) through every client.
    all_clients_succeed(&pg.app_conn().sslmode(SslMode::VerifyFull).root_cert(&ca)).await;
    all_clients_succeed(&pg.app_conn().sslmode(SslMode::Require)).await;
    let out = clients::psql(
        &pg.app_conn().sslmode(SslMode::Require),
        &[
            "-At",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(clients::stdout(&out).trim(), "t", "{}", describe(&out));

    // tokio-postgres refuses a server whose certificate the given CA did not sign.
    let other = PgServer::builder().tls(true).start().await.unwrap();
    let wrong_ca = other.ca_cert_path().unwrap().to_path_buf();
    let err = tokio_pg_connect(
        &pg.app_conn()
            .sslmode(SslMode::VerifyFull)
            .root_cert(&wrong_ca),
    )
    .await
    .expect_err("connected with the wrong CA");
    assert!(
        format!("{err:#}").to_lowercase().contains("certificate"),
        "{err:#}"
    );
    // The TLS-optional server still takes plain connections.
    all_clients_succeed(&other.app_conn()).await;
}

#[tokio::test]
async fn restart_keeps_data_and_port() {
    let mut pg = start(Auth::Scram).await;
    let port = pg.port();
    let conn = pg.app_conn();
    let (client, task) = tokio_pg_connect(&conn).await.unwrap();
    client
        .execute(
            "INSERT INTO customers (name, email) VALUES ('Restart Test', 'restart@example.com')",
            &[],
        )
        .await
        .unwrap();

    let t = Instant::now();
    pg.restart().await.unwrap();
    eprintln!("restart in {:?}", t.elapsed());
    assert_eq!(pg.port(), port);
    // The old session was terminated by the fast shutdown.
    let err = client.query_one("SELECT 1", &[]).await.unwrap_err();
    assert!(err.is_closed() || err.as_db_error().is_some(), "{err}");
    let _ = task.await;
    assert_eq!(
        pg.query_one("appdb", COUNT_SQL).await.unwrap(),
        (CUSTOMER_COUNT + 1).to_string()
    );
    all_clients_succeed_after_insert(&conn).await;

    // An immediate shutdown (crash) loses no committed row either.
    pg.superuser_sql("appdb", "DELETE FROM customers WHERE name = 'Restart Test'")
        .await
        .unwrap();
    pg.stop_fast().await.unwrap();
    assert!(!pg.is_running());
    let out = clients::psql(&conn, &["-c", "SELECT 1"], None)
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "server still answers: {}",
        describe(&out)
    );
    pg.start_again().await.unwrap();
    assert_eq!(
        pg.query_one("appdb", COUNT_SQL).await.unwrap(),
        CUSTOMER_COUNT.to_string()
    );
    all_clients_succeed(&conn).await;
    assert_eq!(pg.port(), port);
}

async fn all_clients_succeed_after_insert(conn: &PgConn) {
    let out = clients::psql(conn, &["-At", "-c", COUNT_SQL], None)
        .await
        .unwrap();
    assert_eq!(
        clients::stdout(&out).trim(),
        (CUSTOMER_COUNT + 1).to_string(),
        "{}",
        describe(&out)
    );
}

#[tokio::test]
async fn dropping_the_server_frees_its_port_and_dir() {
    let pg = start(Auth::Trust).await;
    let dir = pg.dir().to_path_buf();
    let port = pg.port();
    let pid = pg.pid().unwrap();
    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "postmaster {pid} still alive"
    );
    let out = clients::psql(
        &PgConn::new("127.0.0.1", port, "appdb", "app"),
        &["-c", "SELECT 1"],
        None,
    )
    .await
    .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
}
