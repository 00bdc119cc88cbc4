//! Start-up errors. Delivery errors are not errors of the caller: they are reported as
//! [`DeliveryFailure`](crate::DeliveryFailure)s through the notifier's callback.

/// Why a [`Notifier`](crate::Notifier) could not start. Messages never contain a webhook's
/// secret, credentials in its URL, or its query string.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A webhook URL that cannot be used; `url` is redacted.
    #[error("webhook #{index} ({url}): invalid URL: {reason}")]
    InvalidUrl {
        /// Position of the hook in the list given to `start`.
        index: usize,
        url: String,
        reason: String,
    },
    /// A webhook setting outside its range (zero attempts, zero timeout).
    #[error("webhook #{index} ({url}): {reason}")]
    InvalidHook {
        index: usize,
        url: String,
        reason: &'static str,
    },
    /// A notifier option outside its range (zero queue capacity, zero deliveries in flight).
    #[error("invalid notifier option: {0}")]
    InvalidOption(&'static str),
    /// `start` was called outside a Tokio runtime, so the worker has nowhere to run.
    #[error("the notifier must be started inside a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built (TLS roots unavailable, for instance).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}
