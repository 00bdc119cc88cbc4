//! The simple query protocol: allowed and denied statements, transaction blocks, COPY.

use crate::support::{self, code, count, drop_table, table};

#[tokio::test]
async fn allowed_select_runs_and_is_audited() {
    let gw = support::start().await;
    let client = gw.client().await;
    let rows = client
        .simple_query("SELECT 40 + 2 AS answer")
        .await
        .unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &rows[1] else {
        panic!("{rows:?}")
    };
    assert_eq!(row.get("answer"), Some("42"));
    drop(client);
    let open = gw.wait_event(|e| e["kind"] == "session.open").await;
    assert_eq!(open["connection"], "test");
    assert_eq!(open["protocol"], "postgres");
    assert_eq!(open["who"]["subject"], "agent-7");
    assert_eq!(open["data"]["read_only"], false, "agents may write");
    let decision = gw
        .wait_event(|e| e["kind"] == "decision" && e["action"] == "sql.select")
        .await;
    assert_eq!(decision["outcome"], "allow");
    assert_eq!(decision["session_id"], open["session_id"]);
    let close = gw.wait_event(|e| e["kind"] == "session.close").await;
    assert_eq!(close["data"]["ended"], "client_terminate");
    assert_eq!(close["data"]["statements"], 1);
    assert_eq!(close["data"]["rows"], 1);
    assert!(close["data"]["bytes_to_client"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn delete_without_where_is_denied_and_the_session_stays_usable() {
    let gw = support::start().await;
    let t = table("nowhere", 5).await;
    let client = gw.client().await;
    let err = client
        .batch_execute(&format!("DELETE FROM {t}"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    let db = err.as_db_error().unwrap();
    assert!(
        db.message()
            .contains("sql.delete denied by policy no-unbounded-writes"),
        "{}",
        db.message()
    );
    assert!(
        db.message().contains("would change every row"),
        "{}",
        db.message()
    );
    assert_eq!(
        db.hint(),
        Some("add a WHERE clause that selects only the rows you mean to change")
    );
    assert!(db.detail().unwrap().contains(&t), "{:?}", db.detail());
    assert_eq!(count(&t).await, 5, "nothing was deleted");
    // Still usable, and a bounded delete is fine.
    client
        .batch_execute(&format!("DELETE FROM {t} WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(count(&t).await, 4);
    drop_table(&t).await;
}

#[tokio::test]
async fn denial_in_a_transaction_block_aborts_it_like_postgres() {
    let gw = support::start().await;
    let t = table("txblock", 3).await;
    let client = gw.client().await;
    client
        .batch_execute(&format!("BEGIN; INSERT INTO {t} VALUES (10, 'x')"))
        .await
        .unwrap();
    let err = client
        .batch_execute(&format!("UPDATE {t} SET v = 'hunter2'"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), "25P02", "the block is aborted: {err}");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        count(&t).await,
        3,
        "the insert was rolled back with the block"
    );
    client.batch_execute("SELECT 1").await.unwrap();
    // The audit keeps the normalized statement: the literal never reaches it.
    let denied = gw.wait_event(|e| e["outcome"] == "deny").await;
    let command = denied["command"].as_str().unwrap();
    assert!(
        command.starts_with("UPDATE") && !command.contains("hunter2"),
        "{command}"
    );
    drop_table(&t).await;
}

#[tokio::test]
async fn a_multi_statement_query_runs_only_if_every_statement_is_allowed() {
    let gw = support::start().await;
    let t = table("multi", 2).await;
    let client = gw.client().await;
    let err = client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (3, 'c'); DELETE FROM {t}; SELECT 1"
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    assert_eq!(count(&t).await, 2, "the allowed INSERT did not run either");
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 'c'); SELECT 1"))
        .await
        .unwrap();
    assert_eq!(count(&t).await, 3);
    drop_table(&t).await;
}

#[tokio::test]
async fn copy_to_stdout_and_from_stdin() {
    use futures::{SinkExt, StreamExt};
    let gw = support::start().await;
    let t = table("copy", 3).await;
    let client = gw.client().await;
    let out = client
        .copy_out(&format!("COPY {t} TO STDOUT"))
        .await
        .unwrap();
    let chunks: Vec<_> = out.collect().await;
    let text: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(String::from_utf8(text).unwrap(), "1\tv1\n2\tv2\n3\tv3\n");
    let sink = client
        .copy_in(&format!("COPY {t} FROM STDIN"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"7\tseven\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);
    assert_eq!(count(&t).await, 4);
    // To a server file is administration, which this policy does not permit.
    let err = client
        .batch_execute(&format!("COPY {t} TO '/tmp/pcx-copy'"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    let events = gw.events().await;
    for action in ["sql.copy_to", "sql.copy_from"] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["outcome"] == "allow"),
            "{action}"
        );
    }
    drop_table(&t).await;
}

#[tokio::test]
async fn sql_prepare_and_execute_are_decided_by_what_was_prepared() {
    let gw = support::start().await;
    let t = table("sqlprep", 3).await;
    let client = gw.client().await;
    client
        .batch_execute(&format!("PREPARE wipe AS DELETE FROM {t} WHERE id > $1"))
        .await
        .unwrap();
    client.batch_execute("EXECUTE wipe(2)").await.unwrap();
    assert_eq!(count(&t).await, 2);
    let exec = gw
        .wait_event(|e| {
            e["action"] == "sql.delete"
                && e["command"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("EXECUTE"))
        })
        .await;
    assert_eq!(exec["outcome"], "allow");
    // An unknown name is administration, and refused here.
    let err = client.batch_execute("EXECUTE nosuch(1)").await.unwrap_err();
    assert_eq!(code(&err), "42501");
    client.batch_execute("DEALLOCATE wipe").await.unwrap();
    let err = client.batch_execute("EXECUTE wipe(0)").await.unwrap_err();
    assert_eq!(code(&err), "42501", "a deallocated name is unknown again");
    drop_table(&t).await;
}

/// Turning `standard_conforming_strings` off would make the server read `'\'` as the door's
/// parser does not; even a role that may run `sql.admin` gets an ErrorResponse for it (with a
/// reason code and an audit event), the session stays, and the setting stays on.
#[tokio::test]
async fn standard_conforming_strings_off_is_refused_and_the_session_stays() {
    let gw = support::start().await;
    let client = gw.client_in(&["agents", "dbas"]).await;
    for sql in [
        "SET standard_conforming_strings = off",
        "SET LOCAL standard_conforming_strings TO 'no'",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT 1; SET standard_conforming_strings = 0",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&err), "0A000", "{sql}");
        let db = err.as_db_error().unwrap();
        assert_eq!(db.detail(), Some("code: standard_conforming_strings_off"));
        assert!(db.hint().unwrap().contains("E'"), "{:?}", db.hint());
    }
    // Through the extended protocol as well (tokio-postgres prepares every query).
    let err = client
        .query(
            "SELECT set_config('standard_conforming_strings', $1, false)",
            &[&"on"],
        )
        .await;
    assert!(err.is_ok(), "a parameter is not a constant off: {err:?}");
    let err = client
        .query(
            "SELECT set_config('standard_conforming_strings', 'off', false)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    client
        .batch_execute("SET standard_conforming_strings = on; RESET standard_conforming_strings")
        .await
        .unwrap();
    let rows = client
        .query("SELECT current_setting('standard_conforming_strings')", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "on");
    let refusal = gw
        .wait_event(|e| {
            e["kind"] == "decision" && e["reason_code"] == "standard_conforming_strings_off"
        })
        .await;
    assert_eq!(refusal["outcome"], "deny");
    assert_eq!(refusal["action"], "sql.admin");
}

/// A principal no policy lets write runs read-only in the server too: a write hidden in a
/// function the classifier takes for a read fails there (25006), the ways of undoing the
/// read-only default are sql.admin (refused by policy), and one the door does not see coming
/// ends the session. Pooled connections of writers stay writable.
#[tokio::test]
async fn a_session_that_may_not_write_is_read_only_in_the_server() {
    let t = table("readonly", 3).await;
    let wipe = format!("{t}_wipe");
    let undo = format!("{t}_undo");
    // The catalog shows both functions may write (the door refuses such calls to a reader:
    // tests/door/catalog.rs); declared safe here, they reach the server, whose read-only
    // session is the backstop for what the gateway cannot see.
    let target = portcullis_proxy_postgres::PgTarget {
        safe_functions: vec![wipe.clone(), undo.clone()],
        ..support::local_target()
    };
    let gw = support::start_full(|_| {}, target).await;
    support::direct()
        .await
        .batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION {wipe}() RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN DELETE FROM {t}; RETURN 1; END $$;
             CREATE OR REPLACE FUNCTION {undo}() RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false);
                  RETURN 1; END $$;"
        ))
        .await
        .unwrap();
    let reader = gw.client_in(&["readers"]).await;
    let show = "SHOW default_transaction_read_only";
    let setting = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .expect("a row")
    };
    assert_eq!(setting(reader.simple_query(show).await.unwrap()), "on");
    let open = gw
        .wait_event(|e| e["kind"] == "session.open" && e["data"]["read_only"] == true)
        .await;
    assert_eq!(open["who"]["subject"], "agent-7");
    let err = reader
        .simple_query(&format!("SELECT {wipe}()"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "25006", "{err}");
    assert_eq!(count(&t).await, 3);
    for sql in [
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "BEGIN READ WRITE",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "RESET ALL",
    ] {
        let err = reader.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    // RESET of it is sql.admin too (it would come back to the start-up value, on).
    let err = reader
        .simple_query("RESET default_transaction_read_only")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    assert_eq!(setting(reader.simple_query(show).await.unwrap()), "on");
    // Code the text does not show turns it off: the server's report ends the session.
    let err = reader
        .simple_query(&format!("SELECT {undo}()"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "25006", "{err}");
    assert!(
        reader.simple_query("SELECT 1").await.is_err(),
        "the session ended"
    );
    gw.wait_event(|e| e["kind"] == "session.close" && e["data"]["ended"] != "client_terminate")
        .await;
    // A writer's session, after a reader's connection went back to the pool: writable.
    let reader = gw.client_in(&["readers"]).await;
    reader.simple_query("SELECT 1").await.unwrap();
    drop(reader);
    let writer = gw.client().await;
    assert_eq!(setting(writer.simple_query(show).await.unwrap()), "off");
    support::direct()
        .await
        .batch_execute(&format!("DROP FUNCTION {wipe}(); DROP FUNCTION {undo}()"))
        .await
        .unwrap();
    drop_table(&t).await;
}
