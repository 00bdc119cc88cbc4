//! Runs every case of `corpus.toml` through one `check` helper. A case gives the SQL, the
//! expected action per statement, and optionally the policy facts and per-statement details.

use portcullis_sql::{Classification, CursorOp, Options, SettingChange, Statement, classify};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    sql: String,
    /// One action per statement, in order.
    actions: Vec<String>,
    /// Checked against `facts()`: the union over statements.
    tables: Option<Vec<String>>,
    functions: Option<Vec<String>>,
    /// Checked against `facts()`: see `Classification::facts` for multi-statement input.
    has_where: Option<bool>,
    modifies_data: Option<bool>,
    parsed: Option<bool>,
    /// The parser message of unparsable input.
    error: Option<String>,
    /// Per statement.
    texts: Option<Vec<String>>,
    normalized: Option<Vec<String>>,
    prepare_name: Option<String>,
    execute_name: Option<String>,
    deallocate_name: Option<String>,
    deallocate_all: Option<bool>,
    /// `database_wide`, per statement.
    database_wide: Option<Vec<bool>>,
    /// `counts_rows`, per statement.
    counts_rows: Option<Vec<bool>>,
    /// `transaction`, per statement: `begin`, `commit`, `rollback`, `within` or `<none>`.
    transaction: Option<Vec<String>>,
    /// `conforming_strings_off`, per statement.
    conforming_strings_off: Option<Vec<bool>>,
    /// `client_encoding`: the value, `<default>`, `<unknown>` or `<none>`.
    client_encoding: Option<String>,
    /// `cursor`: `declare c`, `declare-hold c`, `fetch c`, `move c`, `close c`, `close-all`
    /// or `<none>`.
    cursor: Option<String>,
    /// Extra names for `Options::side_effect_functions`.
    side_effect_functions: Option<Vec<String>>,
}

/// Records a mismatch between what a case wants and what the classifier gave.
type Expect<'a> = dyn FnMut(&str, String, String) + 'a;

/// Compares one case with the classifier's output; returns every mismatch.
fn check(case: &Case) -> Vec<String> {
    let mut opts = Options::default();
    if let Some(extra) = &case.side_effect_functions {
        opts.side_effect_functions.extend(extra.iter().cloned());
    }
    let got = classify(&case.sql, &opts);
    let mut errors = Vec::new();
    let mut expect = |what: &str, want: String, have: String| {
        if want != have {
            errors.push(format!("{what}: want {want}, got {have}"));
        }
    };
    let actions: Vec<&str> = got.statements.iter().map(|s| s.action).collect();
    expect(
        "actions",
        format!("{:?}", case.actions),
        format!("{actions:?}"),
    );
    check_facts(case, &got, &mut expect);
    check_statements(case, &got, &mut expect);
    if got.parsed == got.error.is_some() {
        expect(
            "error set iff unparsed",
            "consistent".into(),
            format!("{:?}", got.error),
        );
    }
    if let Some(want) = &case.error {
        expect(
            "error",
            format!("{:?}", Some(want)),
            format!("{:?}", got.error),
        );
    }
    errors
}

/// The fields checked against `facts()`, the policy context.
fn check_facts(case: &Case, got: &Classification, expect: &mut Expect) {
    let facts = got.facts();
    let fact = |key: &str| facts["sql"][key].to_string();
    let json = |value: &Vec<String>| serde_json::to_string(value).unwrap_or_default();
    if let Some(want) = &case.tables {
        expect("tables", json(want), fact("tables"));
    }
    if let Some(want) = &case.functions {
        expect("functions", json(want), fact("functions"));
    }
    if let Some(want) = case.has_where {
        expect("has_where", want.to_string(), fact("has_where"));
    }
    if let Some(want) = case.modifies_data {
        expect("modifies_data", want.to_string(), fact("modifies_data"));
    }
    let parsed = case.parsed.unwrap_or(true).to_string();
    expect("parsed", parsed, fact("parsed"));
}

/// The fields checked statement by statement.
fn check_statements(case: &Case, got: &Classification, expect: &mut Expect) {
    let each = |field: fn(&Statement) -> Option<String>| {
        format!("{:?}", got.statements.iter().map(field).collect::<Vec<_>>())
    };
    let all_some = |values: &[String]| format!("{:?}", values.iter().map(Some).collect::<Vec<_>>());
    if let Some(want) = &case.texts {
        expect("texts", all_some(want), each(|s| Some(s.text.clone())));
    }
    if let Some(want) = &case.normalized {
        expect(
            "normalized",
            all_some(want),
            each(|s| Some(s.normalized.clone())),
        );
    }
    let names = [
        (
            "prepare_name",
            &case.prepare_name,
            each(|s| s.prepare_name.clone()),
        ),
        (
            "execute_name",
            &case.execute_name,
            each(|s| s.execute_name.clone()),
        ),
        (
            "deallocate_name",
            &case.deallocate_name,
            each(|s| s.deallocate_name.clone()),
        ),
    ];
    for (what, want, have) in names {
        if let Some(want) = want {
            let want = (want != "<none>").then_some(want);
            expect(what, format!("{:?}", [want]), have);
        }
    }
    let session = [
        (
            "client_encoding",
            &case.client_encoding,
            each(|s| s.client_encoding.as_ref().map(encoding)),
        ),
        (
            "cursor",
            &case.cursor,
            each(|s| s.cursor.as_ref().map(cursor)),
        ),
    ];
    for (what, want, have) in session {
        if let Some(want) = want {
            let want = (want != "<none>").then_some(want);
            expect(what, format!("{:?}", [want]), have);
        }
    }
    if let Some(want) = &case.transaction {
        let have: Vec<String> = got
            .statements
            .iter()
            .map(|s| match s.transaction {
                Some(op) => format!("{op:?}").to_lowercase(),
                None => "<none>".to_owned(),
            })
            .collect();
        expect("transaction", format!("{want:?}"), format!("{have:?}"));
    }
    if let Some(want) = &case.counts_rows {
        let have: Vec<bool> = got.statements.iter().map(|s| s.counts_rows).collect();
        expect("counts_rows", format!("{want:?}"), format!("{have:?}"));
    }
    if let Some(want) = &case.database_wide {
        let have: Vec<bool> = got.statements.iter().map(|s| s.database_wide).collect();
        expect("database_wide", format!("{want:?}"), format!("{have:?}"));
    }
    if let Some(want) = &case.conforming_strings_off {
        let have: Vec<bool> = got
            .statements
            .iter()
            .map(|s| s.conforming_strings_off)
            .collect();
        expect(
            "conforming_strings_off",
            format!("{want:?}"),
            format!("{have:?}"),
        );
    }
    if let Some(want) = case.deallocate_all {
        let have: Vec<bool> = got.statements.iter().map(|s| s.deallocate_all).collect();
        expect(
            "deallocate_all",
            format!("{:?}", [want]),
            format!("{have:?}"),
        );
    }
}

fn encoding(change: &SettingChange) -> String {
    match change {
        SettingChange::Value(value) => value.clone(),
        SettingChange::Default => "<default>".into(),
        SettingChange::Unknown => "<unknown>".into(),
    }
}

fn cursor(op: &CursorOp) -> String {
    match op {
        CursorOp::Declare { name, hold: false } => format!("declare {name}"),
        CursorOp::Declare { name, hold: true } => format!("declare-hold {name}"),
        CursorOp::Fetch { name } => format!("fetch {name}"),
        CursorOp::Move { name } => format!("move {name}"),
        CursorOp::Close { name: Some(name) } => format!("close {name}"),
        CursorOp::Close { name: None } => "close-all".into(),
    }
}

#[test]
fn corpus() {
    let text = include_str!("corpus.toml");
    let corpus: Corpus = toml::from_str(text).expect("corpus.toml parses");
    assert!(
        corpus.case.len() >= 150,
        "corpus has only {} cases",
        corpus.case.len()
    );
    let failures: Vec<String> = corpus
        .case
        .iter()
        .filter_map(|case| {
            let errors = check(case);
            (!errors.is_empty()).then(|| format!("{:?}\n    {}", case.sql, errors.join("\n    ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
