//! Session counting, the idle deadlines and what each limit tells the client.

use std::sync::Arc;
use std::time::Duration;

use portcullis_identity::Principal;
use portcullis_pgwire::{Backend, Frame, TransactionStatus, parse_backend};
use tokio::time::Instant;

use super::*;
use crate::error::PgError;
use crate::respond;

fn principal(issuer: &str, subject: &str) -> Principal {
    serde_json::from_value(serde_json::json!({
        "subject": subject, "issuer": issuer, "groups": [], "kind": "machine", "expires_at": 0,
        "valid_until": 0,
    }))
    .unwrap()
}

fn limits(per_principal: usize, per_connection: usize) -> SessionLimits {
    SessionLimits {
        max_sessions_per_principal: per_principal,
        max_sessions_per_connection: per_connection,
        ..SessionLimits::default()
    }
}

#[test]
fn sessions_are_counted_per_principal_across_connections_and_per_connection() {
    let sessions = Arc::new(Sessions::default());
    let l = limits(2, 3);
    let alice = principal("https://idp", "alice");
    let a1 = sessions.admit(&alice, "db1", &l).unwrap();
    let _a2 = sessions.admit(&alice, "db2", &l).unwrap();
    assert_eq!(
        sessions.admit(&alice, "db3", &l).unwrap_err(),
        Exceeded::SessionsPerPrincipal(2)
    );
    // The same subject from another issuer is another principal.
    let other_alice = principal("https://other-idp", "alice");
    let _b1 = sessions.admit(&other_alice, "db1", &l).unwrap();
    let _b2 = sessions
        .admit(&principal("https://idp", "bob"), "db1", &l)
        .unwrap();
    assert_eq!(
        sessions.admit(&other_alice, "db1", &l).unwrap_err(),
        Exceeded::SessionsPerConnection(3)
    );
    // A session that ends gives its place back, however it ended.
    drop(a1);
    let _a3 = sessions.admit(&alice, "db1", &l).unwrap();
    assert_eq!(
        sessions.admit(&other_alice, "db1", &l).unwrap_err(),
        Exceeded::SessionsPerConnection(3)
    );
}

#[test]
fn counts_of_ended_sessions_leave_nothing_behind() {
    let sessions = Arc::new(Sessions::default());
    let l = limits(5, 5);
    let slots: Vec<_> = (0..5)
        .map(|i| {
            let p = principal("https://idp", &format!("agent-{i}"));
            sessions.admit(&p, "db", &l).unwrap()
        })
        .collect();
    drop(slots);
    let c = sessions.lock();
    assert!(c.principals.is_empty() && c.connections.is_empty());
}

#[test]
fn idle_deadlines_follow_the_transaction_status_and_wait_for_what_is_in_flight() {
    let l = SessionLimits {
        idle_session_timeout: Duration::from_secs(3600),
        idle_in_transaction_timeout: Duration::from_secs(600),
        ..SessionLimits::default()
    };
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(5);
    let quiet = |in_flight, status| Quiet {
        in_flight,
        status,
        since: t0,
    };
    let check = |q: Quiet, read_since, want: Option<(Instant, Exceeded)>| {
        assert_eq!(idle_deadline(q, read_since, &l), want, "{q:?}");
    };
    check(quiet(true, TransactionStatus::Idle), t0, None);
    check(quiet(true, TransactionStatus::InTransaction), t0, None);
    check(
        quiet(false, TransactionStatus::Idle),
        t0,
        Some((
            t0 + Duration::from_secs(3600),
            Exceeded::IdleSession(Duration::from_secs(3600)),
        )),
    );
    let in_tx = Some((
        t0 + Duration::from_secs(600),
        Exceeded::IdleInTransaction(Duration::from_secs(600)),
    ));
    check(quiet(false, TransactionStatus::InTransaction), t0, in_tx);
    check(quiet(false, TransactionStatus::Failed), t0, in_tx);
    // A client message that put nothing in flight (the relay began waiting again) counts.
    check(
        quiet(false, TransactionStatus::Idle),
        later,
        Some((
            later + Duration::from_secs(3600),
            Exceeded::IdleSession(Duration::from_secs(3600)),
        )),
    );
}

/// Each limit as the client reads it: FATAL, SQLSTATE, `code:` in the DETAIL, a hint.
#[test]
fn each_limit_has_its_sqlstate_reason_code_and_hint() {
    let s = Duration::from_secs;
    for (exceeded, sqlstate, code, words) in [
        (
            Exceeded::SessionsPerPrincipal(100),
            "53300",
            "session_limit_principal",
            "at most 100",
        ),
        (
            Exceeded::SessionsPerConnection(500),
            "53300",
            "session_limit_connection",
            "at most 500",
        ),
        (
            Exceeded::ServerConnections {
                limit: 50,
                waited: s(10),
            },
            "53300",
            "server_connections_exhausted",
            "all 50 server connections of this connection stayed in use for 10s",
        ),
        (
            Exceeded::ClientStalled(s(30)),
            "08P01",
            "client_stalled",
            "within 30s",
        ),
        (
            Exceeded::IdleSession(s(3600)),
            "57P05",
            "idle_timeout",
            "idle-session timeout",
        ),
        (
            Exceeded::IdleInTransaction(s(600)),
            "25P03",
            "idle_in_transaction_timeout",
            "idle-in-transaction timeout",
        ),
    ] {
        assert_eq!(exceeded.code().as_str(), code);
        let bytes = respond::fatal(&PgError::Limit(exceeded));
        let frame = Frame::new(bytes[0], &bytes[5..]).unwrap();
        let Ok(Backend::ErrorResponse(e)) = parse_backend(&frame) else {
            panic!("not an ErrorResponse: {frame:?}")
        };
        let text = |t: u8| String::from_utf8_lossy(e.get(t).unwrap_or_default()).into_owned();
        assert_eq!(text(b'V'), "FATAL", "{code}");
        assert_eq!(text(b'C'), sqlstate, "{code}");
        assert_eq!(text(b'D'), format!("code: {code}"));
        assert!(text(b'M').contains(words), "{code}: {}", text(b'M'));
        assert!(!text(b'H').is_empty(), "{code} has no hint");
    }
}
