//! How long to wait between attempts.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter: before retry `n` (1-based) the nominal delay is
/// `base * 2^(n-1)`, capped at `cap`; the actual delay is drawn from its upper half so that
/// many deliveries failing together (a receiver restarting) do not retry in lockstep, while
/// none retries much sooner than planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before retry `retry` (1 = the second attempt). A receiver's `Retry-After` wins
    /// over the computed delay, but is still capped: a receiver must not be able to park a
    /// delivery (and a slot in flight) for hours.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.cap);
        }
        let nominal = self.nominal(retry);
        let half = nominal / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }

    fn nominal(&self, retry: u32) -> Duration {
        // 2^31 × anything overflows long before it matters; saturate, then cap.
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::default();
        for (retry, nominal) in [(1, 250), (2, 500), (3, 1000), (6, 8000), (7, 10_000)] {
            assert_eq!(b.nominal(retry), ms(nominal), "retry {retry}");
            let d = b.delay(retry, None);
            assert!(
                d >= ms(nominal / 2) && d <= ms(nominal),
                "retry {retry}: {d:?}"
            );
        }
        assert_eq!(b.nominal(40), ms(10_000));
        assert_eq!(b.nominal(u32::MAX), ms(10_000));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, Some(ms(3000))), ms(3000));
        assert_eq!(b.delay(1, Some(Duration::from_secs(3600))), ms(10_000));
        assert_eq!(b.delay(1, Some(Duration::ZERO)), Duration::ZERO);
    }
}
