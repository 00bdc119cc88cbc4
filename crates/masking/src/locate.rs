//! Where each recognizer's pattern can match, found in one cheap pass, so that patterns run
//! only there: on a few bytes around an anchor rather than over the whole text.
//!
//! Every recognizer declares a [`Locate`] promise about its pattern. A `Prefix` pattern
//! starts every match with one of its literals, so it runs anchored at each literal hit (one
//! Aho-Corasick pass for all of them). A `Run` pattern is made of one class of bytes, so its
//! matches lie within maximal runs of that class; the pass looks for runs only around bytes
//! every admitted run must hold (a digit, `:`, `@`) and runs the pattern over the runs the
//! class admits. `Scheme` (URL userinfo passwords) runs anchored at the scheme before each
//! `://`. The answers are those of a search over the whole text: the same matches in the same
//! order (a pattern's leftmost-first iteration never crosses a run, and every match starts at a
//! hit); `tests.rs` holds the engine to that on random texts.

use std::ops::Range;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, MatchKind};

use crate::Error;
use crate::recognizers::{Census, Class, Locate, Recognizer, is_word};

/// The places one scan found: recognizer index and where it may match.
#[derive(Debug, Default)]
pub(crate) struct Places {
    /// `(start, recognizer)`: the pattern may match starting exactly there. Sorted by start.
    pub(crate) anchored: Vec<(usize, usize)>,
    /// `(recognizer, span)`: every match of the pattern in the text lies inside one of its
    /// spans, and a search of the span finds them.
    pub(crate) spans: Vec<(usize, Range<usize>)>,
}

pub(crate) struct Locator {
    /// Every `Prefix` literal that no other one starts, then `://` if a `Scheme` recognizer
    /// is on.
    literals: Option<Literals>,
    /// Whether every `Prefix` literal holds an ASCII letter (true of the built-in ones).
    lettered: bool,
    /// Per literal: the recognizers it starts (empty for `://`).
    by_literal: Vec<Vec<usize>>,
    /// The `Scheme` recognizers, and the pattern id of `://`.
    scheme: Vec<usize>,
    scheme_literal: Option<usize>,
    /// Per class (index in `Class::ALL`): the recognizers located by its runs.
    by_class: Vec<Vec<usize>>,
}

impl Locator {
    pub(crate) fn new(recognizers: &[&Recognizer]) -> Result<Locator, Error> {
        let mut prefixes: Vec<(&'static str, usize)> = Vec::new();
        let mut scheme = Vec::new();
        let mut by_class = vec![Vec::new(); Class::ALL.len()];
        for (pid, r) in recognizers.iter().enumerate() {
            match r.locate {
                Locate::Prefix(literals) => prefixes.extend(literals.iter().map(|&l| (l, pid))),
                Locate::Scheme => scheme.push(pid),
                Locate::Run(class) => by_class[class as usize].push(pid),
            }
        }
        // The search reports one literal per start, so a literal that another one starts
        // (ASCII case ignored) gives its recognizers to that one: `pass` finds `password`.
        let starts_with = |long: &str, short: &str| {
            long.len() >= short.len()
                && long.as_bytes()[..short.len()].eq_ignore_ascii_case(short.as_bytes())
        };
        let mut literals: Vec<&'static str> = Vec::new();
        for &(l, _) in &prefixes {
            let shorter = prefixes
                .iter()
                .any(|&(o, _)| o.len() < l.len() && starts_with(l, o));
            if !shorter && !literals.iter().any(|k| k.eq_ignore_ascii_case(l)) {
                literals.push(l);
            }
        }
        let mut by_literal: Vec<Vec<usize>> = literals
            .iter()
            .map(|k| {
                let mut pids: Vec<usize> = prefixes
                    .iter()
                    .filter(|&&(l, _)| starts_with(l, k))
                    .map(|&(_, pid)| pid)
                    .collect();
                pids.sort_unstable();
                pids.dedup();
                pids
            })
            .collect();
        let lettered = literals
            .iter()
            .all(|l| l.bytes().any(|b| b.is_ascii_alphabetic()));
        let scheme_literal = (!scheme.is_empty()).then(|| {
            literals.push("://");
            by_literal.push(Vec::new());
            literals.len() - 1
        });
        let literals = if literals.is_empty() {
            None
        } else {
            Some(Literals::new(&literals)?)
        };
        Ok(Locator {
            lettered,
            literals,
            by_literal,
            scheme,
            scheme_literal,
            by_class,
        })
    }

    /// The places in `text[from..]` where the recognizers can match.
    pub(crate) fn places(&self, text: &str, from: usize) -> Places {
        let mut places = Places::default();
        // Every literal holds a letter (and `://` follows a scheme's): a text without one,
        // such as a date or an amount, has no hit.
        let letters = !self.lettered || text.as_bytes()[from..].iter().any(u8::is_ascii_alphabetic);
        if let Some(literals) = self.literals.as_ref().filter(|_| letters) {
            literals.each(text.as_bytes(), from, |start, pattern| {
                if Some(pattern) == self.scheme_literal {
                    if let Some(start) = scheme_start(text.as_bytes(), from, start) {
                        places
                            .anchored
                            .extend(self.scheme.iter().map(|&pid| (start, pid)));
                    }
                } else {
                    let pids = &self.by_literal[pattern];
                    places.anchored.extend(pids.iter().map(|&pid| (start, pid)));
                }
            });
        }
        self.runs(text.as_bytes(), from, &mut places);
        // A scheme starts before its `://`, and runs are found apart from the literals.
        places.anchored.sort_unstable();
        places
    }

    /// The runs, from `from` on, that the classes in use admit, with their recognizers.
    ///
    /// A run is looked for only around a byte that every run holding a finding has: a
    /// digit for the three digit classes, a digit right after a capital (or a capital and a
    /// space) for IBANs and NINOs, `:` for IPv6, `:`, `-` or `.` between hex digits for
    /// MACs, `@` for e-mail.
    /// The digit classes share one look: telephone runs (`[0-9 .()+-]`) hold every dashed
    /// and dotted run, so a telephone run with fewer than four digits holds none of theirs.
    fn runs(&self, bytes: &[u8], from: usize, out: &mut Places) {
        // Per class: the end of the last run looked at; a start inside it is the same run.
        let mut done = [from; Class::ALL.len()];
        let mut at = from;
        while at < bytes.len() {
            // Skip to the next byte a run is looked for around.
            match bytes[at..].iter().position(|&b| LOOKS[usize::from(b)]) {
                Some(skip) => at += skip,
                None => break,
            }
            // Whether the byte at `i` (which may lie before `from`: patterns see it) is a
            // word byte.
            let word = |i: usize| is_word(bytes[i]);
            let before = |back: usize| at.checked_sub(back);
            match bytes[at] {
                b'0'..=b'9' | b'+' | b'(' => {
                    // Every telephone, card, SSN and IPv4 match starts with `+`, `(` or a
                    // digit at a word boundary: a run of digits glued to a word (hex ids,
                    // digests) holds none.
                    let starts = !bytes[at].is_ascii_digit() || before(1).is_none_or(|i| !word(i));
                    if starts && at >= done[Class::Phone as usize] {
                        self.digits(bytes, from, at, &mut done, out);
                    }
                    // IBANs and NINOs start with two capitals at a word boundary, then
                    // (a space and) the first digit.
                    let capitals = |back: usize| {
                        before(back + 1).is_some_and(|i| {
                            i >= from
                                && bytes[i].is_ascii_uppercase()
                                && bytes[i + 1].is_ascii_uppercase()
                                && before(back + 2).is_none_or(|j| !word(j))
                        })
                    };
                    let iban_or_nino = bytes[at].is_ascii_digit()
                        && (capitals(1)
                            || before(1).is_some_and(|i| bytes[i] == b' ') && capitals(2));
                    if iban_or_nino {
                        self.around(Class::Upper, bytes, from, at, &mut done, out);
                    }
                    // No later digit of this word starts anything: each follows a word byte,
                    // and only a word's first digit can follow its two leading capitals.
                    if bytes[at].is_ascii_digit() {
                        while at + 1 < bytes.len() && is_word(bytes[at + 1]) {
                            at += 1;
                        }
                    }
                }
                b':' | b'-' | b'.' => {
                    if bytes[at] == b':' {
                        self.around(Class::HexColon, bytes, from, at, &mut done, out);
                    }
                    // A MAC address starts at a word boundary with two hex digits and `:` or
                    // `-`, or four and `.`.
                    let group = if bytes[at] == b'.' { 4 } else { 2 };
                    let hex = |back: usize| {
                        before(back).is_some_and(|i| i >= from && bytes[i].is_ascii_hexdigit())
                    };
                    let mac = (1..=group).all(hex) && before(group + 1).is_none_or(|i| !word(i));
                    if mac {
                        self.around(Class::Mac, bytes, from, at, &mut done, out);
                    }
                }
                b'@' => self.around(Class::Email, bytes, from, at, &mut done, out),
                _ => {}
            }
            at += 1;
        }
    }

    /// The telephone run around the digit at `at`, and the dashed and dotted runs in it.
    fn digits(
        &self,
        bytes: &[u8],
        from: usize,
        at: usize,
        done: &mut [usize; Class::ALL.len()],
        out: &mut Places,
    ) {
        let run = run_around(Class::Phone, bytes, from, at);
        for class in [Class::Phone, Class::Dashed, Class::Dotted] {
            done[class as usize] = run.end;
        }
        let census = Census::of(&bytes[run.clone()]);
        if census.digits < 4 {
            return;
        }
        self.take(Class::Phone, &run, &census, bytes, out);
        // A dashed or dotted run inside has at most the telephone run's digits and dots.
        for (class, worth) in [
            (Class::Dashed, census.digits >= 9),
            (Class::Dotted, census.dots >= 3),
        ] {
            if self.by_class[class as usize].is_empty() || !worth {
                continue;
            }
            let mut start = run.start;
            for part in bytes[run.clone()].split(|&b| !class.holds(b)) {
                let sub = start..start + part.len();
                start = sub.end + 1;
                // Shorter parts cannot hold 9 digits (dashed) or `0.0.0.0` (dotted).
                if part.len() >= 7 {
                    self.take(class, &sub, &Census::of(part), bytes, out);
                }
            }
        }
    }

    /// The run of `class` around `at`, unless one was looked at already.
    fn around(
        &self,
        class: Class,
        bytes: &[u8],
        from: usize,
        at: usize,
        done: &mut [usize; Class::ALL.len()],
        out: &mut Places,
    ) {
        let i = class as usize;
        if at < done[i] || self.by_class[i].is_empty() {
            return;
        }
        let run = run_around(class, bytes, from, at);
        done[i] = run.end;
        self.take(class, &run, &Census::of(&bytes[run.clone()]), bytes, out);
    }

    /// Hands the run to its class's recognizers if the class admits it. A run the class does
    /// not admit holds no finding whatever text follows it, unless it grows; a run that ends
    /// where the text ends is not emitted by the streaming masker before it is complete (the
    /// end is not a cut point while a match could run on), so it is looked at again then.
    fn take(
        &self,
        class: Class,
        run: &Range<usize>,
        census: &Census,
        bytes: &[u8],
        out: &mut Places,
    ) {
        if !class.admits(&bytes[run.clone()], census) {
            return;
        }
        let pids = &self.by_class[class as usize];
        // Patterns that start only at certain bytes run anchored at each of them when they
        // are few: a run of a megabyte of digits has one, where a search of the run would
        // meet a prefilter hit at every tenth byte. Where they are many, one search of the
        // run costs less.
        if class.starts_somewhere() {
            let few = run.len() / FEW_STARTS;
            let mut starts = 0;
            let mut after_word = run.start.checked_sub(1).is_some_and(|i| is_word(bytes[i]));
            let mark = out.anchored.len();
            for i in run.clone() {
                let b = bytes[i];
                if class.starts_at(b, after_word) {
                    starts += 1;
                    if starts > few {
                        break;
                    }
                    out.anchored.extend(pids.iter().map(|&pid| (i, pid)));
                }
                after_word = is_word(b);
            }
            if starts <= few {
                return;
            }
            out.anchored.truncate(mark);
        }
        out.spans.extend(pids.iter().map(|&pid| (pid, run.clone())));
    }
}

/// A run is searched anchored at its starts when it has at most one per this many bytes.
const FEW_STARTS: usize = 8;

/// The maximal run of `class` around `at`, from `from` on.
fn run_around(class: Class, bytes: &[u8], from: usize, at: usize) -> Range<usize> {
    let bit = 1 << class as usize;
    let mut start = at;
    while start > from && HOLDS[usize::from(bytes[start - 1])] & bit != 0 {
        start -= 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && HOLDS[usize::from(bytes[end])] & bit != 0 {
        end += 1;
    }
    start..end
}

/// The bytes [`Locator::runs`] looks around.
const LOOKS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(
            b as u8,
            b'0'..=b'9' | b'+' | b'(' | b':' | b'-' | b'.' | b'@'
        );
        b += 1;
    }
    table
};

/// Per byte: the classes it can be part of (bit = index in `Class::ALL`).
const HOLDS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < Class::ALL.len() {
            if Class::ALL[i].holds(b as u8) {
                table[b] |= 1 << i;
            }
            i += 1;
        }
        b += 1;
    }
    table
};

/// The literal search: every start of every literal, ASCII case ignored, no literal starting
/// another. Text is folded to lower case a block at a time, on the stack, and searched with
/// the SIMD searcher (Teddy) for the lower-cased literals: a case-insensitive automaton over
/// the raw text runs at a third of the speed. Where the CPU has no SIMD searcher, the
/// automaton does it.
enum Literals {
    Folded {
        searcher: packed::Searcher,
        /// The longest literal: blocks overlap by one byte less, so that a hit that starts in
        /// a block is seen whole.
        longest: usize,
    },
    Automaton(AhoCorasick),
}

/// Bytes folded and searched at a time.
const BLOCK: usize = 4096;

/// The longest literal the folded search takes.
const LONGEST: usize = 64;

/// Texts up to these lengths fold into a buffer of that size, whole.
const TINY: usize = 64;
const SHORT: usize = 512;

impl Literals {
    fn new(literals: &[&str]) -> Result<Literals, Error> {
        let longest = literals.iter().map(|l| l.len()).max().unwrap_or(0);
        let mut builder = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder();
        for l in literals {
            builder.add(l.to_ascii_lowercase());
        }
        if longest <= LONGEST
            && let Some(searcher) = builder.build()
        {
            return Ok(Literals::Folded { searcher, longest });
        }
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals)
            .map_err(|e| Error::Build(e.to_string()))?;
        Ok(Literals::Automaton(ac))
    }

    /// [`Literals::each`] for the folded search, `buffer` holding a block and the overlap
    /// (or the whole text).
    fn folded(
        searcher: &packed::Searcher,
        longest: usize,
        buffer: &mut [u8],
        bytes: &[u8],
        from: usize,
        hit: &mut impl FnMut(usize, usize),
    ) {
        let step = (buffer.len() + 1).saturating_sub(longest).max(1);
        let mut block = from;
        while block < bytes.len() {
            let end = (block + buffer.len()).min(bytes.len());
            let len = end - block;
            buffer[..len].copy_from_slice(&bytes[block..end]);
            buffer[..len].make_ascii_lowercase();
            // Hits that start past `own` are the next block's, seen whole there.
            let own = if end == bytes.len() { len } else { step };
            let mut at = 0;
            while let Some(m) = searcher.find_in(&buffer[..len], (at..len).into()) {
                if m.start() >= own {
                    break;
                }
                hit(block + m.start(), m.pattern().as_usize());
                at = m.start() + 1;
            }
            if end == bytes.len() {
                // This block took every hit to the end; another would report them again.
                break;
            }
            block += step;
        }
    }

    /// Calls `hit(start, literal)` for every literal occurrence that starts in
    /// `bytes[from..]`, in order of start. No literal starts another, so one search resumed
    /// just after each hit's start finds every (start, literal) pair there is.
    fn each(&self, bytes: &[u8], from: usize, mut hit: impl FnMut(usize, usize)) {
        match self {
            Literals::Folded { searcher, longest } => {
                // Short texts (most values) fold into a small buffer: clearing 4 KiB would
                // cost more than their search.
                let len = bytes.len() - from;
                if len <= TINY {
                    let mut folded = [0u8; TINY];
                    Self::folded(searcher, *longest, &mut folded, bytes, from, &mut hit);
                } else if len <= SHORT {
                    let mut folded = [0u8; SHORT];
                    Self::folded(searcher, *longest, &mut folded, bytes, from, &mut hit);
                } else {
                    let mut folded = [0u8; BLOCK + LONGEST];
                    Self::folded(searcher, *longest, &mut folded, bytes, from, &mut hit);
                }
            }
            Literals::Automaton(ac) => {
                let mut input = aho_corasick::Input::new(bytes).span(from..bytes.len());
                while let Some(m) = ac.find(input.clone()) {
                    input.set_start(m.start() + 1);
                    hit(m.start(), m.pattern().as_usize());
                }
            }
        }
    }
}

/// The leftmost start at or after `from` of a URL scheme that ends at `colon` (where `://`
/// was found): a letter, then 1 to 30 letters, digits, `+`, `.` or `-`. A scheme match can
/// only start there or later, and if the pattern fails from there it fails from any later
/// start too (the scheme part is valid from each, and the rest is the same text).
fn scheme_start(bytes: &[u8], from: usize, colon: usize) -> Option<usize> {
    let is_scheme = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-');
    let floor = colon.saturating_sub(31).max(from);
    let mut start = colon;
    while start > floor && is_scheme(bytes[start - 1]) {
        start -= 1;
    }
    (start..colon.saturating_sub(1)).find(|&s| bytes[s].is_ascii_alphabetic())
}
