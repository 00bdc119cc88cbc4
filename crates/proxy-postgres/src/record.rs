//! What the door writes into the session's recording (DESIGN.md §8): one `statement` entry
//! per statement decided, with its decision, and for those that ran their columns, the first
//! rows of the result exactly as the client received them (masked), the row count and the
//! error; `review` entries while a statement is held. Statement text is the same as in the
//! audit (literal-free unless configured otherwise), so a recording never holds a value the
//! client did not see masked. The session engine opens and finishes the recording and writes
//! the `review` entries of a hold.

use portcullis_pgwire::FieldDescription;
use portcullis_recording::SessionRecording;
use serde_json::{Map, Value, json};

use crate::cache::Classified;
use crate::enforce::Denial;
use crate::relay::state::Finished;

/// The longest text kept of one recorded value.
const MAX_CELL: usize = 256;

/// The session's recording, and how many rows of each result it keeps.
#[derive(Clone, Copy)]
pub(crate) struct Recorder<'a> {
    pub(crate) recording: Option<&'a SessionRecording>,
    pub(crate) rows: usize,
}

impl Recorder<'_> {
    pub(crate) fn keeps_rows(&self) -> usize {
        if self.recording.is_some() {
            self.rows
        } else {
            0
        }
    }

    pub(crate) fn active(&self) -> bool {
        self.recording.is_some()
    }

    async fn write(&self, kind: &str, data: Value) {
        if let (Some(r), Value::Object(map)) = (self.recording, data) {
            r.record(kind, map).await;
        }
    }

    /// A statement refused before it reached the server.
    pub(crate) async fn denied(&self, classified: &Classified, denial: &Denial, redact: bool) {
        if !self.active() {
            return;
        }
        let statement = classified.joined(redact);
        self.write(
            "statement",
            json!({
                "statement": statement,
                "action": classified.classification.statements.first().map(|s| s.action),
                "decision": "deny",
                "error": {
                    "sqlstate": crate::respond::sqlstate_of(denial.code),
                    "message": denial.message,
                    "hint": denial.hint,
                },
            }),
        )
        .await;
    }

    /// A statement that ran (or failed in the server).
    pub(crate) async fn ran(
        &self,
        done: &Finished,
        columns: Option<&[FieldDescription]>,
        rows: Vec<Value>,
    ) {
        if !self.active() {
            return;
        }
        let mut entry = Map::new();
        if let Some(a) = &done.admitted {
            entry.insert("statement".into(), a.command.clone().into());
            entry.insert("action".into(), a.action.into());
            entry.insert("decision_seq".into(), a.seq.into());
        }
        entry.insert("decision".into(), "allow".into());
        if let Some(cols) = columns {
            let names: Vec<Value> = cols.iter().map(|c| c.name.clone().into()).collect();
            entry.insert("columns".into(), names.into());
            entry.insert("rows".into(), rows.into());
        }
        entry.insert("row_count".into(), done.rows.into());
        entry.insert(
            "duration_us".into(),
            u64::try_from(done.duration.as_micros())
                .unwrap_or(u64::MAX)
                .into(),
        );
        if let Some(code) = &done.sqlstate {
            entry.insert("error".into(), json!({ "sqlstate": code }));
        }
        if !done.masked.is_empty() {
            let masked: Map<String, Value> = done
                .masked
                .iter()
                .map(|(e, n)| (e.as_str().to_owned(), n.into()))
                .collect();
            entry.insert("masked".into(), masked.into());
        }
        self.write("statement", Value::Object(entry)).await;
    }
}

/// One value of a DataRow as recorded: text when it reads as text, else `\x` and hex (binary
/// format), both cut at [`MAX_CELL`].
pub(crate) fn cell(value: Option<&[u8]>) -> Value {
    let Some(v) = value else { return Value::Null };
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            let cut: String = s.chars().take(MAX_CELL).collect();
            cut.into()
        }
        _ => {
            let hex = hex::encode(&v[..v.len().min(MAX_CELL / 2)]);
            format!("\\x{hex}").into()
        }
    }
}
