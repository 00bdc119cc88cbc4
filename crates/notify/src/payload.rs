//! Request bodies: the generic JSON notification and the Slack incoming-webhook message.
//!
//! Slack: <https://api.slack.com/messaging/webhooks>, Block Kit section and context blocks
//! (<https://api.slack.com/reference/block-kit/blocks>), and mrkdwn escaping
//! (<https://api.slack.com/reference/surfaces/formatting#escaping>).

use serde_json::{Value, json};

use crate::hook::Format;
use crate::notification::Notification;

/// Slack rejects a section whose text exceeds 3000 characters (`invalid_blocks`), which would
/// turn a long SQL statement into a lost notification; keep well under it.
const SLACK_TEXT_MAX: usize = 2900;

/// The serialized body for `format`.
pub(crate) fn body(format: Format, n: &Notification) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        Format::Generic => serde_json::to_vec(n),
        Format::Slack => serde_json::to_vec(&slack(n)),
    }
}

fn slack(n: &Notification) -> Value {
    let summary = truncate(&escape(&n.summary), SLACK_TEXT_MAX);
    let context = format!("Review `{}` · {}", code(&n.review_id), escape(&n.event));
    let hint = format!("To approve: `{}`", code(&n.approve_hint));
    json!({
        // The top-level text is what Slack shows in notifications and to clients without
        // Block Kit; with blocks present it is the fallback.
        "text": summary,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&hint, SLACK_TEXT_MAX)}},
        ],
    })
}

/// Slack's three control characters. Without this, an agent-chosen summary (it contains the
/// agent's SQL) could write `<!channel>` to ping everyone or `<https://evil|Approve here>`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for inside a code span: escaped, and without backticks, which would end the span.
fn code(text: &str) -> String {
    escape(text).replace('`', "'")
}

/// Cuts escaped text to `max_chars`, never inside an entity such as `&amp;` (a broken entity
/// would show as raw text).
fn truncate(escaped: &str, max_chars: usize) -> String {
    let Some((cut, _)) = escaped.char_indices().nth(max_chars) else {
        return escaped.to_owned();
    };
    let mut head = &escaped[..cut];
    if let Some(amp) = head.rfind('&')
        && !head[amp..].contains(';')
    {
        head = &head[..amp];
    }
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(summary: &str) -> Notification {
        Notification::new(
            "review.requested",
            "rv_abc",
            vec!["dba".into()],
            summary,
            "portcullis reviews approve rv_abc --comment `ok`",
            json!({"id": "rv_abc"}),
        )
    }

    #[test]
    fn slack_shape() {
        let v = slack(&sample(
            "a wants to run sql.delete: DELETE FROM t WHERE a < 1",
        ));
        assert_eq!(
            v["text"],
            "a wants to run sql.delete: DELETE FROM t WHERE a &lt; 1"
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert_eq!(blocks[1]["type"], "context");
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "Review `rv_abc` · review.requested"
        );
        assert_eq!(
            blocks[2]["text"]["text"],
            "To approve: `portcullis reviews approve rv_abc --comment 'ok'`"
        );
    }

    #[test]
    fn slack_control_sequences_are_escaped() {
        let v = slack(&sample("<!channel> see <https://evil.example|here> & more"));
        let text = v["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&amp; more"));
    }

    #[test]
    fn long_summaries_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let v = slack(&sample(&long));
        let text = v["text"].as_str().unwrap();
        assert_eq!(text.chars().count(), SLACK_TEXT_MAX + 1);
        assert!(text.ends_with('…'));

        // 2899 characters, then an entity that the cut would split.
        let v = slack(&sample(&format!("{}&", "a".repeat(SLACK_TEXT_MAX - 1))));
        assert_eq!(v["text"], format!("{}…", "a".repeat(SLACK_TEXT_MAX - 1)));
    }

    #[test]
    fn generic_is_the_notification() {
        let n = sample("s");
        let v: Value = serde_json::from_slice(&body(Format::Generic, &n).unwrap()).unwrap();
        assert_eq!(v["id"], n.id.as_str());
        assert_eq!(v["review"]["id"], "rv_abc");
        assert_eq!(v["groups"], json!(["dba"]));
    }
}
