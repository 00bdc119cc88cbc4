//! The multi-pattern pre-pass for short texts (the engine asks it about texts of up to 256
//! bytes): which recognizers match anywhere, in one lazy-DFA scan over all patterns at once.
//!
//! This drives `regex_automata::hybrid` directly rather than through `meta::Regex` for one
//! reason: a lazy DFA over ~30 patterns can meet text that makes it build a new state at
//! almost every byte (dense runs of digits, colons, `@` and hex). It then gives up and the
//! search falls back to a much slower engine; through `meta`, the per-thread cache keeps its
//! clear count, so every later search on that thread gives up too and a single hostile value
//! would slow masking down for good. Here a cache that had to be cleared is reset after the
//! search, and a search that gives up answers "unknown", after which the caller asks the
//! locator instead (`locate.rs`). Searches skip the set for a while after one thrashed, since
//! short ones never get as far as giving up.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind, PatternSet};

use crate::Error;

type CacheFn = Box<dyn Fn() -> (Cache, PatternSet) + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// The most patterns a set takes: its answer is a bit set in a `u64`.
pub(crate) const MAX_PATTERNS: usize = 64;

pub(crate) struct PatternSetDfa {
    dfa: Arc<DFA>,
    /// A cache and an answer per thread, reused: a value that matches nothing costs no
    /// allocation.
    caches: Pool<(Cache, PatternSet), CacheFn>,
    /// How many more bytes of searches skip the set: after a search had to clear the cache,
    /// the text at hand (a column of hashes) builds a state at almost every byte, and short
    /// searches never reach the give-up heuristic (their cache is reset before it can), so
    /// they would pay for the states every time.
    skip: AtomicUsize,
}

/// How many bytes of searches skip the set after it thrashed: the locator costs about
/// 50-100 MB/s on short texts, a thrashing set under 1 MB/s, and ordinary text that follows
/// gets the set back after at most this much.
const SKIP_AFTER_THRASHING: usize = 1 << 20;

impl PatternSetDfa {
    pub(crate) fn new(patterns: &[&str]) -> Result<PatternSetDfa, Error> {
        if patterns.len() > MAX_PATTERNS {
            return Err(Error::Build(format!(
                "a pattern set takes at most {MAX_PATTERNS} patterns"
            )));
        }
        // `All` so the overlapping search reports every pattern that matches somewhere. Give
        // up after the first cache clear if fewer than 100 bytes were scanned per state built
        // since: ordinary text reuses a few hundred states for megabytes, and hostile text
        // is cheaper to hand to the per-recognizer passes (~17 MB/s in the worst case we
        // know, against ~2 MB/s for a thrashing set).
        let config = DFA::config()
            .match_kind(MatchKind::All)
            .cache_capacity(2 << 20)
            .minimum_cache_clear_count(Some(1))
            .minimum_bytes_per_state(Some(100));
        let dfa = DFA::builder()
            .configure(config)
            .build_many(patterns)
            .map_err(|e| Error::Build(e.to_string()))?;
        let dfa = Arc::new(dfa);
        let for_pool = Arc::clone(&dfa);
        let create: CacheFn = Box::new(move || {
            (
                for_pool.create_cache(),
                PatternSet::new(for_pool.pattern_len()),
            )
        });
        Ok(PatternSetDfa {
            dfa,
            caches: Pool::new(create),
            skip: AtomicUsize::new(0),
        })
    }

    /// The patterns that match somewhere in `text[from..]` (seeing the byte before `from` for
    /// word boundaries), as bits by pattern id, or `None` if the DFA gave up (then any pattern
    /// may match).
    pub(crate) fn which(&self, text: &str, from: usize) -> Option<u64> {
        let len = text.len() - from;
        let skipping = self
            .skip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left.saturating_sub(len))
            })
            .is_ok();
        if skipping {
            return None;
        }
        let mut guard = self.caches.get();
        let (cache, which) = &mut *guard;
        which.clear();
        let input = Input::new(text).span(from..text.len());
        let result = self.dfa.try_which_overlapping_matches(cache, &input, which);
        // A cache that had to be cleared carries its clear count into the next search and
        // would make that one give up early: start it afresh.
        if result.is_err() || cache.clear_count() > 0 {
            cache.reset(&self.dfa);
            self.skip.store(SKIP_AFTER_THRASHING, Ordering::Relaxed);
        }
        let bits = which
            .iter()
            .fold(0u64, |bits, pattern| bits | 1 << pattern.as_usize());
        result.ok().map(|()| bits)
    }
}
