//! Where a stream may be cut: a lazy DFA, derived from the recognizers' own patterns, that
//! tells for every position whether some match of some recognizer could run across it.
//!
//! Position `c` lies between bytes `c - 1` and `c`. It is *crossed* when a thread of some
//! pattern (a prefix of a possible match, from any start) took byte `c - 1` and then byte `c`:
//! a cut there could split a value. The recognizers' NFA (all patterns, no captures, counted
//! repetitions opened, see [`without_counts`]) is copied twice, for threads that have not yet
//! taken a byte and threads that have; an unanchored loop starts a thread at every position.
//! The copy has two patterns of its own:
//!
//! - `CROSSING` is entered whenever a thread that had already taken a byte takes another one,
//!   so it holds right after byte `c` exactly when `c` is crossed. A DFA reports a match one
//!   byte late, so the step on byte `c + 1` (or the end of the stream) tells about `c`.
//! - `ALIVE` holds, before any look-around, while a thread that took a byte can take another,
//!   and only at the end of the input (`\z`), so that it never shows after a byte. Asked at
//!   the end of the input received so far (an end-of-input transition that is not taken for
//!   good), "no" means nothing can run across the current end, whatever follows.
//!
//! Both over-approximate (validators are not run, every start counts and not only the
//! leftmost-first ones the engine iterates, repetition counts are ignored), which only costs
//! cut points, never safety. A pattern whose match can run to the end of the text (`\z`)
//! cannot be handled this way: the PEM block is tracked on its own (`pem.rs`), and only its
//! header, followed by one more byte, is given here, so that a header just completed still
//! counts as running on.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, NFA, State, Transition, WhichCaptures};
use regex_automata::util::look::Look;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::Error;

/// The pattern of the copied NFA that reports crossed positions (one byte late).
const CROSSING: usize = 0;
/// The pattern that reports, at the end of input, threads that can still take a byte.
const ALIVE: usize = 1;

/// The lazy DFA's cache per stream; ordinary text needs a small part of it.
const CACHE_BYTES: usize = 1 << 20;

/// The compiled frontier, shared by every stream of one masker.
#[derive(Debug)]
pub(crate) struct Frontier {
    dfa: DFA,
}

impl Frontier {
    /// Builds the frontier of `patterns` (none: no position is ever crossed).
    pub(crate) fn new(patterns: &[&str]) -> Result<Option<Frontier>, Error> {
        Frontier::with_cache(patterns, CACHE_BYTES)
    }

    /// [`Frontier::new`] with a cache of `bytes` per stream (the tests make it clear often).
    pub(crate) fn with_cache(patterns: &[&str], bytes: usize) -> Result<Option<Frontier>, Error> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let build = |e: &dyn std::fmt::Display| Error::Build(e.to_string());
        let loose: Vec<String> = patterns.iter().map(|p| without_counts(p)).collect();
        let nfa = NFA::compiler()
            .configure(NFA::config().which_captures(WhichCaptures::None))
            .build_many(&loose)
            .map_err(|e| build(&e))?;
        let copied = copy_by_depth(&nfa).map_err(|e| build(&e))?;
        let config = DFA::config()
            .match_kind(MatchKind::All)
            .cache_capacity(bytes);
        let dfa = DFA::builder()
            .configure(config)
            .build_from_nfa(copied)
            .map_err(|e| build(&e))?;
        Ok(Some(Frontier { dfa }))
    }
}

/// `pattern` with every counted repetition made open: `{0,n}` becomes `*` and `{m}`,
/// `{m,}`, `{m,n}` (m ≥ 1) become `+`. The language only grows, so positions are crossed at
/// least as often (sound), while the automaton no longer counts: threads of one pattern that
/// started at different places merge, which keeps the lazy DFA small on long runs of digits,
/// hex or base64 (with the counts it builds a new state at almost every byte).
pub(super) fn without_counts(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                out.push(c);
                if let Some(escaped) = rest.chars().next() {
                    out.push(escaped);
                    rest = &rest[escaped.len_utf8()..];
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal.
                for lead in ["^]", "]", "^"] {
                    if let Some(after) = rest.strip_prefix(lead) {
                        out.push_str(lead);
                        rest = after;
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class => match counted(rest) {
                Some((min, len)) => {
                    out.push(if min == 0 { '*' } else { '+' });
                    rest = &rest[len..];
                }
                None => out.push(c),
            },
            c => out.push(c),
        }
    }
    out
}

/// For the text after a `{`: the minimum of a `m}`, `m,}` or `m,n}` count and the length of
/// that text including the `}`.
fn counted(after_brace: &str) -> Option<(u32, usize)> {
    let close = after_brace.find('}')?;
    let inner = &after_brace[..close];
    let (min, max) = inner.split_once(',').unwrap_or((inner, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(min) && (max.is_empty() || digits(max)))
        .then(|| min.parse().ok())
        .flatten()
        .map(|m| (m, close + 1))
}

/// Copies `nfa` twice, by whether a thread has taken a byte yet, with the two patterns
/// described in the module docs. Matches of `nfa` itself lead nowhere: a whole match crossed
/// the positions inside it as its bytes were taken.
// The builder's own error type, returned once per masker: its size does not matter.
#[allow(clippy::result_large_err)]
fn copy_by_depth(nfa: &NFA) -> Result<NFA, thompson::BuildError> {
    let mut b = thompson::Builder::new();
    b.set_utf8(false);
    b.set_look_matcher(nfa.look_matcher().clone());
    let slots = Slots::new(&mut b, nfa.states().len())?;
    let start = slots.at(nfa.start_anchored(), 0);
    b.start_pattern()?;
    let crossing = b.add_match()?;
    b.finish_pattern(start)?;
    b.start_pattern()?;
    let alive = b.add_match()?;
    b.finish_pattern(start)?;
    // ALIVE only at the end of the input, so that a match after a byte always means CROSSING.
    let alive = b.add_look(alive, Look::End)?;
    for (i, state) in nfa.states().iter().enumerate() {
        let q = StateID::new_unchecked(i);
        let entry = b.add_union(vec![crossing, slots.at(q, 1)])?;
        b.patch(slots.took(q), entry)?;
        for copy in 0..2 {
            let (real, kind) = copy_state(&mut b, &slots, state, copy)?;
            // ALIVE before look-arounds: the next byte is unknown when it is asked.
            let wrapped = if copy == 1 && kind != Kind::Other {
                b.add_union(vec![alive, real])?
            } else {
                real
            };
            b.patch(slots.at(q, copy), wrapped)?;
        }
    }
    // The unanchored prefix: any byte, any number of times, then a new thread.
    let unanchored = b.add_union(vec![start])?;
    let any = b.add_range(Transition {
        start: 0,
        end: 255,
        next: unanchored,
    })?;
    b.patch(unanchored, any)?;
    b.build(start, unanchored)
}

/// Placeholder states, added first so that every copy can refer to any other before it
/// exists: copy 0 (fresh threads), copy 1 (threads that took a byte), and "took", the entry
/// into copy 1 of a thread that was already in it, which crosses the position it just passed.
struct Slots {
    ids: Vec<StateID>,
    n: usize,
}

impl Slots {
    #[allow(clippy::result_large_err)]
    fn new(b: &mut thompson::Builder, n: usize) -> Result<Slots, thompson::BuildError> {
        let ids = (0..3 * n)
            .map(|_| b.add_empty())
            .collect::<Result<_, _>>()?;
        Ok(Slots { ids, n })
    }

    fn at(&self, q: StateID, copy: usize) -> StateID {
        self.ids[copy * self.n + q.as_usize()]
    }

    fn took(&self, q: StateID) -> StateID {
        self.ids[2 * self.n + q.as_usize()]
    }
}

/// Adds `state` of copy `copy`: byte transitions lead into copy 1 (through "took" from copy
/// 1), epsilon transitions stay in the copy.
#[allow(clippy::result_large_err)]
fn copy_state(
    b: &mut thompson::Builder,
    slots: &Slots,
    state: &State,
    copy: usize,
) -> Result<(StateID, Kind), thompson::BuildError> {
    let step = |t: &Transition| Transition {
        start: t.start,
        end: t.end,
        next: if copy == 0 {
            slots.at(t.next, 1)
        } else {
            slots.took(t.next)
        },
    };
    Ok(match state {
        State::ByteRange { trans } => (b.add_range(step(trans))?, Kind::Byte),
        State::Sparse(sparse) => {
            let ranges = sparse.transitions.iter().map(step).collect();
            (b.add_sparse(ranges)?, Kind::Byte)
        }
        State::Dense(dense) => {
            let ranges = dense_to_sparse(&dense.transitions);
            (b.add_sparse(ranges.iter().map(step).collect())?, Kind::Byte)
        }
        State::Look { look, next } => (b.add_look(slots.at(*next, copy), *look)?, Kind::Look),
        State::Union { alternates } => {
            let alts = alternates.iter().map(|&a| slots.at(a, copy)).collect();
            (b.add_union(alts)?, Kind::Other)
        }
        State::BinaryUnion { alt1, alt2 } => {
            let alts = vec![slots.at(*alt1, copy), slots.at(*alt2, copy)];
            (b.add_union(alts)?, Kind::Other)
        }
        State::Capture { next, .. } => {
            let empty = b.add_empty()?;
            b.patch(empty, slots.at(*next, copy))?;
            (empty, Kind::Other)
        }
        State::Fail | State::Match { .. } => (b.add_fail()?, Kind::Other),
    })
}

/// What a state of the recognizers' NFA does, for the wrapping in [`copy_by_depth`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Takes a byte.
    Byte,
    /// A look-around before more of the pattern.
    Look,
    /// Epsilon transitions, failure and matches.
    Other,
}

/// The byte ranges of a dense state (256 targets, `StateID::ZERO` for none).
fn dense_to_sparse(targets: &[StateID]) -> Vec<Transition> {
    let mut out: Vec<Transition> = Vec::new();
    for (byte, &next) in (0..=255u8).zip(targets) {
        if next == StateID::ZERO {
            continue;
        }
        match out.last_mut() {
            Some(t) if t.next == next && t.end.checked_add(1) == Some(byte) => t.end = byte,
            _ => out.push(Transition {
                start: byte,
                end: byte,
                next,
            }),
        }
    }
    out
}

/// One stream's walk through the frontier.
#[derive(Debug)]
pub(crate) struct Walk {
    cache: Cache,
    /// `None` once the lazy DFA failed (it is configured never to give up, so that would be a
    /// bug): every position then counts as crossed, and the stream fails closed.
    state: Option<LazyStateID>,
}

impl Walk {
    pub(crate) fn new(frontier: &Frontier) -> Walk {
        let mut cache = frontier.dfa.create_cache();
        let state = start_state(frontier, &mut cache, None);
        Walk { cache, state }
    }

    /// Takes the byte at index `i`; whether position `i - 1` (between bytes `i - 2` and
    /// `i - 1`) is crossed.
    pub(crate) fn step(&mut self, frontier: &Frontier, byte: u8) -> bool {
        let Some(state) = self.state else {
            return true;
        };
        self.state = frontier.dfa.next_state(&mut self.cache, state, byte).ok();
        // Before the end of the input only CROSSING can match.
        self.state.is_none_or(|next| next.is_match())
    }

    /// Takes the end of the stream; whether the position before the last byte is crossed.
    pub(crate) fn end(&mut self, frontier: &Frontier) -> bool {
        let Some(state) = self.state else {
            return true;
        };
        match frontier.dfa.next_eoi_state(&mut self.cache, state) {
            Ok(eoi) => eoi.is_match() && self.has(frontier, eoi, CROSSING),
            Err(_) => true,
        }
    }

    /// Whether a thread that took the last byte given could take one more: `false` means no
    /// value can run across the current end of the input, whatever follows. Asking may clear
    /// the cache, which invalidates the current state; the walk is then rebuilt from `recent`.
    pub(crate) fn alive(&mut self, frontier: &Frontier, recent: Recent<'_>) -> bool {
        let Some(state) = self.state else {
            return true;
        };
        let clears = self.cache.clear_count();
        let alive = match frontier.dfa.next_eoi_state(&mut self.cache, state) {
            Ok(eoi) => eoi.is_match() && self.has(frontier, eoi, ALIVE),
            Err(_) => true,
        };
        if self.cache.clear_count() != clears {
            self.rebuild(frontier, recent);
        }
        alive
    }

    /// Restarts the walk at a position no thread crosses and replays the bytes since: every
    /// thread alive now started there or later, so the replay reaches the same threads.
    pub(crate) fn rebuild(&mut self, frontier: &Frontier, recent: Recent<'_>) {
        let mut state = start_state(frontier, &mut self.cache, recent.before);
        for &byte in recent.bytes {
            state = state.and_then(|s| frontier.dfa.next_state(&mut self.cache, s, byte).ok());
        }
        self.state = state;
    }

    /// How often the cache was cleared (the tests check that rebuilding is exercised).
    #[cfg(test)]
    pub(crate) fn clears(&self) -> usize {
        self.cache.clear_count()
    }

    fn has(&self, frontier: &Frontier, state: LazyStateID, pattern: usize) -> bool {
        (0..frontier.dfa.match_len(&self.cache, state))
            .any(|i| frontier.dfa.match_pattern(&self.cache, state, i).as_usize() == pattern)
    }
}

/// The bytes given since a position no thread crosses, and the byte before that position.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recent<'a> {
    pub(crate) before: Option<u8>,
    pub(crate) bytes: &'a [u8],
}

fn start_state(frontier: &Frontier, cache: &mut Cache, before: Option<u8>) -> Option<LazyStateID> {
    let config = start::Config::new()
        .anchored(Anchored::No)
        .look_behind(before);
    frontier.dfa.start_state(cache, &config).ok()
}
