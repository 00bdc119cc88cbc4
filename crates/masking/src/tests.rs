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

/// Fragments for the locator test: pieces of every entity's shape, their separators and
/// neighbours, so random texts make runs that just pass or just fail each class's test.
const SHAPES: &[&str] = &[
    "4111",
    "1111",
    "0000",
    "12",
    "345",
    "6789",
    "0",
    "1",
    "9",
    "+",
    "+49",
    "+1",
    "(",
    ")",
    " ",
    "  ",
    "-",
    ".",
    "..",
    ":",
    "::",
    "@",
    "_",
    "%",
    "'",
    "/",
    "\n",
    "\t",
    "=",
    "\"",
    ",",
    "a",
    "B",
    "x",
    "é",
    "GB",
    "82",
    "WEST",
    "NL",
    "AB",
    "C",
    "D",
    "fe80",
    "dead",
    "BEEF",
    "db8",
    "https",
    "postgres",
    "://",
    "user",
    ":pa$$w0rd@",
    "@host",
    "example.com",
    "ssn",
    "SSN ",
    "social security",
    "passport",
    "no",
    "password",
    "pwd",
    "=",
    ": ",
    "host=",
    "db ",
    "token",
    "api_key",
    "secret",
    "aws_secret_access_key",
    "AKIA",
    "A3T",
    "eyJ",
    "hbGciOiJIUzI1NiJ9",
    "ghp_",
    "xoxb-",
    "sk_live_",
    "sk-",
    "AIza",
    "Bearer ",
    "Basic ",
    "dXNlcjpwYXNz",
    "-----BEGIN ",
    "RSA ",
    "PRIVATE KEY-----",
    "-----END ",
    "hooks.slack.com/",
    "services/",
];

fn shaped_text(rng: &mut Rng) -> String {
    let n = 1 + rng.below(40);
    (0..n).map(|_| SHAPES[rng.below(SHAPES.len())]).collect()
}

#[test]
fn located_search_agrees_with_a_search_of_the_whole_text() {
    let engine = Engine::new(&Entity::ALL).expect("engine builds");
    let mut rng = Rng(0x0dd_ba11_5eed_cafe);
    let mut failures = Vec::new();
    for round in 0..20_000 {
        // Every hundredth text is long, so that the literal search's blocks meet in it.
        let text = if round % 100 == 0 {
            (0..400).map(|_| shaped_text(&mut rng)).collect()
        } else if round % 2 == 0 {
            shaped_text(&mut rng)
        } else {
            random_text(&mut rng)
        };
        // The streaming masker searches from inside a text too.
        let from = if round % 3 == 0 {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        } else {
            0
        };
        let (located, everywhere) = (
            engine.find_ungated(&text, from),
            engine.find_everywhere(&text, from),
        );
        // The waits may differ: a run its class does not admit holds no finding, so the
        // locator does not search it, where a search of everything meets matches in it that
        // their validators reject. The streaming tests check that waiting stays right.
        if located.findings != everywhere.findings {
            failures.push(format!(
                "{text:?} from {from}: located {:?} {:?}, everywhere {:?} {:?}",
                located.findings, located.wait, everywhere.findings, everywhere.wait
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements, first:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
