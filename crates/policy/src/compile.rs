//! Turning policy files into validated policies: parse every file, name every policy, validate
//! the whole set against the shipped schema in strict mode, and read the annotations.
//!
//! Every problem is collected, not just the first, each with its file and, where Cedar or the
//! policy text tells, its line and column: `config check` shows them all in one run.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy::{
    Policy, PolicyId, PolicySet, Schema, ValidationMode, ValidationWarning, Validator,
};
use miette::Diagnostic;
use serde::Serialize;

use crate::meta::{self, PolicyMeta};

/// One policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The file's path, used in problems and in generated policy ids.
    pub name: String,
    pub text: String,
}

/// A mistake found while compiling policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file's name as given in [`PolicySource::name`].
    pub source: String,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A policy that passed every check, in source order.
pub(crate) struct Compiled {
    pub(crate) policy: Policy,
    pub(crate) meta: PolicyMeta,
}

/// A parsed policy, renamed to its final id, and where it came from.
struct Located {
    policy: Policy,
    source: usize,
    offset: Option<usize>,
}

pub(crate) fn compile(
    sources: &[PolicySource],
    schema: &Schema,
) -> Result<Vec<Compiled>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut located = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        parse_source(index, source, &mut located, &mut problems);
    }
    reject_duplicates(sources, &mut located, &mut problems);
    validate(sources, schema, &located, &mut problems);
    let mut compiled = Vec::with_capacity(located.len());
    for l in located {
        let id = l.policy.id().to_string();
        match meta::read(id, &l.policy) {
            Ok(meta) => compiled.push(Compiled {
                policy: l.policy,
                meta,
            }),
            Err(errors) => problems.extend(
                errors
                    .into_iter()
                    .map(|m| at(&sources[l.source], l.offset, m)),
            ),
        }
    }
    if problems.is_empty() {
        return Ok(compiled);
    }
    // Report in file order, then by position, whatever stage found the problem.
    let order: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    problems.sort_by_key(|p| (order.get(p.source.as_str()).copied(), p.line, p.column));
    Err(problems)
}

fn parse_source(
    index: usize,
    source: &PolicySource,
    out: &mut Vec<Located>,
    problems: &mut Vec<Problem>,
) {
    let set = match PolicySet::from_str(&source.text) {
        Ok(set) => set,
        Err(errors) => {
            problems.extend(errors.iter().map(|e| from_diagnostic(source, e, None)));
            return;
        }
    };
    // Cedar names the policies of a file policy0, policy1, ... in order, and keeps each one's
    // exact text, which is how we find where it starts.
    let mut cursor = 0;
    let mut find = |text: &str| {
        let offset = source.text.get(cursor..)?.find(text)? + cursor;
        cursor = offset + text.len();
        Some(offset)
    };
    for i in 0..set.num_of_policies() + set.num_of_templates() {
        let cedar_id = PolicyId::new(format!("policy{i}"));
        if let Some(template) = set.template(&cedar_id) {
            let offset = find(&template.to_cedar());
            problems.push(at(
                source,
                offset,
                "policy templates (?principal, ?resource) are not supported".to_owned(),
            ));
            continue;
        }
        let Some(policy) = set.policy(&cedar_id) else {
            continue;
        };
        let offset = policy.to_cedar().and_then(|t| find(&t));
        let id = match policy.annotation("id").map(str::trim) {
            Some("") => {
                problems.push(at(source, offset, "@id must not be empty".to_owned()));
                continue;
            }
            Some(id) => id.to_owned(),
            None => format!("{}:{i}", source.name),
        };
        out.push(Located {
            policy: policy.new_id(PolicyId::new(&id)),
            source: index,
            offset,
        });
    }
}

fn reject_duplicates(
    sources: &[PolicySource],
    located: &mut Vec<Located>,
    problems: &mut Vec<Problem>,
) {
    let mut first: HashMap<String, String> = HashMap::new();
    located.retain(|l| {
        let id = l.policy.id().to_string();
        let source = &sources[l.source];
        if let Some(prev) = first.get(&id) {
            let message = format!("duplicate policy id {id:?}; first defined at {prev}");
            problems.push(at(source, l.offset, message));
            return false;
        }
        let place = match l.offset.and_then(|o| line_column(&source.text, o)) {
            Some((line, _)) => format!("{}:{line}", source.name),
            None => source.name.clone(),
        };
        first.insert(id, place);
        true
    });
}

fn validate(
    sources: &[PolicySource],
    schema: &Schema,
    located: &[Located],
    problems: &mut Vec<Problem>,
) {
    let mut set = PolicySet::new();
    let mut origin: HashMap<PolicyId, &Located> = HashMap::new();
    for l in located {
        // Ids are unique by now, so adding cannot fail; a failure would only hide the policy
        // from validation, so report it rather than drop it silently.
        if let Err(e) = set.add(l.policy.clone()) {
            problems.push(at(&sources[l.source], l.offset, e.to_string()));
            continue;
        }
        origin.insert(l.policy.id().clone(), l);
    }
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let mut failed: HashSet<&PolicyId> = HashSet::new();
    let mut errors = Vec::new();
    for e in result.validation_errors() {
        if let Some(l) = origin.get(e.policy_id()) {
            failed.insert(e.policy_id());
            errors.push(from_diagnostic(&sources[l.source], e, l.offset));
        }
    }
    problems.extend(collapse_per_action(errors));
    // Cedar's warnings say a policy can never apply or hides look-alike characters: in an
    // access policy either is a mistake, so they block the load like errors do. A policy that
    // already has errors gets no warnings: they would only echo the error.
    let no_action =
        |w: &ValidationWarning| matches!(w, ValidationWarning::InvalidActionApplication(_));
    let unusable: HashSet<&PolicyId> = result
        .validation_warnings()
        .filter(|w| no_action(w))
        .map(ValidationWarning::policy_id)
        .collect();
    for w in result.validation_warnings() {
        let id = w.policy_id();
        // "can never apply" already says "is impossible".
        let echo = matches!(w, ValidationWarning::ImpossiblePolicy(_)) && unusable.contains(id);
        if let Some(l) = origin.get(id)
            && !failed.contains(id)
            && !echo
        {
            problems.push(from_diagnostic(&sources[l.source], w, l.offset));
        }
    }
}

/// Cedar reports a policy whose `action` is unconstrained once per action it applies to: one
/// typo becomes thirty lines. Problems at the same place whose messages differ only in the
/// action they name become one problem that lists the actions.
fn collapse_per_action(problems: Vec<Problem>) -> Vec<Problem> {
    let mut out: Vec<(Problem, String, Vec<String>)> = Vec::new();
    for p in problems {
        let (shape, action) = split_action(&p.message);
        let same = out.iter_mut().find(|(q, s, _)| {
            q.source == p.source && q.line == p.line && q.column == p.column && *s == shape
        });
        match (same, action) {
            (Some((_, _, actions)), Some(a)) => actions.push(a),
            _ => out.push((p, shape, Vec::new())),
        }
    }
    out.into_iter()
        .map(|(mut p, _, more)| {
            if !more.is_empty() {
                let shown: Vec<&str> = more.iter().take(5).map(String::as_str).collect();
                let rest = more.len() - shown.len();
                let tail = if rest > 0 { format!(" and {rest} more") } else { String::new() };
                let first = p.message.split(" (help: ").next().unwrap_or_default();
                p.message = format!(
                    "{first} (also for {}{tail}); constrain the action (e.g. `action in Action::\"sql.write\"`) or guard with `context has ...`",
                    shown.join(", ")
                );
            }
            p
        })
        .collect()
}

/// The message with its first `Action::"..."` blanked out, and that action.
fn split_action(message: &str) -> (String, Option<String>) {
    const MARK: &str = "Action::\"";
    let Some(start) = message.find(MARK) else {
        return (message.to_string(), None);
    };
    let rest = &message[start + MARK.len()..];
    let Some(end) = rest.find('"') else {
        return (message.to_string(), None);
    };
    let mut shape = format!("{}{MARK}{}", &message[..start], &rest[end..]);
    // Cedar's "did you mean" differs per action; it is not part of what went wrong.
    if let Some(help) = shape.find(" (help: ") {
        shape.truncate(help);
    }
    (shape, Some(rest[..end].to_string()))
}

/// A problem from a Cedar diagnostic, placed at its first label, else at `fallback`.
fn from_diagnostic(
    source: &PolicySource,
    diag: &dyn Diagnostic,
    fallback: Option<usize>,
) -> Problem {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
        .or(fallback);
    let mut message = diag.to_string();
    if let Some(help) = diag.help() {
        message = format!("{message} (help: {help})");
    }
    at(source, offset, message)
}

fn at(source: &PolicySource, offset: Option<usize>, message: String) -> Problem {
    let (line, column) = match offset.and_then(|o| line_column(&source.text, o)) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    Problem {
        source: source.name.clone(),
        line,
        column,
        message,
    }
}

/// 1-based line and column of a byte offset; `None` when the offset is outside the text.
fn line_column(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Some((line, before[line_start..].chars().count() + 1))
}
