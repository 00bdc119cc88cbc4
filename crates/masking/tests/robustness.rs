//! Masking never panics, keeps UTF-8 and character boundaries, and stays linear.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use portcullis_masking::{ColumnPlan, Counts, Masker, ProfileSpec};

/// A tiny deterministic PRNG (xorshift64*).
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

/// Pieces that sit on recognizer edges: partial secrets, separators, quotes, escapes,
/// multi-byte characters.
const PIECES: &[&str] = &[
    "0",
    "1",
    "4",
    "9",
    "41111111",
    "11111111",
    " ",
    "-",
    ".",
    ":",
    "::",
    "@",
    "=",
    "+",
    "(",
    ")",
    "\"",
    "'",
    "\\",
    "\\u00",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "\t",
    "a",
    "Z",
    "é",
    "ü",
    "🙂",
    "\u{2028}",
    "example.com",
    "password=",
    "token: ",
    "postgres://u:",
    "eyJhbGciOiJFUzI1NiJ9",
    ".eyJ4IjoxfQ.",
    "AKIA",
    "ghp_",
    "sk-",
    "xoxb-",
    "AIza",
    concat!("-----BEGIN PRIV", "ATE KEY-----"),
    concat!("-----END PRIV", "ATE KEY-----"),
    "GB82",
    "_",
    "__________",
    "password={",
    "=\"",
    "'",
    "sk-proj-",
    "WEST",
    "ssn ",
    "passport ",
    "fe80",
    "00:1a",
    "NULL",
    "true",
    "Bearer ",
    "Basic ",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(40);
    (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

#[test]
fn random_text_never_panics() {
    let m = Masker::new(&[&ProfileSpec::builtin_default()], Some(b"k")).expect("masker builds");
    let mut rng = Rng(0x0ddb_1a5e_5bad_5eed);
    for _ in 0..3_000 {
        let text = random_text(&mut rng);
        let mut counts = Counts::default();
        for f in m.find(&text) {
            assert!(
                text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end),
                "{text:?}"
            );
        }
        let masked = m.mask_text(&text, &mut counts);
        assert_eq!(
            masked.len() == text.len() && masked == text,
            counts.is_empty(),
            "{text:?} -> {masked:?}"
        );
        for plan in [ColumnPlan::Json, ColumnPlan::Array] {
            let out = m.mask_value(&plan, text.as_bytes(), &mut counts);
            let bytes = out.as_bytes().expect("not null");
            assert!(std::str::from_utf8(bytes).is_ok(), "{text:?}");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let m = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker builds");
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let mut counts = Counts::default();
        let _ = m.mask_value(&ColumnPlan::Pass, &bytes, &mut counts);
        let _ = m.mask_text(&text, &mut counts);
        let _ = m.mask_json(&text, &mut counts);
    }
}

/// Time to mask `text` once.
fn time(m: &Masker, text: &str) -> Duration {
    let start = Instant::now();
    let _ = m.mask_text(text, &mut Counts::default());
    start.elapsed()
}

/// Random edge pieces repeated to about `bytes`: dense in candidates that validators reject.
fn hostile(bytes: usize) -> String {
    let mut rng = Rng(7);
    let unit: String = (0..2_000)
        .map(|_| random_text(&mut rng))
        .collect::<Vec<_>>()
        .join(" ");
    let mut s = String::with_capacity(bytes + unit.len());
    while s.len() < bytes {
        s.push_str(&unit);
    }
    s
}

#[test]
fn large_values_mask_in_linear_time() {
    let m = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker builds");
    // Adversarial shapes too: long digit runs, dotted runs, long words, colons.
    let shapes = [
        hostile(1 << 20),
        "1".repeat(1 << 20),
        "1.".repeat(1 << 19),
        "a".repeat(1 << 20),
        ":a".repeat(1 << 19),
        "a@".repeat(1 << 19),
    ];
    for big in &shapes {
        let small = &big[..big.len() / 8];
        let _ = time(&m, small); // warm the caches
        let (t_small, t_big) = (time(&m, small), time(&m, big));
        let ratio = t_big.as_secs_f64() / t_small.as_secs_f64().max(1e-3);
        assert!(
            t_big < Duration::from_secs(20),
            "1 MB took {t_big:?} ({})",
            &big[..20]
        );
        assert!(
            ratio < 24.0,
            "8x the text took {ratio:.1}x the time ({})",
            &big[..20]
        );
    }
}

#[test]
fn a_hostile_value_does_not_slow_down_later_ones() {
    let m = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker builds");
    let clean = "order 42 shipped on 2024-03-05 to the warehouse. ".repeat(1 << 14);
    let _ = time(&m, &clean);
    let before = time(&m, &clean);
    let _ = time(&m, &hostile(1 << 20));
    let after = time(&m, &clean);
    assert!(
        after < before * 5 + Duration::from_millis(50),
        "clean text took {before:?}, then {after:?}"
    );
}
