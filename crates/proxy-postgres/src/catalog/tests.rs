use super::*;

fn row(values: &[&str]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| (!v.is_empty()).then(|| (*v).to_owned()))
        .collect()
}

/// A catalog like the attack kit's: a forbidden table, views over it, a shadowing schema,
/// functions of every kind, a trigger and rules.
fn catalog() -> Catalog {
    let table = |schema: &str, name: &str, columns: &str| row(&[schema, name, "", columns]);
    let view =
        |schema: &str, name: &str, def: &str, columns: &str| row(&[schema, name, def, columns]);
    let function = |name: &str, volatility: &str, definer: &str, language: &str| {
        row(&[
            "public",
            name,
            volatility,
            definer,
            language,
            "1",
            "app_owner",
        ])
    };
    build(Reads {
        relations: vec![
            table("public", "orders", r#"["id","customer_id","total"]"#),
            table("public", "customers", r#"["id","email","card"]"#),
            table("public", "payroll", r#"["id","salary"]"#),
            table("public", "audit_log", r#"["id","what"]"#),
            view(
                "public",
                "order_view",
                " SELECT id, total FROM payroll p JOIN orders o USING (id);",
                r#"["id","total"]"#,
            ),
            view(
                "public",
                "view_of_view",
                " SELECT * FROM order_view;",
                r#"["id","total"]"#,
            ),
            view(
                "reporting",
                "orders",
                " SELECT id, salary AS total FROM public.payroll;",
                r#"["id","total"]"#,
            ),
            table("public", "inbox", r#"["id","body"]"#),
        ],
        functions: vec![
            function("wipe_orders", "v", "false", "plpgsql"),
            function("run_sql", "v", "true", "plpgsql"),
            function("total_of", "s", "false", "sql"),
            function("c_fast", "i", "false", "c"),
            function("log_change", "v", "false", "plpgsql"),
        ],
        triggers: vec![row(&[
            "public",
            "orders",
            "orders_audit",
            "public.log_change",
        ])],
        rules: vec![
            row(&[
                "public",
                "inbox",
                "inbox_also",
                "CREATE RULE inbox_also AS ON INSERT TO public.inbox DO ALSO DELETE FROM public.payroll;",
            ]),
            row(&[
                "public",
                "order_view",
                "ov_insert",
                "CREATE RULE ov_insert AS ON INSERT TO public.order_view DO INSTEAD INSERT INTO public.audit_log (what) VALUES (new.total);",
            ]),
        ],
        builtins: vec![row(&["lower"]), row(&["now"])],
        ..Reads::default()
    })
}

fn resolve(sql: &str) -> Resolved {
    let c = portcullis_sql::classify(sql, &Options::default());
    catalog().resolve(&c.statements[0], &["c_fast".to_owned()])
}

#[test]
fn names_resolve_in_every_schema_and_views_expand() {
    let r = resolve("SELECT * FROM shop.public.orders");
    assert!(r.tables.contains(&"public.orders".to_owned()), "{r:?}");
    assert!(r.tables.contains(&"orders".to_owned()));
    let r = resolve("SELECT * FROM orders");
    // Unqualified: also the shadowing view in `reporting`, and the table under it.
    assert!(r.tables.contains(&"reporting.orders".to_owned()), "{r:?}");
    assert!(r.tables.contains(&"public.payroll".to_owned()), "{r:?}");
    let r = resolve("SELECT * FROM view_of_view");
    for t in [
        "public.order_view",
        "public.payroll",
        "payroll",
        "public.orders",
    ] {
        assert!(r.tables.contains(&t.to_owned()), "{t} in {r:?}");
    }
    assert_eq!(r.action, None);
    assert!(!r.unknown);
    assert!(resolve("SELECT * FROM nowhere").unknown);
}

#[test]
fn user_functions_that_may_write_make_the_statement_admin() {
    let r = resolve("SELECT wipe_orders()");
    assert_eq!(r.writing_functions, ["public.wipe_orders"]);
    assert_eq!(r.function_owners, ["app_owner"], "the owner is a fact too");
    assert_eq!(r.action, Some(ids::ADMIN));
    let r = resolve("SELECT public.run_sql('DELETE FROM orders')");
    assert_eq!(r.action, Some(ids::ADMIN));
    // STABLE SQL: a read of tables the text does not name.
    let r = resolve("SELECT total_of(1)");
    assert!(r.writing_functions.is_empty() && r.opaque_reads, "{r:?}");
    assert_eq!(r.action, None);
    // Declared safe by the connection.
    let r = resolve("SELECT c_fast(1)");
    assert!(r.writing_functions.is_empty() && !r.opaque_reads, "{r:?}");
    // Built-ins are not in the catalog read: [7]'s classification stands.
    assert_eq!(
        resolve("SELECT lower('A')"),
        Resolved {
            tables: Vec::new(),
            ..Resolved::default()
        }
    );
}

#[test]
fn writes_carry_triggers_and_rules() {
    let r = resolve("INSERT INTO orders (id) VALUES (1)");
    assert_eq!(r.triggers, ["public.orders.orders_audit"]);
    assert_eq!(r.writing_functions, ["public.log_change"]);
    assert_eq!(r.action, Some(ids::ADMIN));
    // A DO ALSO DELETE rule makes an INSERT a delete of what the rule deletes.
    let r = resolve("INSERT INTO inbox (body) VALUES ('x')");
    assert_eq!(r.rules, ["public.inbox.inbox_also"]);
    assert_eq!(r.action, Some(ids::DELETE));
    assert!(r.tables.contains(&"public.payroll".to_owned()));
    // An INSTEAD rule on a view: decided with what it writes.
    let r = resolve("INSERT INTO order_view (total) VALUES (1)");
    assert!(r.tables.contains(&"public.audit_log".to_owned()), "{r:?}");
    // Reads do not set off triggers or rules.
    let r = resolve("SELECT * FROM inbox");
    assert!(r.rules.is_empty() && r.action.is_none());
}

/// The cost of reading a statement through the catalog, per statement, on a catalog of
/// 10,000 relations (a tenth of them views) and 5,000 user functions. A measurement, not a
/// check: `cargo test --release -p portcullis-proxy-postgres --lib catalog::tests::resolve_speed
/// -- --ignored --nocapture` (BENCHMARKS.md).
#[test]
#[ignore = "a measurement; run it on purpose"]
fn resolve_speed() {
    let mut relations = Vec::new();
    for i in 0..10_000 {
        let schema = format!("s{}", i % 20);
        if i % 10 == 0 {
            let def = format!(" SELECT id, v FROM s{}.t{};", (i + 1) % 20, i + 1);
            relations.push(row(&[&schema, &format!("t{i}"), &def, "[\"id\",\"v\"]"]));
        } else {
            relations.push(row(&[&schema, &format!("t{i}"), "", "[\"id\",\"v\"]"]));
        }
    }
    let functions: Vec<_> = (0..5_000)
        .map(|i| row(&["public", &format!("f{i}"), "s", "false", "sql"]))
        .collect();
    let catalog = build(Reads {
        relations,
        functions,
        ..Reads::default()
    });
    let cases = [
        ("select one table", "SELECT id, v FROM s3.t3 WHERE id = 1"),
        ("select through a view", "SELECT * FROM t10 WHERE id = 1"),
        (
            "join of three",
            "SELECT * FROM t1 JOIN t2 USING (id) JOIN t3 USING (id)",
        ),
        ("update", "UPDATE t5 SET v = 'x' WHERE id = 1"),
        ("user function", "SELECT f42(id) FROM t7"),
    ];
    for (name, sql) in cases {
        let c = portcullis_sql::classify(sql, &Options::default());
        let s = &c.statements[0];
        let rounds = 100_000u32;
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(catalog.resolve(std::hint::black_box(s), &[]));
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("{name:>22}: {micros:6.2} µs per resolve");
    }
}

#[test]
fn names_the_snapshot_does_not_hold_are_unknown_but_system_ones_are_not() {
    let mut c = catalog();
    c.system.insert("pg_type".to_owned());
    let unknown = |sql: &str| {
        let s = portcullis_sql::classify(sql, &Options::default());
        c.resolve(&s.statements[0], &[]).unknown
    };
    assert!(!unknown("SELECT typname FROM pg_catalog.pg_type"));
    assert!(!unknown(
        "SELECT typname FROM pg_type WHERE typname = lower('X')"
    ));
    assert!(!unknown("SELECT total_of(1) FROM orders"));
    assert!(unknown("SELECT * FROM pcx_nowhere"));
    assert!(unknown("SELECT pcx_made_since(1)"));
}
