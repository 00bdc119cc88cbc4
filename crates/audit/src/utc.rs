//! UTC calendar dates for Unix milliseconds, for the OCSF export and the evidence report.
//!
//! Written out (Howard Hinnant's `civil_from_days`) rather than taken from `humantime`, whose
//! formatter panics on times before 1970: a stored `ts_ms` is whatever the database holds,
//! and formatting it must never fail.

const MS_PER_DAY: i64 = 86_400_000;

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    /// Milliseconds since midnight.
    pub ms_of_day: i64,
}

impl Utc {
    pub(crate) fn from_ms(ms: i64) -> Self {
        let days = ms.div_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            ms_of_day: ms.rem_euclid(MS_PER_DAY),
        }
    }

    /// `2026-05-01`.
    pub(crate) fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `2026-05-01 13:04:05` (UTC, unlabelled: for columns whose heading says so).
    pub(crate) fn timestamp(&self) -> String {
        let s = self.ms_of_day / 1000;
        format!(
            "{} {:02}:{:02}:{:02}",
            self.date(),
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    /// `2026-05-01 13:04:05 UTC`.
    pub(crate) fn datetime(&self) -> String {
        format!("{} UTC", self.timestamp())
    }

    /// RFC 3339 with milliseconds: `2026-05-01T13:04:05.123Z`.
    pub(crate) fn rfc3339(&self) -> String {
        let s = self.ms_of_day / 1000;
        format!(
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.date(),
            s / 3600,
            s / 60 % 60,
            s % 60,
            self.ms_of_day % 1000
        )
    }
}

/// The day number (days since 1970-01-01) of `ms`.
pub(crate) fn day_number(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// The UTC midnight of day number `day`, in Unix milliseconds (saturating).
pub(crate) fn day_start_ms(day: i64) -> i64 {
    day.saturating_mul(MS_PER_DAY)
}

/// `(year, month, day)` of the proleptic Gregorian calendar for a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction; the fallbacks are unreachable.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let check = |ms: i64, want: &str| assert_eq!(Utc::from_ms(ms).rfc3339(), want, "{ms}");
        check(0, "1970-01-01T00:00:00.000Z");
        check(-1, "1969-12-31T23:59:59.999Z");
        check(951_782_400_000, "2000-02-29T00:00:00.000Z");
        check(1_795_900_882_437, "2026-11-28T21:21:22.437Z");
        check(4_107_542_399_999, "2100-02-28T23:59:59.999Z");
        assert_eq!(Utc::from_ms(1_795_900_882_437).date(), "2026-11-28");
        assert_eq!(
            Utc::from_ms(1_795_900_882_437).datetime(),
            "2026-11-28 21:21:22 UTC"
        );
    }

    #[test]
    fn extremes_do_not_panic() {
        for ms in [i64::MIN, i64::MIN + 1, i64::MAX, -86_400_000 * 800_000] {
            let u = Utc::from_ms(ms);
            assert!((1..=12).contains(&u.month) && (1..=31).contains(&u.day));
            let _ = u.rfc3339();
        }
        assert_eq!(
            day_start_ms(day_number(i64::MAX)),
            i64::MAX - i64::MAX % MS_PER_DAY
        );
    }
}
