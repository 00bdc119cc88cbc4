//! Wiring of just-in-time approvals: the review service over the state store, with a sink
//! that audits every change and notifies reviewers by webhook (never blocking a hold).

use std::sync::Arc;

use anyhow::Context;
use portcullis_audit::{Event, Who};
use portcullis_config::Config;
use portcullis_notify::{DeliveryFailure, Format, Notification, Notifier, Webhook};
use portcullis_pipeline::Pipeline;
use portcullis_reviews::{Change, Review, ReviewSettings, ReviewSink, Reviews};
use portcullis_store::Store;

/// Builds the review service and its notifier from `[approvals]`.
pub fn start(
    cfg: &Config,
    store: Arc<dyn Store>,
    pipeline: Arc<Pipeline>,
) -> anyhow::Result<(Reviews, Notifier)> {
    let hooks = cfg
        .approvals
        .webhooks
        .iter()
        .map(|w| {
            Ok(Webhook {
                url: w.url.clone(),
                secret: w.secret.as_ref().map(|s| s.resolve()).transpose()?,
                format: if w.format == "slack" {
                    Format::Slack
                } else {
                    Format::Generic
                },
                groups: w.groups.clone(),
                ..Webhook::new(w.url.clone())
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("approvals.webhooks")?;
    let audit = pipeline.clone();
    let on_failure = Arc::new(move |f: DeliveryFailure| {
        let pipeline = audit.clone();
        tokio::spawn(async move {
            let event = Event {
                kind: "notify.failed".into(),
                outcome: Some("error".into()),
                detail: Some(f.error.clone()),
                // Only the origin: some receivers (Slack) keep their secret in the path.
                data: Some(serde_json::json!({
                    "url": origin_of(&f.url), "event": f.event, "review_id": f.review_id, "attempts": f.attempts,
                })),
                ..Event::default()
            };
            let _ = pipeline.record(event).await;
        });
    });
    let notifier = Notifier::start(hooks, on_failure).context("approvals.webhooks")?;
    let sink = Arc::new(Sink {
        pipeline,
        notifier: notifier.clone(),
    });
    let settings = ReviewSettings {
        ttl: cfg.approvals.ttl,
        ..ReviewSettings::default()
    };
    Ok((Reviews::new(store, settings, sink), notifier))
}

struct Sink {
    pipeline: Arc<Pipeline>,
    notifier: Notifier,
}

fn kind(change: &Change) -> &'static str {
    match change {
        Change::Requested => "review.requested",
        Change::Approved { .. } => "review.approved",
        Change::Denied { .. } => "review.denied",
        Change::Expired => "review.expired",
        Change::Executed => "review.executed",
    }
}

#[async_trait::async_trait]
impl ReviewSink for Sink {
    async fn changed(&self, review: &Review, change: &Change) {
        let (who, comment) = match change {
            Change::Approved { by, comment } | Change::Denied { by, comment } => (
                Who {
                    subject: by.subject.clone(),
                    issuer: by.issuer.clone(),
                    client_id: by.client_id.clone(),
                    groups: by.groups.clone(),
                    kind: "reviewer".into(),
                    ..Who::default()
                },
                Some(comment.clone()),
            ),
            _ => (
                Who {
                    subject: review.requester.subject.clone(),
                    issuer: review.requester.issuer.clone(),
                    client_id: review.requester.client_id.clone(),
                    kind: "requester".into(),
                    ..Who::default()
                },
                None,
            ),
        };
        let event = Event {
            kind: kind(change).into(),
            outcome: Some(review.status.as_str().into()),
            who: Some(who),
            connection: Some(review.connection.clone()),
            session_id: review.session_id.clone(),
            run_id: review.run_id.clone(),
            tool_call_id: review.tool_call_id.clone(),
            action: Some(review.action.clone()),
            command: Some(review.command.clone()),
            policies: review.policies.clone(),
            data: Some(serde_json::json!({
                "review_id": review.id,
                "reviewers": review.reviewers,
                "approvals": review.approvals.len(),
                "approvals_needed": review.approvals_needed,
                "comment": comment,
            })),
            ..Event::default()
        };
        if let Err(e) = self.pipeline.record(event).await {
            tracing::error!(review = %review.id, error = ?e, "auditing a review change failed");
        }
        let summary = format!(
            "{} wants to run {} on {}: {}",
            review.requester.subject, review.action, review.connection, review.command
        );
        self.notifier.notify(Notification {
            event: kind(change).into(),
            id: uuid::Uuid::new_v4().to_string(),
            review_id: review.id.clone(),
            groups: review.reviewers.clone(),
            summary,
            approve_hint: format!("portcullis reviews approve {} --comment \"...\"", review.id),
            review: serde_json::to_value(review).unwrap_or_default(),
        });
    }
}

/// `scheme://host[:port]` of a URL, without path, query or credentials.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}")
}
