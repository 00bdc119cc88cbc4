//! Masking of text that arrives in chunks: terminal output, HTTP bodies, COPY data.
//!
//! [`StreamMasker`] (from [`Masker::stream`]) takes the chunks of a byte stream and returns,
//! for each, the masked output that is now safe to emit. Its documentation states the
//! contract: output equal to [`Masker::mask_text`] of the whole text, cut points, the window
//! ([`StreamMasker::DEFAULT_WINDOW`], 64 KiB, plus 256 bytes of context) and what happens to
//! a run longer than it (masked whole, never passed in clear). This module owns how:
//!
//! - `utf8.rs` decodes the bytes as [`String::from_utf8_lossy`] would, chunk by chunk;
//! - `frontier.rs` is a lazy DFA derived from the recognizers' patterns that tells which
//!   positions a match could run across, and whether one could run across the end of the
//!   input received so far. In pushes of 1 KiB or more complete lines do not need it (the
//!   position after a line break is a cut point); it is walked, replayed from the last cut
//!   point, inside lines longer than 4 KiB, PEM blocks, small pushes and at the end;
//! - `pem.rs` follows PEM private-key blocks, whose matches run to the first END line;
//! - here, cut points are collected, the held text is scanned with the engine from the last
//!   cut point (with the emitted context before it, `Engine::scan`), output is written up to
//!   the last cut point whose matches have their context (`Recognizer::reach`), and text held
//!   beyond the window becomes a run rendered piecewise (`RunRenderer`).
//!
//! Memory: `text` holds the emitted context then the held text; `from` is where held text
//! starts. Between calls `text` is at most the window plus the context, and a call takes its
//! chunk a window at a time.

mod frontier;
mod pem;
mod utf8;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::recognizers::{self, Recognizer};
use crate::strategy::RunRenderer;
use crate::{Counts, Entity, Error, Masker};
use frontier::{Frontier, Recent, Walk};
use pem::{PemTables, PemWalk};
use utf8::Decoder;

/// How far the context kept reaches back to start at a word: longer than any keyword a
/// validator reads before a value, so a context that starts inside a longer word cannot
/// start with such a keyword.
const WORD: usize = 16;

/// A line longer than this (or than half the window) is walked through the frontier for cut
/// points inside it, so that it does not become a run.
const LONG_LINE: usize = 4096;

/// Pushes smaller than this are taken for interactive output, walked whole (see
/// `StreamMasker::walking`).
const SMALL_PUSH: usize = 1024;

/// How many cut points are remembered between scans; older ones are dropped (they are only
/// needed when a match waits for context, and then a later scan finds the next one).
const MAX_CUTS: usize = 1024;

/// The automata of a masker's recognizers, built once and shared by its streams.
#[derive(Debug)]
pub(crate) struct Tables {
    frontier: Option<Frontier>,
    pem: Option<PemTables>,
}

impl Tables {
    pub(crate) fn new(recognizers: &[&'static Recognizer]) -> Result<Tables, Error> {
        // The PEM header plus one byte: a header that just ended still counts as running on.
        let header = format!("{}(?s:.)", recognizers::PEM_BEGIN);
        let mut pem = None;
        let mut patterns: Vec<&str> = Vec::new();
        for r in recognizers {
            if r.pattern == recognizers::PEM {
                pem = Some(PemTables::new(
                    recognizers::PEM_BEGIN,
                    recognizers::PEM_END,
                )?);
                patterns.push(&header);
            } else {
                patterns.push(r.pattern);
            }
        }
        Ok(Tables {
            frontier: Frontier::new(&patterns)?,
            pem,
        })
    }
}

/// Masks a byte stream that arrives in chunks (terminal output, HTTP bodies, COPY data) with
/// a [`Masker`]'s recognizers and strategies, without ever holding the whole stream.
///
/// # Guarantee
///
/// For every split of an input into chunks, the outputs put together equal
/// [`Masker::mask_text`] on the whole input (decoded as by [`String::from_utf8_lossy`]), and
/// the same [`Counts`] are added, unless a held run of text reaches the window (see below;
/// one rarer exception is given with the cut points). A value split across chunks is found
/// as if it had come in one.
///
/// # Cut points
///
/// Output is produced up to a cut point, a position that
///
/// 1. no match of any enabled recognizer can run across, whatever text follows. The
///    recognizers' own patterns decide this (`stream/frontier.rs`): a position is crossed when
///    a prefix of some possible match (from any start, validators not consulted) covers the
///    bytes on both sides of it. So the spaces inside `4111 1111 1111 1111`,
///    `+44 20 7946 0958`, `GB82 WEST 1234 5698 7654 32`, `password = "two words"` or
///    `Bearer <token>` are not cut points, while those of ordinary prose are; no pattern but the
///    PEM block runs across a line break, so the end of a line usually is one. In pushes of
///    1 KiB or more the cut points inside lines of up to 4 KiB are not looked for: the
///    position after each line break is the cut point, which costs a line of lag.
/// 2. is not inside a PEM private-key block, from its header to the end of its first END line
///    (`stream/pem.rs`), nor inside its header;
/// 3. is on a character boundary;
/// 4. leaves every match before it the context its validator reads after it: two bytes for
///    most recognizers, [`StreamMasker::CONTEXT`] (256) bytes for connection-string passwords,
///    whose validator looks for other connection keys nearby.
///
/// The text up to the last cut point is masked with the findings of one scan that starts at
/// the previous cut point and sees, as context only, the [`StreamMasker::CONTEXT`] bytes
/// emitted before it (extended back to the start of a word). Output thus lags input by the
/// value that might be in progress (a word could be the local part of an e-mail address; a
/// line holding `password=` waits for 256 more bytes), and by a byte or two when a candidate
/// ends right at the end of the input.
///
/// One validator reads further back than that context: the IPv4 test for a version keyword
/// (`version 1.2.3.4` is not an address) skips any whitespace before the address. After more
/// than ~250 bytes of whitespace the stream masks such an address where `mask_text` would not:
/// more masking, never less.
///
/// # The window, and runs longer than it
///
/// At most [`StreamMasker::window`] bytes ([`StreamMasker::DEFAULT_WINDOW`], 64 KiB) are held
/// after the last cut point. When more arrive without a cut point, which takes a run of
/// characters that could all belong to one value (a PEM block, a long base64 or hex blob, a
/// long token after `password=`), the held text from the last cut point on becomes one masked
/// run, which lasts up to the next cut point: nothing of it is ever emitted in clear. The run
/// is masked as `PRIVATE_KEY` if a PEM block is open when it starts, else as `GENERIC_SECRET`,
/// with that entity's strategy: its label at once (`Redact`, `Null`), an HMAC token of the
/// whole run at its end (`Hmac`), or a `*` per character and the last `keep` characters at its
/// end (`Partial`). A PEM block that starts on a cut point and whose END line ends on one (the
/// usual layout, a block on lines of its own) is therefore masked exactly as `mask_text` masks
/// it, however long; any other run is masked more than `mask_text` would mask it (text of the
/// run that held no value is masked too) and counted once: nothing of it shows but the last
/// `keep` characters of a `Partial` strategy.
///
/// # Memory and cost
///
/// Between calls the masker holds at most the window, the context bytes and an incomplete
/// UTF-8 character ([`StreamMasker::max_buffered`]); a call takes its chunk a window at a
/// time, so it holds at most one window more. Besides, each stream has its own lazy-DFA
/// caches, which grow as needed up to 1 MiB for the frontier and 64 KiB for each PEM
/// automaton, and, for a `Partial` run, the last `keep` characters. Every byte goes once
/// through the PEM automata, and through the frontier where it is walked (a line of 4 KiB
/// or more, a PEM block, a push under 1 KiB; when the walk starts, the text since the last
/// cut point is replayed); each call scans the text held since the last cut point once, so
/// text is scanned again only while it waits for a cut point (at most a window, and only
/// when a call brings new cut points).
///
/// # Invalid UTF-8
///
/// Bytes that are not UTF-8 are replaced as [`String::from_utf8_lossy`] replaces them (one
/// U+FFFD per maximal invalid sequence, an incomplete character at the end of the stream
/// included) before masking, so the output is always UTF-8 and binary noise cannot hide a
/// value from the recognizers any more than it does in `mask_text`.
///
/// # Example
///
/// ```
/// use portcullis_masking::{Counts, Masker, ProfileSpec};
///
/// let masker = Masker::new(&[&ProfileSpec::builtin_default()], None)?;
/// let mut stream = masker.stream();
/// let mut counts = Counts::default();
/// let mut out = stream.push(b"card 4111 1111 ", &mut counts);
/// out.extend(stream.push(b"1111 1111 exp 12/29\n", &mut counts));
/// out.extend(stream.finish(&mut counts));
/// assert_eq!(out, b"card [CREDIT_CARD] exp 12/29\n");
/// # Ok::<(), portcullis_masking::Error>(())
/// ```
pub struct StreamMasker {
    masker: Masker,
    window: usize,
    decoder: Decoder,
    /// Emitted text kept as context (up to [`StreamMasker::CONTEXT`] bytes), then held text.
    text: String,
    /// Stream offset of `text[0]`.
    base: usize,
    /// Stream offset where the held text starts: a cut point, or inside a run.
    from: usize,
    /// `None` without recognizers (no position is crossed) or when the automata failed to
    /// build (every position is, and the stream fails closed).
    walk: Option<Walk>,
    /// Whether `walk` has taken every byte received. In large pushes complete lines need no
    /// walk: the position after a line break is a cut point (no pattern but the PEM block,
    /// followed apart, runs across one), so the walk is replayed from the last cut point only
    /// for a line longer than [`LONG_LINE`], a PEM block, a small push (interactive output,
    /// walked whole) and the end of the stream.
    walking: bool,
    /// Whether the last push was small (interactive output, see `walking`).
    small_push: bool,
    broken: bool,
    pem: Option<PemWalk>,
    /// Cut points after `from`, ascending.
    cuts: VecDeque<usize>,
    /// No scan is worth doing before the text reaches this offset: a match waits for context.
    wait_until: usize,
    run: Option<Run>,
}

/// A run of held text longer than the window, being masked as one value.
struct Run {
    /// Where it started (a cut point); it ends at the next one.
    start: usize,
    entity: Entity,
    renderer: RunRenderer,
}

impl StreamMasker {
    /// The default window: how many bytes may be held after the last cut point.
    pub const DEFAULT_WINDOW: usize = 64 * 1024;

    /// The smallest window [`StreamMasker::with_window`] accepts.
    pub const MIN_WINDOW: usize = 1024;

    /// How many bytes of emitted text are kept as context for the validators.
    pub const CONTEXT: usize = recognizers::CONTEXT;

    /// A stream masker with the [`DEFAULT_WINDOW`](Self::DEFAULT_WINDOW);
    /// [`Masker::stream`] does the same.
    pub fn new(masker: Masker) -> StreamMasker {
        let (walk, pem, broken) = match masker.stream_tables() {
            Some(tables) => (
                tables.frontier.as_ref().map(Walk::new),
                tables.pem.as_ref().map(PemWalk::new),
                false,
            ),
            None => (None, None, true),
        };
        StreamMasker {
            masker,
            window: Self::DEFAULT_WINDOW,
            decoder: Decoder::default(),
            text: String::new(),
            base: 0,
            from: 0,
            walk,
            walking: true,
            small_push: false,
            broken,
            pem,
            cuts: VecDeque::new(),
            wait_until: 0,
            run: None,
        }
    }

    /// The same masker with a window of `bytes` (at least [`MIN_WINDOW`](Self::MIN_WINDOW)).
    #[must_use]
    pub fn with_window(mut self, bytes: usize) -> StreamMasker {
        self.window = bytes.max(Self::MIN_WINDOW);
        self
    }

    /// How many bytes may be held after the last cut point before they are masked as a run.
    pub fn window(&self) -> usize {
        self.window
    }

    /// How many input bytes the masker holds now (text not yet emitted, emitted text kept as
    /// context, and an incomplete character).
    pub fn buffered(&self) -> usize {
        self.text.len() + self.decoder.pending()
    }

    /// The most [`buffered`](Self::buffered) can be between calls: the window, the context
    /// (extended back to the start of a character and of a word, by at most 3 + 16 bytes),
    /// and an incomplete character (3 bytes).
    pub fn max_buffered(&self) -> usize {
        self.window + Self::CONTEXT + 3 + WORD + 3
    }

    /// Takes the next chunk; returns the masked output that is now safe to emit (UTF-8,
    /// possibly empty) and adds what it masked to `counts`.
    pub fn push(&mut self, chunk: &[u8], counts: &mut Counts) -> Vec<u8> {
        let mut out = String::new();
        // Small pushes (interactive output) are walked through whole, so that every cut
        // point in them is found and nothing is held back longer than it must be.
        self.small_push = chunk.len() < SMALL_PUSH;
        if self.small_push {
            self.start_walk(self.end());
        }
        for piece in chunk.chunks(self.window) {
            let start = self.end();
            self.decoder.decode(piece, &mut self.text);
            self.absorb(start, &mut out, counts);
            self.settle(&mut out, counts);
        }
        out.into_bytes()
    }

    /// Ends the stream; returns the rest of the masked output.
    pub fn finish(mut self, counts: &mut Counts) -> Vec<u8> {
        let mut out = String::new();
        let start = self.end();
        self.decoder.finish(&mut self.text);
        self.absorb(start, &mut out, counts);
        let end = self.end();
        if end > 0 {
            let crossed = self.crossed_at_end();
            let inside = self.pem_open();
            self.decide(end - 1, crossed, inside, &mut out, counts);
        }
        match self.run.take() {
            Some(run) => {
                let piece = &self.text[self.from - self.base..];
                self.close_run(run, piece.len(), &mut out, counts);
            }
            None => {
                let scan = self.masker.scan(&self.text, self.from - self.base);
                self.write(end, &scan.findings, &mut out, counts);
            }
        }
        out.into_bytes()
    }

    /// Takes the end of the stream: whether the position before the last byte is crossed.
    fn crossed_at_end(&mut self) -> bool {
        self.start_walk(self.end());
        let masker = self.masker.clone();
        let frontier = masker.stream_tables().and_then(|t| t.frontier.as_ref());
        match (&mut self.walk, frontier) {
            (Some(walk), Some(frontier)) => walk.end(frontier),
            _ => self.broken,
        }
    }

    /// The stream offset just past the text received.
    fn end(&self) -> usize {
        self.base + self.text.len()
    }

    fn pem_open(&self) -> bool {
        self.pem.as_ref().is_some_and(PemWalk::is_open)
    }

    /// Runs the text from stream offset `start` on through the automata, deciding each
    /// position as soon as the byte after it is known.
    fn absorb(&mut self, start: usize, out: &mut String, counts: &mut Counts) {
        let masker = self.masker.clone();
        let tables = masker.stream_tables();
        let frontier = tables.and_then(|t| t.frontier.as_ref());
        let pem_tables = tables.and_then(|t| t.pem.as_ref());
        let long_line = LONG_LINE.min(self.window / 2);
        for i in start..self.end() {
            let byte = self.text.as_bytes()[i - self.base];
            let crossed = if self.walking {
                match (&mut self.walk, frontier) {
                    (Some(walk), Some(frontier)) => walk.step(frontier, byte),
                    _ => self.broken,
                }
            } else {
                // Position `i - 1` follows a line break: nothing but a PEM block crosses it.
                let before = (i - 1)
                    .checked_sub(1)
                    .and_then(|b| b.checked_sub(self.base));
                self.broken || before.is_none_or(|b| self.text.as_bytes()[b] != b'\n')
            };
            // Whether position `i - 1` is inside a block depends on the events before it.
            let inside = self.pem_open();
            if let (Some(pem), Some(pem_tables)) = (&mut self.pem, pem_tables) {
                pem.step(pem_tables, byte);
            }
            // A crossed position (most of them) decides nothing.
            if i > 0 && !crossed {
                self.decide(i - 1, crossed, inside, out, counts);
            }
            if self.walking
                && byte == b'\n'
                && !self.small_push
                && self.run.is_none()
                && !self.pem_open()
            {
                // The next line starts at a cut point; complete lines need no walk.
                self.walking = false;
            } else if !self.walking && i + 1 - self.last_cut() > long_line {
                self.start_walk(i + 1);
            }
        }
    }

    /// The last cut point, or where held text starts.
    fn last_cut(&self) -> usize {
        self.cuts.back().copied().unwrap_or(self.from)
    }

    /// Brings the walk up to stream offset `upto` (bytes received), replaying it from the last
    /// cut point, which no thread crosses.
    fn start_walk(&mut self, upto: usize) {
        if self.walking {
            return;
        }
        self.walking = true;
        let since = self.last_cut() - self.base;
        let masker = self.masker.clone();
        let Some(frontier) = masker.stream_tables().and_then(|t| t.frontier.as_ref()) else {
            return;
        };
        let Some(walk) = &mut self.walk else {
            return;
        };
        let bytes = self.text.as_bytes();
        walk.rebuild(
            frontier,
            Recent {
                before: since.checked_sub(1).map(|i| bytes[i]),
                bytes: &bytes[since..upto - self.base],
            },
        );
    }

    /// Records position `at` as a cut point if nothing crosses it, or ends the run there.
    fn decide(
        &mut self,
        at: usize,
        crossed: bool,
        inside: bool,
        out: &mut String,
        counts: &mut Counts,
    ) {
        if crossed || inside || at < self.from || !self.text.is_char_boundary(at - self.base) {
            return;
        }
        match self.run.take() {
            Some(run) if at > run.start => self.close_run(run, at - self.from, out, counts),
            Some(run) => self.run = Some(run),
            None if at > self.from && self.cuts.back().is_none_or(|&last| last < at) => {
                if self.cuts.len() == MAX_CUTS {
                    self.cuts.pop_front();
                }
                self.cuts.push_back(at);
            }
            None => {}
        }
    }

    /// After a piece of input: a cut at its end if nothing runs on, output up to the last
    /// cut point, the window enforced, old context dropped.
    fn settle(&mut self, out: &mut String, counts: &mut Counts) {
        let end = self.end();
        if self.run.is_none() && end > self.from && !self.pem_open() && !self.alive() {
            self.decide(end, false, false, out, counts);
        }
        if self.run.is_none() && end >= self.wait_until {
            self.emit(out, counts);
        }
        self.enforce_window(out, counts);
        self.trim();
    }

    /// Whether a match could still run across the end of the text received.
    fn alive(&mut self) -> bool {
        if !self.walking {
            // After a line break nothing runs on; a large push's line in progress waits for
            // the next push, which will most often complete it.
            return self.text.as_bytes().last() != Some(&b'\n');
        }
        // The walk may have to be rebuilt from the last position known to be a cut point.
        let at = self.last_cut() - self.base;
        let masker = self.masker.clone();
        let Some(frontier) = masker.stream_tables().and_then(|t| t.frontier.as_ref()) else {
            return self.broken;
        };
        let Some(walk) = &mut self.walk else {
            return self.broken;
        };
        let bytes = self.text.as_bytes();
        let recent = Recent {
            before: at.checked_sub(1).map(|i| bytes[i]),
            bytes: &bytes[at..],
        };
        walk.alive(frontier, recent)
    }

    /// Emits the held text up to the last cut point before which every match has its context.
    fn emit(&mut self, out: &mut String, counts: &mut Counts) {
        let Some(&last) = self.cuts.back() else {
            return;
        };
        let scan = self.masker.scan(&self.text, self.from - self.base);
        let mut cut = last;
        self.wait_until = 0;
        if let Some((start, needs)) = scan.wait {
            let start = self.base + start;
            if start < cut {
                self.wait_until = self.base + needs;
                match self.cuts.iter().rev().find(|&&c| c <= start) {
                    Some(&earlier) => cut = earlier,
                    None => return,
                }
            }
        }
        self.write(cut, &scan.findings, out, counts);
        while self.cuts.front().is_some_and(|&c| c <= cut) {
            self.cuts.pop_front();
        }
    }

    /// Writes the held text up to stream offset `cut` with `findings` (of a scan from `from`)
    /// replaced, and moves `from` there.
    fn write(
        &mut self,
        cut: usize,
        findings: &[crate::Finding],
        out: &mut String,
        counts: &mut Counts,
    ) {
        let (lo, hi) = (self.from - self.base, cut - self.base);
        let mut copied = lo;
        for f in findings
            .iter()
            .filter(|f| f.range.start >= lo && f.range.start < hi)
        {
            // No finding runs across a cut point; were one to, its part before the cut is
            // still masked.
            debug_assert!(f.range.end <= hi, "finding {f:?} crosses cut {hi}");
            let end = f.range.end.min(hi);
            out.push_str(&self.text[copied..f.range.start]);
            let strategy = self.masker.strategy(f.entity);
            self.masker
                .render(f.entity, strategy, &self.text[f.range.start..end], out);
            counts.add(f.entity, 1);
            copied = end;
        }
        out.push_str(&self.text[copied..hi]);
        self.from = cut;
    }

    /// Turns held text beyond the window into a run, and feeds a run what it may take.
    fn enforce_window(&mut self, out: &mut String, counts: &mut Counts) {
        loop {
            if self.run.is_some() {
                // Every position before the last byte is decided (and none ended the run).
                let mut upto = self.end().saturating_sub(1).max(self.from) - self.base;
                while !self.text.is_char_boundary(upto) {
                    upto -= 1;
                }
                let lo = self.from - self.base;
                if let (Some(run), true) = (&mut self.run, upto > lo) {
                    run.renderer.feed(&self.text[lo..upto], out);
                    self.from = self.base + upto;
                }
                return;
            }
            if self.end() - self.from <= self.window {
                return;
            }
            let entity = if self.pem_open() {
                Entity::PrivateKey
            } else {
                Entity::GenericSecret
            };
            let renderer = self.masker.run_renderer(entity, out);
            let run = Run {
                start: self.from,
                entity,
                renderer,
            };
            self.wait_until = 0;
            match self.cuts.back().copied() {
                // Cut points held back by a match waiting for context: the run ends at the
                // last of them, and the window is checked again from there.
                Some(cut) => {
                    self.cuts.clear();
                    self.close_run(run, cut - self.from, out, counts);
                }
                None => self.run = Some(run),
            }
        }
    }

    /// Ends a run after the next `len` bytes of held text.
    fn close_run(&mut self, mut run: Run, len: usize, out: &mut String, counts: &mut Counts) {
        let lo = self.from - self.base;
        run.renderer.feed(&self.text[lo..lo + len], out);
        run.renderer.finish(out);
        counts.add(run.entity, 1);
        self.from += len;
        self.cuts.clear();
        self.wait_until = 0;
    }

    /// Drops emitted text beyond the context. The context kept starts on a character, and
    /// not inside a word of up to [`WORD`] letters: a validator that reads a keyword before a
    /// value (`version 1.2.3.4`) must not take the tail of a longer word for it.
    fn trim(&mut self) {
        let mut drop = self
            .from
            .saturating_sub(Self::CONTEXT)
            .saturating_sub(self.base);
        while !self.text.is_char_boundary(drop) {
            drop -= 1;
        }
        let bytes = self.text.as_bytes();
        let mut back = 0;
        while back < WORD && drop > 0 && bytes[drop - 1].is_ascii_alphabetic() {
            drop -= 1;
            back += 1;
        }
        if drop > 0 {
            self.text.drain(..drop);
            self.base += drop;
        }
    }
}

impl std::fmt::Debug for StreamMasker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print held text: it may be a value being masked.
        f.debug_struct("StreamMasker")
            .field("window", &self.window)
            .field("emitted", &self.from)
            .field("buffered", &self.buffered())
            .field("in_run", &self.run.as_ref().map(|r| r.entity))
            .finish_non_exhaustive()
    }
}
