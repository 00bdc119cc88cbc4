//! The rules from data, without a store.

use super::*;
use crate::Requester;

fn pending(approvals_needed: u32) -> Review {
    Review {
        id: "rv_test".into(),
        binding: "b".into(),
        status: Status::Pending,
        requester: Requester {
            subject: "agent".into(),
            issuer: "https://idp".into(),
            client_id: Some("agent-client".into()),
        },
        connection: "prod".into(),
        action: "sql.delete".into(),
        command: "DELETE FROM t WHERE id = $1".into(),
        policies: vec!["p".into()],
        reviewers: vec!["dba".into(), "sre".into()],
        approvals_needed,
        approvals: Vec::new(),
        denial: None,
        created_ms: 0,
        expires_ms: 1000,
        executed_ms: None,
        session_id: None,
        run_id: None,
        tool_call_id: None,
    }
}

fn human(subject: &str, groups: &[&str]) -> Reviewer {
    Reviewer {
        subject: subject.into(),
        issuer: "https://idp".into(),
        client_id: Some("console".into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn code(step: Step) -> &'static str {
    match step {
        Ok((r, _)) => r.status.as_str(),
        Err(e) => e.code(),
    }
}

#[test]
fn who_may_review() {
    let r = pending(1);
    let check = |who: Reviewer| code(approve(r.clone(), &who, "", 10));
    assert_eq!(check(human("alice", &["dba"])), "approved");
    assert_eq!(check(human("alice", &["sre", "x"])), "approved");
    assert_eq!(check(human("mallory", &["devs"])), "reviewer_not_in_group");
    assert_eq!(check(human("mallory", &[])), "reviewer_not_in_group");
    // The requester itself, even when in the group.
    let mut me = human("agent", &["dba"]);
    assert_eq!(check(me.clone()), "self_approval");
    // The same subject at another issuer is someone else.
    me.issuer = "https://other".into();
    assert_eq!(check(me), "approved");
    // Another subject through the requester's own client.
    let mut via_client = human("bob", &["dba"]);
    via_client.client_id = Some("agent-client".into());
    assert_eq!(check(via_client), "self_approval");
    let mut no_client = human("bob", &["dba"]);
    no_client.client_id = None;
    assert_eq!(check(no_client), "approved");
    let deny_self = deny(r.clone(), &human("agent", &["dba"]), "", 10);
    assert_eq!(code(deny_self), "self_approval");
}

#[test]
fn approvals_count_once_per_reviewer() {
    let (r, change) = approve(pending(2), &human("alice", &["dba"]), "ok", 10).unwrap();
    assert_eq!(r.status, Status::Pending);
    assert!(
        matches!(change, Change::Approved { ref by, ref comment } if by.subject == "alice" && comment == "ok")
    );
    let again = approve(r.clone(), &human("alice", &["sre"]), "", 11);
    assert_eq!(code(again), "duplicate_reviewer");
    let (r, _) = approve(r, &human("bob", &["sre"]), "", 12).unwrap();
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.approvals.len(), 2);
    assert_eq!(
        code(approve(r.clone(), &human("carol", &["dba"]), "", 13)),
        "review_not_pending"
    );
    assert_eq!(
        code(deny(r, &human("carol", &["dba"]), "", 13)),
        "review_not_pending"
    );
}

#[test]
fn zero_approvals_means_one() {
    let (r, _) = approve(pending(0), &human("alice", &["dba"]), "", 10).unwrap();
    assert_eq!(r.status, Status::Approved);
}

#[test]
fn deny_ends_the_review_even_after_own_approval() {
    let (r, _) = approve(pending(2), &human("alice", &["dba"]), "", 10).unwrap();
    let (r, change) = deny(r, &human("alice", &["dba"]), "changed my mind", 11).unwrap();
    assert_eq!(r.status, Status::Denied);
    assert_eq!(
        r.denial.as_ref().map(|d| d.comment.as_str()),
        Some("changed my mind")
    );
    assert!(matches!(change, Change::Denied { .. }));
}

#[test]
fn lapsed_reviews_expire_instead_of_being_decided() {
    let r = pending(1);
    assert!(!lapsed(&r, 999));
    assert!(lapsed(&r, 1000));
    // Expiry wins over every other check, even for someone who may not review.
    for who in [human("alice", &["dba"]), human("mallory", &[])] {
        let (r2, change) = approve(r.clone(), &who, "", 1000).unwrap();
        assert_eq!((r2.status, change), (Status::Expired, Change::Expired));
        let (r3, _) = deny(r.clone(), &who, "", 1000).unwrap();
        assert_eq!(r3.status, Status::Expired);
    }
    assert_eq!(code(expire_if_lapsed(r.clone(), 999)), "review_not_pending");
    assert_eq!(code(expire_if_lapsed(r, 1000)), "expired");
}

#[test]
fn consume_only_from_approved() {
    assert_eq!(code(consume(pending(1), 5)), "review_not_pending");
    let (r, _) = approve(pending(1), &human("alice", &["dba"]), "", 10).unwrap();
    let (r, change) = consume(r, 20).unwrap();
    assert_eq!(
        (r.status, r.executed_ms, change),
        (Status::Executed, Some(20), Change::Executed)
    );
    assert_eq!(code(consume(r, 21)), "review_not_pending");
}

#[test]
fn reuse_requires_terms_at_least_as_strict() {
    let existing = pending(2);
    let new = |reviewers: &[&str], approvals: u32| NewReview {
        requester: existing.requester.clone(),
        connection: "prod".into(),
        action: "sql.delete".into(),
        command: "x".into(),
        binding: "b".into(),
        policies: vec![],
        reviewers: reviewers.iter().map(|g| g.to_string()).collect(),
        approvals,
        session_id: None,
        run_id: None,
        tool_call_id: None,
    };
    assert!(covers(&existing, &new(&["dba", "sre"], 2)));
    assert!(covers(&existing, &new(&["sre", "dba", "extra"], 1)));
    // Tightened: fewer groups, or more approvals.
    assert!(!covers(&existing, &new(&["dba"], 2)));
    assert!(!covers(&existing, &new(&["dba", "sre"], 3)));
    assert_eq!(code(supersede(existing)), "expired");
}
