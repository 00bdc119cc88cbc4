//! Numbers and durations that must lie in a range, checked while the file is parsed so that a
//! zero or an absurd value is refused with its file, line and column like a wrong type is
//! (`config check` and `serve` both report it). For `#[serde(deserialize_with = ...)]`:
//!
//! ```ignore
//! #[serde(deserialize_with = "bounded::count::<_, 1, 100_000>")]
//! pub max_sessions_per_principal: usize,
//! #[serde(deserialize_with = "bounded::duration::<_, 1, 3_600_000>")] // milliseconds
//! pub message_timeout: Duration,
//! ```

use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error};

/// A count in `MIN..=MAX`.
pub(crate) fn count<'de, D, const MIN: usize, const MAX: usize>(d: D) -> Result<usize, D::Error>
where
    D: Deserializer<'de>,
{
    let n = usize::deserialize(d)?;
    if (MIN..=MAX).contains(&n) {
        Ok(n)
    } else {
        Err(D::Error::custom(format!(
            "{n} is out of range: use {MIN} to {MAX}"
        )))
    }
}

/// A humantime duration (`"30s"`, `"10m"`) from `MIN_MS` to `MAX_MS` milliseconds.
pub(crate) fn duration<'de, D, const MIN_MS: u64, const MAX_MS: u64>(
    d: D,
) -> Result<Duration, D::Error>
where
    D: Deserializer<'de>,
{
    let v = humantime_serde::deserialize::<Duration, D>(d)?;
    let (min, max) = (Duration::from_millis(MIN_MS), Duration::from_millis(MAX_MS));
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        // The value as written is at the line and column the error points to; humantime
        // would respell it (90 days as "2months 29days 2h 52m 48s").
        Err(D::Error::custom(format!(
            "out of range: use {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )))
    }
}
