//! What one client path saw for one case.

use serde_json::Value;

use crate::cases::Transport;

/// How a case ended for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Error codes (SQLSTATEs, HTTP statuses and reason codes).
    Failed(Vec<String>),
    /// The session ended under the case (the gateway or the server closed it).
    Lost(String),
}

impl Outcome {
    /// Adds a failure; a lost session stays lost.
    pub fn fail(&mut self, code: impl Into<String>) {
        match self {
            Outcome::Ok => *self = Outcome::Failed(vec![code.into()]),
            Outcome::Failed(codes) => codes.push(code.into()),
            Outcome::Lost(_) => {}
        }
    }

    pub fn lose(&mut self, why: impl Into<String>) {
        *self = Outcome::Lost(why.into());
    }
}

/// Everything a client received while it ran one case.
#[derive(Debug, Clone)]
pub struct Capture {
    pub transport: Transport,
    /// Index into the cases.
    pub case: usize,
    pub outcome: Outcome,
    /// Bytes and texts as the client got them (rows, error and notice fields, COPY data,
    /// response bodies, ...).
    pub blobs: Vec<Vec<u8>>,
}

impl Capture {
    pub fn new(transport: Transport, case: usize) -> Capture {
        Capture {
            transport,
            case,
            outcome: Outcome::Ok,
            blobs: Vec::new(),
        }
    }

    pub fn text(&mut self, text: impl Into<String>) {
        self.blobs.push(text.into().into_bytes());
    }
}

/// Every string and number of a JSON document, one per line: a JSON body read the way a
/// program reading it sees its values (escapes such as `\n` undone).
pub fn json_leaves(text: &str) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = String::new();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        walk(&v, &mut out);
    }
    out
}
