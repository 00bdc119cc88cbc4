//! Classification with shared caches, so a repeated statement costs a hash lookup instead of
//! a parse (DESIGN.md §5): one keyed by SQL text, and one keyed by shape (the text's tokens
//! without the literals' values) for the statements whose classification reads no literal,
//! so that `WHERE id = 1` and `WHERE id = 2` share an entry (issue [11]; see
//! `portcullis_sql::Shape`). Settings, transaction modes and every statement whose rules read
//! a value are only ever answered from the entry of their own text.

use std::sync::Arc;

use portcullis_sql::{Classification, Options, Shape, Statement};
use serde_json::Value;

/// Texts longer than this are classified every time rather than kept: they are rarely
/// repeated and would crowd out the statements that are.
const MAX_CACHED_TEXT: usize = 64 * 1024;

/// A classification with the policy facts of each statement, computed once.
#[derive(Debug)]
pub(crate) struct Classified {
    pub(crate) classification: Classification,
    /// One entry per statement: each statement is decided with its own facts.
    pub(crate) facts: Vec<Value>,
}

impl Classified {
    fn new(classification: Classification) -> Self {
        let facts = (0..classification.statements.len().max(1))
            .map(|i| classification.statement_facts(i))
            .collect();
        Self {
            classification,
            facts,
        }
    }

    /// The command's text as the client sent it (its statements joined), which a review is
    /// bound to.
    pub(crate) fn text(&self) -> String {
        self.joined(false)
    }

    /// The statements joined, as sent (`normalized = false`) or literal-free.
    pub(crate) fn joined(&self, normalized: bool) -> String {
        let texts: Vec<&str> = self
            .classification
            .statements
            .iter()
            .map(|s| {
                if normalized {
                    s.normalized.as_str()
                } else {
                    s.text.as_str()
                }
            })
            .collect();
        texts.join("; ")
    }

    /// The classified statement of `shape` in `sql`, from `self`, the classification of
    /// another statement of that shape that reads no literal.
    fn instantiate(&self, shape: &Shape, sql: &str) -> Self {
        Self {
            classification: shape.instantiate(&self.classification, sql),
            facts: self.facts.clone(),
        }
    }

    /// One statement of a larger input, e.g. a `PREPARE` kept under its name.
    pub(crate) fn single(statement: Statement) -> Self {
        Self::new(Classification {
            parsed: true,
            statements: vec![statement],
            error: None,
        })
    }

    /// Something the gateway cannot resolve (an unknown prepared statement). It is one
    /// `sql.admin` statement with `parsed = false`, so it fails closed under the shipped
    /// policy just like input the grammar rejects.
    pub(crate) fn opaque(what: &str) -> Arc<Self> {
        let statement = Statement {
            action: portcullis_sql::ids::ADMIN,
            tables: Vec::new(),
            has_where: false,
            functions: Vec::new(),
            operators: Vec::new(),
            attribute_calls: Vec::new(),
            modifies_data: true,
            text: String::new(),
            normalized: format!("/* {what} */"),
            prepare_name: None,
            execute_name: None,
            deallocate_name: None,
            deallocate_all: false,
            // What it would run is unknown, a change of encoding included (like EXECUTE).
            client_encoding: Some(portcullis_sql::SettingChange::Unknown),
            conforming_strings_off: false,
            database_wide: false,
            cursor: None,
            counts_rows: false,
            transaction: None,
            lineage: portcullis_sql::LazyLineage::default(),
        };
        Arc::new(Self::new(Classification {
            parsed: false,
            statements: vec![statement],
            error: Some(what.to_owned()),
        }))
    }
}

/// The door's shared classification cache.
pub(crate) struct StatementCache {
    /// By text, and by shape key.
    cache: Option<(Cache, Cache)>,
    options: Options,
}

type Cache = quick_cache::sync::Cache<String, Arc<Classified>>;

impl StatementCache {
    pub(crate) fn new(capacity: usize, options: Options) -> Self {
        Self {
            cache: (capacity > 0).then(|| (Cache::new(capacity), Cache::new(capacity))),
            options,
        }
    }

    /// Classifies SQL text as the server will read it (decoded from the session's
    /// client_encoding by the caller).
    pub(crate) fn classify(&self, text: &str) -> Arc<Classified> {
        let Some((texts, shapes)) = self
            .cache
            .as_ref()
            .filter(|_| text.len() <= MAX_CACHED_TEXT)
        else {
            return Arc::new(Classified::new(portcullis_sql::classify(
                text,
                &self.options,
            )));
        };
        if let Some(hit) = texts.get(text) {
            return hit;
        }
        let shape = Shape::of(text);
        if let Some(shape) = &shape
            && let Some(template) = shapes.get(shape.key())
        {
            return Arc::new(template.instantiate(shape, text));
        }
        let (classification, shared) =
            portcullis_sql::classify_shaped(text, &self.options, shape.as_ref());
        let classified = Arc::new(Classified::new(classification));
        match shape.filter(|_| shared) {
            // Kept by shape only: its texts are mostly seen once (the literals differ).
            Some(shape) => shapes.insert(shape.key().to_owned(), classified.clone()),
            None => texts.insert(text.to_owned(), classified.clone()),
        }
        classified
    }
}
