//! Measures one classification of typical statements, and how much of it is the lineage
//! (what each result column is made of, for masking):
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
    (
        "pgbench select",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
    ),
    ("parse error", "SELEC id FROM users"),
];

fn per_call(rounds: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        f();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn main() {
    let opts = Options::default();
    for (name, sql) in CASES {
        let rounds = 20_000;
        let total = per_call(rounds, || {
            std::hint::black_box(classify(std::hint::black_box(sql), &opts));
        });
        let parse = per_call(rounds, || {
            let _ = std::hint::black_box(pg_query::parse(std::hint::black_box(sql), 0));
        });
        let lineage = per_call(rounds, || {
            std::hint::black_box(portcullis_sql::lineage_of(std::hint::black_box(sql)));
        });
        println!(
            "{name:>18}: {total:6.1} µs per classify ({parse:5.1} µs pg_query::parse, \
             {:5.1} µs lineage)",
            (lineage - parse).max(0.0)
        );
    }
}
