use serde_json::{Value, json};

use super::*;
use crate::testkit::{Env, NODE, decision, event, record, who};
use crate::{Event, to_canonical};

const TS: i64 = 1_795_900_882_437;

/// Maps `e` (as record `seq`) and checks everything every OCSF event must carry.
fn check(seq: i64, e: &Event) -> Value {
    let rec = record(seq, TS, e);
    let out = to_ocsf(&rec);
    check_base(&out);
    assert_eq!(out["time"], TS);
    assert_eq!(out["metadata"]["uid"], format!("{NODE}:{seq}"));
    assert_eq!(out["metadata"]["sequence"], seq);
    assert_eq!(out["metadata"]["original_time"], "2026-11-28T21:21:22.437Z");
    assert_eq!(out["unmapped"], rec, "the record is kept whole");
    out
}

/// The attributes the schema requires of every event, and their captions.
fn check_base(out: &Value) {
    for key in [
        "class_uid",
        "category_uid",
        "activity_id",
        "type_uid",
        "severity_id",
        "time",
    ] {
        assert!(out[key].is_i64(), "{key} in {out}");
    }
    for key in [
        "class_name",
        "category_name",
        "activity_name",
        "type_name",
        "severity",
        "message",
    ] {
        assert!(out[key].is_string(), "{key} in {out}");
    }
    let (class, activity) = (out["class_uid"].as_i64(), out["activity_id"].as_i64());
    assert_eq!(
        out["type_uid"].as_i64(),
        class.zip(activity).map(|(c, a)| c * 100 + a)
    );
    assert_eq!(out["metadata"]["version"], OCSF_VERSION);
    assert_eq!(out["metadata"]["product"]["name"], "Portcullis");
    assert_eq!(out["metadata"]["product"]["vendor_name"], "Portcullis");
    assert!(out["metadata"]["uid"].is_string());
    assert!(out["metadata"]["original_time"].is_string());
    assert!(out.get("unmapped").is_some());
    if out.get("status_id").is_some() {
        assert!(out["status"].is_string());
    }
}

/// `(class_uid, activity_id, status_id)` of an event.
type Ids = (i64, i64, Option<i64>);

fn ids(out: &Value) -> Ids {
    (
        out["class_uid"].as_i64().unwrap_or(-1),
        out["activity_id"].as_i64().unwrap_or(-1),
        out["status_id"].as_i64(),
    )
}

fn data(e: Event, data: Value) -> Event {
    Event {
        data: Some(data),
        ..e
    }
}

fn reviewer_event(kind: &str, outcome: &str, by: &str) -> Event {
    Event {
        who: Some(who(
            by,
            if by == "alice" {
                "requester"
            } else {
                "reviewer"
            },
        )),
        connection: Some("billing".into()),
        action: Some("sql.update".into()),
        command: Some("UPDATE t SET a = 1".into()),
        data: Some(
            json!({ "review_id": "rv_1", "approvals": 1, "approvals_needed": 2, "comment": "ok" }),
        ),
        ..event(kind, outcome)
    }
}

#[test]
fn every_event_kind_maps() {
    let admin = |action: &str| Event {
        protocol: Some("api".into()),
        connection: None,
        ..decision("root", "x", action, "allow")
    };
    let result = |outcome: &str, sqlstate: Value| {
        data(
            Event {
                command: None,
                source_ip: None,
                ..decision("alice", "billing", "sql.select", "")
            },
            json!({ "decision_seq": 15, "rows": 3, "bytes": 120, "duration_us": 2500, "sqlstate": sqlstate, "masked": {"EMAIL": 3} }),
        )
        .with_kind("statement.result", outcome)
    };
    let session = |kind: &str, outcome: &str| Event {
        who: Some(who("alice", "machine")),
        connection: Some("billing".into()),
        protocol: Some("postgres".into()),
        session_id: Some("s-1".into()),
        data: Some(json!({ "ended": "client_terminate", "duration_ms": 1200, "statements": 4 })),
        ..event(kind, outcome)
    };
    let cases: Vec<(&str, Event, Ids)> = vec![
        (
            "select allowed",
            decision("alice", "billing", "sql.select", "allow"),
            (6005, 4, Some(1)),
        ),
        (
            "delete denied",
            decision("alice", "billing", "sql.delete", "deny"),
            (6005, 7, Some(2)),
        ),
        (
            "update held",
            decision("alice", "billing", "sql.update", "approval_required"),
            (6005, 2, Some(99)),
        ),
        (
            "insert",
            decision("alice", "billing", "sql.insert", "allow"),
            (6005, 6, Some(1)),
        ),
        (
            "copy from",
            decision("alice", "billing", "sql.copy_from", "allow"),
            (6005, 5, Some(1)),
        ),
        (
            "copy to",
            decision("alice", "billing", "sql.copy_to", "allow"),
            (6005, 1, Some(1)),
        ),
        (
            "merge",
            decision("alice", "billing", "sql.merge", "allow"),
            (6005, 2, Some(1)),
        ),
        (
            "ddl",
            decision("alice", "billing", "sql.ddl", "deny"),
            (6005, 99, Some(2)),
        ),
        (
            "connect",
            decision("alice", "billing", "connect", "allow"),
            (6005, 3, Some(1)),
        ),
        (
            "unmask",
            decision("alice", "billing", "data.unmask", "deny"),
            (6005, 99, Some(2)),
        ),
        ("result ok", result("ok", Value::Null), (6005, 4, Some(1))),
        (
            "result error",
            result("error", json!("23505")),
            (6005, 4, Some(2)),
        ),
        ("admin revoke", admin("admin.revoke"), (6003, 1, Some(1))),
        ("admin read", admin("admin.read"), (6003, 2, Some(1))),
        ("admin reload", admin("admin.reload"), (6003, 3, Some(1))),
        (
            "kubernetes delete",
            Event {
                protocol: Some("http".into()),
                ..decision("alice", "k8s", "k8s.delete", "deny")
            },
            (6003, 4, Some(2)),
        ),
        (
            "ssh exec",
            Event {
                protocol: Some("ssh".into()),
                ..decision("alice", "box", "ssh.exec", "allow")
            },
            (6003, 99, Some(1)),
        ),
        (
            "token rejected",
            data(
                Event {
                    source_ip: Some("10.0.0.9".into()),
                    protocol: Some("postgres".into()),
                    reason_code: Some("expired".into()),
                    ..event("token.rejected", "deny")
                },
                json!({"subject": "mallory"}),
            ),
            (3002, 1, Some(2)),
        ),
        (
            "session open",
            session("session.open", "ok"),
            (3002, 1, Some(1)),
        ),
        (
            "session close",
            session("session.close", "ok"),
            (3002, 2, Some(1)),
        ),
        (
            "session close error",
            session("session.close", "error"),
            (3002, 2, Some(2)),
        ),
        (
            "session refused",
            Event {
                reason_code: Some("session_limit_principal".into()),
                ..session("session.refused", "deny")
            },
            (3002, 1, Some(2)),
        ),
        (
            "review requested",
            reviewer_event("review.requested", "pending", "alice"),
            (6003, 1, Some(1)),
        ),
        (
            "review approved",
            reviewer_event("review.approved", "approved", "bob"),
            (6003, 3, Some(1)),
        ),
        (
            "review denied",
            reviewer_event("review.denied", "denied", "bob"),
            (6003, 3, Some(1)),
        ),
        (
            "review expired",
            reviewer_event("review.expired", "expired", "alice"),
            (6003, 3, Some(1)),
        ),
        (
            "review executed",
            reviewer_event("review.executed", "executed", "alice"),
            (6003, 3, Some(1)),
        ),
        (
            "revoke subject",
            data(
                Event {
                    who: Some(who("root", "human")),
                    detail: Some("left".into()),
                    ..event("revocation", "ok")
                },
                json!({"kind": "subject", "value": "alice"}),
            ),
            (3001, 5, Some(1)),
        ),
        (
            "revoke client",
            data(
                event("revocation", "ok"),
                json!({"kind": "client_id", "value": "c1"}),
            ),
            (3001, 5, Some(1)),
        ),
        (
            "revoke token",
            data(
                event("revocation", "ok"),
                json!({"kind": "token_id", "value": "t1"}),
            ),
            (3001, 99, Some(1)),
        ),
        (
            "reload ok",
            data(event("config.reload", "ok"), json!({"policies": 3})),
            (6003, 3, Some(1)),
        ),
        (
            "reload error",
            Event {
                detail: Some("policy.cedar:3: bad".into()),
                ..event("config.reload", "error")
            },
            (6003, 3, Some(2)),
        ),
        (
            "notify failed",
            data(
                event("notify.failed", "error"),
                json!({"url": "https://hooks.test", "review_id": "rv_1"}),
            ),
            (6003, 1, Some(2)),
        ),
        (
            "gateway start",
            data(event("gateway.start", "ok"), json!({"version": "0.1.0"})),
            (6002, 3, Some(1)),
        ),
        (
            "gateway stop",
            event("gateway.stop", "ok"),
            (6002, 4, Some(1)),
        ),
        (
            "unknown kind",
            event("something.new", "ok"),
            (0, 99, Some(1)),
        ),
        (
            "unknown review kind",
            event("review.reopened", "pending"),
            (6003, 99, Some(1)),
        ),
        ("no kind", event("", ""), (0, 0, None)),
    ];
    for (i, (name, e, want)) in cases.into_iter().enumerate() {
        let out = check(i as i64 + 1, &e);
        assert_eq!(ids(&out), want, "{name}: {out:#}");
    }
}

trait WithKind {
    fn with_kind(self, kind: &str, outcome: &str) -> Self;
}

impl WithKind for Event {
    fn with_kind(self, kind: &str, outcome: &str) -> Self {
        Event {
            kind: kind.into(),
            outcome: Some(outcome.into()),
            ..self
        }
    }
}

#[test]
fn a_denied_sql_decision_in_full() {
    let e = Event {
        policies: vec!["no-deletes".into(), "prod-guard".into()],
        reason_code: Some("forbidden".into()),
        detail: Some("deletes need a WHERE".into()),
        command: Some("DELETE FROM invoices".into()),
        ..decision("alice", "billing", "sql.delete", "deny")
    };
    let out = check(16, &e);
    assert_eq!(out["class_name"], "Datastore Activity");
    assert_eq!(out["category_name"], "Application Activity");
    assert_eq!(out["type_uid"], 600_507);
    assert_eq!(out["type_name"], "Datastore Activity: Delete");
    assert_eq!(out["severity_id"], 2);
    assert_eq!(
        (&out["status"], &out["status_code"]),
        (&json!("Failure"), &json!("forbidden"))
    );
    assert_eq!(out["status_detail"], "deletes need a WHERE");
    assert_eq!(
        (&out["action_id"], &out["disposition_id"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(out["metadata"]["profiles"], json!(["security_control"]));
    assert_eq!(out["metadata"]["correlation_uid"], "gw-1:16");
    assert_eq!(
        out["policy"],
        json!({ "uid": "no-deletes", "name": "no-deletes" })
    );
    assert_eq!(
        out["database"],
        json!({ "name": "billing", "type": "postgres" })
    );
    assert_eq!(out["type_id"], 1);
    assert_eq!(
        out["query_info"],
        json!({ "query_string": "DELETE FROM invoices", "uid": "gw-1:16" })
    );
    assert_eq!(out["src_endpoint"], json!({ "ip": "10.1.2.3" }));
    let actor = &out["actor"];
    assert_eq!(
        actor["user"],
        json!({
            "uid": "alice", "name": "alice", "uid_alt": "alice-client", "groups": [{"name": "agents"}],
            "credential_uid": "tok-alice", "type_id": 4, "type": "Service",
        })
    );
    assert_eq!(actor["idp"]["name"], "https://idp.example.test");
    assert_eq!(actor["session"]["uid"], "s-alice");
    assert_eq!(
        actor["authorizations"][1],
        json!({ "decision": "deny", "policy": { "uid": "prod-guard", "name": "prod-guard" } })
    );
    assert_eq!(out["message"], "decision deny sql.delete on billing");
}

#[test]
fn held_commands_are_delayed_not_allowed() {
    let out = check(
        3,
        &decision("alice", "billing", "sql.update", "approval_required"),
    );
    assert_eq!(out["disposition"], "Delayed");
    assert_eq!(out["disposition_id"], 14);
    assert!(out.get("action_id").is_none());
    assert_eq!(out["status"], "Pending Approval");
}

#[test]
fn results_point_at_their_decision() {
    let e = data(
        Event {
            command: None,
            ..decision("alice", "billing", "sql.insert", "")
        },
        json!({ "decision_seq": 41, "duration_us": 12_345, "sqlstate": "23505" }),
    )
    .with_kind("statement.result", "error");
    let out = check(42, &e);
    assert_eq!(out["metadata"]["correlation_uid"], "gw-1:41");
    assert_eq!(out["duration"], 12);
    assert_eq!(out["status_code"], "23505");
    assert!(
        out.get("query_info").is_none(),
        "query_string is required in query_info"
    );
}

#[test]
fn reviews_name_the_reviewer_and_the_review() {
    let out = check(7, &reviewer_event("review.approved", "pending", "bob"));
    assert_eq!(out["actor"]["user"]["uid"], "bob");
    assert_eq!(out["actor"]["user"]["type"], "User");
    assert_eq!(out["disposition"], "Approved");
    assert_eq!(out["status_detail"], "pending");
    assert_eq!(out["metadata"]["correlation_uid"], "rv_1");
    assert_eq!(out["api"]["operation"], "review.approved");
    assert_eq!(
        out["resources"][0],
        json!({ "type": "Review", "uid": "rv_1" })
    );
    assert_eq!(
        out["resources"][1],
        json!({ "type": "Connection", "name": "billing" })
    );
}

#[test]
fn authentication_events_name_user_and_service() {
    let rejected = data(
        Event {
            protocol: Some("postgres".into()),
            reason_code: Some("bad_signature".into()),
            ..event("token.rejected", "deny")
        },
        json!({ "issuer": "https://idp.example.test" }),
    );
    let out = check(1, &rejected);
    assert_eq!(
        out["user"]["name"], "unknown",
        "no subject: the schema still wants a user"
    );
    assert_eq!(out["service"]["name"], "Portcullis postgres");
    assert_eq!(out["status_code"], "bad_signature");
    assert!(
        out.get("actor").is_none(),
        "an unverified token names no actor"
    );

    let gateway = check(2, &event("gateway.stop", "ok"));
    assert_eq!(gateway["actor"], json!({ "app_name": "Portcullis" }));
    assert_eq!(gateway["app"]["name"], "Portcullis");
}

#[test]
fn the_unmapped_record_hashes_to_the_chain() {
    let rec = record(16, TS, &decision("alice", "billing", "sql.select", "allow"));
    let line = to_canonical(&rec);
    let out = to_ocsf(&serde_json::from_str(&line).unwrap_or_default());
    assert_eq!(to_canonical(&out["unmapped"]), line);
}

#[test]
fn anything_at_all_maps_without_panicking() {
    let inputs = [
        json!(null),
        json!([]),
        json!("text"),
        json!(5),
        json!({}),
        json!({ "event": 5 }),
        json!({ "event": { "kind": 5 }, "seq": "x", "ts_ms": "y" }),
        json!({ "event": { "kind": "decision", "who": "x", "policies": "p", "outcome": [], "data": [1] } }),
        json!({ "event": { "kind": "decision", "who": { "subject": 1, "groups": [1, null, "g"] }, "policies": [1, "p"] } }),
        json!({ "event": { "kind": "statement.result", "data": { "duration_us": -1, "decision_seq": "x", "sqlstate": 5 } } }),
        json!({ "event": { "kind": "session.close", "data": { "duration_ms": 1.5, "ended": null } } }),
        json!({ "event": { "kind": "revocation", "data": { "kind": "token_id" } } }),
        json!({ "event": { "kind": "token.rejected" }, "ts_ms": i64::MIN, "seq": i64::MAX }),
        json!({ "event": { "kind": "review.approved", "data": "rv" }, "ts_ms": 1e300 }),
    ];
    for input in inputs {
        let out = to_ocsf(&input);
        check_base(&out);
        assert_eq!(out["unmapped"], input);
    }
}

#[tokio::test]
async fn export_writes_one_event_per_record_in_order() {
    let env = Env::sqlite().await;
    let events = vec![
        data(event("gateway.start", "ok"), json!({ "version": "0.1.0" })),
        decision("alice", "billing", "connect", "allow"),
        decision("alice", "billing", "sql.select", "allow"),
        decision("alice", "billing", "sql.delete", "deny"),
        event("gateway.stop", "ok"),
    ];
    env.record_all(events).await;
    let mut out = Vec::new();
    let n = export_ocsf(&*env.store, None, None, &mut out)
        .await
        .unwrap_or(0);
    assert_eq!(n, 5);
    let text = String::from_utf8(out).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    let classes: Vec<i64> = lines
        .iter()
        .map(|l| l["class_uid"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(classes, [6002, 6005, 6005, 6005, 6002]);
    let rows = env.store.audit_page(NODE, 0, 10).await.unwrap_or_default();
    for (line, row) in lines.iter().zip(&rows) {
        check_base(line);
        assert_eq!(line["metadata"]["uid"], format!("{NODE}:{}", row.seq));
        // The unmapped record is the stored body: hashing it gives the chain hash.
        assert_eq!(
            crate::record::hash(&to_canonical(&line["unmapped"])),
            row.hash
        );
    }
    // A period that excludes everything writes nothing.
    let mut none = Vec::new();
    assert_eq!(
        export_ocsf(&*env.store, Some(0), Some(1), &mut none)
            .await
            .ok(),
        Some(0)
    );
    assert!(none.is_empty());
}
