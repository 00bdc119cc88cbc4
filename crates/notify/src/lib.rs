//! Webhook notifications for just-in-time approvals (DESIGN.md §7).
//!
//! This crate owns delivery only: it turns a [`Notification`] into an HTTP `POST` to every
//! configured [`Webhook`] whose reviewer groups it concerns, signs it, and retries it. It knows
//! nothing about reviews beyond the JSON object it is handed, and nothing about configuration
//! files: the config crate translates its own types into [`Webhook`]s.
//!
//! # Never blocking the caller
//!
//! [`Notifier::notify`] only enqueues (`try_send` on a bounded queue). One background worker
//! takes notifications from the queue and spawns one task per matching hook, at most a fixed
//! number in flight, so a slow or dead receiver delays neither the session that asked for the
//! approval nor deliveries to the other hooks. A delivery that gives up (or a notification
//! dropped because the queue is full) is reported through the `on_failure` callback so that the
//! caller can audit it; notifications are never silently lost.
//!
//! # Wire format
//!
//! Every request is `POST` with `Content-Type: application/json` and these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Portcullis-Event` | the event, e.g. `review.requested` |
//! | `X-Portcullis-Delivery` | the notification id (a UUID, the same on every retry: de-duplicate on it) |
//! | `X-Portcullis-Timestamp` | Unix seconds when this attempt was sent |
//! | `X-Portcullis-Signature` | `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, only when the hook has a secret |
//!
//! The body is the [`Notification`] as JSON ([`Format::Generic`]) or a Slack incoming-webhook
//! message ([`Format::Slack`], see <https://api.slack.com/messaging/webhooks> and
//! <https://api.slack.com/reference/block-kit/blocks>).
//!
//! # Verifying a delivery (receivers)
//!
//! 1. Read the raw request body as bytes, before any JSON parsing (re-serializing changes it).
//! 2. Read `X-Portcullis-Timestamp` and reject the request if it is more than a few minutes
//!    away from your clock: this bounds replays of a captured request.
//! 3. Compute `HMAC-SHA256(secret, timestamp + "." + body)`, hex-encode it in lower case, prefix
//!    `sha256=`, and compare it with `X-Portcullis-Signature` in constant time. In Rust,
//!    [`verify`] does step 3 for you; [`signature`] returns the expected header value.
//! 4. Drop requests whose `X-Portcullis-Delivery` you have already processed: a delivery whose
//!    response was lost is sent again with the same id.
//!
//! With OpenSSL, the expected signature is
//! `printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`.
//!
//! # Retries
//!
//! Connection errors, timeouts, `429` and `5xx` are retried with exponential backoff and jitter
//! ([`Backoff`]); `Retry-After` (in seconds) is honoured up to the backoff cap. Other statuses
//! (`3xx` included: redirects are not followed, so that a hook cannot bounce a signed payload
//! to another host) fail at once.

mod backoff;
mod deliver;
mod error;
mod hook;
mod notification;
mod notifier;
mod payload;
mod signature;

pub use backoff::Backoff;
pub use error::NotifyError;
pub use hook::{DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, Format, Webhook};
pub use notification::{DeliveryFailure, Notification, events};
pub use notifier::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_QUEUE_CAPACITY, Notifier, OnFailure, Options};
pub use signature::{signature, verify};
