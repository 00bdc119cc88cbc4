//! The runtime masker: profiles compiled once, shared by every connection, asked per column
//! and per value.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::engine::{Engine, Finding, Scan};
use crate::plan::{self, ColumnPlan, Masked};
use crate::profile::{ColumnMatch, ColumnRule, ProfileSpec};
use crate::strategy::{Renderer, RunRenderer};
use crate::stream::{StreamMasker, Tables};
use crate::{Counts, Entity, Error, Strategy, array, glob, json};

/// Compiled masking profiles. Cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Masker {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    columns: Vec<ColumnRule>,
    strategies: [Strategy; Entity::COUNT],
    renderer: Renderer,
    /// The streaming masker's automata, built on first use (most maskers never stream);
    /// `None` if they failed to build, which makes every stream fail closed.
    stream: OnceLock<Option<Tables>>,
    /// Plans by column name and type: every result asks for its columns' plans, and the
    /// rules are globs tried one by one. Bounded (names are the client's to choose).
    plans: quick_cache::sync::Cache<(String, String), ColumnPlan>,
}

/// Most distinct (name, type) pairs a masker remembers plans for.
const PLANS: usize = 4096;

/// A borrowed `(name, type)` key: hashes as the owned tuple does.
#[derive(Hash)]
struct ColumnRef<'a>(&'a str, &'a str);

impl quick_cache::Equivalent<(String, String)> for ColumnRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("columns", &self.columns)
            .field("strategies", &self.strategies)
            .field("renderer", &self.renderer)
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// Compiles profiles into one masker. Several profiles combine: the union of their
    /// recognizers and of their column rules (in profile order, first match wins), and for
    /// each entity the strictest strategy among the profiles that concern it (that enable it,
    /// name it in a column rule or override it): Null > Redact > Hmac > Partial, and the
    /// partial keeping fewer characters. Entities no profile concerns are redacted.
    ///
    /// Fails if some entity ends up with [`Strategy::Hmac`] and `hmac_key` is missing or empty.
    pub fn new(profiles: &[&ProfileSpec], hmac_key: Option<&[u8]>) -> Result<Masker, Error> {
        let mut entities: Vec<Entity> = Vec::new();
        let mut columns: Vec<ColumnRule> = Vec::new();
        for profile in profiles {
            for &entity in &profile.entities {
                if !entities.contains(&entity) {
                    entities.push(entity);
                }
            }
            for rule in &profile.columns {
                if !columns.contains(rule) {
                    columns.push(rule.clone());
                }
            }
        }
        let strategies = Entity::ALL.map(|entity| {
            profiles
                .iter()
                .filter_map(|p| p.strategy_for(entity))
                .reduce(Strategy::strictest)
                .unwrap_or(Strategy::Redact)
        });
        let renderer = Renderer::new(hmac_key);
        let needs_key = Entity::ALL
            .into_iter()
            .find(|e| strategies[e.index()] == Strategy::Hmac);
        if let (Some(entity), false) = (needs_key, renderer.has_key()) {
            return Err(Error::HmacKeyMissing { entity });
        }
        let engine = Engine::new(&entities)?;
        let inner = Inner {
            engine,
            columns,
            strategies,
            renderer,
            stream: OnceLock::new(),
            plans: quick_cache::sync::Cache::new(PLANS),
        };
        Ok(Masker {
            inner: Arc::new(inner),
        })
    }

    /// The strategy applied to `entity`.
    pub fn strategy(&self, entity: Entity) -> Strategy {
        self.inner.strategies[entity.index()]
    }

    /// The plan that replaces every value of a column whole as `entity`.
    pub fn whole(&self, entity: Entity) -> ColumnPlan {
        ColumnPlan::Whole {
            entity,
            strategy: self.strategy(entity),
        }
    }

    /// The plan for a result column, from its name and its lower-case PostgreSQL type name
    /// (`text`, `jsonb`, `_text` or `text[]` for arrays; a schema prefix and a type modifier
    /// are ignored). Column rules first, then json/jsonb, then arrays, else [`ColumnPlan::Pass`].
    pub fn column(&self, name: &str, type_name: &str) -> ColumnPlan {
        if let Some(plan) = self.inner.plans.get(&ColumnRef(name, type_name)) {
            return plan;
        }
        let plan = plan::column_plan(&self.inner.columns, name, type_name, |e| self.strategy(e));
        self.inner
            .plans
            .insert((name.to_owned(), type_name.to_owned()), plan);
        plan
    }

    /// The entity and strategy of the first name rule matching a JSON object key.
    pub(crate) fn key_rule(&self, key: &str) -> Option<(Entity, Strategy)> {
        self.inner
            .columns
            .iter()
            .find_map(|rule| match &rule.matcher {
                ColumnMatch::Name(glob) if glob::matches(glob, key) => {
                    Some((rule.entity, self.strategy(rule.entity)))
                }
                _ => None,
            })
    }

    /// Every sensitive value in `text`, non-overlapping, in text order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.inner.engine.find(text)
    }

    /// The highest-priority entity in `text`, if any: lets a door replace a non-text value
    /// (an `int8` holding a card number) whole with something its type accepts.
    pub fn contains_sensitive(&self, text: &str) -> Option<Entity> {
        self.find(text)
            .into_iter()
            .map(|f| f.entity)
            .min_by_key(|e| e.rank())
    }

    /// Masks every sensitive value found in free text, in one pass. Borrowed when nothing was
    /// found. [`Strategy::Null`] behaves like [`Strategy::Redact`] here.
    pub fn mask_text<'a>(&self, text: &'a str, counts: &mut Counts) -> Cow<'a, str> {
        let findings = self.find(text);
        if findings.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.apply(text, &findings, counts))
    }

    /// A masker for text that arrives in chunks (terminal output, HTTP bodies, COPY data),
    /// with the same recognizers and strategies as [`Masker::mask_text`]; see
    /// [`StreamMasker`] for what it holds back and for how long.
    pub fn stream(&self) -> StreamMasker {
        StreamMasker::new(self.clone())
    }

    /// The streaming automata, built once per masker.
    pub(crate) fn stream_tables(&self) -> Option<&Tables> {
        self.inner
            .stream
            .get_or_init(|| Tables::new(self.inner.engine.recognizers()).ok())
            .as_ref()
    }

    /// See `Engine::scan`.
    pub(crate) fn scan(&self, text: &str, from: usize) -> Scan {
        self.inner.engine.scan(text, from)
    }

    /// Starts the replacement of a value that arrives in pieces, as `entity`.
    pub(crate) fn run_renderer(&self, entity: Entity, out: &mut String) -> RunRenderer {
        RunRenderer::begin(&self.inner.renderer, self.strategy(entity), entity, out)
    }

    /// Masks one column value according to its plan. `Pass`, `Json` and `Array` values are
    /// read as UTF-8 text (PostgreSQL text format); bytes that are not UTF-8 (binary format)
    /// come back unchanged, since decoding binary formats is the door's job. `Whole` values
    /// are replaced and counted once, or become [`Masked::Null`].
    pub fn mask_value<'a>(
        &self,
        plan: &ColumnPlan,
        value: &'a [u8],
        counts: &mut Counts,
    ) -> Masked<'a> {
        let Some(text) = (match plan {
            ColumnPlan::Whole { entity, strategy } => {
                return self.replace_whole(*entity, *strategy, value, counts);
            }
            _ => std::str::from_utf8(value).ok(),
        }) else {
            return Masked::Unchanged(value);
        };
        match plan {
            ColumnPlan::Json => self.mask_json(text, counts),
            ColumnPlan::Array => match array::rewrite(self, text) {
                Ok(rewritten) => self.take(text, rewritten, counts),
                Err(array::Invalid) => self.text_masked(text, counts),
            },
            _ => self.text_masked(text, counts),
        }
    }

    /// Replaces a whole value as `entity` with that entity's strategy (for doors that decided
    /// from [`Masker::find`] that a non-text value must go), counting one.
    pub fn mask_whole<'a>(
        &self,
        entity: Entity,
        value: &'a [u8],
        counts: &mut Counts,
    ) -> Masked<'a> {
        self.replace_whole(entity, self.strategy(entity), value, counts)
    }

    /// Masks inside a JSON document and keeps it valid JSON with its key order: members whose
    /// key matches a name rule are replaced whole (a string for string, number, boolean and
    /// container values, `null` under [`Strategy::Null`]; a null stays null), other strings
    /// and object keys are scanned as text, and numbers holding a sensitive value (a card
    /// number) become a string or `null`. Text that is not JSON is masked as text.
    pub fn mask_json<'a>(&self, json: &'a str, counts: &mut Counts) -> Masked<'a> {
        self.mask_json_document(json, counts)
            .unwrap_or_else(|| self.text_masked(json, counts))
    }

    /// [`Masker::mask_json`] for text that must be a JSON document: `None` when it is not
    /// (the document is read once, to validate and to mask).
    pub fn mask_json_document<'a>(&self, json: &'a str, counts: &mut Counts) -> Option<Masked<'a>> {
        let rewritten = json::rewrite(self, json).ok()?;
        Some(self.take(json, rewritten, counts))
    }

    fn take<'a>(
        &self,
        text: &'a str,
        rewritten: Option<(String, Counts)>,
        counts: &mut Counts,
    ) -> Masked<'a> {
        match rewritten {
            None => Masked::Unchanged(text.as_bytes()),
            Some((out, found)) => {
                counts.merge(&found);
                Masked::Replaced(out.into_bytes())
            }
        }
    }

    fn text_masked<'a>(&self, text: &'a str, counts: &mut Counts) -> Masked<'a> {
        match self.mask_text(text, counts) {
            Cow::Borrowed(_) => Masked::Unchanged(text.as_bytes()),
            Cow::Owned(out) => Masked::Replaced(out.into_bytes()),
        }
    }

    fn replace_whole<'a>(
        &self,
        entity: Entity,
        strategy: Strategy,
        value: &[u8],
        counts: &mut Counts,
    ) -> Masked<'a> {
        counts.add(entity, 1);
        if strategy == Strategy::Null {
            return Masked::Null;
        }
        let mut out = String::new();
        self.inner
            .renderer
            .render_bytes(strategy, entity, value, &mut out);
        Masked::Replaced(out.into_bytes())
    }

    /// `text` with `findings` (from [`Masker::find`] on that text) replaced, counted.
    pub(crate) fn apply(&self, text: &str, findings: &[Finding], counts: &mut Counts) -> String {
        let mut out = String::with_capacity(text.len() + 16 * findings.len());
        let mut copied = 0;
        for f in findings {
            out.push_str(&text[copied..f.range.start]);
            self.render(
                f.entity,
                self.strategy(f.entity),
                &text[f.range.clone()],
                &mut out,
            );
            counts.add(f.entity, 1);
            copied = f.range.end;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Appends the replacement of `value` as `entity` under `strategy`.
    pub(crate) fn render(&self, entity: Entity, strategy: Strategy, value: &str, out: &mut String) {
        self.inner.renderer.render(strategy, entity, value, out);
    }
}
