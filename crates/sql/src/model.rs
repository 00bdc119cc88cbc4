//! The classifier's output: what each statement is, and the facts the policy sees.

use serde::Serialize;
use serde_json::{Value, json};

/// The classification of one SQL input (one simple-query message or one `Parse`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// False when PostgreSQL's grammar rejects the input; the one statement is then `sql.admin`.
    pub parsed: bool,
    /// One entry per statement, in input order. Empty for empty input or only comments.
    pub statements: Vec<Statement>,
    /// The parser's message when `parsed` is false (its own position info, nothing more).
    pub error: Option<String>,
}

/// One statement of the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// The Cedar action id (see [`crate::ids`]).
    pub action: &'static str,
    /// Tables read or written, schema-qualified when written so; CTE names excluded. Sorted.
    pub tables: Vec<String>,
    /// For UPDATE/DELETE (including data-modifying CTEs and upserts): every such write has a
    /// WHERE that refers to a column (`WHERE true` or `WHERE 1 = 1` bound nothing, so they do
    /// not count). For other statements: the top-level statement has a WHERE.
    pub has_where: bool,
    /// Every function called, lower-case, schema-qualified when written so. Sorted.
    pub functions: Vec<String>,
    /// Whether running the statement can change the database (see `Action::modifies_data`).
    pub modifies_data: bool,
    /// The statement's own text, without the leading comments and the separating `;`.
    pub text: String,
    /// The text with literals replaced by `$n`, for audit redaction and approval hashing.
    pub normalized: String,
    /// `PREPARE name AS ...`: the name. The action is the inner statement's.
    pub prepare_name: Option<String>,
    /// `EXECUTE name`: the name. The action is `sql.admin` until the door resolves it.
    pub execute_name: Option<String>,
    /// `DEALLOCATE name`: the name; `None` for `DEALLOCATE ALL`.
    pub deallocate_name: Option<String>,
}

impl Classification {
    /// The policy context for the whole input:
    /// `{"sql": {parsed, has_where, statement_count, tables, functions, modifies_data}}`.
    ///
    /// `has_where` is the AND over the statements that are UPDATE or DELETE; when there are
    /// none, the AND over the SELECTs; otherwise true. This way a bounded DELETE batched with
    /// an unfiltered SELECT is still seen as bounded, and a read-only batch still tells
    /// whether every read is filtered.
    pub fn facts(&self) -> Value {
        json!({
            "sql": {
                "parsed": self.parsed,
                "has_where": self.has_where(),
                "statement_count": self.statements.len(),
                "tables": union(self.statements.iter().map(|s| &s.tables)),
                "functions": union(self.statements.iter().map(|s| &s.functions)),
                "modifies_data": self.statements.iter().any(|s| s.modifies_data),
            }
        })
    }

    /// The policy facts of statement `i` alone (its own tables, functions and `has_where`),
    /// with `statement_count` and `parsed` of the whole input. Doors decide each statement
    /// with these, so a denial names the statement that caused it.
    pub fn statement_facts(&self, i: usize) -> Value {
        let Some(s) = self.statements.get(i) else {
            return self.facts();
        };
        json!({
            "sql": {
                "parsed": self.parsed,
                "has_where": s.has_where,
                "statement_count": self.statements.len(),
                "tables": s.tables,
                "functions": s.functions,
                "modifies_data": s.modifies_data,
            }
        })
    }

    fn has_where(&self) -> bool {
        let with_notion = |actions: &[&str]| {
            let mut matching = self
                .statements
                .iter()
                .filter(|s| actions.contains(&s.action));
            matching
                .clone()
                .next()
                .map(|_| matching.all(|s| s.has_where))
        };
        with_notion(&[crate::ids::UPDATE, crate::ids::DELETE])
            .or_else(|| with_notion(&[crate::ids::SELECT]))
            .unwrap_or(true)
    }
}

fn union<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.flatten().cloned().collect();
    all.sort_unstable();
    all.dedup();
    all
}
