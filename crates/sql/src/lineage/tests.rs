use crate::{Options, classify};

/// The sensitive-looking column names of each result column of `sql`, whose result the
/// server describes with `names`.
fn fields(sql: &str, names: &[&str]) -> Vec<Vec<String>> {
    let c = classify(sql, &Options::default());
    let lineage = c.statements[0].lineage().expect("lineage");
    lineage
        .fields(names)
        .into_iter()
        .map(|s| {
            let mut v: Vec<String> = s
                .columns
                .iter()
                .map(|c| match &c.table {
                    Some(t) => format!("{t}.{}", c.column),
                    None => c.column.clone(),
                })
                .chain(s.whole_rows.iter().map(|t| format!("{t}.*")))
                .collect();
            v.sort();
            v
        })
        .collect()
}

fn one(sql: &str, names: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = fields(sql, names).into_iter().flatten().collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn expressions_keep_their_columns() {
    assert_eq!(
        fields(
            "SELECT id, reverse(card), 'x' || ssn AS s FROM members",
            &["id", "reverse", "s"]
        ),
        vec![
            vec!["members.id".to_owned()],
            vec!["members.card".to_owned()],
            vec!["members.ssn".to_owned()]
        ]
    );
    assert_eq!(
        one(
            "SELECT encode(convert_to(email || ' ' || card, 'UTF8'), 'base64') FROM members m",
            &["encode"]
        ),
        ["members.card", "members.email"]
    );
    assert_eq!(
        one(
            "SELECT CASE WHEN card LIKE '4%' THEN 'visa' END FROM members",
            &["case"]
        ),
        ["members.card"]
    );
}

#[test]
fn count_and_null_tests_reveal_nothing_but_are_read() {
    let c = classify(
        "SELECT count(card), email IS NULL FROM members",
        &Options::default(),
    );
    let l = c.statements[0].lineage().unwrap();
    let f = l.fields(&["count", "?column?"]);
    assert!(f.iter().all(|s| s.columns.is_empty()), "{f:?}");
    assert!(l.reads.columns.iter().any(|c| c.column == "card"));
    assert!(l.reads.columns.iter().any(|c| c.column == "email"));
}

#[test]
fn subqueries_ctes_and_aliases_are_followed() {
    assert_eq!(
        one(
            "SELECT x FROM (SELECT reverse(card) AS x FROM members) s",
            &["x"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one(
            "WITH c(x) AS (SELECT reverse(card) FROM members) SELECT upper(x) FROM c",
            &["upper"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one(
            "SELECT * FROM (SELECT substr(card, 1, 8) FROM members) s",
            &["substr"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one(
            "SELECT s.* FROM (SELECT 1 AS a, email AS b FROM members) s",
            &["a", "b"]
        ),
        ["members.email"]
    );
    assert_eq!(
        fields(
            "SELECT s.* FROM (SELECT 1 AS a, email AS b FROM members) s",
            &["a", "b"]
        )[0],
        Vec::<String>::new()
    );
    let agg = one(
        "SELECT string_agg(ch, '' ORDER BY n) FROM members, regexp_split_to_table(email, '') WITH ORDINALITY AS t(ch, n) WHERE members.id = 1",
        &["string_agg"],
    );
    assert!(agg.contains(&"members.email".to_owned()), "{agg:?}");
    assert_eq!(
        one(
            "SELECT (SELECT reverse(m.card) FROM other LIMIT 1) FROM members m",
            &["reverse"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one(
            "SELECT r FROM members m, LATERAL (SELECT reverse(m.card) AS r) s",
            &["r"]
        ),
        // Without the catalog, `r` may also be a column of members.
        ["members.card", "members.r"]
    );
}

#[test]
fn set_operations_and_values_take_each_arm() {
    assert_eq!(
        fields(
            "SELECT id::text FROM members UNION ALL SELECT reverse(card) FROM members",
            &["id"]
        ),
        vec![vec!["members.card".to_owned(), "members.id".to_owned()]]
    );
    assert_eq!(
        one(
            "WITH RECURSIVE r(x) AS (SELECT '' UNION ALL SELECT x || card FROM r, members) SELECT x FROM r",
            &["x"]
        ),
        ["members.card", "members.x"]
    );
}

#[test]
fn stars_align_with_the_description() {
    let f = fields(
        "SELECT reverse(card), *, 1 FROM members",
        &["reverse", "id", "email", "?column?"],
    );
    assert_eq!(f[0], ["members.card"]);
    assert_eq!(f[1], ["members.id"]);
    assert_eq!(f[2], ["members.email"]);
    assert!(f[3].is_empty());
    // Two open stars: nothing settles positions, every column takes everything.
    let f = fields(
        "SELECT m.*, reverse(card), o.* FROM members m, other o",
        &["id", "x", "y"],
    );
    assert!(
        f.iter().all(|c| c.contains(&"members.card".to_owned())),
        "{f:?}"
    );
}

#[test]
fn whole_rows_and_returning() {
    // Unqualified, `m` could also be a column of that name (the server prefers the column).
    assert_eq!(
        one("SELECT row_to_json(m) FROM members m", &["row_to_json"]),
        ["members.*", "members.m"]
    );
    assert_eq!(
        one("SELECT m::text FROM members m", &["m"]),
        ["members.*", "members.m"]
    );
    assert_eq!(
        one(
            "UPDATE notes SET body = reverse((SELECT card FROM members LIMIT 1)) RETURNING id",
            &["id"]
        ),
        ["members.card", "notes.id"]
    );
    assert_eq!(
        one(
            "WITH d AS (DELETE FROM members RETURNING card) SELECT reverse(card) FROM d",
            &["reverse"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one(
            "COPY (SELECT reverse(card) FROM members) TO STDOUT",
            &["reverse"]
        ),
        ["members.card"]
    );
    assert_eq!(
        one("COPY members (card) TO STDOUT", &["card"]),
        ["members.card"]
    );
    assert!(
        classify("SET x = 1", &Options::default()).statements[0]
            .lineage()
            .is_none()
    );
}

#[test]
fn prepared_and_declared_queries_carry_their_lineage() {
    for sql in [
        "PREPARE p AS SELECT reverse(card) FROM members",
        "DECLARE c CURSOR FOR SELECT reverse(card) FROM members",
    ] {
        assert_eq!(one(sql, &["reverse"]), ["members.card"], "{sql}");
    }
}

#[test]
fn copy_formats_are_read_from_the_options() {
    let format = |sql: &str| {
        classify(sql, &Options::default()).statements[0]
            .lineage()
            .and_then(|l| l.copy)
            .expect("copy format")
    };
    let text = format("COPY members TO STDOUT");
    assert_eq!(
        (text.csv, text.binary, text.delimiter),
        (false, false, b'\t')
    );
    let csv = format("COPY members TO STDOUT WITH CSV DELIMITER ';' QUOTE '|'");
    assert_eq!(
        (csv.csv, csv.delimiter, csv.quote, csv.escape),
        (true, b';', b'|', b'|')
    );
    let csv = format("COPY (SELECT 1) TO STDOUT (FORMAT csv, ESCAPE '\\')");
    assert_eq!((csv.delimiter, csv.quote, csv.escape), (b',', b'"', b'\\'));
    assert!(format("COPY members TO STDOUT (FORMAT binary)").binary);
}

#[test]
fn stored_values_name_their_target_columns() {
    let stored = |sql: &str| {
        let l = crate::lineage_of(sql).expect("lineage");
        l.stored
            .iter()
            .map(|s| {
                let mut from: Vec<String> =
                    s.sources.columns.iter().map(|c| c.column.clone()).collect();
                from.extend(s.sources.whole_rows.iter().map(|t| format!("{t}.*")));
                from.sort();
                (s.table.clone(), s.column.clone(), from)
            })
            .collect::<Vec<_>>()
    };
    let name = |s: &str| Some(s.to_owned());
    assert_eq!(
        stored(
            "UPDATE notes SET body = reverse(m.card), id = 1 FROM members m WHERE notes.id = m.id"
        ),
        [(name("notes"), name("body"), vec!["card".to_owned()])]
    );
    assert_eq!(
        stored("INSERT INTO notes (id, body) SELECT id, 'x' || email FROM members"),
        [
            (name("notes"), name("id"), vec!["id".to_owned()]),
            (name("notes"), name("body"), vec!["email".to_owned()]),
        ]
    );
    assert_eq!(
        stored("INSERT INTO notes SELECT * FROM members"),
        [(name("notes"), None, vec!["members.*".to_owned()])]
    );
    assert_eq!(
        stored("CREATE TABLE copy AS SELECT reverse(ssn) FROM members"),
        [(name("copy"), None, vec!["ssn".to_owned()])]
    );
    assert_eq!(
        stored("SELECT reverse(ssn) INTO copy2 FROM members"),
        [(None, None, vec!["ssn".to_owned()])]
    );
    assert_eq!(
        stored("WITH u AS (UPDATE notes SET body = upper(body) RETURNING id) SELECT 1"),
        [(name("notes"), name("body"), vec!["body".to_owned()])]
    );
    assert!(
        crate::lineage_of("INSERT INTO notes VALUES (1, 'x')").is_none_or(|l| l.stored.is_empty())
    );
}
