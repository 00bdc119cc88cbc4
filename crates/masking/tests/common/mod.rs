//! The labelled corpus (`tests/corpus.toml`), shared by the tests that read it.

use std::collections::BTreeMap;
use std::ops::Range;

use portcullis_masking::Entity;

/// One table of the corpus: texts with marked values, and near-misses.
#[derive(serde::Deserialize)]
pub struct Section {
    #[serde(rename = "match", default)]
    pub matches: Vec<String>,
    #[serde(default)]
    pub miss: Vec<String>,
}

/// The marked values of a text: entity and byte range in the plain text.
pub type Expected = Vec<(Entity, Range<usize>)>;

/// The corpus, by table name (an entity label or `MIXED`).
pub fn load() -> Result<BTreeMap<String, Section>, toml::de::Error> {
    toml::from_str(include_str!("../corpus.toml"))
}

/// Removes the `‹›` splitters and the `«…»` / `«ENTITY|…»` markers; returns the plain text
/// and the marked spans (byte ranges in the plain text).
pub fn unmark(default: Option<Entity>, marked: &str) -> Result<(String, Expected), String> {
    let marked = marked.replace("‹›", "");
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut open: Option<(usize, Entity)> = None;
    let mut rest = marked.as_str();
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '«' => {
                let label = rest.split_once('|').filter(|(l, _)| !l.contains('»'));
                let entity = match label.and_then(|(l, _)| l.parse::<Entity>().ok()) {
                    Some(e) => {
                        rest = &rest[label.map_or(0, |(l, _)| l.len() + 1)..];
                        e
                    }
                    None => default.ok_or("a marker without entity in a table without one")?,
                };
                open = Some((text.len(), entity));
            }
            '»' => {
                let (start, entity) = open.take().ok_or("» without «")?;
                spans.push((entity, start..text.len()));
            }
            c => text.push(c),
        }
    }
    Ok((text, spans))
}
