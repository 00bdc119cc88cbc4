//! The report as one self-contained HTML page: inline CSS, an inline SVG chart, no script,
//! no external asset (a Content-Security-Policy forbids both), printable.

use std::fmt::Write as _;

use super::doc::{self, Cell, Section, Tone};
use super::escape::html as esc;
use super::{Report, chart};
use crate::utc::Utc;

const CSS: &str = "\
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--head:#f6f8fa;--ok:#1a7f37;--bad:#cf222e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:var(--fg);background:#eef1f4}
main{max-width:1120px;margin:0 auto;padding:32px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:34px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
p{margin:6px 0}
.sub{color:var(--muted);margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(158px,1fr));gap:10px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .n{font-size:21px;font-weight:600;overflow-wrap:anywhere}
.card .l{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.05em}
.card.warn{border-color:var(--bad);background:#fff5f5}
.card.good{border-left:5px solid var(--ok)}
.card.warn .n{color:var(--bad)}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
td{overflow-wrap:break-word}
th{background:var(--head);font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;min-width:16em}
.empty{color:var(--muted);font-style:italic}
.ok{color:var(--ok);font-weight:600}
.bad{color:var(--bad);font-weight:600}
figure{margin:8px 0 4px}
svg{max-width:100%;height:auto}
footer{margin-top:40px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
@media print{body{background:#fff}main{padding:0;max-width:none}tr,figure,.card{break-inside:avoid}h2{break-after:avoid}}
";

pub(super) fn render(r: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!(
        "Portcullis audit evidence, {} to {}",
        Utc::from_ms(r.since_ms).date(),
        Utc::from_ms(r.until_ms).date()
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"generator\" content=\"portcullis audit report\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    let _ = write!(
        out,
        "<h1>Audit evidence report</h1>\n<p class=\"sub\">Portcullis access gateway &middot; period {} &middot; generated {}</p>\n",
        esc(&doc::period(r)),
        esc(&Utc::from_ms(r.generated_ms).datetime())
    );
    summary(&mut out, r);
    out.push_str("<h2>Commands per day</h2>\n<figure>");
    out.push_str(&chart::svg(&r.days));
    out.push_str(
        "<figcaption>Commands per UTC day, stacked by outcome. \
         Connection attempts and the gateway's own unmask checks are not commands.</figcaption></figure>\n",
    );
    for s in doc::sections(r) {
        section(&mut out, &s);
    }
    out.push_str(
        "<footer>Derived from the tamper-evident audit trail: every figure is a count of audit \
         events in the period. The JSONL export holds each event whole, and its lines hash to \
         the chain that the verification above checked.</footer>\n</main>\n</body>\n</html>\n",
    );
    out
}

fn summary(out: &mut String, r: &Report) {
    out.push_str("<section class=\"cards\" aria-label=\"Summary\">\n");
    for (label, value, tone) in doc::summary(r) {
        let _ = writeln!(
            out,
            "<div class=\"card{}\"><div class=\"l\">{}</div><div class=\"n\">{}</div></div>",
            match tone {
                Tone::Good => " good",
                Tone::Bad => " warn",
                Tone::Plain => "",
            },
            esc(label),
            esc(&value)
        );
    }
    out.push_str("</section>\n");
}

fn section(out: &mut String, s: &Section) {
    let _ = writeln!(out, "<h2>{}</h2>", esc(s.title));
    if let Some(intro) = &s.intro {
        let _ = writeln!(out, "<p>{}</p>", esc(intro));
    }
    out.push_str("<table>\n<thead><tr>");
    let numeric: Vec<bool> = match s.rows.first() {
        Some(row) => row.iter().map(Cell::numeric).collect(),
        None => vec![false; s.head.len()],
    };
    for (i, h) in s.head.iter().enumerate() {
        let class = if numeric.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if s.rows.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td class=\"empty\" colspan=\"{}\">None in this period.</td></tr>",
            s.head.len()
        );
    }
    for row in &s.rows {
        out.push_str("<tr>");
        for cell in row {
            let class = match cell {
                Cell::Num(_) => " class=\"num\"",
                Cell::Code(_) => " class=\"code\"",
                Cell::Status(true, _) => " class=\"ok\"",
                Cell::Status(false, _) => " class=\"bad\"",
                Cell::Text(_) | Cell::Time(_) => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", esc(&cell.plain()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}
