//! The gateway's own login to servers started by the integration harness: SCRAM-SHA-256,
//! MD5, TLS with certificate verification, and a wrong password that must not leak.

use portcullis_integration_tests::postgres::{Auth, PgServer};
use portcullis_proxy_postgres::{PgTarget, UpstreamTls};
use secrecy::SecretString;

use crate::support::{self, code};

fn target(server: &PgServer, password: &str, tls: UpstreamTls) -> PgTarget {
    PgTarget {
        upstream: server.addr(),
        database: server.app_db().into(),
        user: server.app_user().into(),
        password: Some(SecretString::from(password.to_owned())),
        tls,
        ..support::local_target()
    }
}

async fn customers(server: &PgServer, tls: UpstreamTls) -> i64 {
    let gw = support::start_full(|_| {}, target(server, server.app_password(), tls)).await;
    let client = gw.client().await;
    client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn scram_and_md5_logins_with_injected_credentials() {
    let scram = PgServer::start().await.unwrap();
    assert_eq!(scram.auth(), Auth::Scram);
    assert_eq!(customers(&scram, UpstreamTls::Disable).await, 20);
    let md5 = PgServer::md5().await.unwrap();
    assert_eq!(customers(&md5, UpstreamTls::Disable).await, 20);
}

#[tokio::test]
async fn tls_to_the_server_verified_against_its_ca() {
    let server = PgServer::builder()
        .tls(true)
        .require_tls(true)
        .start()
        .await
        .unwrap();
    let ca = server.ca_cert_path().map(ToOwned::to_owned);
    assert_eq!(
        customers(&server, UpstreamTls::VerifyFull { ca_file: ca }).await,
        20
    );
    assert_eq!(customers(&server, UpstreamTls::Require).await, 20);
    // Without TLS the server refuses the gateway (hostssl only).
    let gw = support::start_full(
        |_| {},
        target(&server, server.app_password(), UpstreamTls::Disable),
    )
    .await;
    let err = gw
        .connect("test", &gw.token(&["agents"]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "08006");
    // A CA that did not sign the server's certificate is refused.
    let other = PgServer::builder().tls(true).start().await.unwrap();
    let wrong_ca = other.ca_cert_path().map(ToOwned::to_owned);
    let gw = support::start_full(
        |_| {},
        target(
            &server,
            server.app_password(),
            UpstreamTls::VerifyFull { ca_file: wrong_ca },
        ),
    )
    .await;
    let err = gw
        .connect("test", &gw.token(&["agents"]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "08006");
}

#[tokio::test]
async fn a_wrong_upstream_password_is_reported_without_details() {
    let server = PgServer::start().await.unwrap();
    let gw = support::start_full(|_| {}, target(&server, "wrong", UpstreamTls::Disable)).await;
    let err = gw
        .connect("test", &gw.token(&["agents"]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "08006");
    let db = err.as_db_error().unwrap();
    assert_eq!(db.message(), "upstream authentication failed");
    assert!(!format!("{db:?}").contains(server.app_user()), "{db:?}");
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "upstream_error");
    assert_eq!(close["detail"], "08006: upstream authentication failed");
}
