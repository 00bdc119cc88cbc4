//! The PostgreSQL door against the system PostgreSQL, with tokio-postgres, psql and a raw
//! protocol client.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod catalog;
mod extended;
mod pool;
mod raw;
mod robust;
mod row_limits;
mod sequences;
mod simple;
mod support;
mod upstream;
