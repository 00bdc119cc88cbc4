//! The `reviews` table on both backends: lookups, ordering, the one-pending-per-binding
//! rule and both compare-and-set updates under contention.

use std::sync::Arc;

use super::{with_postgres, with_sqlite};
use crate::{ReviewRow, Store, StoreError};

fn review(id: &str, binding: &str, status: &str, created_ms: i64) -> ReviewRow {
    ReviewRow {
        id: id.to_owned(),
        binding: binding.to_owned(),
        status: status.to_owned(),
        created_ms,
        expires_ms: created_ms + 100,
        updated_ms: created_ms,
        body: format!(r#"{{"id":"{id}","status":"{status}"}}"#),
    }
}

fn ids(rows: &[ReviewRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

/// `row` moved to `status` at `at_ms`, with a body that says so.
fn moved(row: &ReviewRow, status: &str, at_ms: i64, note: &str) -> ReviewRow {
    ReviewRow {
        status: status.to_owned(),
        updated_ms: at_ms,
        body: format!(
            r#"{{"id":"{}","status":"{status}","note":"{note}"}}"#,
            row.id
        ),
        ..row.clone()
    }
}

both!(insert_get_and_duplicates);
async fn insert_get_and_duplicates(store: Arc<dyn Store>) {
    let a = review("rv_a", "b1", "pending", 10);
    assert_eq!(store.review_get("rv_a").await.unwrap(), None);
    store.review_insert(&a).await.unwrap();
    assert_eq!(store.review_get("rv_a").await.unwrap(), Some(a.clone()));

    let same_id = review("rv_a", "b2", "denied", 11);
    let err = store.review_insert(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

    // A second pending review of the same command is refused; history is not.
    let err = store
        .review_insert(&review("rv_b", "b1", "pending", 12))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    store
        .review_insert(&review("rv_c", "b1", "denied", 13))
        .await
        .unwrap();
    store
        .review_insert(&review("rv_d", "b1", "denied", 14))
        .await
        .unwrap();
}

both!(find_list_and_due_order_newest_first);
async fn find_list_and_due_order_newest_first(store: Arc<dyn Store>) {
    let rows = [
        review("rv_1", "b1", "denied", 10),
        review("rv_2", "b1", "approved", 30),
        review("rv_3", "b1", "pending", 20),
        review("rv_4", "b2", "pending", 40),
        review("rv_5", "b2", "expired", 5),
    ];
    for r in &rows {
        store.review_insert(r).await.unwrap();
    }
    let open = store
        .review_find("b1", &["pending", "approved"])
        .await
        .unwrap();
    assert_eq!(ids(&open), ["rv_2", "rv_3"]);
    let all_b1 = store
        .review_find("b1", &["pending", "approved", "denied"])
        .await
        .unwrap();
    assert_eq!(ids(&all_b1), ["rv_2", "rv_3", "rv_1"]);
    assert!(store.review_find("b1", &[]).await.unwrap().is_empty());
    assert!(
        store
            .review_find("nope", &["pending"])
            .await
            .unwrap()
            .is_empty()
    );

    let all = store.review_list(None, 100).await.unwrap();
    assert_eq!(ids(&all), ["rv_4", "rv_2", "rv_3", "rv_1", "rv_5"]);
    assert_eq!(
        ids(&store.review_list(None, 2).await.unwrap()),
        ["rv_4", "rv_2"]
    );
    let pending = store.review_list(Some("pending"), 100).await.unwrap();
    assert_eq!(ids(&pending), ["rv_4", "rv_3"]);
    assert!(store.review_list(None, -1).await.unwrap().is_empty());

    // expires_ms = created_ms + 100: rv_3 expires at 120, rv_4 at 140 (inclusive).
    assert!(store.reviews_due("pending", 119).await.unwrap().is_empty());
    assert_eq!(
        ids(&store.reviews_due("pending", 120).await.unwrap()),
        ["rv_3"]
    );
    let due = store.reviews_due("pending", 1000).await.unwrap();
    assert_eq!(ids(&due), ["rv_3", "rv_4"]);
    assert_eq!(
        ids(&store.reviews_due("expired", 1000).await.unwrap()),
        ["rv_5"]
    );
}

both!(update_is_compare_and_set_on_status);
async fn update_is_compare_and_set_on_status(store: Arc<dyn Store>) {
    let row = review("rv_x", "b", "pending", 10);
    store.review_insert(&row).await.unwrap();
    let approved = moved(&row, "approved", 20, "a");
    assert!(!store.review_update("approved", &approved).await.unwrap());
    assert!(store.review_update("pending", &approved).await.unwrap());
    assert_eq!(
        store.review_get("rv_x").await.unwrap(),
        Some(approved.clone())
    );
    assert!(!store.review_update("pending", &approved).await.unwrap());
    // An unknown id updates nothing.
    let ghost = moved(&review("rv_ghost", "b", "pending", 1), "denied", 2, "g");
    assert!(!store.review_update("pending", &ghost).await.unwrap());
    assert_eq!(store.review_get("rv_ghost").await.unwrap(), None);
}

both!(concurrent_updates_from_pending_have_one_winner);
async fn concurrent_updates_from_pending_have_one_winner(store: Arc<dyn Store>) {
    for round in 0..5 {
        let row = review(&format!("rv_{round}"), &format!("b{round}"), "pending", 10);
        store.review_insert(&row).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let next = moved(
                    &row,
                    if i % 2 == 0 { "approved" } else { "denied" },
                    20,
                    &i.to_string(),
                );
                tokio::spawn(
                    async move { (store.review_update("pending", &next).await.unwrap(), next) },
                )
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (won, next) = t.await.unwrap();
            if won {
                winners.push(next);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(
            store.review_get(&row.id).await.unwrap().as_ref(),
            winners.first()
        );
    }
}

both!(replace_compares_the_whole_row);
async fn replace_compares_the_whole_row(store: Arc<dyn Store>) {
    let row = review("rv_r", "b", "pending", 10);
    store.review_insert(&row).await.unwrap();
    // Two changes that both keep the status: only the first may land, the second must
    // reload, or it would silently undo the first.
    let first = moved(&row, "pending", 11, "first approval");
    let second = moved(&row, "pending", 11, "second approval");
    assert!(store.review_replace(&row, &first).await.unwrap());
    assert!(!store.review_replace(&row, &second).await.unwrap());
    let second = moved(&first, "pending", 12, "second approval");
    assert!(store.review_replace(&first, &second).await.unwrap());
    assert_eq!(
        store.review_get("rv_r").await.unwrap(),
        Some(second.clone())
    );
    // A mismatched id is refused without touching either row.
    let other = review("rv_o", "c", "pending", 10);
    store.review_insert(&other).await.unwrap();
    let hijack = ReviewRow {
        id: other.id.clone(),
        ..moved(&second, "approved", 13, "x")
    };
    assert!(!store.review_replace(&second, &hijack).await.unwrap());
    assert_eq!(store.review_get("rv_o").await.unwrap(), Some(other));
}

both!(concurrent_replaces_have_one_winner);
async fn concurrent_replaces_have_one_winner(store: Arc<dyn Store>) {
    let row = review("rv_c", "b", "pending", 10);
    store.review_insert(&row).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, row) = (store.clone(), row.clone());
            let next = moved(&row, "pending", 20, &i.to_string());
            tokio::spawn(async move { store.review_replace(&row, &next).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

both!(pending_slot_frees_when_the_review_leaves_pending);
async fn pending_slot_frees_when_the_review_leaves_pending(store: Arc<dyn Store>) {
    let row = review("rv_1", "b", "pending", 10);
    store.review_insert(&row).await.unwrap();
    let expired = moved(&row, "expired", 200, "swept");
    assert!(store.review_update("pending", &expired).await.unwrap());
    store
        .review_insert(&review("rv_2", "b", "pending", 300))
        .await
        .unwrap();
    let pending = store.review_find("b", &["pending"]).await.unwrap();
    assert_eq!(ids(&pending), ["rv_2"]);
}

#[tokio::test]
async fn reviews_survive_reopening() {
    with_sqlite(|s, url| async move {
        s.review_insert(&review("rv_1", "b", "pending", 1))
            .await
            .unwrap();
        drop(s);
        let again = crate::open(&url).await.unwrap();
        assert_eq!(
            again.review_get("rv_1").await.unwrap().unwrap().binding,
            "b"
        );
    })
    .await;
    with_postgres(|s, url| async move {
        s.review_insert(&review("rv_1", "b", "pending", 1))
            .await
            .unwrap();
        let again = crate::open(&url).await.unwrap();
        assert_eq!(
            again.review_get("rv_1").await.unwrap().unwrap().binding,
            "b"
        );
    })
    .await;
}
