//! Printing results as text for people or JSON for scripts and agents.

use serde::Serialize;

use crate::cli::{Global, Output};

/// Prints `value` as JSON with `--output json`, else the text `text` renders.
pub fn emit<T: Serialize>(g: &Global, value: &T, text: impl FnOnce(&T) -> String) {
    match g.output {
        Output::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode output: {e}"),
        },
        Output::Text => {
            let t = text(value);
            if !t.is_empty() {
                println!("{}", t.trim_end());
            }
        }
    }
}
