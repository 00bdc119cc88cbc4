//! The [`Notifier`]: a bounded queue in front of one worker that fans notifications out to
//! delivery tasks.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::deliver::{Context, Delivery, deliver, report};
use crate::error::NotifyError;
use crate::hook::{Format, Hook, Webhook};
use crate::notification::{DeliveryFailure, Notification};
use crate::payload;

/// Notifications waiting for the worker before `notify` starts dropping them.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Deliveries (notification × hook) in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// Called with every delivery that gave up or never started. It runs on the worker's or the
/// caller's task, so it should be quick (hand the failure to the audit log and return).
pub type OnFailure = Arc<dyn Fn(DeliveryFailure) + Send + Sync>;

/// Tuning; the defaults suit production, tests shorten the backoff.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub backoff: Backoff,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backoff: Backoff::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Delivers notifications to webhooks in the background. Cheap to clone; all clones share one
/// queue and worker. Dropping the last clone without [`shutdown`](Notifier::shutdown) lets the
/// worker finish what is queued in the background.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    hooks: Arc<[Arc<Hook>]>,
    /// `None` once shutdown has begun. A std mutex: it is held only for a `try_send`, never
    /// across an await.
    queue: Mutex<Option<mpsc::Sender<Notification>>>,
    ctx: Arc<Context>,
    /// A Tokio mutex so that a second `shutdown` waits for the first instead of returning early.
    worker: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<&str> = self
            .inner
            .hooks
            .iter()
            .map(|h| h.redacted.as_str())
            .collect();
        f.debug_struct("Notifier").field("hooks", &urls).finish()
    }
}

impl Notifier {
    /// Validates `hooks` and starts the worker with the default [`Options`]. Must be called
    /// inside a Tokio runtime.
    pub fn start(hooks: Vec<Webhook>, on_failure: OnFailure) -> Result<Notifier, NotifyError> {
        Self::start_with(hooks, on_failure, Options::default())
    }

    /// [`start`](Notifier::start) with explicit [`Options`].
    pub fn start_with(
        hooks: Vec<Webhook>,
        on_failure: OnFailure,
        options: Options,
    ) -> Result<Notifier, NotifyError> {
        if options.queue_capacity == 0 {
            return Err(NotifyError::InvalidOption(
                "queue_capacity must be at least 1",
            ));
        }
        if options.max_in_flight == 0 {
            return Err(NotifyError::InvalidOption(
                "max_in_flight must be at least 1",
            ));
        }
        let hooks: Arc<[Arc<Hook>]> = hooks
            .into_iter()
            .enumerate()
            .map(|(i, h)| Hook::compile(i, h).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let client = reqwest::Client::builder()
            // A redirect would carry the signed payload to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(NotifyError::HttpClient)?;
        let ctx = Arc::new(Context {
            client,
            backoff: options.backoff,
            cancel: CancellationToken::new(),
            on_failure,
        });
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let worker = Worker {
            hooks: hooks.clone(),
            ctx: ctx.clone(),
            permits: Arc::new(Semaphore::new(options.max_in_flight)),
            tasks: JoinSet::new(),
        };
        let handle = runtime.spawn(worker.run(rx));
        Ok(Notifier {
            inner: Arc::new(Inner {
                hooks,
                queue: Mutex::new(Some(tx)),
                ctx,
                worker: tokio::sync::Mutex::new(Some(handle)),
            }),
        })
    }

    /// Queues `n` for every hook that wants it. Never blocks and never fails: when the queue is
    /// full, or the notifier is shutting down, the notification is dropped and reported through
    /// `on_failure` (once per hook it was meant for, with zero attempts).
    pub fn notify(&self, n: Notification) {
        if !self.inner.hooks.iter().any(|h| h.wants(&n.groups)) {
            return;
        }
        let sent = match lock(&self.inner.queue).as_ref() {
            Some(tx) => tx.try_send(n),
            None => Err(mpsc::error::TrySendError::Closed(n)),
        };
        match sent {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(n)) => self.inner.drop_all(&n, "queue full"),
            Err(mpsc::error::TrySendError::Closed(n)) => {
                self.inner.drop_all(&n, "notifier stopped")
            }
        }
    }

    /// Stops taking notifications, then waits up to `grace` for the queued and in-flight
    /// deliveries. When the grace runs out, deliveries still pending are abandoned and each is
    /// reported through `on_failure`. Later calls return at once.
    pub async fn shutdown(&self, grace: Duration) {
        let mut worker = self.inner.worker.lock().await;
        // Dropping the only sender closes the queue: the worker drains it, then exits.
        lock(&self.inner.queue).take();
        let Some(mut handle) = worker.take() else {
            return;
        };
        if tokio::time::timeout(grace, &mut handle).await.is_err() {
            tracing::warn!(
                ?grace,
                "notification shutdown grace elapsed; abandoning deliveries"
            );
            self.inner.ctx.cancel.cancel();
            // Every await in the worker and its deliveries also waits on the cancellation, so
            // this returns promptly (after the failures are reported).
            let _ = handle.await;
        }
    }
}

impl Inner {
    fn drop_all(&self, n: &Notification, reason: &str) {
        for hook in self.hooks.iter().filter(|h| h.wants(&n.groups)) {
            report(&self.ctx, dropped(hook, n, reason));
        }
    }
}

/// The single consumer of the queue.
struct Worker {
    hooks: Arc<[Arc<Hook>]>,
    ctx: Arc<Context>,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Notification>) {
        loop {
            let next = tokio::select! {
                biased;
                () = self.ctx.cancel.cancelled() => None,
                next = rx.recv() => next,
            };
            let Some(n) = next else { break };
            self.dispatch(&n).await;
            // Reap finished deliveries so that the set does not grow with every notification.
            while self.tasks.try_join_next().is_some() {}
        }
        // Only a cancelled shutdown leaves anything queued; report it rather than lose it.
        rx.close();
        while let Ok(n) = rx.try_recv() {
            for hook in self.hooks.iter().filter(|h| h.wants(&n.groups)) {
                report(
                    &self.ctx,
                    dropped(hook, &n, "notifier stopped before delivery"),
                );
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }

    /// Starts one delivery per matching hook, each once a slot in flight is free. Waiting here
    /// (rather than in the spawned task) keeps the queue the only buffer, so that its bound
    /// holds and `notify` reports overload instead of tasks piling up.
    async fn dispatch(&mut self, n: &Notification) {
        let mut bodies = Bodies::default();
        for hook in self.hooks.iter().filter(|h| h.wants(&n.groups)) {
            let permit = tokio::select! {
                biased;
                () = self.ctx.cancel.cancelled() => None,
                permit = self.permits.clone().acquire_owned() => permit.ok(),
            };
            let Some(permit) = permit else {
                report(
                    &self.ctx,
                    dropped(hook, n, "notifier stopped before delivery"),
                );
                continue;
            };
            let body = match bodies.get(hook.format, n) {
                Ok(body) => body,
                Err(e) => {
                    report(
                        &self.ctx,
                        dropped(hook, n, &format!("cannot encode body: {e}")),
                    );
                    continue;
                }
            };
            let delivery = Delivery {
                hook: hook.clone(),
                event: n.event.clone(),
                id: n.id.clone(),
                review_id: n.review_id.clone(),
                body,
            };
            let ctx = self.ctx.clone();
            self.tasks.spawn(async move {
                deliver(&ctx, delivery).await;
                drop(permit);
            });
        }
    }
}

/// Each body encoded at most once per notification, however many hooks share its format.
#[derive(Default)]
struct Bodies {
    generic: Option<Vec<u8>>,
    slack: Option<Vec<u8>>,
}

impl Bodies {
    fn get(&mut self, format: Format, n: &Notification) -> Result<Vec<u8>, serde_json::Error> {
        let slot = match format {
            Format::Generic => &mut self.generic,
            Format::Slack => &mut self.slack,
        };
        if let Some(body) = slot {
            return Ok(body.clone());
        }
        let body = payload::body(format, n)?;
        *slot = Some(body.clone());
        Ok(body)
    }
}

fn dropped(hook: &Hook, n: &Notification, reason: &str) -> DeliveryFailure {
    DeliveryFailure {
        url: hook.redacted.clone(),
        event: n.event.clone(),
        review_id: n.review_id.clone(),
        attempts: 0,
        error: reason.to_owned(),
    }
}

/// The queue mutex guards only an `Option<Sender>`, which a panic cannot leave half-updated, so
/// a poisoned lock is still safe to use.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
