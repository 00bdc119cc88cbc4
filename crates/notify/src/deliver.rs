//! One delivery: one notification to one hook, attempted until it succeeds, fails for good,
//! runs out of attempts, or the notifier stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::hook::Hook;
use crate::notification::DeliveryFailure;
use crate::notifier::OnFailure;
use crate::signature::signature;

const STOPPED: &str = "notifier stopped before delivery completed";

/// What every delivery shares.
pub(crate) struct Context {
    pub(crate) client: reqwest::Client,
    pub(crate) backoff: Backoff,
    /// Cancelled when the shutdown grace runs out.
    pub(crate) cancel: CancellationToken,
    pub(crate) on_failure: OnFailure,
}

pub(crate) struct Delivery {
    pub(crate) hook: Arc<Hook>,
    pub(crate) event: String,
    pub(crate) id: String,
    pub(crate) review_id: String,
    pub(crate) body: Vec<u8>,
}

impl Delivery {
    pub(crate) fn failure(&self, attempts: u32, error: String) -> DeliveryFailure {
        DeliveryFailure {
            url: self.hook.redacted.clone(),
            event: self.event.clone(),
            review_id: self.review_id.clone(),
            attempts,
            error,
        }
    }
}

/// The result of one attempt.
enum Outcome {
    Delivered,
    /// Worth another attempt; `retry_after` is the receiver's own request, if it made one.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Fatal(String),
}

/// Runs the delivery to its end and reports a failure through the callback.
pub(crate) async fn deliver(ctx: &Context, d: Delivery) {
    match attempts(ctx, &d).await {
        Ok(attempts) => tracing::debug!(
            url = %d.hook.redacted, event = %d.event, review_id = %d.review_id, attempts,
            "notification delivered"
        ),
        Err((attempts, error)) => report(ctx, d.failure(attempts, error)),
    }
}

pub(crate) fn report(ctx: &Context, failure: DeliveryFailure) {
    tracing::warn!(
        url = %failure.url, event = %failure.event, review_id = %failure.review_id,
        attempts = failure.attempts, error = %failure.error,
        "notification not delivered"
    );
    (ctx.on_failure)(failure);
}

async fn attempts(ctx: &Context, d: &Delivery) -> Result<u32, (u32, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // An attempt interrupted by the shutdown counts: the request may have reached the
        // receiver, which the auditor should know.
        let outcome = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Err((attempt, STOPPED.to_owned())),
            outcome = send(ctx, d) => outcome,
        };
        let (error, retry_after) = match outcome {
            Outcome::Delivered => return Ok(attempt),
            Outcome::Fatal(error) => return Err((attempt, error)),
            Outcome::Retry { error, retry_after } => (error, retry_after),
        };
        if attempt >= d.hook.max_attempts {
            return Err((attempt, error));
        }
        let wait = ctx.backoff.delay(attempt, retry_after);
        tracing::debug!(
            url = %d.hook.redacted, event = %d.event, attempt, %error, ?wait,
            "notification attempt failed; retrying"
        );
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Err((attempt, format!("{STOPPED}; last error: {error}"))),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn send(ctx: &Context, d: &Delivery) -> Outcome {
    // Fresh per attempt, so that a receiver enforcing a freshness window accepts a retry that
    // comes minutes after the first attempt.
    let timestamp = unix_now();
    let mut request = ctx
        .client
        .post(d.hook.url.clone())
        .timeout(d.hook.timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("X-Portcullis-Event", &d.event)
        .header("X-Portcullis-Delivery", &d.id)
        .header("X-Portcullis-Timestamp", timestamp.to_string());
    if let Some(secret) = &d.hook.secret {
        let sig = signature(secret.expose_secret().as_bytes(), timestamp, &d.body);
        request = request.header("X-Portcullis-Signature", sig);
    }
    match request.body(d.body.clone()).send().await {
        Ok(response) => classify(response.status(), response.headers()),
        // An event or id that is not a valid header value will not become one on retry.
        Err(e) if e.is_builder() => Outcome::Fatal(describe(e, d.hook.timeout)),
        Err(e) => Outcome::Retry {
            error: describe(e, d.hook.timeout),
            retry_after: None,
        },
    }
}

fn classify(status: StatusCode, headers: &HeaderMap) -> Outcome {
    if status.is_success() {
        return Outcome::Delivered;
    }
    let error = format!("HTTP {status}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Outcome::Retry {
            error,
            retry_after: retry_after(headers),
        };
    }
    if status.is_redirection() {
        return Outcome::Fatal(format!("{error} (redirects are not followed)"));
    }
    Outcome::Fatal(error)
}

/// `Retry-After` in delay-seconds. The HTTP-date form is rare from webhook receivers and would
/// trust their clock; it falls back to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The error and its causes, without the URL: reqwest puts the full URL (credentials and
/// query included) into its messages, and a failure is written to the audit log.
fn describe(err: reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {timeout:?}");
    }
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn check(status: u16, retry_after_header: Option<&str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after_header {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        match classify(StatusCode::from_u16(status).unwrap(), &headers) {
            Outcome::Delivered => "delivered".into(),
            Outcome::Retry { retry_after, .. } => format!("retry {retry_after:?}"),
            Outcome::Fatal(e) => format!("fatal {e}"),
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(check(200, None), "delivered");
        assert_eq!(check(204, None), "delivered");
        assert_eq!(check(500, None), "retry None");
        assert_eq!(check(503, Some("7")), "retry Some(7s)");
        assert_eq!(check(429, Some(" 2 ")), "retry Some(2s)");
        assert_eq!(
            check(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            "retry None"
        );
        assert_eq!(check(400, None), "fatal HTTP 400 Bad Request");
        assert_eq!(check(404, Some("1")), "fatal HTTP 404 Not Found");
        assert_eq!(
            check(302, None),
            "fatal HTTP 302 Found (redirects are not followed)"
        );
    }
}
