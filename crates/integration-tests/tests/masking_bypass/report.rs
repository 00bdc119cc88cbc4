//! Findings (a sensitive value in what a client saw) and their tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::capture::{Capture, Outcome};
use crate::cases::{CLASSES, Case, Transport};
use crate::decode::{self, Needle};

/// One sensitive value a client saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub case: usize,
    pub transport: Transport,
    pub value: String,
    pub decoding: &'static str,
}

/// Every value found in each capture, once per capture, with the plainest check that found
/// it in any of its blobs.
pub fn findings(captures: &[Capture], needles: &[Needle]) -> Vec<Finding> {
    let mut out = Vec::new();
    for cap in captures {
        let mut best: BTreeMap<usize, &'static str> = BTreeMap::new();
        for blob in &cap.blobs {
            for (n, check) in decode::find(blob, needles) {
                let keep = best
                    .get(&n)
                    .is_none_or(|old| decode::rank(check) < decode::rank(old));
                if keep {
                    best.insert(n, check);
                }
            }
        }
        out.extend(best.into_iter().map(|(n, decoding)| Finding {
            case: cap.case,
            transport: cap.transport,
            value: needles[n].label.clone(),
            decoding,
        }));
    }
    out
}

/// The case × transport matrix: the number of values that leaked, `.` for none, `e` for none
/// with an error, `X` where the session was lost, `-` where the transport cannot run the
/// case; `ctl` is what the same case shows unmasked, straight from the server.
pub fn matrix(
    cases: &[Case],
    captures: &[Capture],
    found: &[Finding],
    control: &[Finding],
) -> String {
    let width = cases.iter().map(|c| c.id.len()).max().unwrap_or(10) + 2;
    let mut s = format!("{:width$}{:>5}", "case", "ctl");
    for t in Transport::ALL {
        let _ = write!(s, " {:>12}", t.name());
    }
    s.push('\n');
    for (i, case) in cases.iter().enumerate() {
        let direct = control.iter().filter(|f| f.case == i).count();
        let _ = write!(s, "{:width$}{direct:>5}", case.id);
        for t in Transport::ALL {
            let cell = match captures.iter().find(|c| c.case == i && c.transport == t) {
                None => "-".to_owned(),
                Some(cap) => {
                    let n = found
                        .iter()
                        .filter(|f| f.case == i && f.transport == t)
                        .count();
                    let mark = match &cap.outcome {
                        Outcome::Lost(_) => "X",
                        Outcome::Failed(_) if n == 0 => "e",
                        _ if n == 0 => ".",
                        _ => "",
                    };
                    if n == 0 {
                        mark.to_owned()
                    } else {
                        format!("{n}{mark}")
                    }
                }
            };
            let _ = write!(s, " {cell:>12}");
        }
        s.push('\n');
    }
    s
}

/// Per class and transport: cases with a leak / cases run.
pub fn summary(cases: &[Case], captures: &[Capture], found: &[Finding]) -> String {
    let mut s = format!("{:12}", "class");
    for t in Transport::ALL {
        let _ = write!(s, " {:>12}", t.name());
    }
    s.push('\n');
    for class in CLASSES {
        let _ = write!(s, "{class:12}");
        for t in Transport::ALL {
            let run: BTreeSet<usize> = captures
                .iter()
                .filter(|c| c.transport == t && cases[c.case].class == class)
                .map(|c| c.case)
                .collect();
            let leaked: BTreeSet<usize> = found
                .iter()
                .filter(|f| f.transport == t && cases[f.case].class == class)
                .map(|f| f.case)
                .collect();
            let cell = if run.is_empty() {
                "-".to_owned()
            } else {
                format!("{}/{}", leaked.len(), run.len())
            };
            let _ = write!(s, " {cell:>12}");
        }
        s.push('\n');
    }
    s
}

/// One line per case, value and decoding: the transports that leaked it.
pub fn listing(cases: &[Case], found: &[&Finding]) -> String {
    let mut grouped: BTreeMap<(usize, &str, &str), Vec<&str>> = BTreeMap::new();
    for f in found {
        grouped
            .entry((f.case, f.value.as_str(), f.decoding))
            .or_default()
            .push(f.transport.name());
    }
    let mut s = String::new();
    for ((case, value, decoding), transports) in grouped {
        let _ = writeln!(
            s,
            "  {} [{}] {value} ({decoding}): {}",
            cases[case].id,
            cases[case].class,
            transports.join(" ")
        );
    }
    s
}

/// Sessions lost, and why.
pub fn lost(cases: &[Case], captures: &[Capture]) -> String {
    let mut s = String::new();
    for cap in captures {
        if let Outcome::Lost(why) = &cap.outcome {
            let _ = writeln!(s, "  {} {}: {why}", cases[cap.case].id, cap.transport);
        }
    }
    s
}

/// Everything every client saw, case by case, as text (binary bytes escaped).
pub fn dump(cases: &[Case], captures: &[Capture]) -> String {
    let mut s = String::new();
    for (i, case) in cases.iter().enumerate() {
        let _ = writeln!(s, "==== {} [{}]", case.id, case.class);
        for cap in captures.iter().filter(|c| c.case == i) {
            let _ = writeln!(s, "---- {} {:?}", cap.transport, cap.outcome);
            for blob in &cap.blobs {
                let _ = writeln!(s, "{}", blob.escape_ascii());
            }
        }
    }
    s
}
