//! The report as a format-neutral document: a summary and titled tables. The Markdown and
//! HTML renderers walk the same document, so both say the same thing; each escapes every
//! cell itself, so no cell can carry markup.

use super::{Report, ReviewDecision};
use crate::utc::Utc;

/// One table cell.
pub(super) enum Cell {
    Text(String),
    /// Command text: monospace in HTML.
    Code(String),
    Num(u64),
    Time(i64),
    /// A verdict shown as good (`true`) or bad.
    Status(bool, String),
}

impl Cell {
    fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    fn opt(s: Option<&str>) -> Self {
        Cell::Text(s.unwrap_or("—").to_owned())
    }

    /// The cell's plain text, before escaping.
    pub(super) fn plain(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Code(s) | Cell::Status(_, s) => s.clone(),
            Cell::Num(n) => n.to_string(),
            Cell::Time(ms) => Utc::from_ms(*ms).timestamp(),
        }
    }

    pub(super) fn numeric(&self) -> bool {
        matches!(self, Cell::Num(_))
    }
}

/// A titled table with an optional sentence before it.
pub(super) struct Section {
    pub title: &'static str,
    pub intro: Option<String>,
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// How a summary figure should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Plain,
    Good,
    /// Needs the reader's attention (a broken chain, unreadable records).
    Bad,
}

/// The summary's key figures: label, value, and how to read it.
pub(super) fn summary(r: &Report) -> Vec<(&'static str, String, Tone)> {
    let c = &r.commands;
    let ok = |good: bool| if good { Tone::Good } else { Tone::Bad };
    let plain = Tone::Plain;
    vec![
        (
            "Chain integrity",
            integrity(r),
            ok(r.chain_ok() && !r.verify.nodes.is_empty()),
        ),
        ("Checkpoints", r.checkpoints().to_string(), plain),
        (
            "Events",
            r.events.to_string(),
            if r.unreadable > 0 { Tone::Bad } else { plain },
        ),
        ("Identities", r.identities.len().to_string(), plain),
        ("Connections", r.connections.len().to_string(), plain),
        ("Commands allowed", c.allowed.to_string(), plain),
        ("Commands denied", c.denied.to_string(), plain),
        ("Commands held", c.held.to_string(), plain),
        ("Approved", c.approved.to_string(), plain),
        ("Executed", c.executed.to_string(), plain),
        ("Sessions", r.sessions.opened.to_string(), plain),
        ("Token rejections", total(&r.token_rejections), plain),
        ("Values masked", r.masked_total().to_string(), plain),
    ]
}

fn total(counts: &[super::Count]) -> String {
    counts.iter().map(|c| c.count).sum::<u64>().to_string()
}

/// `intact` or `BROKEN at <node> seq <n>`.
pub(super) fn integrity(r: &Report) -> String {
    if r.verify.nodes.is_empty() {
        return "no chain".to_owned();
    }
    let broken = r
        .verify
        .nodes
        .iter()
        .find_map(|n| n.first_break.as_ref().map(|b| (n, b)));
    match broken {
        Some((n, b)) => format!("BROKEN at {} seq {}", n.node, b.seq),
        None if r.verify.ok => "intact".to_owned(),
        None => "BROKEN".to_owned(),
    }
}

/// `2026-05-01 00:00:00 UTC to 2026-06-01 00:00:00 UTC`.
pub(super) fn period(r: &Report) -> String {
    format!(
        "{} to {} (end excluded)",
        Utc::from_ms(r.since_ms).datetime(),
        Utc::from_ms(r.until_ms).datetime()
    )
}

/// Every section, in order.
pub(super) fn sections(r: &Report) -> Vec<Section> {
    vec![
        commands(r),
        days(r),
        identities(r),
        connections(r),
        reviews(r),
        denials(r),
        masking(r),
        sessions(r),
        rejections(r),
        chain(r),
        kinds(r),
    ]
}

fn commands(r: &Report) -> Section {
    let c = &r.commands;
    let row = |what: &str, n: u64, meaning: &str| {
        vec![Cell::text(what), Cell::Num(n), Cell::text(meaning)]
    };
    Section {
        title: "Commands",
        intro: None,
        head: vec!["Outcome", "Count", "Meaning"],
        rows: vec![
            row("allowed", c.allowed, "the policy allowed the command"),
            row(
                "denied",
                c.denied,
                "the policy denied it; it never reached the target",
            ),
            row("held", c.held, "the policy required a human approval first"),
            row(
                "approved",
                c.approved,
                "reviews that received all the approvals they needed",
            ),
            row("rejected", c.rejected, "reviews a reviewer denied"),
            row("expired", c.expired, "reviews nobody decided in time"),
            row(
                "executed",
                c.executed,
                "approved commands that then ran (once each)",
            ),
            row(
                "connections allowed",
                c.connects_allowed,
                "sessions the policy let open",
            ),
            row(
                "connections denied",
                c.connects_denied,
                "sessions the policy refused",
            ),
            row(
                "unmasked sessions",
                c.unmask_allowed,
                "sessions allowed to see unmasked data",
            ),
        ],
    }
}

fn days(r: &Report) -> Section {
    Section {
        title: "Commands per day",
        intro: None,
        head: vec!["Day (UTC)", "Allowed", "Denied", "Held", "Total"],
        rows: r
            .days
            .iter()
            .map(|d| {
                vec![
                    Cell::text(d.date.clone()),
                    Cell::Num(d.allowed),
                    Cell::Num(d.denied),
                    Cell::Num(d.held),
                    Cell::Num(d.allowed + d.denied + d.held),
                ]
            })
            .collect(),
    }
}

fn identities(r: &Report) -> Section {
    Section {
        title: "Identities",
        intro: Some("Verified principals that acted in the period.".to_owned()),
        head: vec![
            "Subject",
            "Issuer",
            "Kind",
            "Client id",
            "First seen (UTC)",
            "Last seen (UTC)",
            "Commands",
            "Denied",
            "Held",
        ],
        rows: r
            .identities
            .iter()
            .map(|i| {
                vec![
                    Cell::text(i.subject.clone()),
                    Cell::text(i.issuer.clone()),
                    Cell::text(i.kind.clone()),
                    Cell::opt(i.client_id.as_deref()),
                    Cell::Time(i.first_seen_ms),
                    Cell::Time(i.last_seen_ms),
                    Cell::Num(i.commands),
                    Cell::Num(i.denied),
                    Cell::Num(i.held),
                ]
            })
            .collect(),
    }
}

fn connections(r: &Report) -> Section {
    Section {
        title: "Connections reached",
        intro: None,
        head: vec![
            "Connection",
            "Protocol",
            "First seen (UTC)",
            "Last seen (UTC)",
            "Identities",
            "Sessions",
            "Commands",
            "Denied",
            "Held",
        ],
        rows: r
            .connections
            .iter()
            .map(|c| {
                vec![
                    Cell::text(c.name.clone()),
                    Cell::opt(c.protocol.as_deref()),
                    Cell::Time(c.first_seen_ms),
                    Cell::Time(c.last_seen_ms),
                    Cell::Num(c.identities),
                    Cell::Num(c.sessions),
                    Cell::Num(c.commands),
                    Cell::Num(c.denied),
                    Cell::Num(c.held),
                ]
            })
            .collect(),
    }
}

fn verdict(d: &ReviewDecision) -> Cell {
    let text = match (
        d.verdict.as_str(),
        d.status.as_str(),
        d.approvals,
        d.approvals_needed,
    ) {
        ("approved", "pending", Some(have), Some(need)) => format!("approved ({have} of {need})"),
        (v, _, _, _) => v.to_owned(),
    };
    Cell::Status(d.verdict == "approved", text)
}

fn reviews(r: &Report) -> Section {
    Section {
        title: "Reviewer decisions",
        intro: Some("Who approved or denied which held command.".to_owned()),
        head: vec![
            "Time (UTC)",
            "Review",
            "Verdict",
            "Reviewer",
            "Requester",
            "Action",
            "Connection",
            "Command",
            "Comment",
        ],
        rows: r
            .reviews
            .iter()
            .map(|d| {
                vec![
                    Cell::Time(d.time_ms),
                    Cell::text(d.review_id.clone()),
                    verdict(d),
                    Cell::text(d.reviewer.clone()),
                    Cell::opt(d.requester.as_deref()),
                    Cell::text(d.action.clone()),
                    Cell::text(d.connection.clone()),
                    Cell::Code(d.command.clone()),
                    Cell::opt(d.comment.as_deref()),
                ]
            })
            .collect(),
    }
}

fn denials(r: &Report) -> Section {
    Section {
        title: "Denials by reason and policy",
        intro: Some(
            "Denied commands and connection attempts, once per determining policy.".to_owned(),
        ),
        head: vec!["Reason code", "Policy", "Denials"],
        rows: r
            .denials
            .iter()
            .map(|d| {
                vec![
                    Cell::text(d.reason_code.clone()),
                    Cell::text(d.policy.clone()),
                    Cell::Num(d.count),
                ]
            })
            .collect(),
    }
}

fn counts(
    title: &'static str,
    key: &'static str,
    what: &'static str,
    c: &[super::Count],
) -> Section {
    Section {
        title,
        intro: None,
        head: vec![key, what],
        rows: c
            .iter()
            .map(|c| vec![Cell::text(c.key.clone()), Cell::Num(c.count)])
            .collect(),
    }
}

fn masking(r: &Report) -> Section {
    Section {
        intro: Some(format!(
            "{} values masked in query results; the values themselves are never recorded.",
            r.masked_total()
        )),
        ..counts("Masking", "Entity type", "Values masked", &r.masked)
    }
}

fn sessions(r: &Report) -> Section {
    let s = &r.sessions;
    Section {
        intro: Some(format!(
            "{} opened, {} closed; {} statements ({} denied), {} rows; {} recorded.",
            s.opened, s.closed, s.statements, s.denied, s.rows, s.recorded
        )),
        ..counts("Sessions", "How they ended", "Sessions", &s.ended)
    }
}

fn rejections(r: &Report) -> Section {
    counts(
        "Token rejections",
        "Reason code",
        "Rejections",
        &r.token_rejections,
    )
}

fn chain(r: &Report) -> Section {
    let intro = format!(
        "{}. Verified over every node's whole chain, not only this period; {} checkpoints. \
         Events after a node's last checkpoint are chained but not yet signed.",
        if r.chain_ok() {
            "Every chain is intact"
        } else {
            "A chain is broken"
        },
        r.checkpoints()
    );
    Section {
        title: "Audit chain verification",
        intro: Some(intro),
        head: vec![
            "Node",
            "Events",
            "Last seq",
            "Checkpoints",
            "Signed through seq",
            "Result",
        ],
        rows: r
            .verify
            .nodes
            .iter()
            .map(|n| {
                let result = match &n.first_break {
                    None => Cell::Status(true, "intact".to_owned()),
                    Some(b) => {
                        Cell::Status(false, format!("broken at seq {}: {}", b.seq, b.problem))
                    }
                };
                vec![
                    Cell::text(n.node.clone()),
                    Cell::Num(n.events),
                    Cell::Num(u64::try_from(n.last_seq).unwrap_or(0)),
                    Cell::Num(n.checkpoints),
                    Cell::Num(u64::try_from(n.signed_seq).unwrap_or(0)),
                    result,
                ]
            })
            .collect(),
    }
}

fn kinds(r: &Report) -> Section {
    let mut s = counts("Events by kind", "Kind", "Events", &r.kinds);
    if r.unreadable > 0 {
        s.intro = Some(format!(
            "{} records could not be read (their stored body is not JSON); portcullis audit verify names them.",
            r.unreadable
        ));
    }
    s
}
