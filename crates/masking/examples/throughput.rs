//! Rough throughput figures for the masking hot paths, single-threaded:
//! `cargo run --release -p portcullis-masking --example throughput`.

// A benchmark: a profile that does not compile is a bug to report loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use portcullis_masking::{ColumnPlan, Counts, Masker, ProfileSpec};

/// A tiny deterministic PRNG (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "order",
    "shipped",
    "customer",
    "account",
    "status",
    "active",
    "pending",
    "invoice",
    "total",
    "amount",
    "warehouse",
    "München",
    "Grüße",
    "report",
    "quarterly",
    "revenue",
    "item",
    "widget",
];

/// ~20-byte values as they come out of a typical table.
fn short_values(rng: &mut Rng, n: usize, with_digits: bool) -> Vec<String> {
    (0..n)
        .map(|i| {
            let kind = if with_digits { i % 4 } else { 0 };
            match kind {
                0 => format!(
                    "{} {} {}",
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    rng.pick(WORDS)
                ),
                1 => format!(
                    "2024-0{}-1{} 10:3{}:00",
                    1 + rng.next() % 9,
                    rng.next() % 10,
                    rng.next() % 10
                ),
                2 => format!("{}", rng.next() % 1_000_000),
                _ => format!("{}.{:02} EUR", rng.next() % 100_000, rng.next() % 100),
            }
        })
        .collect()
}

/// Prose with numbers, dates and punctuation but nothing sensitive.
fn clean_text(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        match rng.next() % 12 {
            0 => s.push_str(&format!("item {} ", rng.next() % 1000)),
            1 => s.push_str("on 2024-03-05, "),
            2 => s.push_str(". "),
            _ => {
                s.push_str(rng.pick(WORDS));
                s.push(' ');
            }
        }
    }
    s
}

/// The same prose with a sensitive value every ~200 bytes.
fn dirty_text(rng: &mut Rng, bytes: usize) -> String {
    let secrets = [
        "alice@example.com",
        "4111 1111 1111 1111",
        "+44 20 7946 0958",
        "10.1.2.3",
        "123-45-6789",
        "password=hunter22",
        "GB82WEST12345698765432",
        "2001:db8::1",
    ];
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        s.push_str(&clean_text(rng, 200));
        s.push_str(rng.pick(&secrets));
        s.push(' ');
    }
    s
}

fn per_second(n: f64, start: Instant) -> f64 {
    n / start.elapsed().as_secs_f64()
}

fn values(masker: &Masker, label: &str, vals: &[String]) {
    let mut counts = Counts::default();
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        for v in vals {
            black_box(masker.mask_value(&ColumnPlan::Pass, v.as_bytes(), &mut counts));
        }
    }
    let rate = per_second((rounds * vals.len()) as f64, start);
    let avg = vals.iter().map(String::len).sum::<usize>() as f64 / vals.len() as f64;
    println!(
        "{label:<44} {:>8.2} M values/s  (avg {avg:.0} bytes, {} masked)",
        rate / 1e6,
        counts.total()
    );
}

fn text(masker: &Masker, label: &str, text: &str) {
    let mut counts = Counts::default();
    let rounds = 5;
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(masker.mask_text(text, &mut counts));
    }
    let rate = per_second((rounds * text.len()) as f64, start);
    println!(
        "{label:<44} {:>8.1} MB/s      ({} masked)",
        rate / 1e6,
        counts.total() / rounds as u64
    );
}

fn main() {
    let masker =
        Masker::new(&[&ProfileSpec::builtin_default()], None).expect("builtin profile compiles");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Warm the lazy DFA caches, as a long-running gateway would have.
    text(&masker, "warm-up", &dirty_text(&mut rng, 1 << 20));

    values(
        &masker,
        "short clean values, letters only",
        &short_values(&mut rng, 100_000, false),
    );
    values(
        &masker,
        "short clean values, dates/numbers/amounts",
        &short_values(&mut rng, 100_000, true),
    );
    let emails: Vec<String> = (0..100_000)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    values(&masker, "short values, each an e-mail address", &emails);
    text(
        &masker,
        "large clean text (8 MB)",
        &clean_text(&mut rng, 8 << 20),
    );
    text(
        &masker,
        "large text, a finding every ~200 bytes (8 MB)",
        &dirty_text(&mut rng, 8 << 20),
    );

    let doc = format!(
        "[{}]",
        (0..20_000)
            .map(|i| format!(
                r#"{{"id":{i},"name":"user {i}","email":"u{i}@example.com","note":"{}"}}"#,
                clean_text(&mut rng, 60)
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut counts = Counts::default();
    let start = Instant::now();
    black_box(masker.mask_json(&doc, &mut counts));
    println!(
        "{:<44} {:>8.1} MB/s      ({} masked)",
        "JSON document (2.6 MB, 20k objects)",
        per_second(doc.len() as f64, start) / 1e6,
        counts.total()
    );
}
