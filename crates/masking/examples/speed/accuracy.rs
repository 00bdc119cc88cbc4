//! Scores findings against the corpus labels: per entity precision, recall and exact-span
//! rate, hard negatives hit, and the individual problems for someone fixing the engine.
//!
//! A finding is a true positive when it overlaps a label of the same entity; a label is
//! recalled when a finding of its entity overlaps it, and exact when one has its very range.

use std::collections::BTreeMap;
use std::ops::Range;

use portcullis_masking::{Entity, Finding, Masker};

use crate::corpus::{self, Corpus, Label};

#[derive(Clone, Copy, Default)]
pub struct Tally {
    pub labels: usize,
    pub findings: usize,
    /// Findings overlapping a label of their entity.
    pub true_findings: usize,
    /// Labels overlapped by a finding of their entity.
    pub recalled: usize,
    pub exact: usize,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.labels += other.labels;
        self.findings += other.findings;
        self.true_findings += other.true_findings;
        self.recalled += other.recalled;
        self.exact += other.exact;
    }
}

/// One thing the engine got wrong, with what overlapped it.
pub enum Problem {
    Miss {
        label: Label,
        found: Option<Finding>,
    },
    FalsePositive {
        finding: Finding,
        over: Option<String>,
    },
    Span {
        label: Label,
        found: Finding,
    },
    Negative {
        kind: &'static str,
        range: Range<usize>,
        found: Finding,
    },
}

#[derive(Default)]
pub struct Score {
    pub by_entity: BTreeMap<Entity, Tally>,
    /// Per hard-negative kind: how many, how many a finding overlapped.
    pub negatives: BTreeMap<&'static str, (usize, usize)>,
    pub problems: Vec<Problem>,
}

/// The items of a sorted, non-overlapping list that overlap `r`.
fn overlapping<'a, T>(
    items: &'a [T],
    range: impl Fn(&T) -> &Range<usize>,
    r: &Range<usize>,
) -> impl Iterator<Item = &'a T> {
    let from = items.partition_point(|x| range(x).end <= r.start);
    items[from..]
        .iter()
        .take_while(move |x| range(x).start < r.end)
}

fn label_range(l: &Label) -> &Range<usize> {
    &l.range
}

fn finding_range(f: &Finding) -> &Range<usize> {
    &f.range
}

fn negative_range<'a>(n: &'a (&'static str, Range<usize>)) -> &'a Range<usize> {
    &n.1
}

/// Scores `findings` against the labels and negatives of `corpus` (its text is not read).
pub fn score(corpus: &Corpus, findings: &[Finding]) -> Score {
    let mut s = Score::default();
    for label in &corpus.labels {
        let t = s.by_entity.entry(label.entity).or_default();
        t.labels += 1;
        let same: Vec<&Finding> = overlapping(findings, finding_range, &label.range)
            .filter(|f| f.entity == label.entity)
            .collect();
        if same.is_empty() {
            let found = overlapping(findings, finding_range, &label.range)
                .next()
                .cloned();
            s.problems.push(Problem::Miss {
                label: label.clone(),
                found,
            });
            continue;
        }
        t.recalled += 1;
        if same.iter().any(|f| f.range == label.range) {
            t.exact += 1;
        } else {
            s.problems.push(Problem::Span {
                label: label.clone(),
                found: same[0].clone(),
            });
        }
    }
    for f in findings {
        let t = s.by_entity.entry(f.entity).or_default();
        t.findings += 1;
        let labels: Vec<&Label> = overlapping(&corpus.labels, label_range, &f.range).collect();
        if labels.iter().any(|l| l.entity == f.entity) {
            t.true_findings += 1;
            continue;
        }
        let over = labels.first().map(|l| l.entity.to_string()).or_else(|| {
            overlapping(&corpus.negatives, negative_range, &f.range)
                .next()
                .map(|n| format!("hard negative {}", n.0))
        });
        s.problems.push(Problem::FalsePositive {
            finding: f.clone(),
            over,
        });
    }
    for (kind, range) in &corpus.negatives {
        let hit = overlapping(findings, finding_range, range).next();
        let entry = s.negatives.entry(kind).or_default();
        entry.0 += 1;
        if let Some(found) = hit {
            entry.1 += 1;
            s.problems.push(Problem::Negative {
                kind,
                range: range.clone(),
                found: found.clone(),
            });
        }
    }
    s
}

/// The corpus as `size`-byte chunks masked independently: the labels and negatives (in a
/// corpus without text) and the findings, leaving out the labels and negatives no chunked
/// masker could get right and the findings overlapping them; labels re-decided in each
/// chunk's context. Also returns how many labels and negatives were left out.
///
/// Left out are those a chunk boundary cuts, and those whose line starts in an earlier chunk:
/// the key that makes a value a secret (`DB_PASSWORD=`, `"ssn":`) is on the value's line.
pub fn chunked(masker: &Masker, corpus: &Corpus, size: usize) -> (Corpus, Vec<Finding>, usize) {
    let text = &corpus.text;
    let pieces = crate::chunks(text, size);
    let starts: Vec<usize> = pieces
        .iter()
        .scan(0, |at, p| {
            let start = *at;
            *at += p.len();
            Some(start)
        })
        .collect();
    let chunk_of = |at: usize| starts.partition_point(|&s| s <= at) - 1;
    let keeps_context = |r: &Range<usize>| {
        let line = text[..r.start].rfind('\n').map_or(0, |i| i + 1);
        chunk_of(line) == chunk_of(r.end.max(r.start + 1) - 1)
    };
    let mut cut: Vec<Range<usize>> = Vec::new();
    let mut labels: Vec<Vec<Label>> = vec![Vec::new(); pieces.len()];
    for l in &corpus.labels {
        if keeps_context(&l.range) {
            let start = starts[chunk_of(l.range.start)];
            labels[chunk_of(l.range.start)].push(Label {
                entity: l.entity,
                range: l.range.start - start..l.range.end - start,
            });
        } else {
            cut.push(l.range.clone());
        }
    }
    let mut kept = Corpus::default();
    for (kind, r) in &corpus.negatives {
        if keeps_context(r) {
            kept.negatives.push((kind, r.clone()));
        } else {
            cut.push(r.clone());
        }
    }
    let mut findings = Vec::new();
    for ((chunk, start), mut labels) in pieces.iter().zip(&starts).zip(labels) {
        corpus::relabel(chunk, &mut labels);
        kept.labels.extend(labels.into_iter().map(|l| Label {
            entity: l.entity,
            range: l.range.start + start..l.range.end + start,
        }));
        findings.extend(masker.find(chunk).into_iter().map(|f| Finding {
            entity: f.entity,
            range: f.range.start + start..f.range.end + start,
        }));
    }
    // Labels and negatives do not overlap each other, so the cut ranges sorted by start are
    // also sorted by end, as `overlapping` needs.
    cut.sort_by_key(|r| r.start);
    findings.retain(|f| overlapping(&cut, |r| r, &f.range).next().is_none());
    (kept, findings, cut.len())
}

fn percent(n: usize, of: usize) -> String {
    if of == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

/// Precision, recall and exact-span rate as three Markdown cells.
pub fn cells(t: &Tally) -> String {
    format!(
        "{} | {} | {}",
        percent(t.true_findings, t.findings),
        percent(t.recalled, t.labels),
        percent(t.exact, t.labels)
    )
}

/// The per-entity table for the whole text and the chunked text side by side.
pub fn print_table(whole: &Score, chunks: &Score, chunk_label: &str) {
    println!(
        "| entity | labels | findings | precision | recall | exact span | {chunk_label}: precision | recall | exact span |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut total = (Tally::default(), Tally::default());
    for entity in Entity::ALL {
        let (Some(w), c) = (whole.by_entity.get(&entity), chunks.by_entity.get(&entity)) else {
            continue;
        };
        let c = c.copied().unwrap_or_default();
        total.0.add(w);
        total.1.add(&c);
        println!(
            "| {entity} | {} | {} | {} | {} |",
            w.labels,
            w.findings,
            cells(w),
            cells(&c)
        );
    }
    println!(
        "| **all** | {} | {} | {} | {} |",
        total.0.labels,
        total.0.findings,
        cells(&total.0),
        cells(&total.1)
    );
}

pub fn print_negatives(whole: &Score, chunks: &Score, chunk_label: &str) {
    println!("| hard negative | count | hit, whole text | hit, {chunk_label} |");
    println!("|---|---|---|---|");
    for (kind, &(count, hits)) in &whole.negatives {
        let chunk_hits = chunks.negatives.get(kind).map_or(0, |c| c.1);
        println!("| {kind} | {count} | {hits} | {chunk_hits} |");
    }
}

/// `text[r]` with `radius` bytes of context either side, the value between « ».
pub fn show(text: &str, r: &Range<usize>, radius: usize) -> String {
    let mut from = r.start.saturating_sub(radius);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (r.end + radius).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let s = format!(
        "{}«{}»{}",
        &text[from..r.start],
        &text[r.clone()],
        &text[r.end..to]
    );
    format!("{s:?}")
}

/// Writes the first `per` problems of each class and entity (or negative kind) to stderr.
pub fn report_problems(text: &str, score: &Score, per: usize) {
    let mut groups: BTreeMap<(u8, String), Vec<String>> = BTreeMap::new();
    for p in &score.problems {
        let (key, line) = match p {
            Problem::Miss { label, found } => {
                let found = found.as_ref().map_or(String::new(), |f| {
                    format!("  [found as {} {}]", f.entity, show(text, &f.range, 0))
                });
                (
                    (0, label.entity.to_string()),
                    format!("{}{found}", show(text, &label.range, 40)),
                )
            }
            Problem::FalsePositive { finding, over } => {
                let over = over
                    .as_ref()
                    .map_or(String::new(), |o| format!("  [over {o}]"));
                (
                    (1, finding.entity.to_string()),
                    format!("{}{over}", show(text, &finding.range, 40)),
                )
            }
            Problem::Span { label, found } => (
                (2, label.entity.to_string()),
                format!(
                    "{}  [found {}]",
                    show(text, &label.range, 40),
                    show(text, &found.range, 0)
                ),
            ),
            Problem::Negative { kind, range, found } => (
                (3, (*kind).to_owned()),
                format!(
                    "{}  [found as {} {}]",
                    show(text, range, 40),
                    found.entity,
                    show(text, &found.range, 0)
                ),
            ),
        };
        groups.entry(key).or_default().push(line);
    }
    const CLASSES: [&str; 4] = ["MISS", "FALSE POSITIVE", "SPAN", "HARD NEGATIVE HIT"];
    for ((class, name), lines) in &groups {
        eprintln!(
            "{} {name}: {} (first {})",
            CLASSES[usize::from(*class)],
            lines.len(),
            per.min(lines.len())
        );
        for line in lines.iter().take(per) {
            eprintln!("    {line}");
        }
    }
}
