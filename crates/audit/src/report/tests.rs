use serde_json::json;

use super::tally::Tally;
use super::*;
use crate::testkit::{Env, decision, event, record, who};
use crate::{Event, verify};

/// A SQL comment that tries to break out of a table cell, run a script and load an image.
const INJECTION: &str = "SELECT 1 /* </td></tr></table><script>alert('x')</script><img src=http://evil.test/x.png> | ** */";

fn with_data(e: Event, data: serde_json::Value) -> Event {
    Event {
        data: Some(data),
        ..e
    }
}

fn result(subject: &str, masked: serde_json::Value) -> Event {
    Event {
        command: None,
        source_ip: None,
        data: Some(json!({ "decision_seq": 1, "rows": 3, "bytes": 10, "duration_us": 50, "sqlstate": null, "masked": masked })),
        ..decision(subject, "billing", "sql.select", "ok")
    }
    .kind_of("statement.result")
}

trait KindOf {
    fn kind_of(self, kind: &str) -> Self;
}

impl KindOf for Event {
    fn kind_of(self, kind: &str) -> Self {
        Event {
            kind: kind.into(),
            ..self
        }
    }
}

fn review(kind: &str, outcome: &str, by: Option<&str>, id: &str, data: serde_json::Value) -> Event {
    let who = match by {
        Some(reviewer) => who(reviewer, "reviewer"),
        None => who("alice", "requester"),
    };
    let mut d = json!({ "review_id": id, "reviewers": ["dba"], "approvals_needed": 2 });
    if let (Some(obj), Some(extra)) = (d.as_object_mut(), data.as_object()) {
        obj.extend(extra.clone());
    }
    Event {
        who: Some(who),
        connection: Some("billing".into()),
        action: Some("sql.update".into()),
        command: Some("UPDATE invoices SET paid = true".into()),
        data: Some(d),
        ..event(kind, outcome)
    }
}

/// The events of a small but complete day at the gateway.
fn scenario() -> Vec<Event> {
    let denied = |action: &str, reason: &str, policies: &[&str]| Event {
        reason_code: Some(reason.into()),
        policies: policies.iter().map(|p| (*p).to_owned()).collect(),
        ..decision("alice", "billing", action, "deny")
    };
    let rejected = |reason: &str, subject: Option<&str>| Event {
        reason_code: Some(reason.into()),
        protocol: Some("postgres".into()),
        data: subject.map(|s| json!({ "subject": s })),
        ..event("token.rejected", "deny")
    };
    let dave = Event {
        who: Some(who("dave", "human")),
        ..decision("dave", "orders", "sql.select", "allow")
    };
    vec![
        with_data(event("gateway.start", "ok"), json!({ "version": "0.1.0" })),
        Event {
            who: Some(who("alice", "machine")),
            connection: Some("billing".into()),
            protocol: Some("postgres".into()),
            ..event("session.open", "ok")
        },
        decision("alice", "billing", "connect", "allow"),
        decision("alice", "billing", "sql.select", "allow"),
        result("alice", json!({ "EMAIL": 3, "PHONE": 1 })),
        decision("alice", "billing", "sql.select", "allow"),
        result("alice", json!({ "EMAIL": 2 })),
        decision("alice", "billing", "sql.select", "allow"),
        result("alice", json!(null)),
        denied("sql.delete", "forbidden", &["no-deletes"]),
        denied("sql.delete", "forbidden", &["no-deletes"]),
        denied("sql.admin", "unparsed", &[]),
        decision("alice", "billing", "sql.update", "approval_required"),
        review(
            "review.requested",
            "pending",
            None,
            "rv_1",
            json!({ "approvals": 0 }),
        ),
        review(
            "review.approved",
            "pending",
            Some("bob"),
            "rv_1",
            json!({ "approvals": 1, "comment": "looks right" }),
        ),
        review(
            "review.approved",
            "approved",
            Some("carol"),
            "rv_1",
            json!({ "approvals": 2, "comment": "ok" }),
        ),
        review(
            "review.executed",
            "executed",
            None,
            "rv_1",
            json!({ "approvals": 2 }),
        ),
        decision("alice", "billing", "sql.update", "approval_required"),
        // A held command whose SQL comment tries to inject markup into the report.
        Event {
            command: Some(INJECTION.into()),
            ..review("review.requested", "pending", None, "rv_2", json!({}))
        },
        Event {
            command: Some(INJECTION.into()),
            ..review(
                "review.denied",
                "denied",
                Some("bob"),
                "rv_2",
                json!({ "comment": "<script>alert(1)</script> | no" }),
            )
        },
        review("review.expired", "expired", None, "rv_3", json!({})),
        // Decided in the period, requested before it: the requester comes from the store.
        review(
            "review.approved",
            "approved",
            Some("carol"),
            "rv_old",
            json!({ "approvals": 2 }),
        ),
        rejected("expired", None),
        rejected("expired", Some("mallory")),
        rejected("bad_signature", Some("mallory")),
        decision("alice", "billing", "data.unmask", "allow"),
        Event {
            command: Some(INJECTION.into()),
            ..decision("alice", "billing", "sql.select", "allow")
        },
        dave,
        Event {
            who: Some(who("alice", "machine")),
            connection: Some("billing".into()),
            data: Some(
                json!({ "ended": "client_terminate", "statements": 9, "denied": 3, "rows": 12, "recording": { "path": "r/1.jsonl", "sha256": "00" } }),
            ),
            ..event("session.close", "ok")
        },
        with_data(
            Event {
                who: Some(who("root", "human")),
                detail: Some("left the team".into()),
                ..event("revocation", "ok")
            },
            json!({ "kind": "subject", "value": "eve" }),
        ),
        event("gateway.stop", "ok"),
    ]
}

async fn scenario_report() -> (Report, Env) {
    let env = Env::sqlite().await;
    let old = portcullis_store::ReviewRow {
        id: "rv_old".into(),
        binding: "b".into(),
        status: "approved".into(),
        created_ms: 1,
        expires_ms: 2,
        updated_ms: 2,
        body: json!({ "requester": { "subject": "zed", "issuer": "i" } }).to_string(),
    };
    env.store.review_insert(&old).await.unwrap();
    env.record_all(scenario()).await;
    let checked = verify(&*env.store, Some(&env.key().public_key()))
        .await
        .unwrap();
    let report = build_report(&*env.store, 0, i64::MAX, checked)
        .await
        .unwrap();
    (report, env)
}

#[tokio::test]
async fn the_numbers_add_up() {
    let (r, _env) = scenario_report().await;
    assert_eq!(r.events, 31);
    assert_eq!(r.unreadable, 0);
    assert_eq!(
        r.commands,
        Commands {
            allowed: 5,
            denied: 3,
            held: 2,
            approved: 2,
            rejected: 1,
            expired: 1,
            executed: 1,
            connects_allowed: 1,
            connects_denied: 0,
            unmask_allowed: 1,
        }
    );
    let subjects: Vec<(&str, &str)> = r
        .identities
        .iter()
        .map(|i| (i.subject.as_str(), i.kind.as_str()))
        .collect();
    assert_eq!(
        subjects,
        [
            ("alice", "machine"),
            ("bob", "reviewer"),
            ("carol", "reviewer"),
            ("dave", "human"),
            ("root", "human")
        ],
        "mallory's token was rejected: an unverified subject is no identity"
    );
    let alice = &r.identities[0];
    assert_eq!((alice.commands, alice.denied, alice.held), (9, 3, 2));
    assert_eq!(alice.client_id.as_deref(), Some("alice-client"));
    assert!(alice.first_seen_ms <= alice.last_seen_ms);

    let conns: Vec<(&str, u64, u64, u64)> = r
        .connections
        .iter()
        .map(|c| (c.name.as_str(), c.identities, c.sessions, c.commands))
        .collect();
    assert_eq!(conns, [("billing", 1, 1, 9), ("orders", 1, 0, 1)]);

    let denials: Vec<(&str, &str, u64)> = r
        .denials
        .iter()
        .map(|d| (d.reason_code.as_str(), d.policy.as_str(), d.count))
        .collect();
    assert_eq!(
        denials,
        [("forbidden", "no-deletes", 2), ("unparsed", "(none)", 1)]
    );
    assert_eq!(r.masked, [count("EMAIL", 5), count("PHONE", 1)]);
    assert_eq!(r.masked_total(), 6);
    assert_eq!(
        (r.sessions.opened, r.sessions.closed, r.sessions.recorded),
        (1, 1, 1)
    );
    assert_eq!(r.sessions.ended, [count("client_terminate", 1)]);
    assert_eq!(
        (r.sessions.statements, r.sessions.denied, r.sessions.rows),
        (9, 3, 12)
    );
    assert_eq!(
        r.token_rejections,
        [count("expired", 2), count("bad_signature", 1)]
    );
    assert_eq!(r.days.len(), 1);
    let d = &r.days[0];
    assert_eq!((d.allowed, d.denied, d.held), (5, 3, 2));

    let reviews: Vec<(&str, &str, &str, Option<&str>)> = r
        .reviews
        .iter()
        .map(|v| {
            (
                v.review_id.as_str(),
                v.verdict.as_str(),
                v.reviewer.as_str(),
                v.requester.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        reviews,
        [
            ("rv_1", "approved", "bob", Some("alice")),
            ("rv_1", "approved", "carol", Some("alice")),
            ("rv_2", "denied", "bob", Some("alice")),
            ("rv_old", "approved", "carol", Some("zed")),
        ]
    );
    assert_eq!(r.reviews[0].comment.as_deref(), Some("looks right"));
    assert_eq!(
        (r.reviews[0].approvals, r.reviews[0].approvals_needed),
        (Some(1), Some(2))
    );

    assert!(r.chain_ok());
    assert!(
        r.checkpoints() >= 6,
        "one every 5 events and one at shutdown"
    );
    assert_eq!(r.verify.nodes[0].events, 31);
}

const ALLOWED_TAGS: &[&str] = &[
    "!doctype",
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "main",
    "h1",
    "h2",
    "p",
    "section",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "figure",
    "figcaption",
    "svg",
    "desc",
    "g",
    "rect",
    "line",
    "text",
    "footer",
];

/// The inside of every `<...>` of a page (event text is escaped, so every `<` opens a tag).
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or(rest))
        .collect()
}

fn count(key: &str, count: u64) -> Count {
    Count {
        key: key.into(),
        count,
    }
}

#[tokio::test]
async fn html_is_self_contained_and_escaped() {
    let (r, _env) = scenario_report().await;
    let html = r.to_html();
    if let Ok(path) = std::env::var("PORTCULLIS_REPORT_SAMPLE") {
        std::fs::write(&path, &html).unwrap();
        std::fs::write(format!("{path}.md"), r.to_markdown()).unwrap();
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert!(html.matches("<table>").count() >= 11);
    assert!(html.contains("<title>Portcullis audit evidence"));
    // No script, no external asset, whatever the events say: every tag is one the renderer
    // writes, and no tag carries a URL, a source or an event handler.
    for tag in tags(&html) {
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect::<String>()
            .to_lowercase();
        assert!(
            ALLOWED_TAGS.contains(&name.as_str()),
            "unexpected tag <{tag}>"
        );
        let lower = tag.to_lowercase();
        for bad in [
            "http:",
            "https:",
            "//",
            "src=",
            "href=",
            "url(",
            "javascript:",
        ] {
            assert!(!lower.contains(bad), "{bad} in <{tag}>");
        }
        for word in lower.split_whitespace().skip(1) {
            assert!(!word.starts_with("on"), "an event handler in <{tag}>");
        }
    }
    let style = html.split("<style>").nth(1).unwrap_or_default();
    assert!(!style.contains("url(") && !style.contains("@import"));
    assert!(html.contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(&#39;x&#39;)"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; | no"));
    assert!(html.contains("default-src 'none'"));
    // The summary says what an auditor looks for first.
    assert!(html.contains(">intact<"));
    assert!(html.contains("approved (1 of 2)"));
}

#[tokio::test]
async fn markdown_has_the_same_tables_escaped() {
    let (r, _env) = scenario_report().await;
    let md = r.to_markdown();
    assert!(md.starts_with("# Audit evidence report\n"));
    // Every `<` is escaped, so no renderer sees raw HTML.
    let bytes = md.as_bytes();
    for (i, _) in md.match_indices('<') {
        assert!(
            i > 0 && bytes[i - 1] == b'\\',
            "raw < at {i}: {}",
            &md[i.saturating_sub(40)..i]
        );
    }
    assert!(md.contains("\\<script\\>alert(1)\\</script\\> \\| no"));
    assert!(md.contains("| alice | https://idp.example.test | machine |"));
    assert!(
        md.contains("| forbidden | no\\-deletes | 2 |")
            || md.contains("| forbidden | no-deletes | 2 |")
    );
    for line in md.lines().filter(|l| l.starts_with('|')) {
        assert!(line.ends_with('|'), "a cell broke its row: {line}");
    }
    let tables = md.matches("\n|---").count();
    assert!(tables >= 10, "{tables} tables");
}

#[test]
fn html_without_urls_in_events_has_none_at_all() {
    let mut t = Tally::default();
    let mut e = decision("alice", "billing", "sql.select", "allow");
    if let Some(w) = e.who.as_mut() {
        w.issuer = "idp".into();
    }
    t.add(86_400_000, &record(1, 86_400_000, &e));
    let html = t.finish(0, 3 * 86_400_000, 0, empty_verify()).to_html();
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("<svg"));
}

fn empty_verify() -> crate::VerifyReport {
    crate::VerifyReport {
        ok: true,
        nodes: Vec::new(),
    }
}

#[test]
fn days_and_memory_stay_bounded() {
    let mut t = Tally::default();
    let day = 86_400_000;
    for i in 0..3000i64 {
        let outcome = ["allow", "deny", "approval_required"][(i % 3) as usize];
        let ts = (i % 3) * day + i;
        t.add(
            ts,
            &record(
                i + 1,
                ts,
                &decision("alice", "billing", "sql.select", outcome),
            ),
        );
    }
    let r = t.finish(0, 3 * day, 0, empty_verify());
    assert_eq!(r.identities.len(), 1);
    assert_eq!(r.connections.len(), 1);
    let days: Vec<(&str, u64, u64, u64)> = r
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.allowed, d.denied, d.held))
        .collect();
    assert_eq!(
        days,
        [
            ("1970-01-01", 1000, 0, 0),
            ("1970-01-02", 0, 1000, 0),
            ("1970-01-03", 0, 0, 1000)
        ]
    );
    assert!(
        r.to_html()
            .contains("<g><title>1970-01-02: 0 allowed, 1000 denied, 0 held</title>")
    );
}

#[test]
fn unreadable_and_odd_records_are_counted_not_fatal() {
    let mut t = Tally::default();
    t.unreadable();
    for odd in [
        json!(null),
        json!({ "event": 1 }),
        json!({ "event": { "kind": "decision", "who": { "subject": 7 } } }),
    ] {
        t.add(0, &odd);
    }
    let r = t.finish(0, 1, 0, empty_verify());
    assert_eq!((r.events, r.unreadable), (4, 1));
    assert!(r.to_html().contains("could not be read"));
    assert!(r.to_markdown().contains("no chain"));
}

/// Renders the scenario in Debian's Chromium through `tests/browser/screenshot.mjs` (set up
/// by `scripts/setup-test-deps.sh`): the page loads with no failed or external request and
/// shows its tables and chart. Skipped, saying so, where the browser is not installed.
#[tokio::test]
async fn html_renders_in_a_real_browser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/browser/screenshot.mjs");
    let ready = std::path::Path::new("/usr/bin/chromium").exists()
        && root
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !ready {
        eprintln!("skipped: run scripts/setup-test-deps.sh for Chromium and tests/browser");
        return;
    }
    let (r, env) = scenario_report().await;
    let page = env.dir.path().join("report.html");
    let png = env.dir.path().join("report.png");
    std::fs::write(&page, r.to_html()).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&page)
        .arg(&png)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["ok"], true);
    assert!(line["tables"].as_u64() >= Some(11), "{line}");
    assert_eq!(line["svg"], 1);
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
}
