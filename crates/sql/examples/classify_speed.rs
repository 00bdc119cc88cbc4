//! Measures one classification of typical statements:
//! `cargo run --release -p portcullis-sql --example classify_speed`.

use std::time::Instant;

use portcullis_sql::{Options, classify};

const CASES: &[(&str, &str)] = &[
    (
        "simple select",
        "SELECT id, name FROM public.users WHERE id = 42",
    ),
    (
        "join select",
        "SELECT u.id, u.name, count(o.id) FROM users u JOIN orders o ON o.user_id = u.id \
         WHERE u.created_at > now() - interval '7 days' AND o.status = 'paid' \
         GROUP BY u.id, u.name ORDER BY 3 DESC LIMIT 20",
    ),
    (
        "cte delete",
        "WITH d AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM d",
    ),
    (
        "three statements",
        "BEGIN; UPDATE accounts SET b = b - 1 WHERE id = 1; COMMIT",
    ),
    ("parse error", "SELEC id FROM users"),
];

fn main() {
    let opts = Options::default();
    for (name, sql) in CASES {
        let rounds = 20_000;
        for _ in 0..1_000 {
            std::hint::black_box(classify(sql, &opts));
        }
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(classify(std::hint::black_box(sql), &opts));
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        let parse_start = Instant::now();
        for _ in 0..rounds {
            let _ = std::hint::black_box(pg_query::parse(std::hint::black_box(sql), 0));
        }
        let parse = parse_start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("{name:>18}: {micros:6.1} µs per classify ({parse:5.1} µs of it pg_query::parse)");
    }
}
