//! Session counting and what each limit tells the client.

use std::sync::Arc;
use std::time::Duration;

use portcullis_identity::Principal;
use portcullis_pgwire::{Backend, Frame, parse_backend};

use super::*;
use crate::error::PgError;
use crate::respond;

fn principal(issuer: &str, subject: &str) -> Principal {
    serde_json::from_value(serde_json::json!({
        "subject": subject, "issuer": issuer, "groups": [], "kind": "machine", "expires_at": 0,
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
    ] {
        assert_eq!(exceeded.code(), code);
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
