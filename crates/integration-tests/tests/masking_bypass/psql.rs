//! psql through the gateway: every case in one process, either as `-c` options (each step one
//! Query message) or as one script read from stdin. Each case is framed by `\echo` and
//! `\warn` markers, so its stdout (rows, COPY data, notifications) and stderr (errors with
//! every field at VERBOSITY verbose, notices) can be told apart. psql exits when the session
//! is lost; the cases after the one it was running are then run by a new process.

use anyhow::{Result, bail};
use portcullis_integration_tests::clients::{self, PgConn};

use crate::capture::{Capture, Outcome};
use crate::cases::{Case, Transport};

const MARK: &str = "@@case:";
const END: &str = "@@end";

pub async fn run(conn: &PgConn, cases: &[Case], t: Transport) -> Result<Vec<Capture>> {
    let todo: Vec<usize> = (0..cases.len()).filter(|i| cases[*i].runs_on(t)).collect();
    let mut out = Vec::new();
    let mut next = 0;
    while next < todo.len() {
        let batch = &todo[next..];
        let output = match t {
            Transport::PsqlC => {
                let args = c_args(cases, batch, t);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                clients::psql(conn, &args, None).await?
            }
            _ => {
                let script = script(cases, batch, t);
                let args = ["-A", "-v", "ON_ERROR_STOP=0", "-f", "-"];
                clients::psql(conn, &args, Some(&script)).await?
            }
        };
        let stdout = segments(&output.stdout);
        let stderr = segments(&output.stderr);
        let mut seen = 0;
        for &i in batch {
            let Some(err) = stderr.cases.iter().find(|(id, _)| *id == cases[i].id) else {
                break;
            };
            let mut cap = Capture::new(t, i);
            let text = String::from_utf8_lossy(&err.1);
            for code in error_codes(&text) {
                cap.outcome.fail(code);
            }
            if let Some((_, o)) = stdout.cases.iter().find(|(id, _)| *id == cases[i].id) {
                cap.blobs.push(o.clone());
            }
            cap.blobs.push(err.1.clone());
            out.push(cap);
            seen += 1;
        }
        if stderr.ended {
            break;
        }
        // psql stopped inside the last case it started.
        let Some(last) = out.last_mut().filter(|_| seen > 0) else {
            bail!(
                "{t} ran no case (cases from {}):\n{}",
                cases[batch[0]].id,
                clients::describe(&output)
            );
        };
        last.outcome = Outcome::Lost(format!("psql exited ({})", output.status));
        next += seen;
    }
    Ok(out)
}

fn marker(id: &str) -> [String; 2] {
    [format!("\\echo {MARK}{id}"), format!("\\warn {MARK}{id}")]
}

fn c_args(cases: &[Case], batch: &[usize], t: Transport) -> Vec<String> {
    let mut args: Vec<String> = [
        "-A",
        "-v",
        "ON_ERROR_STOP=0",
        "-v",
        "VERBOSITY=verbose",
        "-v",
        "SHOW_CONTEXT=always",
    ]
    .map(String::from)
    .to_vec();
    for &i in batch {
        for m in marker(&cases[i].id) {
            args.extend(["-c".into(), m]);
        }
        for sql in cases[i].steps_for(t).iter().filter_map(|s| s.sql()) {
            args.extend(["-c".into(), sql]);
        }
    }
    for m in [format!("\\echo {END}"), format!("\\warn {END}")] {
        args.extend(["-c".into(), m]);
    }
    args
}

fn script(cases: &[Case], batch: &[usize], t: Transport) -> String {
    let mut s = String::from("\\set VERBOSITY verbose\n\\set SHOW_CONTEXT always\n");
    for &i in batch {
        for m in marker(&cases[i].id) {
            s.push_str(&m);
            s.push('\n');
        }
        for sql in cases[i].steps_for(t).iter().filter_map(|s| s.sql()) {
            s.push_str(&sql);
            s.push_str(";\n");
        }
    }
    s.push_str(&format!("\\echo {END}\n\\warn {END}\n"));
    s
}

struct Segments {
    /// Each case's output, by id, in order.
    cases: Vec<(String, Vec<u8>)>,
    /// The end marker was printed: every case ran.
    ended: bool,
}

/// Splits psql's output at the marker lines.
fn segments(buf: &[u8]) -> Segments {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ended = false;
    let mut line_start = 0;
    while line_start < buf.len() {
        let line_end = buf[line_start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |p| line_start + p + 1);
        let line = &buf[line_start..line_end];
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if let Some(id) = text.strip_prefix(MARK) {
            cases.push((id.to_owned(), Vec::new()));
        } else if text == END {
            ended = true;
        } else if let Some((_, seg)) = cases.last_mut() {
            seg.extend_from_slice(line);
        }
        line_start = line_end;
    }
    Segments { cases, ended }
}

/// The SQLSTATEs of psql's `ERROR:  XXXXX: message` lines (VERBOSITY verbose).
fn error_codes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("ERROR:  ").map(|(_, rest)| rest))
        .map(|rest| {
            rest.split_once(':')
                .map(|(code, _)| code)
                .filter(|c| c.len() == 5)
                .unwrap_or("error")
                .to_owned()
        })
        .collect()
}
