//! Internal tests: the gate must never hide a finding.

use crate::Entity;
use crate::engine::Engine;

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

/// Fragments that build texts which often pass the gate only through an anchor, or not at
/// all: letters, separators and the literal prefixes, with digits, `@`, `:` and `=` rare.
const FRAGMENTS: &[&str] = &[
    "a",
    "B",
    "z",
    "x",
    "-",
    "--",
    "_",
    ".",
    " ",
    "\t",
    "\n",
    "é",
    "🙂",
    "sk-",
    "sk_live_",
    "xoxb-",
    "xapp-",
    "ghp_",
    "github_pat_",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJ",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    concat!("-----END PRIV", "ATE KEY-----"),
    "Bearer ",
    "Basic ",
    "dXNlcjpwYXNz",
    "hooks.slack.com/services/",
    "whsec_",
    "AbCdEfGhIjKlMnOp",
    "QRSTUVWXYZabcdefghij",
    "de:ad",
    "ab-cd-ef-ab-cd-ef",
    "dead.beef.cafe",
    "1",
    "7",
    "@",
    ":",
    "=",
    "::",
];

fn random_text(rng: &mut Rng) -> String {
    let n = 1 + rng.below(24);
    (0..n)
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

#[test]
fn gate_never_hides_a_finding() {
    let engine = Engine::new(&Entity::ALL).expect("engine builds");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut failures = Vec::new();
    for _ in 0..5_000 {
        let text = random_text(&mut rng);
        let (gated, full) = (engine.find(&text), engine.find_ungated(&text, 0).findings);
        if gated != full {
            failures.push(format!("{text:?}: gated {gated:?}, ungated {full:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gate_passes_every_anchor_only_shape() {
    let engine = Engine::new(&Entity::ALL).expect("engine builds");
    // Secrets of these shapes can be written without digits, `@`, `:` or `=`.
    let texts = [
        "sk_live_abcdefghijklmnopqrstuvwx",
        "xoxb-abcdefghijklmnop",
        "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaabcdefghijklmnopqrstuvwxyzABCDEFGHI",
        concat!(
            "-----BEGIN PRIV",
            "ATE KEY-----\nabc\n-----END PRIV",
            "ATE KEY-----"
        ),
        "Basic dXNlcjpwYXNz",
    ];
    for text in texts {
        assert_eq!(
            engine.find(text),
            engine.find_ungated(text, 0).findings,
            "{text}"
        );
    }
}
