//! The inline SVG bar chart: commands per UTC day, stacked by outcome (allowed at the bottom,
//! then denied, then held), with a legend, a y axis with gridlines and both axis titles.
//!
//! Days without commands are drawn as empty slots so the time axis is even. A period of
//! more than [`MAX_BARS`] days groups several days per bar (the x-axis title says how
//! many), so the chart stays readable and its size bounded whatever the period.

use std::fmt::Write as _;

use super::Day;
use super::escape::html;
use crate::utc::{Utc, day_start_ms};

/// The most bars drawn.
pub(super) const MAX_BARS: i64 = 92;

pub(super) const ALLOWED: &str = "#2e7d32";
pub(super) const DENIED: &str = "#c62828";
pub(super) const HELD: &str = "#e08a00";

const W: f64 = 960.0;
const H: f64 = 340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 84.0;

/// One bar: the days from `start` (a day number), `allowed`, `denied`, `held`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Bar {
    pub start: i64,
    pub allowed: u64,
    pub denied: u64,
    pub held: u64,
}

impl Bar {
    fn total(&self) -> u64 {
        self.allowed
            .saturating_add(self.denied)
            .saturating_add(self.held)
    }
}

/// The bars for `days` (sorted, with commands) and how many days each covers.
pub(super) fn bars(days: &[Day]) -> (Vec<Bar>, i64) {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return (Vec::new(), 1);
    };
    let span = last.day.saturating_sub(first.day).saturating_add(1).max(1);
    let per = span.saturating_add(MAX_BARS - 1) / MAX_BARS;
    let count = span.saturating_add(per - 1) / per;
    let mut bars: Vec<Bar> = (0..count)
        .map(|k| Bar {
            start: first.day.saturating_add(k * per),
            ..Bar::default()
        })
        .collect();
    for d in days {
        let k = usize::try_from((d.day - first.day) / per).unwrap_or(usize::MAX);
        if let Some(b) = bars.get_mut(k) {
            b.allowed = b.allowed.saturating_add(d.allowed);
            b.denied = b.denied.saturating_add(d.denied);
            b.held = b.held.saturating_add(d.held);
        }
    }
    (bars, per)
}

/// A round step for about four gridlines up to `max`.
fn step(max: u64) -> u64 {
    let raw = max.div_ceil(4).max(1);
    let mut mag = 1u64;
    while mag.saturating_mul(10) <= raw {
        mag *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
}

/// The chart as an `<svg>` element (HTML5 inline SVG: no namespace URL is needed).
pub(super) fn svg(days: &[Day]) -> String {
    let (bars, per) = bars(days);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-labelledby="chart-title chart-desc" font-family="system-ui, sans-serif" font-size="12">"#
    );
    out.push_str(r#"<title id="chart-title">Commands per day by outcome</title>"#);
    let _ = write!(
        out,
        r#"<desc id="chart-desc">Stacked bars of allowed, denied and held commands, {}.</desc>"#,
        if per == 1 {
            "one bar per UTC day".to_owned()
        } else {
            format!("{per} UTC days per bar")
        }
    );
    legend(&mut out);
    let max = bars.iter().map(Bar::total).max().unwrap_or(0);
    if max == 0 {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#57606a">No commands in this period</text></svg>"##,
            W / 2.0,
            H / 2.0
        );
        return out;
    }
    let step = step(max);
    let top = max.div_ceil(step).saturating_mul(step);
    axes(&mut out, top, step, per);
    let plot_w = W - LEFT - RIGHT;
    let slot = plot_w / bars.len() as f64;
    let width = (slot * 0.7).clamp(1.0, 56.0);
    let every = bars.len().div_ceil(12);
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
        bar(&mut out, b, x, width, top, per);
        if i % every == 0 {
            let cx = x + width / 2.0;
            let y = H - BOTTOM + 14.0;
            let label = Utc::from_ms(day_start_ms(b.start)).date();
            let _ = write!(
                out,
                r##"<text x="{cx:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-40 {cx:.1} {y:.1})" fill="#57606a">{}</text>"##,
                html(&label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String) {
    let items = [
        ("Allowed", ALLOWED),
        ("Denied", DENIED),
        ("Held for approval", HELD),
    ];
    let mut x = LEFT;
    for (label, color) in items {
        let _ = write!(
            out,
            r##"<rect x="{x}" y="12" width="12" height="12" fill="{color}"/><text x="{}" y="22" fill="#1b1f24">{label}</text>"##,
            x + 18.0
        );
        x += 18.0 + 8.0 * label.len() as f64 + 24.0;
    }
}

fn y_of(v: u64, top: u64) -> f64 {
    let plot_h = H - TOP - BOTTOM;
    H - BOTTOM - plot_h * (v as f64 / top as f64)
}

fn axes(out: &mut String, top: u64, step: u64, per: i64) {
    let mut v = 0u64;
    loop {
        let y = y_of(v, top);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#d0d7de"/><text x="{}" y="{:.1}" text-anchor="end" fill="#57606a">{v}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        match v.checked_add(step) {
            Some(next) if next <= top => v = next,
            _ => break,
        }
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#57606a"/>"##,
        H - BOTTOM
    );
    let mid = TOP + (H - TOP - BOTTOM) / 2.0;
    let _ = write!(
        out,
        r##"<text x="16" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 16 {mid:.1})" fill="#1b1f24">Commands</text>"##
    );
    let title = if per == 1 {
        "Day (UTC)".to_owned()
    } else {
        format!("{per} days per bar, labelled by their first day (UTC)")
    };
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#1b1f24">{}</text>"##,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        html(&title)
    );
}

fn bar(out: &mut String, b: &Bar, x: f64, width: f64, top: u64, per: i64) {
    let date = Utc::from_ms(day_start_ms(b.start)).date();
    let when = if per == 1 {
        date
    } else {
        format!("{per} days from {date}")
    };
    let _ = write!(
        out,
        "<g><title>{}: {} allowed, {} denied, {} held</title>",
        html(&when),
        b.allowed,
        b.denied,
        b.held
    );
    let mut base = 0;
    for (n, color) in [(b.allowed, ALLOWED), (b.denied, DENIED), (b.held, HELD)] {
        if n > 0 {
            let (y0, y1) = (y_of(base, top), y_of(base.saturating_add(n), top));
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{width:.1}" height="{:.1}" fill="{color}"/>"#,
                (y0 - y1).max(0.5)
            );
            base = base.saturating_add(n);
        }
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(day: i64, allowed: u64) -> Day {
        Day {
            date: String::new(),
            day,
            allowed,
            denied: 1,
            held: 0,
        }
    }

    #[test]
    fn gaps_are_filled_and_long_periods_grouped() {
        let (b, per) = bars(&[day(10, 1), day(13, 2)]);
        assert_eq!((b.len(), per), (4, 1));
        assert_eq!(b.iter().map(Bar::total).collect::<Vec<_>>(), [2, 0, 0, 3]);

        let (b, per) = bars(&[day(0, 1), day(998, 5), day(999, 1)]);
        assert_eq!(per, 11);
        assert!(b.len() as i64 <= MAX_BARS);
        assert_eq!(b.iter().map(Bar::total).sum::<u64>(), 2 + 2 + 6);

        // Hostile timestamps: a span of billions of days still gives at most MAX_BARS.
        let (b, _) = bars(&[day(-4_000_000_000, 1), day(4_000_000_000, 1)]);
        assert!(b.len() as i64 <= MAX_BARS);
        assert_eq!(b.iter().map(Bar::total).sum::<u64>(), 4);
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(step(1), 1);
        assert_eq!(step(7), 2);
        assert_eq!(step(40), 10);
        assert_eq!(step(41), 20);
        assert_eq!(step(999), 500);
        assert_eq!(step(u64::MAX), 5_000_000_000_000_000_000);
        // Huge counts neither overflow nor loop forever.
        let _ = svg(&[day(0, u64::MAX - 1)]);
    }

    #[test]
    fn empty_chart_says_so() {
        let s = svg(&[]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("No commands in this period"));
    }
}
