//! Statements of one shape share a classification only when it cannot depend on their
//! literals. For every statement of the classification corpus, the door's bypass corpus and
//! the literal-dependent classes below, each variant with other literal values — one literal
//! at a time and all at once, with values chosen to flip every rule that reads a value — is
//! classified afresh and from the first statement's shared classification: the two must be
//! equal, text, literal-free text and lineage included.

use portcullis_sql::{Options, Shape, classify, classify_shaped};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    sql: String,
    #[serde(default)]
    setup: Vec<String>,
}

/// Statements of the classes whose classification may read a literal (tautologies, bounds,
/// boolean columns, settings, transaction modes, named objects), and plain ones.
const CLASSES: &[&str] = &[
    "DELETE FROM t WHERE 1 = 2",
    "DELETE FROM t WHERE 1 = 1",
    "UPDATE t SET a = 1 WHERE 'x' = 'y'",
    "DELETE FROM t WHERE id BETWEEN 1 AND 5",
    "DELETE FROM t WHERE id BETWEEN 5 AND 1",
    "DELETE FROM t WHERE flag = 'on'",
    "DELETE FROM t WHERE flag IN ('t', 'f')",
    "DELETE FROM t WHERE flag = ANY('{t,f}')",
    "DELETE FROM t WHERE (id = 1) = 'true'",
    "DELETE FROM t WHERE (id = 1) IS NOT DISTINCT FROM 't'",
    "SELECT set_config('application_name', 'x', false)",
    "SELECT set_config('client_encoding', 'LATIN1', false)",
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT nextval('orders_id_seq')",
    "SELECT 'pg_authid'::regclass",
    "SELECT * FROM t WHERE a = 1 LIMIT 10 OFFSET 5",
    "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
    "UPDATE pgbench_accounts SET abalance = abalance + -3018 WHERE aid = 2343",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
    "SET application_name = 'x'",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY",
    "BEGIN READ ONLY",
    "SELECT 1.5, 1e3, x'1f', b'101', E'\\\\x'",
];

/// Those of [`CLASSES`] whose classification reads no literal: the rest read one and are
/// classified per text.
const SHAREABLE: &[&str] = &[
    "DELETE FROM t WHERE 1 = 2",
    "DELETE FROM t WHERE 1 = 1",
    "UPDATE t SET a = 1 WHERE 'x' = 'y'",
    "DELETE FROM t WHERE id BETWEEN 1 AND 5",
    "DELETE FROM t WHERE id BETWEEN 5 AND 1",
    "DELETE FROM t WHERE (id = 1) = 'true'",
    "DELETE FROM t WHERE (id = 1) IS NOT DISTINCT FROM 't'",
    "SELECT 'pg_authid'::regclass",
    "SELECT * FROM t WHERE a = 1 LIMIT 10 OFFSET 5",
    "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
    "UPDATE pgbench_accounts SET abalance = abalance + -3018 WHERE aid = 2343",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
    "SELECT 1.5, 1e3, x'1f', b'101', E'\\\\x'",
];

const INTS: &[&str] = &["0", "1", "2", "5", "1000"];
const FLOATS: &[&str] = &["0.0", "1.5", "2e3"];
const STRINGS: &[&str] = &[
    "''",
    "'0'",
    "'1'",
    "'x'",
    "'t'",
    "'f'",
    "'on'",
    "'off'",
    "'true'",
    "'yes'",
    "'{t,f}'",
    "'{t}'",
    "'{}'",
    "'pg_authid'",
    "'pg_catalog.pg_authid'",
    "'role'",
    "'client_encoding'",
    "'standard_conforming_strings'",
    "'LATIN1'",
    "'application_name'",
    "'search_path'",
];

/// The literals of `sql` with the values a variant may give each (empty: kept).
fn literals(sql: &str) -> Vec<(usize, usize, &'static [&'static str])> {
    let Ok(scan) = pg_query::scan(sql) else {
        return Vec::new();
    };
    scan.tokens
        .iter()
        .filter_map(|t| {
            use pg_query::protobuf::Token;
            let values: &'static [&'static str] = match Token::try_from(t.token).ok()? {
                Token::Iconst => INTS,
                Token::Fconst => FLOATS,
                // Plain quotes only: E'', U&'' and dollar quotes keep their value.
                Token::Sconst if sql[t.start as usize..].starts_with('\'') => STRINGS,
                _ => return None,
            };
            Some((t.start as usize, t.end as usize, values))
        })
        .collect()
}

fn replace(sql: &str, edits: &[(usize, usize, &str)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(from, to, value) in edits {
        out.push_str(&sql[at..from]);
        out.push_str(value);
        at = to;
    }
    out.push_str(&sql[at..]);
    out
}

fn variants(sql: &str) -> Vec<String> {
    let lits = literals(sql);
    let mut out = Vec::new();
    for &(from, to, values) in lits.iter().take(8) {
        for value in values {
            out.push(replace(sql, &[(from, to, value)]));
        }
    }
    for pick in [INTS, FLOATS, STRINGS] {
        for value in pick {
            let edits: Vec<(usize, usize, &str)> = lits
                .iter()
                .map(|&(f, t, values)| (f, t, if values == pick { *value } else { &sql[f..t] }))
                .collect();
            out.push(replace(sql, &edits));
        }
    }
    out
}

/// Checks `sql` and its variants; returns whether its classification was shareable.
fn check(sql: &str, opts: &Options, failures: &mut Vec<String>, compared: &mut usize) -> bool {
    let Some(shape) = Shape::of(sql) else {
        return false;
    };
    let (template, shared) = classify_shaped(sql, opts, Some(&shape));
    if template != classify(sql, opts) {
        failures.push(format!("{sql:?}: classify_shaped differs from classify"));
    }
    if !shared {
        return false;
    }
    for variant in variants(sql) {
        let Some(vshape) = Shape::of(&variant) else {
            continue;
        };
        if vshape.key() != shape.key() {
            // A value the parser reads is part of the shape: another shape, not shared.
            continue;
        }
        *compared += 1;
        let fresh = classify(&variant, opts);
        let shared = vshape.instantiate(&template, &variant);
        if fresh != shared {
            failures.push(format!(
                "{variant:?} (shape of {sql:?}):\n  fresh  {fresh:?}\n  shared {shared:?}"
            ));
            continue;
        }
        let (a, b) = (
            fresh.statements[0].lineage(),
            shared.statements[0].lineage(),
        );
        if a != b {
            failures.push(format!("{variant:?}: lineage differs from that of {sql:?}"));
        }
    }
    true
}

#[test]
fn statements_of_one_shape_share_only_literal_free_classifications() {
    let opts = Options::default();
    let mut sqls: Vec<String> = CLASSES.iter().map(|s| (*s).to_owned()).collect();
    for text in [
        include_str!("corpus.toml"),
        include_str!("../../integration-tests/tests/bypass_corpus.toml"),
    ] {
        let corpus: Corpus = toml::from_str(text).expect("corpus parses");
        for case in corpus.case {
            sqls.extend(case.setup);
            sqls.push(case.sql);
        }
    }
    let (mut failures, mut compared) = (Vec::new(), 0);
    let shared = sqls
        .iter()
        .filter(|sql| check(sql, &opts, &mut failures, &mut compared))
        .count();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 10_000, "only {compared} variants compared");
    // The cache has something to share: the plain statements of the corpora are shareable.
    assert!(
        shared > 100,
        "only {shared} of {} statements shareable",
        sqls.len()
    );
    let shared: Vec<&str> = CLASSES
        .iter()
        .copied()
        .filter(|sql| classify_shaped(sql, &opts, Some(&Shape::of(sql).unwrap())).1)
        .collect();
    assert_eq!(shared, SHAREABLE, "the literal-free classifications");
}
