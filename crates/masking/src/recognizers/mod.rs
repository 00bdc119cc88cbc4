//! The recognizers: one regular expression and one validator each, grouped by family.
//!
//! A recognizer's pattern finds candidates; its `check` looks at the candidate in its text (so
//! it can inspect context around it) and returns the byte range to mask, or `None` to reject.
//! The range may be narrower than the match (only the value of `password=…`) or a trimmed
//! version of it (an IBAN followed by more letters). Patterns use only ASCII classes and ASCII
//! word boundaries (`(?-u:\b)`) so the lazy DFA never has to give up on non-ASCII text, and
//! they must match only at character boundaries (they are compiled in UTF-8 mode).
//!
//! The streaming masker derives where a stream may be cut from the patterns themselves
//! (`stream/frontier.rs`) and waits for each match's `reach` of context; only a pattern whose
//! match can run to the end of the text (`\z`, the PEM block) needs handling there by hand.
//!
//! - `keys`: PEM private keys, JWTs, cloud and SaaS API keys of known formats.
//! - `secrets`: generic secrets in assignment context and connection-string passwords.
//! - `payment`: card numbers and IBANs.
//! - `government`: US SSN, UK NINO and US passport numbers.
//! - `contact`: e-mail addresses and telephone numbers.
//! - `network`: IPv4, IPv6 and MAC addresses.
//! - `checks`: the shared validators (Luhn, mod-97, entropy, placeholders, context).

mod checks;
mod contact;
mod government;
mod keys;
mod network;
mod payment;
mod secrets;

use std::ops::Range;

use crate::Entity;

pub(crate) use keys::{PEM, PEM_BEGIN, PEM_END};

/// A validator: given the whole text and a candidate match, the range to mask or `None`.
pub(crate) type Check = fn(&str, Range<usize>) -> Option<Range<usize>>;

/// One pattern of one entity. An entity may have several (national and international phone
/// numbers, URL and key/value connection strings).
pub(crate) struct Recognizer {
    pub(crate) entity: Entity,
    pub(crate) pattern: &'static str,
    pub(crate) check: Check,
    /// How many bytes past the end of a match `check` may read: [`NEAR`] for the neighbour
    /// tests (`after`, `glued_to_number`), [`CONTEXT`] for a search for related keys around
    /// the match. The streaming masker holds a match back until that much text after it has
    /// arrived, so a validator never sees less context than it would in the whole text.
    pub(crate) reach: usize,
}

/// The reach of validators that look only at the two bytes after a match.
pub(crate) const NEAR: usize = 2;

/// The radius of the context searched around a match for related keys (connection-string
/// markers near a `password=`). Validators read at most this far before a match too, apart
/// from the whitespace that the IPv4 version test skips backwards.
pub(crate) const CONTEXT: usize = 256;

/// An ASCII word boundary, usable by the lazy DFA on any text.
macro_rules! wb {
    () => {
        r"(?-u:\b)"
    };
}
pub(crate) use wb;

/// Every recognizer, in no particular order (priority is the entity's rank).
pub(crate) fn all() -> impl Iterator<Item = &'static Recognizer> {
    [
        keys::RECOGNIZERS,
        secrets::RECOGNIZERS,
        payment::RECOGNIZERS,
        government::RECOGNIZERS,
        contact::RECOGNIZERS,
        network::RECOGNIZERS,
    ]
    .into_iter()
    .flatten()
}

/// Literal anchors of the recognizers that can match text with fewer than two ASCII digits and
/// none of `@`, `:` or `=` (see `gate.rs`). Matched ignoring ASCII case.
pub(crate) const ANCHORS: &[&str] = &[
    "-----BEGIN",
    "eyJ",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "A3T",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "xapp-",
    "hooks.slack.com",
    "k_live_",
    "k_test_",
    "whsec_",
    "sk-",
    "AIza",
    "bearer",
    "basic",
];
