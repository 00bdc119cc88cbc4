//! The extended query protocol: denial at Parse, named statements decided again at Bind,
//! pipelined requests matched to the right responses.

use crate::support::{self, code, count, drop_table, engine, table};

#[tokio::test]
async fn a_denied_parse_fails_that_statement_only() {
    let gw = support::start().await;
    let t = table("xparse", 4).await;
    let client = gw.client().await;
    let err = client
        .prepare(&format!("DELETE FROM {t}"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("no-unbounded-writes")
    );
    let err = client
        .execute(&format!("UPDATE {t} SET v = $1"), &[&"x"])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    assert_eq!(count(&t).await, 4);
    let row = client
        .query_one("SELECT $1::int + 1", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop_table(&t).await;
}

#[tokio::test]
async fn extended_denial_inside_a_transaction_block_aborts_it() {
    let gw = support::start().await;
    let t = table("xtx", 2).await;
    let client = gw.client().await;
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(&format!("INSERT INTO {t} VALUES ($1, 'n')"), &[&9i32])
        .await
        .unwrap();
    let err = client
        .execute(&format!("DELETE FROM {t}"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    let err = client
        .query_one("SELECT $1::int", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&t).await, 2);
    drop_table(&t).await;
}

#[tokio::test]
async fn a_named_statement_is_decided_again_at_each_execution() {
    let gw = support::start().await;
    let t = table("redecide", 3).await;
    let client = gw.client().await;
    let stmt = client
        .prepare(&format!("SELECT v FROM {t} WHERE id = $1"))
        .await
        .unwrap();
    let row = client.query_one(&stmt, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "v2");
    // The policy changes while the statement stays prepared: the next Bind is refused.
    let no_reads = support::POLICY.replace("Action::\"sql.read\", ", "");
    gw.pipeline.swap_policy(engine(&no_reads));
    let err = client.query_one(&stmt, &[&2i32]).await.unwrap_err();
    assert_eq!(code(&err), "42501");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("sql.select denied")
    );
    gw.pipeline.swap_policy(engine(support::POLICY));
    let row = client.query_one(&stmt, &[&3i32]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "v3");
    let selects: Vec<_> = gw
        .events()
        .await
        .into_iter()
        .filter(|e| e["action"] == "sql.select" && e["command"].as_str().unwrap_or("").contains(&t))
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        selects,
        ["allow", "allow", "deny", "allow"],
        "Parse, then one per Bind"
    );
    drop_table(&t).await;
}

#[tokio::test]
async fn pipelined_requests_get_their_own_answers() {
    let gw = support::start().await;
    let t = table("pipeline", 3).await;
    let client = gw.client().await;
    let sel = format!("SELECT count(*) FROM {t} WHERE id > $1");
    let del = format!("DELETE FROM {t}");
    let (a, b, c) = tokio::join!(
        client.query_one(&sel, &[&0i32]),
        client.execute(&del, &[]),
        client.query_one(&sel, &[&1i32]),
    );
    assert_eq!(a.unwrap().get::<_, i64>(0), 3);
    assert_eq!(code(&b.unwrap_err()), "42501");
    assert_eq!(c.unwrap().get::<_, i64>(0), 2);
    assert_eq!(count(&t).await, 3);
    drop_table(&t).await;
}
