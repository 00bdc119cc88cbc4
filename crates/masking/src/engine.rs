//! The detection engine: one compiled set of recognizers, a cheap gate for clean values, one
//! pass to find where each recognizer can match (`locate.rs`), the recognizers' patterns run
//! there to find and validate candidates, and overlap resolution.
//!
//! Why every recognizer runs on its own: a single leftmost-first pass over all patterns would
//! let a candidate that its validator rejects (an IPv6-looking MAC, a JWT-looking blob) hide an
//! overlapping valid match of another entity. Each recognizer's leftmost-first iteration sees
//! every place it can match, so the rejected candidates of others cannot hide its matches.
//! Each iteration is linear and resumes after its match, so masking stays linear in the text
//! size; the locator makes it cheap, since a pattern runs only at its literal hits and over
//! the runs of bytes it can be made of.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Range;

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

use crate::locate::Locator;
use crate::recognizers::{self, Recognizer};
use crate::set::{MAX_PATTERNS, PatternSetDfa};
use crate::{Entity, Error};

/// One sensitive value found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub entity: Entity,
    /// Its byte range in the text (always on character boundaries).
    pub range: Range<usize>,
}

/// What [`Engine::scan`] found in a text that may go on.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub(crate) findings: Vec<Finding>,
    /// The first candidate (leftmost start) whose validator would read past the end of the
    /// text (its recognizer's `reach`), with the text length it needs: findings from its
    /// start on may change once more text follows; findings before it cannot.
    pub(crate) wait: Option<(usize, usize)>,
}

pub(crate) struct Engine {
    anchors: AhoCorasick,
    /// Where each recognizer can match.
    locator: Locator,
    /// All patterns as one lazy DFA, for short texts: one pass says which recognizers can
    /// match at all, and for most values none can. `None` when no recognizer is enabled.
    set: Option<PatternSetDfa>,
    /// The recognizers' patterns, index = recognizer index.
    each: Vec<Regex>,
    recognizers: Vec<&'static Recognizer>,
}

impl Engine {
    pub(crate) fn new(entities: &[Entity]) -> Result<Engine, Error> {
        let recognizers: Vec<&'static Recognizer> = recognizers::all()
            .filter(|r| entities.contains(&r.entity))
            .collect();
        let patterns: Vec<&str> = recognizers.iter().map(|r| r.pattern).collect();
        let build = |e: regex_automata::meta::BuildError| Error::Build(e.to_string());
        let locator = Locator::new(&recognizers)?;
        let set = if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
            None
        } else {
            Some(PatternSetDfa::new(&patterns)?)
        };
        let each = patterns
            .iter()
            .map(|p| Regex::new(p).map_err(build))
            .collect::<Result<_, _>>()?;
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(recognizers::ANCHORS)
            .map_err(|e| Error::Build(e.to_string()))?;
        Ok(Engine {
            anchors,
            locator,
            set,
            each,
            recognizers,
        })
    }

    /// Every sensitive value in `text`, non-overlapping, in text order.
    pub(crate) fn find(&self, text: &str) -> Vec<Finding> {
        self.find_from(text, 0)
    }

    /// Every sensitive value that [`Engine::find`] on a longer text would find at or after
    /// `from`, given that no match crosses `from`: the patterns search `text[from..]` only,
    /// while validators see all of `text` as context. The streaming masker keeps the text
    /// before `from` for that.
    pub(crate) fn find_from(&self, text: &str, from: usize) -> Vec<Finding> {
        self.scan(text, from).findings
    }

    /// [`Engine::find_from`], and where its answer may still change with more text after
    /// `text` (see [`Scan::wait`]).
    pub(crate) fn scan(&self, text: &str, from: usize) -> Scan {
        if !self.may_contain(&text[from..]) {
            return Scan::default();
        }
        if text.len() - from <= SHORT_TEXT
            && let Some(which) = self.set.as_ref().and_then(|set| set.which(text, from))
        {
            if which == 0 {
                return Scan::default();
            }
            // A short text: the few recognizers that match search all of it, as the
            // locator's answer would be (no place to save).
            let pids = (0..self.each.len()).filter(|&pid| which & 1 << pid != 0);
            return self.find_everywhere_among(text, from, pids);
        }
        self.find_ungated(text, from)
    }

    /// [`Engine::scan`] without the gate; the tests use it to check that the gate is sound.
    pub(crate) fn find_ungated(&self, text: &str, from: usize) -> Scan {
        let places = self.locator.places(text, from);
        let mut found = Found::default();
        // A recognizer's matches so far end here: a hit inside one is not a new match, as
        // in a leftmost-first iteration over the whole text.
        let mut on_stack = [from; MAX_PATTERNS];
        let mut on_heap = Vec::new();
        let ends: &mut [usize] = match on_stack.get_mut(..self.each.len()) {
            Some(ends) => ends,
            None => {
                on_heap.resize(self.each.len(), from);
                &mut on_heap
            }
        };
        for (start, pid) in places.anchored {
            if start < ends[pid] {
                continue;
            }
            let input = Input::new(text)
                .span(start..text.len())
                .anchored(Anchored::Yes);
            if let Some(m) = self.each[pid].search(&input) {
                ends[pid] = m.end();
                found.candidate(text, self.recognizers[pid], m.range());
            }
        }
        for (pid, span) in places.spans {
            for m in self.each[pid].find_iter(Input::new(text).span(span)) {
                found.candidate(text, self.recognizers[pid], m.range());
            }
        }
        found.scan()
    }

    /// Every recognizer's pattern over all of `text[from..]`, without the gate or the locator:
    /// what they must agree with.
    #[cfg(test)]
    pub(crate) fn find_everywhere(&self, text: &str, from: usize) -> Scan {
        self.find_everywhere_among(text, from, 0..self.each.len())
    }

    /// The patterns of `pids` over all of `text[from..]`.
    fn find_everywhere_among(
        &self,
        text: &str,
        from: usize,
        pids: impl Iterator<Item = usize>,
    ) -> Scan {
        let mut found = Found::default();
        for pid in pids {
            for m in self.each[pid].find_iter(Input::new(text).span(from..text.len())) {
                found.candidate(text, self.recognizers[pid], m.range());
            }
        }
        found.scan()
    }

    /// The recognizers this engine runs.
    pub(crate) fn recognizers(&self) -> &[&'static Recognizer] {
        &self.recognizers
    }

    /// The gate: whether `text` can hold anything at all. Every recognizer needs two ASCII
    /// digits, or one of `@ : =`, or one of the literal anchors in `recognizers::ANCHORS`
    /// (the tests check this against the corpus and random text). Most short clean values
    /// fail all three in a single pass over their bytes.
    fn may_contain(&self, text: &str) -> bool {
        let mut digits = 0usize;
        for &b in text.as_bytes() {
            match b {
                b'0'..=b'9' if digits == 1 => return true,
                b'0'..=b'9' => digits += 1,
                b'@' | b':' | b'=' => return true,
                _ => {}
            }
        }
        self.anchors.is_match(text)
    }
}

/// Texts up to this long (column values, short lines) first ask the pattern set which
/// recognizers can match; longer ones go to the locator directly, since a lazy DFA over every
/// pattern builds new states on long runs of digits and hex.
const SHORT_TEXT: usize = 256;

/// Candidates as they are found, and the first that waits for more text.
#[derive(Default)]
struct Found {
    candidates: Vec<Finding>,
    wait: Option<(usize, usize)>,
}

impl Found {
    /// A pattern's match: validated, and noted if its validator would read past the text.
    fn candidate(&mut self, text: &str, recognizer: &Recognizer, m: Range<usize>) {
        let needs = m.end.saturating_add(recognizer.reach);
        if needs > text.len() && self.wait.is_none_or(|(start, _)| m.start < start) {
            self.wait = Some((m.start, needs));
        }
        if let Some(range) = (recognizer.check)(text, m) {
            self.candidates.push(Finding {
                entity: recognizer.entity,
                range,
            });
        }
    }

    fn scan(self) -> Scan {
        Scan {
            findings: resolve(self.candidates),
            wait: self.wait,
        }
    }
}

/// The candidates less every data candidate that lies inside another data candidate with a
/// different range.
fn drop_inner_data(mut candidates: Vec<Finding>) -> Vec<Finding> {
    if candidates.len() < 2 {
        return candidates;
    }
    candidates.sort_by_key(|f| (f.range.start, Reverse(f.range.end)));
    // The data candidate that reaches furthest so far; sorted by start, it contains any later
    // one that ends before it does.
    let mut widest: Option<Range<usize>> = None;
    candidates.retain(|f| {
        if !f.entity.is_data() {
            return true;
        }
        let inside = widest
            .as_ref()
            .is_some_and(|w| w.end >= f.range.end && *w != f.range);
        if widest.as_ref().is_none_or(|w| f.range.end > w.end) {
            widest = Some(f.range.clone());
        }
        !inside
    });
    candidates
}

/// Keeps the best of overlapping findings: higher-priority entity first, then the longer
/// range, then the earlier one. Partially overlapped lower-priority findings are dropped whole.
///
/// Among data (payment, government, contact and network entities), a candidate inside
/// another one is part of it and goes first: the card-valid digits of an IBAN, or the digits
/// after a phone number's `+49`, are not a card. Secrets keep their priority over anything
/// that contains them.
fn resolve(candidates: Vec<Finding>) -> Vec<Finding> {
    let mut candidates = drop_inner_data(candidates);
    candidates.sort_by_key(|f| (f.entity.rank(), Reverse(f.range.len()), f.range.start));
    // Accepted ranges, start → end; they never overlap, so only the nearest one to the left
    // of a candidate's end can overlap it.
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(candidates.len());
    for f in candidates {
        let overlaps = taken
            .range(..f.range.end)
            .next_back()
            .is_some_and(|(_, &end)| end > f.range.start);
        if !f.range.is_empty() && !overlaps {
            taken.insert(f.range.start, f.range.end);
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.range.start);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_alone_and_together() {
        let engine = Engine::new(&Entity::ALL);
        assert!(engine.is_ok(), "{:?}", engine.err());
    }

    #[test]
    fn resolve_prefers_priority_then_length() {
        let f = |entity, range| Finding { entity, range };
        let got = resolve(vec![
            f(Entity::Email, 5..20),
            f(Entity::ConnectionStringPassword, 3..7),
            f(Entity::Phone, 30..40),
            f(Entity::Phone, 28..35),
            f(Entity::Ipv4, 41..45),
        ]);
        assert_eq!(
            got,
            vec![
                f(Entity::ConnectionStringPassword, 3..7),
                f(Entity::Phone, 30..40),
                f(Entity::Ipv4, 41..45)
            ]
        );
    }
}
