//! PEM private-key blocks in a stream. The recognizer's pattern is a header, a lazy body and
//! the first END line after it, or the end of the text: no bounded look at the text can tell
//! where such a match ends, so the stream tracks blocks with two small lazy DFAs instead, one
//! for headers (while no block is open) and one for END lines (while one is).
//!
//! This mirrors the engine's leftmost-first iteration exactly: the first header found opens a
//! block, the first END line that starts after the header closes it, and the search for the
//! next header starts where the block ended. An END line cannot overlap a later one except by
//! sharing dashes, so the first one to end is also the first one to start (and likewise for
//! headers), which is what a forward DFA reporting match ends sees.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use crate::Error;

/// The compiled header and END-line automata.
#[derive(Debug)]
pub(crate) struct PemTables {
    begin: DFA,
    end: DFA,
}

impl PemTables {
    pub(crate) fn new(begin: &str, end: &str) -> Result<PemTables, Error> {
        // Each automaton has a few dozen states: a small cache holds them all.
        let config = DFA::config()
            .match_kind(MatchKind::All)
            .cache_capacity(64 << 10);
        let build = |pattern: &str| {
            DFA::builder()
                .configure(config.clone())
                .build(pattern)
                .map_err(|e| Error::Build(e.to_string()))
        };
        Ok(PemTables {
            begin: build(begin)?,
            end: build(end)?,
        })
    }
}

/// What one byte did to the block state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    None,
    /// A header ended just before this byte: a block is open from its header on.
    Opened,
    /// An END line ended just before this byte: the block is closed there.
    Closed,
}

/// One stream's block state.
#[derive(Debug)]
pub(crate) struct PemWalk {
    begin_cache: Cache,
    end_cache: Cache,
    /// The state of the automaton in use (the END one while a block is open); `None` after a
    /// failure of the lazy DFA, which keeps the block open for good (fail closed).
    state: Option<LazyStateID>,
    open: bool,
}

impl PemWalk {
    pub(crate) fn new(tables: &PemTables) -> PemWalk {
        let mut begin_cache = tables.begin.create_cache();
        let end_cache = tables.end.create_cache();
        let state = start_state(&tables.begin, &mut begin_cache);
        PemWalk {
            begin_cache,
            end_cache,
            open: state.is_none(),
            state,
        }
    }

    /// Whether a block is open (since its header ended, until its END line has ended).
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Takes one byte.
    pub(crate) fn step(&mut self, tables: &PemTables, byte: u8) -> Event {
        let Some(state) = self.state else {
            return Event::None;
        };
        let (dfa, cache) = self.current(tables);
        self.state = dfa.next_state(cache, state, byte).ok();
        match self.state {
            None => {
                self.open = true;
                Event::None
            }
            Some(next) if next.is_match() => {
                // Switch automata; the new one starts here and takes this byte too.
                self.open = !self.open;
                let (dfa, cache) = self.current(tables);
                self.state =
                    start_state(dfa, cache).and_then(|s| dfa.next_state(cache, s, byte).ok());
                if self.state.is_none() {
                    self.open = true;
                }
                if self.open {
                    Event::Opened
                } else {
                    Event::Closed
                }
            }
            Some(_) => Event::None,
        }
    }

    fn current<'t>(&mut self, tables: &'t PemTables) -> (&'t DFA, &mut Cache) {
        if self.open {
            (&tables.end, &mut self.end_cache)
        } else {
            (&tables.begin, &mut self.begin_cache)
        }
    }
}

/// An unanchored start; neither pattern has look-arounds, so no look-behind is needed.
fn start_state(dfa: &DFA, cache: &mut Cache) -> Option<LazyStateID> {
    dfa.start_state(cache, &start::Config::new().anchored(Anchored::No))
        .ok()
}
