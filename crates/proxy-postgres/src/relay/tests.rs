//! The cycle bookkeeping, from sequences of forwarded messages and server answers.

use bytes::Bytes;
use portcullis_pgwire::{ErrorFields, TransactionStatus};

use super::backend::counted;
use super::state::{SqlEncoding, Tracker};
use crate::cache::StatementCache;
use crate::enforce::Denial;

fn classify(sql: &str) -> std::sync::Arc<crate::cache::Classified> {
    StatementCache::new(0, portcullis_sql::Options::default()).classify(sql)
}

fn denial(n: &str) -> Denial {
    Denial::new(
        portcullis_pipeline::Code::Policy(portcullis_policy::DenyCode::Forbidden),
        n,
        "",
    )
}

fn error(code: &str, message: &str) -> ErrorFields {
    ErrorFields {
        fields: vec![
            (b'C', Bytes::from(code.to_owned())),
            (b'M', Bytes::from(message.to_owned())),
        ],
    }
}

fn marker() -> ErrorFields {
    error("42601", "syntax error at or near \"PORTCULLIS_DENIED\"")
}

const IDLE: TransactionStatus = TransactionStatus::Idle;

#[test]
fn pipelined_denials_are_matched_to_their_own_cycle() {
    let mut t = Tracker::new();
    t.simple(None, Some(&classify("SELECT 1")), Vec::new());
    t.simple(Some(denial("second")), None, Vec::new());
    // The first query's own error is not the marker and is left alone.
    assert_eq!(t.error(&error("22012", "division by zero")), None);
    t.ready(IDLE);
    assert_eq!(t.error(&marker()).map(|d| d.message), Some("second".into()));
    t.ready(IDLE);
    assert!(!t.in_flight());
}

#[test]
fn a_denial_the_server_skipped_is_dropped_at_ready_for_query() {
    let mut t = Tracker::new();
    t.parse(&Bytes::from_static(b""), &classify("SELECT 1/0"), None);
    t.deny_extended(denial("skipped"));
    t.sync();
    // The earlier message failed first; the server discarded the injected Parse.
    assert_eq!(t.error(&error("22012", "division by zero")), None);
    t.ready(IDLE);
    t.simple(Some(denial("next")), None, Vec::new());
    assert_eq!(t.error(&marker()).map(|d| d.message), Some("next".into()));
}

#[test]
fn statement_names_follow_what_the_server_confirmed() {
    let mut t = Tracker::new();
    let s1 = Bytes::from_static(b"s1");
    t.parse(&s1, &classify("SELECT 1"), None);
    t.sync();
    t.parse_complete();
    t.ready(IDLE);
    assert!(t.statement(b"s1").is_some());
    // A Parse the server rejects (the name exists) leaves the old statement in place.
    t.parse(&s1, &classify("DELETE FROM t"), None);
    t.sync();
    t.error(&error("42P05", "prepared statement \"s1\" already exists"));
    t.ready(IDLE);
    let kept = t.statement(b"s1").unwrap();
    assert_eq!(kept.classification.statements[0].action, "sql.select");
    // A Close that is skipped after an error is undone too.
    t.parse(&Bytes::from_static(b""), &classify("SELECT 1/0"), None);
    t.close(true, &s1);
    t.sync();
    t.error(&error("22012", "division by zero"));
    t.ready(IDLE);
    assert!(t.statement(b"s1").is_some());
    t.close(true, &s1);
    t.sync();
    t.close_complete();
    t.ready(IDLE);
    assert!(t.statement(b"s1").is_none());
}

#[test]
fn sql_prepare_and_deallocate_update_the_names() {
    let mut t = Tracker::new();
    t.simple(
        None,
        Some(&classify(
            "PREPARE p AS DELETE FROM t WHERE id = $1; SELECT 1",
        )),
        Vec::new(),
    );
    t.command_complete();
    t.command_complete();
    t.ready(IDLE);
    let p = t.statement(b"p").unwrap();
    assert_eq!(p.classification.statements[0].action, "sql.delete");
    t.simple(None, Some(&classify("DEALLOCATE p")), Vec::new());
    assert!(t.statement(b"p").is_none());
    t.command_complete();
    t.ready(IDLE);
    assert!(t.statement(b"p").is_none());
    t.simple(None, Some(&classify("PREPARE q AS SELECT 1")), Vec::new());
    t.command_complete();
    t.ready(IDLE);
    t.simple(None, Some(&classify("DEALLOCATE ALL")), Vec::new());
    t.command_complete();
    t.ready(IDLE);
    assert!(t.statement(b"q").is_none());
}

#[test]
fn syncs_swallowed_during_copy_in_do_not_shift_the_cycles() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.bind(&bind(&portal), Some(classify("COPY t FROM STDIN")), None);
    t.execute(&portal);
    t.sync(); // tokio-postgres sends Bind/Execute/Sync, then the data
    t.copy_in();
    t.copy_end();
    t.sync();
    t.simple(Some(denial("after copy")), None, Vec::new());
    t.command_complete();
    t.ready(IDLE); // one ReadyForQuery for both Syncs
    assert_eq!(
        t.error(&marker()).map(|d| d.message),
        Some("after copy".into())
    );
}

#[test]
fn a_copy_that_fails_before_copy_mode_keeps_its_sync() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.bind(
        &bind(&portal),
        Some(classify("COPY nosuch FROM STDIN")),
        None,
    );
    t.execute(&portal);
    t.sync();
    t.simple(Some(denial("next")), None, Vec::new());
    t.error(&error("42P01", "relation \"nosuch\" does not exist"));
    t.ready(IDLE);
    assert_eq!(t.error(&marker()).map(|d| d.message), Some("next".into()));
}

#[test]
fn a_server_report_of_an_encoding_the_gateway_cannot_follow_ends_the_session() {
    let mut t = Tracker::new();
    assert!(t.parameter_status("client_encoding", "LATIN1").is_ok());
    for (name, value) in [
        ("client_encoding", "SJIS"),
        ("client_encoding", "GBK"),
        ("client_encoding", "no such thing"),
        ("standard_conforming_strings", "off"),
    ] {
        assert!(t.parameter_status(name, value).is_err(), "{name} = {value}");
    }
    let params = [("client_encoding".to_owned(), "BIG5".to_owned())];
    assert!(Tracker::new().greeted(&params).is_err());
}

fn encoding(t: &Tracker) -> &'static str {
    match t.sql_encoding() {
        SqlEncoding::Ready { encoding, .. } => encoding.name,
        SqlEncoding::Wait => "wait",
        SqlEncoding::Unknowable => "unknowable",
    }
}

/// SQL after a statement that may change client_encoding is read only once the server has
/// answered it (simple protocol), or in the value an Execute of a known SET predicts for the
/// rest of its unfinished extended-protocol sequence.
#[test]
fn sql_waits_for_an_encoding_change_to_be_answered() {
    let mut t = Tracker::new();
    assert_eq!(encoding(&t), "UTF8");
    t.simple(
        None,
        Some(&classify("SET client_encoding = 'LATIN1'")),
        Vec::new(),
    );
    assert_eq!(encoding(&t), "wait");
    t.parameter_status("client_encoding", "LATIN1").unwrap();
    assert_eq!(encoding(&t), "wait", "until ReadyForQuery");
    t.command_complete();
    t.ready(IDLE);
    assert_eq!(encoding(&t), "LATIN1");

    // Extended: the rest of the open sequence is read in the value the SET names.
    let unnamed = Bytes::from_static(b"");
    t.parse(&unnamed, &classify("SET NAMES 'UTF8'"), Some(admitted(1)));
    t.bind(
        &bind(&unnamed),
        Some(classify("SET NAMES 'UTF8'")),
        t.unnamed_admitted(),
    );
    assert_eq!(encoding(&t), "LATIN1");
    t.execute(&unnamed);
    assert_eq!(encoding(&t), "UTF8");
    t.sync();
    assert_eq!(encoding(&t), "wait");
    t.parse_complete();
    t.parameter_status("client_encoding", "UTF8").unwrap();
    t.ready(IDLE);
    assert_eq!(encoding(&t), "UTF8");

    // A change the text does not tell leaves the rest of its sequence unreadable.
    let sql = "SELECT set_config('client_' || 'encoding', 'LATIN1', false)";
    t.parse(&unnamed, &classify(sql), Some(admitted(2)));
    t.bind(&bind(&unnamed), Some(classify(sql)), t.unnamed_admitted());
    t.execute(&unnamed);
    assert_eq!(encoding(&t), "unknowable");
    t.sync();
    assert_eq!(encoding(&t), "wait");
    t.ready(IDLE);
    assert_eq!(encoding(&t), "UTF8");

    // Once the encoding has been changed, ending a transaction may change it back.
    t.simple(None, Some(&classify("COMMIT")), Vec::new());
    assert_eq!(encoding(&t), "wait");
    t.ready(IDLE);
    assert_eq!(encoding(&t), "UTF8");
}

/// A cursor declared in SQL is a portal the client can run with Execute: it runs under the
/// DECLARE's decision, and FETCH resolves to the cursor's query.
#[test]
fn sql_cursors_are_portals_with_their_declaring_decision() {
    let mut t = Tracker::new();
    let declare = classify("BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT email FROM customers");
    t.simple(None, Some(&declare), vec![admitted(1), admitted(2)]);
    t.ready(TransactionStatus::InTransaction);
    let query = t.cursor(b"c").expect("the cursor's query");
    assert_eq!(query.classification.statements[0].tables, ["customers"]);
    t.execute(b"c");
    t.sync();
    let done = t.finish(1, 10, None).expect("the portal's result");
    assert_eq!(done.admitted.as_ref().map(|a| a.seq), Some(2));
    t.ready(IDLE);
    t.simple(None, Some(&classify("CLOSE c")), vec![admitted(3)]);
    assert!(t.cursor(b"c").is_none());
}

#[test]
fn rows_come_from_command_tags() {
    for (tag, n) in [
        ("INSERT 0 5", 5),
        ("UPDATE 2", 2),
        ("DELETE 0", 0),
        ("SELECT 3", 3),
        ("COPY 10", 10),
        ("MERGE 4", 4),
    ] {
        assert_eq!(counted(tag.as_bytes()), Some(n), "{tag}");
    }
    for tag in ["BEGIN", "CREATE TABLE", "SET"] {
        assert_eq!(counted(tag.as_bytes()), None, "{tag}");
    }
}

fn admitted(seq: i64) -> std::sync::Arc<crate::enforce::Admitted> {
    std::sync::Arc::new(crate::enforce::Admitted {
        seq,
        action: "sql.select",
        masker: None,
        command: String::new(),
        review: None,
        lineage: None,
        catalog: None,
        row_limit: None,
    })
}

/// Results are attributed to the statements in the order they were forwarded, across
/// pipelined cycles; an error takes the failing statement and the rest of its cycle never
/// reports.
#[test]
fn results_follow_forwarding_order() {
    let mut t = Tracker::new();
    t.simple(
        None,
        Some(&classify("SELECT 1; SELECT 2; SELECT 3")),
        vec![admitted(1), admitted(2), admitted(3)],
    );
    let portal = Bytes::from_static(b"");
    t.parse(&portal, &classify("SELECT 4"), Some(admitted(4)));
    t.bind(
        &bind(&portal),
        Some(classify("SELECT 4")),
        t.unnamed_admitted(),
    );
    t.execute(&portal);
    t.sync();
    let first = t.finish(1, 10, None).expect("first");
    assert_eq!(first.admitted.as_ref().map(|a| a.seq), Some(1));
    let second = t.finish(0, 0, Some("22012".into())).expect("second");
    assert_eq!(second.admitted.as_ref().map(|a| a.seq), Some(2));
    assert_eq!(second.sqlstate.as_deref(), Some("22012"));
    t.ready(TransactionStatus::Idle);
    let fourth = t.finish(1, 5, None).expect("the extended cycle's Execute");
    assert_eq!(fourth.admitted.as_ref().map(|a| a.seq), Some(4));
    assert!(t.finish(0, 0, None).is_none());
}

fn bind(portal: &Bytes) -> portcullis_pgwire::Bind {
    portcullis_pgwire::Bind {
        portal: portal.clone(),
        statement: portal.clone(),
        param_formats: Vec::new(),
        params: Vec::new(),
        result_formats: Vec::new(),
    }
}

/// EXECUTE and FETCH resolve to what the same message defined before them, not to the
/// session's map as it was when the message arrived.
#[test]
fn names_redefined_earlier_in_a_message_are_what_runs() {
    use crate::enforce::{Named, resolve_in_order};
    let old = classify("SELECT 1");
    let lookup = |named: Named<'_>| match named {
        Named::Prepared("q") | Named::Cursor("c") => Some(old.clone()),
        _ => None,
    };
    let message = classify(
        "DEALLOCATE q; PREPARE q AS DELETE FROM orders WHERE id > $1; EXECUTE q(0); \
         EXECUTE r; DECLARE c CURSOR FOR SELECT email FROM customers; FETCH c; \
         CLOSE c; FETCH c",
    );
    let got = resolve_in_order(&message.classification.statements, lookup);
    let action = |i: usize| {
        got[i]
            .as_ref()
            .map(|c| c.classification.statements[0].action)
    };
    assert_eq!(
        action(2),
        Some("sql.delete"),
        "the DELETE prepared just before"
    );
    assert_eq!(action(3), None, "a name nobody prepared");
    let fetched = got[5].as_ref().expect("the cursor declared just before");
    assert_eq!(fetched.classification.statements[0].tables, ["customers"]);
    assert!(got[7].is_none(), "a cursor closed earlier in the message");
    let all = classify("DEALLOCATE ALL; EXECUTE q");
    assert!(resolve_in_order(&all.classification.statements, lookup)[1].is_none());
}

/// A Sync, then a Flush (libpq ends a pipeline so), then a simple Query: the Flush opened
/// nothing, so the Query is a cycle of its own and nothing is left in flight.
#[test]
fn a_flush_after_sync_opens_no_cycle() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.parse(&portal, &classify("SELECT 1"), None);
    t.bind(&bind(&portal), Some(classify("SELECT 1")), None);
    t.execute(&portal);
    t.sync();
    // Flush is forwarded without touching the tracker.
    t.simple(None, Some(&classify("COMMIT")), Vec::new());
    assert_eq!(
        t.queued(),
        5,
        "two cycles, three extended messages unanswered"
    );
    t.parse_complete();
    t.bind_complete();
    t.command_complete();
    t.ready(IDLE);
    assert_eq!(t.queued(), 1);
    t.command_complete();
    t.ready(IDLE);
    assert!(!t.in_flight());
    assert_eq!(t.queued(), 0);
}

/// A Query inside an unfinished extended sequence runs after it, and its ReadyForQuery ends
/// both; what follows is a cycle of its own.
#[test]
fn a_query_inside_an_extended_sequence_ends_it_when_all_went_well() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.parse(&portal, &classify("SELECT 1"), None);
    t.bind(&bind(&portal), Some(classify("SELECT 1")), None);
    t.describe(false, &portal);
    t.execute(&portal);
    t.simple(None, Some(&classify("PREPARE p AS SELECT 2")), Vec::new());
    t.parse(&Bytes::from_static(b"s2"), &classify("SELECT 3"), None);
    t.sync();
    t.parse_complete();
    t.bind_complete();
    assert!(!t.front_is_simple(), "the Describe is still unanswered");
    t.described(None);
    t.command_complete();
    // Now the Query's own answers: its CommandComplete confirms the PREPARE.
    assert!(t.front_is_simple());
    t.command_complete();
    t.ready(IDLE);
    assert!(t.statement(b"p").is_some());
    assert!(t.in_flight(), "the Parse after the Query is its own cycle");
    t.parse_complete();
    t.ready(IDLE);
    assert!(!t.in_flight());
    assert!(t.statement(b"s2").is_some());
    assert_eq!(t.queued(), 0);
}

/// When an extended message before the Query fails, the server skips the Query and
/// everything up to the next Sync; that Sync's ReadyForQuery ends it all, and what was
/// skipped is undone.
#[test]
fn a_failed_extended_message_makes_the_server_skip_the_query_to_the_next_sync() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.parse(&portal, &classify("SELECT 1/0"), None);
    t.bind(&bind(&portal), Some(classify("SELECT 1/0")), None);
    t.execute(&portal);
    t.simple(None, Some(&classify("PREPARE p AS SELECT 2")), Vec::new());
    t.simple(Some(denial("skipped too")), None, Vec::new());
    t.parse(&Bytes::from_static(b"s2"), &classify("SELECT 3"), None);
    t.sync();
    t.simple(Some(denial("after the sync")), None, Vec::new());
    t.parse_complete();
    t.bind_complete();
    assert_eq!(t.error(&error("22012", "division by zero")), None);
    t.ready(IDLE);
    assert!(t.statement(b"p").is_none(), "the skipped PREPARE is undone");
    assert!(t.statement(b"s2").is_none(), "the skipped Parse is undone");
    assert_eq!(
        t.error(&marker()).map(|d| d.message),
        Some("after the sync".into())
    );
    t.ready(IDLE);
    assert!(!t.in_flight());
    assert_eq!(t.queued(), 0);
}

/// A failure of the Query itself (after every extended message was answered) ends the
/// cycle at the Query's ReadyForQuery, as a simple Query's error does.
#[test]
fn a_failed_query_inside_an_extended_sequence_ends_only_its_cycle() {
    let mut t = Tracker::new();
    let s1 = Bytes::from_static(b"s1");
    t.parse(&s1, &classify("SELECT 1"), None);
    t.simple(Some(denial("the query")), None, Vec::new());
    t.parse(&Bytes::from_static(b"s2"), &classify("SELECT 3"), None);
    t.sync();
    t.parse_complete();
    assert_eq!(
        t.error(&marker()).map(|d| d.message),
        Some("the query".into())
    );
    t.ready(IDLE);
    assert!(t.statement(b"s1").is_some(), "confirmed before the error");
    assert!(t.in_flight());
    t.parse_complete();
    t.ready(IDLE);
    assert!(t.statement(b"s2").is_some());
    assert_eq!(t.queued(), 0);
}

/// The pipeline bound counts cycles and unanswered extended messages; answers lower it as
/// they arrive, also inside a cycle whose Sync has not come yet.
#[test]
fn the_pipeline_depth_falls_as_answers_arrive() {
    let mut t = Tracker::new();
    let portal = Bytes::from_static(b"");
    t.bind(&bind(&portal), Some(classify("SELECT 1")), None);
    for _ in 0..3 {
        t.execute(&portal);
    }
    assert_eq!(t.queued(), 5);
    t.bind_complete();
    t.command_complete();
    t.command_complete();
    assert_eq!(t.queued(), 2);
    t.sync();
    t.command_complete();
    t.ready(IDLE);
    assert_eq!(t.queued(), 0);
    // An empty Sync is a cycle of its own.
    t.sync();
    assert_eq!(t.queued(), 1);
    t.ready(IDLE);
    assert_eq!(t.queued(), 0);
}

/// Where a simple Query with a bounded statement may run: never where a COMMIT in the same
/// string (or one before it that leaves no block open) could commit it before its count is
/// seen, and wrapped in the gateway's own block only when nothing in the Query ends it.
#[test]
fn bounded_statements_run_only_where_they_can_be_undone() {
    use portcullis_pgwire::TransactionStatus::{Failed, Idle, InTransaction};
    let bounded = |seq| {
        std::sync::Arc::new(crate::enforce::Admitted {
            seq,
            action: "sql.update",
            masker: None,
            command: String::new(),
            review: None,
            lineage: None,
            catalog: None,
            row_limit: Some(portcullis_policy::RowLimit {
                max: 5,
                policy: "p".into(),
            }),
        })
    };
    let place = |sql: &str, status| {
        let c = portcullis_sql::classify(sql, &portcullis_sql::Options::default());
        // The UPDATEs are the bounded statements.
        let admitted: Vec<_> = c
            .statements
            .iter()
            .map(|s| {
                if s.action == "sql.update" {
                    bounded(1)
                } else {
                    admitted(1)
                }
            })
            .collect();
        crate::relay::frontend::placement(&c.statements, &admitted, status, false)
    };
    let up = "UPDATE t SET v = 1 WHERE id = 1";
    // Outside a block: the gateway's own, unless the Query opens one first.
    assert_eq!(place(up, Idle), Ok(true));
    assert_eq!(place(&format!("SELECT 1; {up}; SELECT 2"), Idle), Ok(true));
    assert_eq!(place(&format!("BEGIN; {up}"), Idle), Ok(false));
    assert_eq!(place(&format!("BEGIN; {up}; ROLLBACK"), Idle), Ok(false));
    assert_eq!(
        place(&format!("BEGIN; SAVEPOINT a; {up}; ROLLBACK TO a"), Idle),
        Ok(false)
    );
    assert_eq!(place(&format!("ROLLBACK; BEGIN; {up}"), Idle), Ok(false));
    // What would commit it, or end the gateway's block under it.
    assert_eq!(place(&format!("{up}; COMMIT"), Idle), Err(1));
    assert_eq!(place(&format!("BEGIN; {up}; COMMIT"), Idle), Err(2));
    assert_eq!(place(&format!("BEGIN; {up}; END"), Idle), Err(2));
    assert_eq!(
        place(&format!("{up}; PREPARE TRANSACTION 'x'"), InTransaction),
        Err(1)
    );
    assert_eq!(place(&format!("{up}; ROLLBACK"), Idle), Err(1));
    assert_eq!(place(&format!("{up}; BEGIN"), Idle), Err(1));
    assert_eq!(place(&format!("BEGIN; COMMIT; {up}"), Idle), Err(1));
    assert_eq!(place(&format!("COMMIT; {up}"), InTransaction), Err(0));
    // In the client's block it runs as sent; a ROLLBACK after it is the client's.
    assert_eq!(place(up, InTransaction), Ok(false));
    assert_eq!(place(&format!("{up}; ROLLBACK"), InTransaction), Ok(false));
    assert_eq!(
        place(&format!("COMMIT; BEGIN; {up}"), InTransaction),
        Ok(false)
    );
    // A failed block runs nothing.
    assert_eq!(place(&format!("{up}; COMMIT"), Failed), Err(1));
    assert_eq!(place(up, Failed), Ok(false));
    // Inside an unfinished extended sequence it cannot run alone.
    let c = portcullis_sql::classify(up, &portcullis_sql::Options::default());
    assert_eq!(
        crate::relay::frontend::placement(&c.statements, &[bounded(1)], Idle, true),
        Err(0)
    );
}
