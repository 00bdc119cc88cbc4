//! The decoder: finds a sensitive raw value in what a client received, also when a query
//! transformed it on the way out (reversed, re-separated, case-changed, fullwidth digits,
//! zero-width characters, base64 or hex, a number off by a little).
//!
//! Each check is named; a finding reports the first check (in the order below) that sees the
//! value, so `verbatim` means the value itself and anything else names the undoing it took.
//! The checks run on the captured bytes as lossy UTF-8, and again on everything that decodes
//! as base64 or hex in them (`base64+...`, `hex+...`).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use unicode_normalization::UnicodeNormalization as _;

/// How far a number may be from the raw value's digits and still count as it (`card + 1`).
const NUMBER_SLACK: u128 = 1000;
/// The shortest skeleton or digit string worth searching (shorter ones match by chance).
const MIN_NEEDLE: usize = 8;

/// One sensitive value of the fixture and the forms it is searched in.
#[derive(Debug, Clone)]
pub struct Needle {
    /// `email#1`, `card#2`, ...: the column and the row it came from.
    pub label: String,
    value: String,
    lower: String,
    skeleton: String,
    /// Its digits, for values that are numbers at heart (cards, SSNs, phones, IBANs).
    digits: Option<String>,
    /// Its digits as a number, for values a query can do arithmetic on.
    number: Option<u128>,
}

impl Needle {
    /// `numeric`: the value is a number written with separators (its digits alone identify
    /// it, and arithmetic on it yields a number near it).
    pub fn new(label: impl Into<String>, value: &str, numeric: bool) -> Needle {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0');
        let number = (numeric && significant.len() >= MIN_NEEDLE && significant.len() <= 38)
            .then(|| significant.parse().ok())
            .flatten();
        Needle {
            label: label.into(),
            value: value.to_owned(),
            lower: value.to_lowercase(),
            skeleton: skeleton(&value.to_lowercase()),
            digits: (numeric && digits.len() > MIN_NEEDLE).then_some(digits),
            number,
        }
    }
}

/// Where a needle was found: its index and the check that found it.
pub type Found = (usize, &'static str);

/// Every needle found in `blob`, each once, with the first check that found it.
pub fn find(blob: &[u8], needles: &[Needle]) -> Vec<Found> {
    let text = String::from_utf8_lossy(blob);
    let mut found: Vec<Found> = Vec::new();
    let plain = Views::new(&text);
    let mut decoded: Option<[(&'static str, Views); 2]> = None;
    for (i, needle) in needles.iter().enumerate() {
        if let Some(check) = plain.find(needle, PLAIN) {
            found.push((i, check));
            continue;
        }
        let layers = decoded.get_or_insert_with(|| {
            [
                ("base64", Views::new(&base64_runs(&text))),
                ("hex", Views::new(&hex_runs(&text))),
            ]
        });
        for (layer, views) in layers.iter() {
            if let Some(check) = views.find(needle, if *layer == "hex" { HEX } else { BASE64 }) {
                found.push((i, check));
                break;
            }
        }
    }
    found
}

/// How far from the value itself a check is (lower: plainer), for keeping the plainest.
pub fn rank(check: &str) -> usize {
    PLAIN
        .iter()
        .chain(&BASE64)
        .chain(&HEX)
        .position(|c| *c == check)
        .unwrap_or(usize::MAX)
}

/// The check names of one layer, in the order of [`Views::checks`].
type Names = [&'static str; 11];
const PLAIN: Names = [
    "verbatim",
    "casefold",
    "nfkc+zero-width",
    "reversed",
    "separators",
    "reversed+separators",
    "digits",
    "reversed+digits",
    "number",
    "reversed+number",
    "hex-number",
];
const BASE64: Names = [
    "base64",
    "base64+casefold",
    "base64+nfkc",
    "base64+reversed",
    "base64+separators",
    "base64+reversed+separators",
    "base64+digits",
    "base64+reversed+digits",
    "base64+number",
    "base64+reversed+number",
    "base64+hex-number",
];
const HEX: Names = [
    "hex",
    "hex+casefold",
    "hex+nfkc",
    "hex+reversed",
    "hex+separators",
    "hex+reversed+separators",
    "hex+digits",
    "hex+reversed+digits",
    "hex+number",
    "hex+reversed+number",
    "hex+hex-number",
];

/// A captured text in every normalised form the checks compare against.
struct Views {
    raw: String,
    lower: String,
    /// NFKC, without zero-width and other invisible characters, lowercased.
    norm: String,
    reversed: String,
    skeleton: String,
    reversed_skeleton: String,
    digits: String,
    reversed_digits: String,
    numbers: Vec<u128>,
    reversed_numbers: Vec<u128>,
    hex_numbers: Vec<u128>,
}

impl Views {
    fn new(raw: &str) -> Views {
        let norm: String = raw
            .nfkc()
            .filter(|c| !invisible(*c))
            .collect::<String>()
            .to_lowercase();
        let reversed: String = norm.chars().rev().collect();
        let skeleton = skeleton(&norm);
        let digits: String = norm.chars().filter(char::is_ascii_digit).collect();
        Views {
            raw: raw.to_owned(),
            lower: raw.to_lowercase(),
            reversed_skeleton: skeleton.chars().rev().collect(),
            reversed_digits: digits.chars().rev().collect(),
            numbers: numbers(&norm),
            reversed_numbers: numbers(&reversed),
            hex_numbers: hex_numbers(&norm),
            reversed,
            skeleton,
            digits,
            norm,
        }
    }

    fn find(&self, n: &Needle, names: Names) -> Option<&'static str> {
        let near = |list: &[u128]| {
            n.number
                .is_some_and(|v| list.iter().any(|x| x.abs_diff(v) <= NUMBER_SLACK))
        };
        let digits = |hay: &str| n.digits.as_deref().is_some_and(|d| hay.contains(d));
        let long_skeleton = n.skeleton.len() >= MIN_NEEDLE;
        let checks = [
            self.raw.contains(&n.value),
            self.lower.contains(&n.lower),
            self.norm.contains(&n.lower),
            self.reversed.contains(&n.lower),
            long_skeleton && self.skeleton.contains(&n.skeleton),
            long_skeleton && self.reversed_skeleton.contains(&n.skeleton),
            digits(&self.digits),
            digits(&self.reversed_digits),
            near(&self.numbers),
            near(&self.reversed_numbers),
            n.number.is_some_and(|v| self.hex_numbers.contains(&v)),
        ];
        checks.iter().position(|hit| *hit).map(|i| names[i])
    }
}

/// Lowercase letters and digits only, after the usual spelled-out separators are undone
/// (`ada at example dot com`).
fn skeleton(lower: &str) -> String {
    let mut s = lower.to_owned();
    for (from, to) in [
        (" at ", "@"),
        ("(at)", "@"),
        ("[at]", "@"),
        (" dot ", "."),
        ("(dot)", "."),
        ("[dot]", "."),
    ] {
        s = s.replace(from, to);
    }
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// Default-ignorable and other invisible characters that a query can insert between the
/// characters of a value without changing how it reads.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The numbers written in `text`: runs of digits, where one separator (space, comma, dot,
/// dash, apostrophe, underscore) between two digits does not end the run, so `4,111,111`
/// and `4.1111e+15` read as their digits.
fn numbers(text: &str) -> Vec<u128> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut run = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins = matches!(c, ' ' | ',' | '.' | '-' | '\'' | '_')
            && !run.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() {
            run.push(c);
        } else if !joins {
            push_number(&mut out, &mut run);
        }
    }
    push_number(&mut out, &mut run);
    out
}

fn push_number(out: &mut Vec<u128>, run: &mut String) {
    let significant = run.trim_start_matches('0');
    if significant.len() >= MIN_NEEDLE
        && let Ok(n) = significant.parse()
    {
        out.push(n);
    }
    run.clear();
}

/// Runs of hexadecimal digits holding at least one letter, read as numbers (`to_hex`).
fn hex_numbers(lower: &str) -> Vec<u128> {
    lower
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|r| (6..=32).contains(&r.len()) && r.chars().any(|c| c.is_ascii_alphabetic()))
        .filter_map(|r| u128::from_str_radix(r, 16).ok())
        .collect()
}

/// Everything that decodes as base64 in `text`, one decoded run per line. Line breaks (and
/// their JSON escapes) are dropped first, since encoders wrap long output; a run is tried at
/// each of the four alignments, since a column header or a neighbour may run into it.
fn base64_runs(text: &str) -> String {
    let joined = text
        .replace("\\r\\n", "")
        .replace("\\n", "")
        .replace(['\n', '\r'], "");
    let engine = |alphabet| {
        GeneralPurpose::new(
            alphabet,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        )
    };
    let standard = engine(&base64::alphabet::STANDARD);
    let url_safe = engine(&base64::alphabet::URL_SAFE);
    let mut out = String::new();
    let runs = joined
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_')))
        .filter(|r| r.len() >= MIN_NEEDLE);
    for run in runs {
        let engine = if run.contains(['-', '_']) {
            &url_safe
        } else {
            &standard
        };
        for start in 0..4.min(run.len()) {
            let usable = (run.len() - start) / 4 * 4 + usable_tail((run.len() - start) % 4);
            if let Ok(bytes) = engine.decode(&run[start..start + usable]) {
                out.push_str(&String::from_utf8_lossy(&bytes));
                out.push('\n');
            }
        }
    }
    out
}

/// Of a base64 run's last incomplete group, the characters that still decode (one alone
/// does not).
fn usable_tail(rest: usize) -> usize {
    if rest == 1 { 0 } else { rest }
}

/// Everything that decodes as hex in `text` (`\x...` bytea output, `encode(..., 'hex')`),
/// one decoded run per line, each tried at both alignments.
fn hex_runs(text: &str) -> String {
    let mut out = String::new();
    for run in text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|r| r.len() >= 2 * MIN_NEEDLE)
    {
        for start in 0..2 {
            let end = start + (run.len() - start) / 2 * 2;
            if let Ok(bytes) = hex::decode(&run[start..end]) {
                out.push_str(&String::from_utf8_lossy(&bytes));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles() -> Vec<Needle> {
        vec![
            Needle::new("email#1", "ada.lovelace@example.com", false),
            Needle::new("card#1", "4111111111111111", true),
            Needle::new("ssn#1", "078-05-1120", true),
            Needle::new("phone#1", "+1 415 555 0132", true),
        ]
    }

    /// `(label, check)` of everything found in `text`.
    fn check(text: &str) -> Vec<(String, &'static str)> {
        let n = needles();
        find(text.as_bytes(), &n)
            .into_iter()
            .map(|(i, c)| (n[i].label.clone(), c))
            .collect()
    }

    fn one(text: &str, label: &str, how: &str) {
        let got = check(text);
        assert!(
            got.iter().any(|(l, c)| l == label && *c == how),
            "{label} by {how} in {text:?}: got {got:?}"
        );
    }

    #[test]
    fn every_undoing_finds_its_value() {
        one("x ada.lovelace@example.com y", "email#1", "verbatim");
        one("ADA.LOVELACE@EXAMPLE.COM", "email#1", "casefold");
        one(
            "４１１１１１１１１１１１１１１１",
            "card#1",
            "nfkc+zero-width",
        );
        one(
            "a\u{200B}d\u{200B}a.lovelace@exa\u{200B}mple.com",
            "email#1",
            "nfkc+zero-width",
        );
        one("moc.elpmaxe@ecalevol.ada", "email#1", "reversed");
        one("ada.lovelace at example.com", "email#1", "separators");
        one(
            "a\nd\na\n.\nl\no\nv\ne\nl\na\nc\ne\n@\ne\nx\na\nm\np\nl\ne\n.\nc\no\nm",
            "email#1",
            "separators",
        );
        one("4111 1111 1111 1111", "card#1", "separators");
        one(
            "[[\"ada.lovelace\"],[\"example.com\"]]",
            "email#1",
            "separators",
        );
        one("0211-50-870", "ssn#1", "reversed");
        one("0211 50 870", "ssn#1", "reversed+separators");
        one("41111111|11111111", "card#1", "separators");
        one("4111111111111112", "card#1", "number");
        one("4.111111111111111e+15", "card#1", "separators");
        one("4,111,111,111,111,112", "card#1", "number");
        one("78051120", "ssn#1", "number");
        one("e9b08a568f1c7", "card#1", "hex-number");
        one("YWRhLmxvdmVsYWNlQGV4YW1wbGUuY29t", "email#1", "base64");
        one(
            "encode\nYWRhLmxvdmVsYWNlQGV4YW1wbGUuY29t\n(1 row)",
            "email#1",
            "base64",
        );
        one(
            "\\x6164612e6c6f76656c616365406578616d706c652e636f6d",
            "email#1",
            "hex",
        );
        one("+1 415 555 0132", "phone#1", "verbatim");
        one("14155550132", "phone#1", "separators");
        one("1 (415) ext 555-0132", "phone#1", "digits");
        one("card 4111 1111 / x 1111 1111", "card#1", "digits");
    }

    #[test]
    fn wrapped_base64_is_joined() {
        // encode(..., 'base64') wraps at 76 characters; JSON shows the break as `\n`.
        let value = "ada.lovelace@example.com 4111111111111111 ".repeat(4);
        let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        let (a, b) = b64.split_at(76);
        one(&format!("[\"{a}\\n{b}\"]"), "email#1", "base64");
        one(&format!("encode\n{a}\n{b}\n(1 row)"), "card#1", "base64");
    }

    #[test]
    fn masked_and_unrelated_text_finds_nothing() {
        for text in [
            "[EMAIL] [CREDIT_CARD] [US_SSN] [PHONE]",
            "id|email|card\n1|[EMAIL]|\n2|[EMAIL]|\n(2 rows)",
            "{\"session_id\":\"7f3a9c2e11d04b5e8a6f\",\"seq\":12345,\"row_count\":3}",
            "4111111111121111 5111111111111111 123-45-6789",
            "SELECT translate(card, '0123456789', '０１２３４５６７８９') FROM members",
        ] {
            assert_eq!(check(text), [], "{text:?}");
        }
    }
}
