//! Masking of sensitive values in query results and other gateway output (DESIGN.md §6).
//!
//! Profiles ([`ProfileSpec`]) say which recognizers are on, which columns are masked whole
//! and with which [`Strategy`]; [`Masker::new`] compiles them once. A door asks
//! [`Masker::column`] for a [`ColumnPlan`] per result column, then [`Masker::mask_value`] per
//! value, and adds the [`Counts`] to the audit event.
//!
//! Detection (`engine.rs`): a gate lets most short clean values through after one look at their
//! bytes; a text of up to 256 bytes then takes one lazy-DFA pass over every pattern
//! (`set.rs`) that says which recognizers can match at all (for most values none); one pass
//! (`locate.rs`) finds where each recognizer can match (its literal prefixes,
//! and runs of the bytes it is made of around a digit, `:` or `@`); each recognizer's pattern
//! runs only there, its candidates are confirmed by per-entity validators (`recognizers/`),
//! and overlaps are resolved by priority: secrets, then payment data, government ids, contact
//! data and network addresses.
//!
//! Text that arrives in chunks (terminal output, HTTP bodies, COPY data) goes through a
//! [`StreamMasker`] ([`Masker::stream`]): its output, put together, is [`Masker::mask_text`]
//! of the whole text, with the same counts. It emits text up to the last cut point no value
//! can run across (derived from the recognizers' own patterns), holds at most a window
//! ([`StreamMasker::DEFAULT_WINDOW`], 64 KiB) after it plus 256 bytes of context, and masks a
//! run longer than the window whole, as a private key or a generic secret, rather than let any
//! of it out in clear (`stream.rs` documents the exact rules).
//!
//! The crate is pure: no I/O, no clock, no environment. Masking never fails and never panics
//! on any input; replacements never contain tab, newline, backslash or quotes, so a door can
//! place them in COPY text rows and array literals as they are.

mod array;
mod counts;
mod engine;
mod entity;
mod error;
mod glob;
mod json;
mod locate;
mod masker;
mod plan;
mod profile;
mod recognizers;
mod set;
mod strategy;
mod stream;

pub use counts::Counts;
pub use engine::Finding;
pub use entity::Entity;
pub use error::Error;
pub use masker::Masker;
pub use plan::{ColumnPlan, Masked};
pub use profile::{ColumnMatch, ColumnRule, ProfileSpec};
pub use strategy::Strategy;
pub use stream::StreamMasker;

#[cfg(test)]
mod tests;
