//! The review life cycle on both backends: request, reviewers' rules, deny, expiry,
//! restart, and what the sink hears.

// A test crate: the check functions outside #[test] may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, HOUR, NOW, agent, dba, new_review, reviewer};
use portcullis_reviews::{Requested, Review, ReviewError, Reviewer, Reviews, Status};

async fn pending(reviews: &Reviews, command: &str, approvals: u32, now: i64) -> Review {
    match reviews
        .request(new_review(command, approvals), now)
        .await
        .unwrap()
    {
        Requested::Pending(r) => r,
        Requested::Run(r) => panic!("expected a pending review, got Run({})", r.id),
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ReviewError>) -> &'static str {
    r.unwrap_err().code()
}

both!(request_is_pending_and_not_duplicated);
async fn request_is_pending_and_not_duplicated(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DELETE FROM t WHERE id = $1", 1, NOW).await;
    assert_eq!(r.status, Status::Pending);
    assert!(r.id.starts_with("rv_"), "{}", r.id);
    assert_eq!((r.created_ms, r.expires_ms), (NOW, NOW + HOUR));
    assert_eq!((r.requester, r.approvals_needed), (agent(), 1));
    assert_eq!(r.session_id.as_deref(), Some("s-1"));

    let again = pending(&reviews, "DELETE FROM t WHERE id = $1", 1, NOW + 5).await;
    assert_eq!(again.id, r.id);
    let other = pending(&reviews, "DELETE FROM u WHERE id = $1", 1, NOW + 5).await;
    assert_ne!(other.id, r.id);
    assert_eq!(
        reviews.list(Some(Status::Pending), 10).await.unwrap().len(),
        2
    );
    assert_eq!(reviews.get(&r.id).await.unwrap().unwrap().id, r.id);
    assert!(reviews.get("rv_nope").await.unwrap().is_none());
    assert_eq!(
        code(reviews.approve("rv_nope", &dba("alice"), "", NOW).await),
        "review_not_found"
    );
}

both!(who_may_approve);
async fn who_may_approve(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DELETE FROM t", 1, NOW).await;
    let outsider = reviewer("mallory", &["devs"]);
    let err = reviews
        .approve(&r.id, &outsider, "", NOW)
        .await
        .unwrap_err();
    assert!(matches!(&err, ReviewError::NotAReviewer { groups } if groups == &["dba"]));
    assert!(err.hint().contains("dba"), "{}", err.hint());

    // The requester itself, by subject, even when in the group.
    let me = Reviewer {
        subject: agent().subject,
        issuer: agent().issuer,
        client_id: None,
        groups: vec!["dba".into()],
    };
    assert_eq!(
        code(reviews.approve(&r.id, &me, "", NOW).await),
        "self_approval"
    );
    // Someone else acting through the requester's own client.
    let via_client = Reviewer {
        client_id: agent().client_id,
        ..dba("bob")
    };
    assert_eq!(
        code(reviews.approve(&r.id, &via_client, "", NOW).await),
        "self_approval"
    );
    assert_eq!(
        code(reviews.deny(&r.id, &via_client, "", NOW).await),
        "self_approval"
    );
    assert_eq!(
        reviews.get(&r.id).await.unwrap().unwrap().status,
        Status::Pending
    );

    let done = reviews
        .approve(&r.id, &dba("alice"), "looks fine", NOW + 1)
        .await
        .unwrap();
    assert_eq!(done.status, Status::Approved);
    assert_eq!(done.approvals[0].comment, "looks fine");
    assert_eq!(done.approvals[0].at_ms, NOW + 1);
    let late = reviews.approve(&r.id, &dba("bob"), "", NOW + 2).await;
    assert!(matches!(
        late,
        Err(ReviewError::NotPending {
            status: Status::Approved
        })
    ));
}

both!(two_approvals_from_distinct_reviewers);
async fn two_approvals_from_distinct_reviewers(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DROP TABLE t", 2, NOW).await;
    let one = reviews
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    assert_eq!((one.status, one.approvals.len()), (Status::Pending, 1));
    // Alice again, through another client and group: still one person.
    let alice_again = Reviewer {
        client_id: Some("cli".into()),
        ..reviewer("alice", &["dba", "sre"])
    };
    assert_eq!(
        code(reviews.approve(&r.id, &alice_again, "", NOW).await),
        "duplicate_reviewer"
    );
    let two = reviews.approve(&r.id, &dba("bob"), "", NOW).await.unwrap();
    assert_eq!((two.status, two.approvals.len()), (Status::Approved, 2));
    assert_eq!(reviews.get(&r.id).await.unwrap().unwrap(), two);
}

both!(deny_is_final);
async fn deny_is_final(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DELETE FROM t", 2, NOW).await;
    reviews
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    let denied = reviews
        .deny(&r.id, &dba("bob"), "not on a Friday", NOW + 1)
        .await
        .unwrap();
    assert_eq!(denied.status, Status::Denied);
    let denial = denied.denial.unwrap();
    assert_eq!(
        (denial.reviewer.subject.as_str(), denial.comment.as_str()),
        ("bob", "not on a Friday")
    );
    assert_eq!(
        code(reviews.approve(&r.id, &dba("carol"), "", NOW).await),
        "review_not_pending"
    );
    assert!(!reviews.consume(&r.id, NOW).await.unwrap());
    // A denial is history: asking again opens a new review.
    let next = pending(&reviews, "DELETE FROM t", 2, NOW + 2).await;
    assert_ne!(next.id, r.id);
}

both!(approved_command_runs_once);
async fn approved_command_runs_once(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DELETE FROM t", 1, NOW).await;
    reviews
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    // The agent retries its command: it runs, consuming the approval.
    let Requested::Run(ran) = reviews
        .request(new_review("DELETE FROM t", 1), NOW + 1)
        .await
        .unwrap()
    else {
        panic!("expected Run")
    };
    assert_eq!(
        (ran.id.as_str(), ran.status, ran.executed_ms),
        (r.id.as_str(), Status::Executed, Some(NOW + 1))
    );
    assert!(!reviews.consume(&r.id, NOW + 2).await.unwrap());
    // A third try needs a new review.
    let again = pending(&reviews, "DELETE FROM t", 1, NOW + 3).await;
    assert_ne!(again.id, r.id);
    assert_eq!(
        code(reviews.consume("rv_nope", NOW).await),
        "review_not_found"
    );
}

both!(expiry_by_sweep_and_lazily);
async fn expiry_by_sweep_and_lazily(env: Env) {
    let reviews = env.reviews();
    let swept = pending(&reviews, "DELETE FROM a", 1, NOW).await;
    let lazy = pending(&reviews, "DELETE FROM b", 1, NOW).await;
    let asked = pending(&reviews, "DELETE FROM c", 1, NOW).await;
    let fresh = pending(&reviews, "DELETE FROM d", 1, NOW + 10).await;
    assert_eq!(reviews.expire_due(NOW + HOUR - 1).await.unwrap(), 0);

    // Touching a lapsed review expires it (and says so) instead of deciding it.
    let err = reviews
        .approve(&lazy.id, &dba("alice"), "", NOW + HOUR)
        .await;
    assert_eq!(code(err), "review_expired");
    assert_eq!(
        reviews.get(&lazy.id).await.unwrap().unwrap().status,
        Status::Expired
    );
    let err = reviews.deny(&lazy.id, &dba("alice"), "", NOW + HOUR).await;
    assert!(matches!(
        err,
        Err(ReviewError::NotPending {
            status: Status::Expired
        })
    ));

    // Asking again for a lapsed command expires the old review and opens a new one.
    let renewed = pending(&reviews, "DELETE FROM c", 1, NOW + HOUR).await;
    assert_ne!(renewed.id, asked.id);
    assert_eq!(
        reviews.get(&asked.id).await.unwrap().unwrap().status,
        Status::Expired
    );

    assert_eq!(reviews.expire_due(NOW + HOUR).await.unwrap(), 1);
    assert_eq!(
        reviews.get(&swept.id).await.unwrap().unwrap().status,
        Status::Expired
    );
    assert_eq!(
        reviews.get(&fresh.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert_eq!(reviews.expire_due(NOW + HOUR).await.unwrap(), 0);
    for id in [&swept.id, &lazy.id, &asked.id] {
        assert_eq!(
            env.sink.of(id),
            [("requested", Status::Pending), ("expired", Status::Expired)]
        );
    }
}

both!(restart_keeps_reviews);
async fn restart_keeps_reviews(env: Env) {
    let r = pending(&env.reviews(), "TRUNCATE audit", 1, NOW).await;
    // A new service, as after a restart: same store, nothing in memory.
    let after = env.reviews();
    let listed = after.list(Some(Status::Pending), 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [r.id.as_str()]
    );
    assert_eq!(pending(&after, "TRUNCATE audit", 1, NOW + 1).await.id, r.id);
    after
        .approve(&r.id, &dba("alice"), "", NOW + 2)
        .await
        .unwrap();

    let restarted = env.reviews();
    let first = restarted
        .request(new_review("TRUNCATE audit", 1), NOW + 3)
        .await
        .unwrap();
    assert!(matches!(first, Requested::Run(ref ran) if ran.id == r.id));
    let second = restarted
        .request(new_review("TRUNCATE audit", 1), NOW + 4)
        .await
        .unwrap();
    assert!(matches!(second, Requested::Pending(ref p) if p.id != r.id));
}

both!(tightened_policy_is_not_satisfied_by_old_reviews);
async fn tightened_policy_is_not_satisfied_by_old_reviews(env: Env) {
    let reviews = env.reviews();
    let loose = pending(&reviews, "DELETE FROM t", 1, NOW).await;
    reviews
        .approve(&loose.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    // The policy now asks for two approvals: the old approval does not run the command.
    let strict = pending(&reviews, "DELETE FROM t", 2, NOW + 1).await;
    assert_ne!(strict.id, loose.id);
    assert_eq!(strict.approvals_needed, 2);
    // A pending review under the old terms is replaced, not reused.
    let mut narrower = new_review("DELETE FROM t", 2);
    narrower.reviewers = vec![];
    let Requested::Pending(replaced) = reviews.request(narrower, NOW + 2).await.unwrap() else {
        panic!("expected Pending")
    };
    assert_ne!(replaced.id, strict.id);
    assert_eq!(
        reviews.get(&strict.id).await.unwrap().unwrap().status,
        Status::Expired
    );
    assert_eq!(
        reviews.get(&loose.id).await.unwrap().unwrap().status,
        Status::Approved
    );
}

both!(sink_hears_every_change_in_order);
async fn sink_hears_every_change_in_order(env: Env) {
    let reviews = env.reviews();
    let r = pending(&reviews, "DELETE FROM t", 2, NOW).await;
    reviews
        .approve(&r.id, &dba("alice"), "", NOW)
        .await
        .unwrap();
    let _ = reviews
        .approve(&r.id, &reviewer("mallory", &[]), "", NOW)
        .await;
    reviews.approve(&r.id, &dba("bob"), "", NOW).await.unwrap();
    assert!(reviews.consume(&r.id, NOW).await.unwrap());
    assert!(!reviews.consume(&r.id, NOW).await.unwrap());
    assert_eq!(
        env.sink.of(&r.id),
        [
            ("requested", Status::Pending),
            ("approved", Status::Pending),
            ("approved", Status::Approved),
            ("executed", Status::Executed),
        ]
    );
    let d = pending(&reviews, "DELETE FROM u", 1, NOW).await;
    reviews.deny(&d.id, &dba("carol"), "no", NOW).await.unwrap();
    assert_eq!(
        env.sink.of(&d.id),
        [("requested", Status::Pending), ("denied", Status::Denied)]
    );
    let heard = env.sink.heard.lock().unwrap();
    let who: Vec<_> = heard.iter().filter_map(|h| h.3.as_deref()).collect();
    assert_eq!(who, ["alice", "bob", "carol"]);
}

#[test]
fn status_names_round_trip() {
    for s in Status::ALL {
        assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
    }
    assert!("Pending".parse::<Status>().is_err());
}

#[test]
fn error_codes_are_distinct_and_hinted() {
    let errors = [
        ReviewError::NotFound,
        ReviewError::NotPending {
            status: Status::Denied,
        },
        ReviewError::NotAReviewer {
            groups: vec!["dba".into()],
        },
        ReviewError::SelfApproval,
        ReviewError::AlreadyReviewed,
        ReviewError::Expired,
        ReviewError::Store(portcullis_store::StoreError::Query {
            op: "x",
            message: "y".into(),
        }),
    ];
    let codes: std::collections::HashSet<_> = errors.iter().map(ReviewError::code).collect();
    assert_eq!(codes.len(), errors.len());
    for e in &errors {
        assert!(!e.hint().is_empty() && !e.to_string().is_empty(), "{e:?}");
    }
}
