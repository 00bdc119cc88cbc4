//! The report as GitHub-flavoured Markdown: the same summary and tables as the HTML page.

use std::fmt::Write as _;

use super::Report;
use super::doc::{self, Section, Tone};
use super::escape::md;
use crate::utc::Utc;

pub(super) fn render(r: &Report) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("# Audit evidence report\n\n");
    let _ = writeln!(
        out,
        "Portcullis access gateway. Period: {}. Generated {}.\n",
        md(&doc::period(r)),
        md(&Utc::from_ms(r.generated_ms).datetime())
    );
    out.push_str("## Summary\n\n| Figure | Value |\n|---|---:|\n");
    for (label, value, tone) in doc::summary(r) {
        let value = md(&value);
        if tone == Tone::Bad {
            let _ = writeln!(out, "| {} | **{value}** |", md(label));
        } else {
            let _ = writeln!(out, "| {} | {value} |", md(label));
        }
    }
    for s in doc::sections(r) {
        section(&mut out, &s);
    }
    out
}

fn section(out: &mut String, s: &Section) {
    let _ = write!(out, "\n## {}\n\n", md(s.title));
    if let Some(intro) = &s.intro {
        let _ = write!(out, "{}\n\n", md(intro));
    }
    if s.rows.is_empty() {
        out.push_str("None in this period.\n");
        return;
    }
    let head: Vec<String> = s.head.iter().map(|h| md(h)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let align: Vec<&str> = s
        .rows
        .first()
        .map(|row| {
            row.iter()
                .map(|c| if c.numeric() { "---:" } else { "---" })
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in &s.rows {
        let cells: Vec<String> = row.iter().map(|c| md(&c.plain())).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}
