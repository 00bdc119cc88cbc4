//! The baseline a first attempt would write: one regular expression per entity, no
//! validators, no context, every expression run over the whole text.
//!
//! Word boundaries are ASCII (`(?-u:\b)`): a Unicode `\b` makes the regex crate leave its DFA
//! on the first non-ASCII byte, and the baseline should measure matching, not that pitfall.

use regex::Regex;

const PATTERNS: &[&str] = &[
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    r"(?-u:\b)(?:AKIA|ASIA)[A-Z2-7]{16}(?-u:\b)",
    r"(?i)aws_?secret_?access_?key[\x22']?\s*[:=]\s*[\x22']?[A-Za-z0-9/+]{40}",
    r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{30,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]+",
    r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{10,}",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"AIza[0-9A-Za-z_-]{35}",
    r"(?i)(?:password|passwd|pwd|secret|token|api_?key)[\x22']?\s*[:=]\s*[^\s,;]+|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}",
    r"[a-z][a-z0-9+.-]*://[^:/\s@]+:[^@\s/]+@",
    r"(?-u:\b)(?:[0-9][ -]?){12,18}[0-9](?-u:\b)",
    r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?-u:\b)",
    r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)",
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    r"\+?[0-9][0-9 ().-]{7,}[0-9]",
    r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)",
    r"(?i)[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}",
    r"(?i)(?-u:\b)[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}(?-u:\b)",
    r"(?-u:\b)[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?-u:\b)",
    r"(?i)passport[^0-9A-Za-z]{0,12}[A-Z]?[0-9]{8,9}",
];

pub struct Naive(Vec<Regex>);

impl Naive {
    pub fn new() -> Naive {
        Naive(
            PATTERNS
                .iter()
                .map(|p| Regex::new(p).expect("baseline pattern compiles"))
                .collect(),
        )
    }

    /// How many matches all expressions find in `text`.
    pub fn count(&self, text: &str) -> usize {
        self.0.iter().map(|re| re.find_iter(text).count()).sum()
    }
}
