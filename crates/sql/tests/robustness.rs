//! The classifier is total: no input makes it panic, and every output keeps its invariants.
//! Inputs are nasty strings, deterministic pseudo-random bytes, SQL token soup, and every
//! prefix of every corpus case (the shapes a truncated or adversarial message takes).

use portcullis_sql::{Classification, Options, classify, ids};

const ACTIONS: &[&str] = &[
    ids::SELECT,
    ids::COPY_TO,
    ids::EXPLAIN,
    ids::INSERT,
    ids::UPDATE,
    ids::DELETE,
    ids::MERGE,
    ids::COPY_FROM,
    ids::DDL,
    ids::ADMIN,
    ids::TRANSACTION,
    ids::SESSION,
];

/// Checks what must hold for any input, and returns the classification for further checks.
fn classify_checked(sql: &str) -> Classification {
    let got = classify(sql, &Options::default());
    assert_eq!(
        got.parsed,
        got.error.is_none(),
        "error iff unparsed: {sql:?}"
    );
    if !got.parsed {
        assert_eq!(
            got.statements.len(),
            1,
            "unparsed input is one statement: {sql:?}"
        );
        assert_eq!(got.statements.first().map(|s| s.action), Some(ids::ADMIN));
    }
    for statement in &got.statements {
        assert!(
            ACTIONS.contains(&statement.action),
            "unknown action for {sql:?}"
        );
        assert!(
            is_sorted_set(&statement.tables),
            "tables sorted and unique: {sql:?}"
        );
        assert!(
            is_sorted_set(&statement.functions),
            "functions sorted and unique: {sql:?}"
        );
    }
    let facts = got.facts();
    assert_eq!(facts["sql"]["statement_count"], got.statements.len());
    got
}

fn is_sorted_set(items: &[String]) -> bool {
    items.windows(2).all(|pair| pair[0] < pair[1])
}

/// xorshift64*: deterministic, so a failure reproduces from the seed in the message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn nasty_strings_never_panic() {
    let long_literal = format!("SELECT '{}'", "x".repeat(1 << 20));
    let cases = [
        String::new(),
        "\0".into(),
        "\0\0\0".into(),
        ";".repeat(10_000),
        "'".into(),
        "\"".into(),
        "$$".into(),
        "$a$".into(),
        "$a$ $b$".into(),
        "/*".into(),
        "*/".into(),
        "/* /* */".into(),
        "/*".repeat(10_000),
        "--".into(),
        "\\".into(),
        "E'\\".into(),
        "U&'\\".into(),
        "U&\"\\0000\"".into(),
        "SELECT U&'\\D800'".into(),
        "\u{feff}SELECT 1".into(),
        "SELECT '\u{202e}gnp.exe'".into(),
        "SELECT '😀'; DELETE FROM \"😀\"".into(),
        "SELECT 1".repeat(3),
        "SELECT 1;".repeat(10_000),
        format!("SELECT {}", "1,".repeat(100_000)),
        format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("SELECT {}1{}", "(SELECT ".repeat(1_000), ")".repeat(1_000)),
        format!("SELECT {}1{}", "ARRAY[".repeat(10_000), "]".repeat(10_000)),
        format!("SELECT {}true", "NOT ".repeat(100_000)),
        format!("SELECT 1{}", " || 1".repeat(50_000)),
        format!("{}SELECT 1", "WITH a AS (".repeat(1_000)),
        format!("EXPLAIN {}SELECT 1", "EXPLAIN ANALYZE ".repeat(1_000)),
        format!("PREPARE p AS {}", "PREPARE q AS ".repeat(1_000)),
        long_literal,
        "SELECT $1, $2, $99999999999999999999".into(),
        "SELECT 99999999999999999999999999999999999999".into(),
        "COPY t FROM STDIN; \\.".into(),
        "SELECT '\u{0}'".into(),
        "SELECT 1 /* unterminated".into(),
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT $$".into(),
    ];
    for sql in &cases {
        classify_checked(sql);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3_000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        classify_checked(&String::from_utf8_lossy(&bytes));
    }
}

/// Fragments for token soup: keywords and shapes the classifier has rules for.
const TOKENS: &[&str] = &[
    "SELECT",
    "INSERT",
    "INTO",
    "UPDATE",
    "DELETE",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "*",
    "t",
    "s.t",
    "1",
    "'x'",
    "$$y$$",
    "RETURNING",
    "SET",
    "a",
    "=",
    "VALUES",
    "EXPLAIN",
    "ANALYZE",
    "PREPARE",
    "p",
    "EXECUTE",
    "COPY",
    "TO",
    "STDOUT",
    "PROGRAM",
    "BEGIN",
    "READ",
    "WRITE",
    "CREATE",
    "TABLE",
    "DROP",
    "MERGE",
    "USING",
    "ON",
    "WHEN",
    "MATCHED",
    "THEN",
    "DO",
    "NOTHING",
    "pg_read_file(",
    "set_config(",
    "UNION",
    "JOIN",
    "LATERAL",
    "CTE",
    "RECURSIVE",
    "TRUNCATE",
    "GRANT",
    "ROLE",
    "/*",
    "*/",
    "--\n",
    "E'\\''",
    "\"q\"",
    "::",
    "int",
    "ALL",
    "DECLARE",
    "CURSOR",
    "FOR",
];

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let len = 1 + rng.below(24);
        let sql: Vec<&str> = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        classify_checked(&sql.join(" "));
    }
}

#[test]
fn every_prefix_of_the_corpus_never_panics() {
    let corpus: toml::Table = toml::from_str(include_str!("corpus.toml")).expect("corpus parses");
    let cases = corpus["case"].as_array().expect("cases");
    for case in cases {
        let sql = case["sql"].as_str().expect("sql");
        for (cut, _) in sql.char_indices() {
            classify_checked(&sql[..cut]);
        }
    }
}

/// libpg_query keeps its parser state per thread; the door classifies from many tasks at
/// once, so concurrent calls must give the same answers as sequential ones.
#[test]
fn concurrent_classification_matches_sequential() {
    let corpus: toml::Table = toml::from_str(include_str!("corpus.toml")).expect("corpus parses");
    let sqls: Vec<String> = corpus["case"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|case| case["sql"].as_str().map(str::to_owned))
        .collect();
    let expected: Vec<Classification> = sqls.iter().map(|sql| classify_checked(sql)).collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for (sql, want) in sqls.iter().zip(&expected) {
                    assert_eq!(&classify(sql, &Options::default()), want, "{sql:?}");
                }
            });
        }
    });
}
