//! Waiting for a decision, and the sweeper that expires what nobody decided.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::{Review, ReviewError, Reviews, Status};

/// A floor under the poll and sweep intervals, so a zero setting cannot spin on the store.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Stands in for "no deadline" when `Instant + timeout` would overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Reviews {
    /// Resolves when the review leaves Pending, or at `timeout` with its current state.
    ///
    /// Woken at once by approve, deny and expiry on this `Reviews`; the store is also
    /// re-read every `poll`, so a decision taken on another gateway node is seen too. It
    /// reads no clock of its own to expire the review: expiry comes from the sweeper or
    /// from the next approve, deny or request. Cancel-safe: it only reads.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Review, ReviewError> {
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start + FAR);
        let poll = self.inner.settings.poll.max(MIN_INTERVAL);
        let slot = self.inner.slots.get(id);
        loop {
            let notified = slot.changed.notified();
            tokio::pin!(notified);
            // Registered before the read, so a change stored between the read and the
            // sleep below still wakes this waiter.
            notified.as_mut().enable();
            let review = self.get(id).await?.ok_or(ReviewError::NotFound)?;
            if review.status != Status::Pending || Instant::now() >= deadline {
                return Ok(review);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(poll) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Spawns a task that calls [`Reviews::expire_due`] with the wall clock every `every`
    /// until `stop` is cancelled. Failures are logged and retried on the next tick.
    pub fn spawn_sweeper(&self, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(MIN_INTERVAL));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match this.expire_due(wall_clock_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "expired pending reviews"),
                    Err(e) => {
                        tracing::warn!(code = e.code(), error = %e, "review expiry sweep failed")
                    }
                }
            }
        })
    }
}

/// Unix milliseconds now.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
