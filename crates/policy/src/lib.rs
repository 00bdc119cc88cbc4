//! Policy decisions for Portcullis, on [Cedar](https://www.cedarpolicy.com) (DESIGN.md §4).
//!
//! Policies are compiled once against the shipped schema ([`schema_text`]) into a
//! [`PolicyEngine`], which answers each command's [`Request`] with a [`Decision`]: allow (with
//! masking obligations), require approval, or deny with a code, the determining policies, a
//! reason and a hint.
//!
//! The crate is pure: no I/O and no clock reads. Time and the client address are handed in with
//! the request, and any evaluation error denies (fail closed).

mod compile;
mod context;
mod decision;
mod engine;
mod entities;
mod memo;
mod meta;
mod request;
mod schema;
mod slice;
mod verdict;

#[cfg(test)]
mod tests;

pub use compile::{PolicySource, Problem};
pub use decision::{Decision, DenyCode, RowLimit};
pub use engine::PolicyEngine;
pub use memo::SessionMemo;
pub use request::{ConnectionInfo, Request, Target};
pub use schema::schema_text;
