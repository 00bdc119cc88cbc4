//! Data-driven recognizer tests over `tests/corpus.toml` (its header describes the format).
//! Every failing case is reported, not just the first.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

mod common;

use common::{Expected, unmark};
use portcullis_masking::{Counts, Entity, Masker, ProfileSpec};

/// Checks one case; `None` when it passes, else a description of the failure.
fn check(masker: &Masker, default: Option<Entity>, marked: &str, positive: bool) -> Option<String> {
    let (text, want) = match unmark(default, marked) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("bad case {marked:?}: {e}")),
    };
    if positive && want.is_empty() {
        return Some(format!("match case without markers: {marked:?}"));
    }
    let got: Expected = masker
        .find(&text)
        .into_iter()
        .map(|f| (f.entity, f.range))
        .collect();
    let show = |spans: &Expected| -> Vec<String> {
        spans
            .iter()
            .map(|(e, r)| format!("{e} {:?}", &text[r.clone()]))
            .collect()
    };
    if got != want {
        return Some(format!(
            "{text:?}\n    want {:?}\n    got  {:?}",
            show(&want),
            show(&got)
        ));
    }
    // Masking must remove every expected value from the text.
    let masked = masker.mask_text(&text, &mut Counts::default());
    let leaked: Vec<&str> = want
        .iter()
        .map(|(_, r)| &text[r.clone()])
        .filter(|v| masked.contains(v))
        .collect();
    (!leaked.is_empty())
        .then(|| format!("{text:?}: masked text {masked:?} still contains {leaked:?}"))
}

#[test]
fn corpus() {
    let corpus = common::load().expect("corpus.toml parses");
    let masker = Masker::new(&[&ProfileSpec::builtin_default()], None).expect("masker");
    let mut failures = Vec::new();
    for (name, section) in &corpus {
        let entity = name.parse::<Entity>().ok();
        if entity.is_none() && name != "MIXED" {
            failures.push(format!("unknown table [{name}]"));
        }
        if entity.is_some() && (section.matches.len() < 10 || section.miss.len() < 10) {
            failures.push(format!(
                "[{name}] needs at least 10 match and 10 miss cases"
            ));
        }
        let cases = section
            .matches
            .iter()
            .map(|c| (c, true))
            .chain(section.miss.iter().map(|c| (c, false)));
        for (case, positive) in cases {
            if let Some(failure) = check(&masker, entity, case, positive) {
                failures.push(format!(
                    "[{name}] {}: {failure}",
                    if positive { "match" } else { "miss" }
                ));
            }
        }
        eprintln!(
            "[{name}] {} match, {} miss",
            section.matches.len(),
            section.miss.len()
        );
    }
    let recognized = Entity::ALL.iter().filter(|e| **e != Entity::DateOfBirth);
    for entity in recognized {
        if !corpus.contains_key(entity.as_str()) {
            failures.push(format!("no corpus table for {entity}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
