//! What the catalog shows (issue 9): writes hidden in functions, triggers and rules, tables
//! read through views, other schemas and other spellings, against objects the owner created
//! directly in the real server. Every statement is decided as its effect requires, in the
//! simple and the extended protocol, and every denial leaves the database as it was.

use tokio_postgres::Client;

use crate::support::{self, code, direct};

/// The objects, in schema `s` (and `r`, which shadows `s.orders` with a view over payroll).
fn fixture(s: &str, r: &str) -> String {
    format!(
        r#"
DROP SCHEMA IF EXISTS {s} CASCADE; DROP SCHEMA IF EXISTS {r} CASCADE;
CREATE SCHEMA {s}; CREATE SCHEMA {r};
CREATE TABLE {s}.orders (id int PRIMARY KEY, customer_id int, total int);
INSERT INTO {s}.orders SELECT g, g, g * 10 FROM generate_series(1, 5) g;
CREATE TABLE {s}.payroll (id int PRIMARY KEY, salary int);
INSERT INTO {s}.payroll SELECT g, g * 1000 FROM generate_series(1, 3) g;
CREATE TABLE {s}.customers (id int PRIMARY KEY, email text);
INSERT INTO {s}.customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 4) g;
CREATE TABLE {s}.inbox (id serial PRIMARY KEY, body text);
CREATE TABLE {s}.trig_t (id int, v text);
CREATE FUNCTION {s}.wipe_orders() RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN 1; END $$;
CREATE FUNCTION {s}.run_sql(q text) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN EXECUTE q; RETURN 1; END $$;
CREATE FUNCTION {s}.purge_customer(i int) RETURNS int LANGUAGE sql SECURITY DEFINER AS
  $$ DELETE FROM {s}.customers WHERE id = i RETURNING 1 $$;
CREATE FUNCTION {s}.sql_delete() RETURNS void LANGUAGE sql AS
  $$ DELETE FROM {s}.orders WHERE id = 1 $$;
CREATE FUNCTION {s}.total_of(i int) RETURNS int LANGUAGE sql STABLE AS
  $$ SELECT total FROM {s}.orders WHERE id = i $$;
CREATE FUNCTION {s}.payroll_rows() RETURNS SETOF {s}.payroll LANGUAGE sql STABLE AS
  $$ SELECT * FROM {s}.payroll $$;
CREATE FUNCTION {s}.log_change() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN NEW; END $$;
CREATE TRIGGER trig_t_log BEFORE INSERT ON {s}.trig_t
  FOR EACH ROW EXECUTE FUNCTION {s}.log_change();
CREATE VIEW {s}.payroll_view AS SELECT id, salary FROM {s}.payroll;
CREATE VIEW {s}.innocent AS SELECT * FROM {s}.payroll_view;
CREATE VIEW {r}.orders AS SELECT id, salary AS customer_id, salary AS total FROM {s}.payroll;
CREATE RULE inbox_also AS ON INSERT TO {s}.inbox DO ALSO DELETE FROM {s}.orders;
CREATE FUNCTION {s}.purge(o {s}.orders) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders WHERE id = o.id; RETURN 1; END $$;
CREATE FUNCTION {s}.op_wipe(a int, b int) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN a + b; END $$;
CREATE OPERATOR {s}.## (LEFTARG = int, RIGHTARG = int, FUNCTION = {s}.op_wipe);
CREATE FUNCTION {s}.default_wipe() RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN 1; END $$;
CREATE TABLE {s}.with_default (id int, v int DEFAULT {s}.default_wipe());
CREATE FUNCTION {s}.check_wipe(i int) RETURNS bool LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN true; END $$;
CREATE TABLE {s}.with_check (id int CHECK ({s}.check_wipe(id)));
CREATE FUNCTION {s}.rls_wipe() RETURNS bool LANGUAGE plpgsql AS
  $$ BEGIN DELETE FROM {s}.orders; RETURN true; END $$;
CREATE TABLE {s}.rls_t (id int);
ALTER TABLE {s}.rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_t_all ON {s}.rls_t USING ({s}.rls_wipe());
CREATE VIEW {s}.order_totals AS SELECT id, total FROM {s}.orders;
CREATE RULE ot_insert AS ON INSERT TO {s}.order_totals
  DO INSTEAD INSERT INTO {s}.payroll (id, salary) VALUES (NEW.id, NEW.total);
"#
    )
}

/// The door tests' policy (agents read, write and run DDL; readers only read; no unbounded
/// writes), and payroll off limits, as is every read the text cannot name.
fn policy(s: &str) -> String {
    format!(
        r#"{}
@id("no-payroll")
@reason("payroll is off limits")
@hint("read orders or customers instead")
forbid (principal, action, resource)
when {{ context has sql &&
       (context.sql.tables.contains("{s}.payroll") || context.sql.opaque_reads) }};
"#,
        support::POLICY
    )
}

/// Every row of every table of the fixture, hashed.
async fn fingerprint(s: &str) -> String {
    let parts: Vec<String> = ["orders", "payroll", "customers", "inbox", "trig_t"]
        .iter()
        .map(|t| {
            format!(
                "(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {s}.{t} x)"
            )
        })
        .collect();
    direct()
        .await
        .query_one(&format!("SELECT {}", parts.join(" || ")), &[])
        .await
        .unwrap()
        .get(0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Runs (and the server answers without error).
    Runs,
    /// Refused by the gateway (42501), `policy` named in the DETAIL when given.
    Refused(Option<&'static str>),
}

use Expect::{Refused, Runs};

async fn run(client: &Client, sql: &str, extended: bool) -> Result<(), tokio_postgres::Error> {
    if extended {
        client.query(sql, &[]).await.map(drop)
    } else {
        client.simple_query(sql).await.map(drop)
    }
}

#[tokio::test]
async fn statements_are_decided_by_what_the_catalog_says_they_do() {
    let pid = std::process::id();
    let (s, r) = (format!("pcx_cat_{pid}"), format!("pcx_rep_{pid}"));
    direct()
        .await
        .batch_execute(&fixture(&s, &r))
        .await
        .unwrap();
    let gw = support::start_policy(&policy(&s), |_| {}, vec![support::local_target()]).await;
    let agent = gw.client_in(&["agents"]).await;
    let reader = gw.client_in(&["readers"]).await;
    let payroll = Some("no-payroll");
    let admin = None;
    let cases: Vec<(&Client, String, Expect)> = vec![
        // Functions that write, called as reads.
        (&reader, format!("SELECT {s}.wipe_orders()"), Refused(admin)),
        (&agent, format!("SELECT {s}.wipe_orders()"), Refused(admin)),
        (&agent, "SELECT wipe_orders()".to_owned(), Refused(admin)),
        (
            &agent,
            format!("SELECT {s}.run_sql('DELETE FROM {s}.orders')"),
            Refused(admin),
        ),
        (
            &reader,
            format!("SELECT {s}.purge_customer(4)"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT * FROM {s}.purge_customer(4)"),
            Refused(admin),
        ),
        (&agent, format!("SELECT {s}.sql_delete()"), Refused(admin)),
        (
            &agent,
            format!("SELECT x FROM (SELECT {s}.wipe_orders() AS x) q"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT id FROM {s}.orders WHERE id = {s}.wipe_orders()"),
            Refused(admin),
        ),
        (
            &agent,
            format!("DELETE FROM {s}.orders WHERE id = {s}.wipe_orders()"),
            Refused(admin),
        ),
        (
            &agent,
            format!("WITH w AS (SELECT {s}.wipe_orders()) SELECT 1"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT 1 WHERE EXISTS (SELECT {s}.purge_customer(1))"),
            Refused(admin),
        ),
        (
            &agent,
            format!("EXPLAIN ANALYZE SELECT {s}.wipe_orders()"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT \"{s}\".\"wipe_orders\"()"),
            Refused(admin),
        ),
        // Attribute notation: `o.purge` is `purge(o)`.
        (
            &agent,
            format!("SELECT o.purge FROM {s}.orders o"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT (o).purge FROM {s}.orders o"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT o.total, o.id FROM {s}.orders o"),
            Runs,
        ),
        // Functions run by operators, column defaults, check constraints and row-level
        // security policies.
        (
            &agent,
            format!("SELECT 1 OPERATOR({s}.##) 2"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT id FROM {s}.orders ORDER BY id USING OPERATOR({s}.##)"),
            Refused(admin),
        ),
        (
            &agent,
            format!("INSERT INTO {s}.with_default (id) VALUES (1)"),
            Refused(admin),
        ),
        (
            &agent,
            format!("INSERT INTO {s}.with_check VALUES (1)"),
            Refused(admin),
        ),
        (&reader, format!("SELECT * FROM {s}.rls_t"), Refused(admin)),
        // Writes with triggers and rules.
        (
            &agent,
            format!("INSERT INTO {s}.trig_t VALUES (1, 'x')"),
            Refused(admin),
        ),
        (
            &agent,
            format!("INSERT INTO {s}.inbox (body) VALUES ('x')"),
            Refused(Some("no-unbounded-writes")),
        ),
        (
            &agent,
            format!("INSERT INTO {s}.order_totals VALUES (9, 9)"),
            Refused(payroll),
        ),
        (
            &reader,
            format!("INSERT INTO {s}.orders VALUES (99, 1, 1)"),
            Refused(None),
        ),
        // A forbidden table through views, spellings and schemas.
        (
            &agent,
            format!("SELECT * FROM {s}.payroll"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT * FROM test.{s}.payroll"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT * FROM \"{s}\".\"payroll\""),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT * FROM {s}.payroll_view"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT * FROM {s}.innocent"),
            Refused(payroll),
        ),
        (
            &reader,
            format!("SELECT * FROM {s}.innocent"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT * FROM {r}.orders"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT count(*) FROM {s}.orders o JOIN {s}.innocent i USING (id)"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT (SELECT max(salary) FROM {s}.payroll_view)"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("COPY (SELECT * FROM {s}.innocent) TO STDOUT"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("CREATE VIEW {s}.sneaky AS SELECT * FROM {s}.payroll"),
            Refused(payroll),
        ),
        // STABLE functions read tables the text does not name.
        (&agent, format!("SELECT {s}.total_of(1)"), Refused(payroll)),
        (
            &agent,
            format!("SELECT * FROM {s}.payroll_rows()"),
            Refused(payroll),
        ),
        // More shapes of reaching payroll: subqueries, CTEs, set operations, LATERAL,
        // TABLE, ONLY, whole-row values, MERGE sources, EXPLAIN, PREPARE, cursors.
        (
            &agent,
            format!("SELECT * FROM (SELECT * FROM {s}.payroll) p"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("WITH p AS (SELECT * FROM {s}.payroll) SELECT * FROM p"),
            Refused(payroll),
        ),
        (
            &agent,
            format!(
                "SELECT id, total FROM {s}.orders UNION ALL SELECT id, salary FROM {s}.payroll"
            ),
            Refused(payroll),
        ),
        (
            &reader,
            format!("SELECT * FROM {s}.orders WHERE id IN (SELECT id FROM {s}.payroll_view)"),
            Refused(payroll),
        ),
        (
            &agent,
            format!(
                "SELECT * FROM {s}.orders o, LATERAL (SELECT * FROM {s}.innocent i WHERE i.id = o.id) x"
            ),
            Refused(payroll),
        ),
        (&agent, format!("TABLE {s}.payroll"), Refused(payroll)),
        (
            &agent,
            format!("SELECT * FROM ONLY {s}.payroll"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT row_to_json(p) FROM {s}.payroll p"),
            Refused(payroll),
        ),
        (
            &agent,
            format!(
                "MERGE INTO {s}.orders o USING {s}.payroll p ON o.id = p.id WHEN MATCHED THEN UPDATE SET total = p.salary"
            ),
            Refused(payroll),
        ),
        (
            &agent,
            format!("EXPLAIN SELECT * FROM {s}.payroll_view"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("PREPARE pay AS SELECT * FROM {s}.payroll"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("DECLARE pay CURSOR FOR SELECT * FROM {s}.innocent"),
            Refused(payroll),
        ),
        (
            &agent,
            format!("SELECT {s}.total_of(id) FROM {s}.orders"),
            Refused(payroll),
        ),
        // More places a writing function hides.
        (
            &agent,
            format!("SELECT CASE WHEN false THEN {s}.wipe_orders() END"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT ARRAY[{s}.purge_customer(1)]"),
            Refused(admin),
        ),
        (
            &agent,
            format!("VALUES ({s}.wipe_orders())"),
            Refused(admin),
        ),
        (
            &reader,
            format!("SELECT {s}.wipe_orders() FROM {s}.orders LIMIT 0"),
            Refused(admin),
        ),
        (
            &agent,
            format!("SELECT coalesce(NULL, {s}.run_sql('TRUNCATE {s}.orders'))"),
            Refused(admin),
        ),
        (
            &agent,
            format!("UPDATE {s}.customers SET email = 'x' WHERE id = {s}.purge_customer(2)"),
            Refused(admin),
        ),
        // A rule's unbounded write, set off by an INSERT that inserts nothing.
        (
            &agent,
            format!("INSERT INTO {s}.inbox (body) SELECT 'x' WHERE false"),
            Refused(Some("no-unbounded-writes")),
        ),
        // What the catalog allows runs.
        (
            &agent,
            format!(
                "SELECT o.id, c.email FROM {s}.orders o JOIN {s}.customers c ON c.id = o.customer_id"
            ),
            Runs,
        ),
        (
            &reader,
            format!("WITH o AS (SELECT * FROM {s}.orders) SELECT count(*) FROM o"),
            Runs,
        ),
        (&agent, format!("SELECT * FROM {s}.orders"), Runs),
        (
            &reader,
            format!("SELECT count(*) FROM {s}.orders WHERE total > 0"),
            Runs,
        ),
        (
            &reader,
            format!("SELECT c.email FROM {s}.customers c"),
            Runs,
        ),
        (&agent, format!("SELECT * FROM {s}.order_totals"), Runs),
        (
            &agent,
            "SELECT lower('A'), now(), count(*) FROM generate_series(1, 3)".to_owned(),
            Runs,
        ),
    ];
    let mut checked = 0;
    for extended in [false, true] {
        for (client, sql, expect) in &cases {
            let before = fingerprint(&s).await;
            let got = run(client, sql, extended).await;
            match (expect, got) {
                (Runs, Ok(())) => {}
                (Refused(policy), Err(e)) => {
                    assert_eq!(code(&e), "42501", "{sql} (extended: {extended}): {e}");
                    let detail = e
                        .as_db_error()
                        .and_then(|d| d.detail())
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(p) = policy {
                        assert!(detail.contains(p), "{sql}: {detail}");
                    }
                    assert_eq!(fingerprint(&s).await, before, "{sql} changed the database");
                }
                (expect, got) => {
                    panic!("{sql} (extended: {extended}): expected {expect:?}, got {got:?}")
                }
            }
            checked += 1;
        }
    }
    assert!(cases.len() >= 60, "{} statements", cases.len());
    assert_eq!(checked, 2 * cases.len());

    // The shadowing schema first in the path: `orders` may now be the view over payroll.
    agent
        .simple_query(&format!("SET search_path = {r}, {s}"))
        .await
        .unwrap();
    let err = agent
        .simple_query("SELECT * FROM orders")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");

    // The decision names what the catalog added.
    let decision = gw
        .wait_event(|e| {
            e["kind"] == "decision"
                && e["action"] == "sql.admin"
                && e["command"].as_str().is_some_and(|c| c.contains("trig_t"))
        })
        .await;
    assert_eq!(decision["outcome"], "deny", "{decision}");

    // A change made outside the gateway mid-session is picked up: the name is unknown, the
    // catalog is read again.
    direct()
        .await
        .batch_execute(&format!(
            "CREATE VIEW {s}.late_view AS SELECT * FROM {s}.payroll;
             CREATE FUNCTION {s}.late_fn() RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN DELETE FROM {s}.orders; RETURN 1; END $$;"
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = fingerprint(&s).await;
    for sql in [
        format!("SELECT * FROM {s}.late_view"),
        format!("SELECT {s}.late_fn()"),
    ] {
        let err = agent.simple_query(&sql).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    assert_eq!(fingerprint(&s).await, before);
    let _ = direct()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA {s} CASCADE; DROP SCHEMA {r} CASCADE;"
        ))
        .await;
}

/// A principal whose reads are masked cannot move a sensitive column's values into a column
/// masking would not follow (`sensitive_copy`); writing a sensitive column from itself, or
/// other columns anywhere, runs.
#[tokio::test]
async fn values_of_sensitive_columns_cannot_be_laundered_through_writes() {
    let pid = std::process::id();
    let s = format!("pcx_lau_{pid}");
    direct()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};
             CREATE TABLE {s}.customers (id int PRIMARY KEY, email text, name text);
             INSERT INTO {s}.customers VALUES (1, 'ada@example.com', 'Ada');
             CREATE TABLE {s}.notes (id int, body text);"
        ))
        .await
        .unwrap();
    let target = portcullis_proxy_postgres::PgTarget {
        masking: Some("default".into()),
        ..support::local_target()
    };
    let gw = support::start_policy(&policy(&s), |_| {}, vec![target]).await;
    let agent = gw.client_in(&["agents"]).await;
    let notes = format!("{s}.notes");
    let before = support::count(&notes).await;
    for sql in [
        format!("INSERT INTO {s}.notes (id, body) SELECT id, reverse(email) FROM {s}.customers"),
        format!("INSERT INTO {s}.notes SELECT * FROM {s}.customers"),
        format!("UPDATE {s}.customers SET name = 'x' || email WHERE id = 1"),
        format!("CREATE TABLE {s}.copy AS SELECT upper(email) AS e FROM {s}.customers"),
        format!(
            "WITH c AS (SELECT email FROM {s}.customers) INSERT INTO {s}.notes SELECT 1, email FROM c"
        ),
    ] {
        for extended in [false, true] {
            let err = run(&agent, &sql, extended).await.unwrap_err();
            assert_eq!(code(&err), "42501", "{sql}: {err}");
            let detail = err
                .as_db_error()
                .and_then(|d| d.detail())
                .unwrap_or_default();
            assert!(detail.contains("sensitive_copy"), "{sql}: {detail}");
        }
    }
    assert_eq!(support::count(&notes).await, before);
    let denial = gw
        .wait_event(|e| e["kind"] == "decision" && e["reason_code"] == "sensitive_copy")
        .await;
    assert_eq!(denial["outcome"], "deny");
    for sql in [
        format!("UPDATE {s}.customers SET email = lower(email) WHERE id = 1"),
        format!("INSERT INTO {s}.notes SELECT id, name FROM {s}.customers"),
        format!("UPDATE {s}.notes SET body = upper(body) WHERE id = 1"),
    ] {
        agent
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let _ = direct()
        .await
        .batch_execute(&format!("DROP SCHEMA {s} CASCADE"))
        .await;
}
