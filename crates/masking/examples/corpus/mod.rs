//! A generated, labelled corpus for the masking benchmark (`examples/speed.rs`): application
//! log lines, JSON records, CSV blocks, prose, config and env snippets and the odd PEM block,
//! in the proportions of `records::KINDS`.
//!
//! [`dense`] fills sensitive slots with valid values of every entity the `default` profile
//! finds in text (Luhn-valid cards, mod-97-valid IBANs, JWTs with a real header, …) and labels
//! them with the span the engine documents (`src/entity.rs`): only the value of
//! `key = value` and of `Bearer x`, no quotes, the whole PEM block. A quarter of the
//! sensitive slots get a value ([`Writer::hot`]), which makes about one sensitive value per
//! 270 bytes (the benchmark prints the figure of each run). [`clean`] writes the same record kinds
//! with every such slot filled with something harmless. Both carry the same hard negatives:
//! values the engine's documented rules say are not sensitive (Luhn-invalid card-shaped
//! numbers, mod-97-invalid IBANs, versions, UUIDs, digests, dates, order numbers, epoch
//! times, amounts, placeholders such as `${DB_PASS}`).
//!
//! Everything is derived from the seed by a small xorshift64* generator, so a seed always
//! gives the same text on every machine.

mod make;
mod records;
mod short;

use std::ops::Range;

use portcullis_masking::Entity;

/// One sensitive value in a corpus text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub entity: Entity,
    pub range: Range<usize>,
}

/// A generated text with its labels (sorted by start, non-overlapping) and its hard
/// negatives (kind, range).
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub text: String,
    pub labels: Vec<Label>,
    pub negatives: Vec<(&'static str, Range<usize>)>,
}

/// At least `bytes` bytes of records with sensitive values (see the module documentation).
pub fn dense(seed: u64, bytes: usize) -> Corpus {
    generate(seed, bytes, true)
}

/// The same record kinds with nothing sensitive in them, hard negatives kept.
pub fn clean(seed: u64, bytes: usize) -> Corpus {
    generate(seed, bytes, false)
}

/// `n` short values of about `len` bytes, as they come out of table columns. Clean ones hold
/// words, numbers, dates and amounts; dense ones one sensitive value each up to 40 bytes, and
/// one per ~300 bytes for longer values.
pub fn values(seed: u64, n: usize, len: usize, dense: bool) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| short::value(&mut rng, len, dense)).collect()
}

fn generate(seed: u64, bytes: usize, dense: bool) -> Corpus {
    let mut w = Writer {
        rng: Rng::new(seed),
        dense,
        corpus: Corpus {
            text: String::with_capacity(bytes + 4096),
            ..Corpus::default()
        },
    };
    while w.corpus.text.len() < bytes {
        records::record(&mut w);
    }
    let mut corpus = w.corpus;
    relabel(&corpus.text, &mut corpus.labels);
    corpus
}

/// Applies the one context rule that decides between two entities for the same span:
/// `password=`/`pwd=` (the key at an identifier start, then `=`) is a connection-string
/// password when a connection key (`host=`, `user=`, `://`, …) is within 256 bytes of the
/// assignment, and a generic secret otherwise (`src/entity.rs`, `ConnectionStringPassword`).
/// Call it again on a piece of text cut from a corpus, with the labels rebased to it: the
/// context a piece keeps may differ.
pub fn relabel(text: &str, labels: &mut [Label]) {
    const MARKERS: &[&str] = &[
        "host=",
        "hostaddr=",
        "server=",
        "data source=",
        "dbname=",
        "database=",
        "user id=",
        "uid=",
        "user=",
        "port=",
        "sslmode=",
        "initial catalog=",
        "://",
    ];
    for label in labels.iter_mut() {
        if !matches!(
            label.entity,
            Entity::GenericSecret | Entity::ConnectionStringPassword
        ) {
            continue;
        }
        let Some(key) = dsn_key_start(text, label.range.start) else {
            continue;
        };
        let end = label.range.end
            + usize::from(matches!(
                text.as_bytes().get(label.range.end),
                Some(b'"' | b'\'')
            ));
        let from = key.saturating_sub(256);
        let to = (end + 256).min(text.len());
        let near = text.as_bytes()[from..to].to_ascii_lowercase();
        let connection = MARKERS
            .iter()
            .any(|m| near.windows(m.len()).any(|w| w == m.as_bytes()));
        label.entity = if connection {
            Entity::ConnectionStringPassword
        } else {
            Entity::GenericSecret
        };
    }
}

/// Where `password` or `pwd` starts if the value at `value` is written `password = value`
/// (optionally quoted) with the key at an identifier start.
fn dsn_key_start(text: &str, value: usize) -> Option<usize> {
    let b = &text.as_bytes()[..value];
    let b = b
        .strip_suffix(b"\"")
        .or_else(|| b.strip_suffix(b"'"))
        .unwrap_or(b);
    let b = b.trim_ascii_end().strip_suffix(b"=")?.trim_ascii_end();
    let key = ["password", "pwd"].into_iter().find(|k| {
        b.len() >= k.len() && b[b.len() - k.len()..].eq_ignore_ascii_case(k.as_bytes())
    })?;
    let start = b.len() - key.len();
    let glued = start
        .checked_sub(1)
        .is_some_and(|i| b[i].is_ascii_alphanumeric() || b[i] == b'_');
    (!glued).then_some(start)
}

/// xorshift64*: tiny, fast, and the same sequence everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // The state must never be zero.
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// `n` characters drawn from an ASCII `alphabet`.
    pub fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }
}

/// Appends records to a corpus, labelling as it goes.
pub(crate) struct Writer {
    pub(crate) rng: Rng,
    dense: bool,
    corpus: Corpus,
}

impl Writer {
    /// Whether the next sensitive slot gets a sensitive value; the percentage sets the
    /// density of the dense corpus.
    pub(crate) fn hot(&mut self) -> bool {
        self.dense && self.rng.chance(25)
    }

    pub(crate) fn put(&mut self, s: &str) {
        self.corpus.text.push_str(s);
    }

    /// Appends a value made by `make`, labelled as `entity`.
    pub(crate) fn secret(&mut self, entity: Entity, make: fn(&mut Rng) -> String) {
        let value = make(&mut self.rng);
        self.secret_str(entity, &value);
    }

    pub(crate) fn secret_str(&mut self, entity: Entity, value: &str) {
        let start = self.corpus.text.len();
        self.corpus.text.push_str(value);
        self.corpus.labels.push(Label {
            entity,
            range: start..self.corpus.text.len(),
        });
    }

    /// Appends a hard negative made by `make`, recorded as `kind`.
    pub(crate) fn negative(&mut self, kind: &'static str, make: fn(&mut Rng) -> String) {
        let value = make(&mut self.rng);
        self.negative_str(kind, &value);
    }

    pub(crate) fn negative_str(&mut self, kind: &'static str, value: &str) {
        let start = self.corpus.text.len();
        self.corpus.text.push_str(value);
        self.corpus
            .negatives
            .push((kind, start..self.corpus.text.len()));
    }
}
