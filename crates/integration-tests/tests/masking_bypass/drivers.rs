//! The driver client paths: psycopg and asyncpg (`tests/python/leak_probe.py`, every case in
//! one process) and tokio-postgres (simple and extended protocol) with its notices and
//! notifications kept.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use futures::{StreamExt as _, TryStreamExt as _, pin_mut};
use portcullis_integration_tests::clients::{self, PgConn};
use serde_json::{Value, json};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

use crate::capture::Capture;
use crate::cases::{Case, Step, Transport};

// ---- Python drivers ------------------------------------------------------------------------

pub async fn python(conn: &PgConn, cases: &[Case], t: Transport) -> Result<Vec<Capture>> {
    let (driver, dsn) = match t {
        Transport::PsycopgText => ("psycopg-text", conn.dsn()),
        Transport::PsycopgBinary => ("psycopg-binary", conn.dsn()),
        Transport::Asyncpg => ("asyncpg", conn.url()),
        other => bail!("{other} is not a Python driver"),
    };
    let todo: Vec<usize> = (0..cases.len()).filter(|i| cases[*i].runs_on(t)).collect();
    let spec_cases: Vec<Value> = todo
        .iter()
        .map(|&i| json!({"id": cases[i].id, "steps": python_steps(&cases[i], t)}))
        .collect();
    let spec = json!({ "cases": spec_cases }).to_string();
    let out = clients::python_json("leak_probe.py", &[driver, &dsn, &spec]).await?;
    let results = out["cases"].as_array().context("no cases in the output")?;
    let mut captures = Vec::new();
    for (&i, r) in todo.iter().zip(results) {
        if r["id"] != cases[i].id.as_str() {
            bail!("{t}: case {} answered as {}", cases[i].id, r["id"]);
        }
        let mut cap = Capture::new(t, i);
        for e in r["events"].as_array().into_iter().flatten() {
            if let Some(text) = e["text"].as_str() {
                cap.text(text);
            }
            if let Some(b64) = e["b64"].as_str() {
                cap.blobs
                    .push(base64::engine::general_purpose::STANDARD.decode(b64)?);
            }
        }
        for code in r["sqlstates"].as_array().into_iter().flatten() {
            cap.outcome.fail(code.as_str().unwrap_or("?"));
        }
        if r["status"] == "lost" {
            cap.outcome.lose("the driver lost the connection");
        }
        captures.push(cap);
    }
    Ok(captures)
}

fn python_steps(case: &Case, t: Transport) -> Vec<Value> {
    case.steps_for(t)
        .iter()
        .map(|s| match s {
            Step::Sql { sql, .. } => json!({"how": "sql", "sql": sql}),
            Step::Copy { source, format } => json!({
                "how": "copy", "sql": s.sql(), "source": source, "format": format
            }),
            Step::Cursor(q) => json!({"how": "cursor", "sql": q}),
            Step::Portal(p) => json!({"how": "portal", "name": p}),
        })
        .collect()
}

// ---- tokio-postgres ------------------------------------------------------------------------

/// A tokio-postgres session whose connection task keeps the notices and notifications.
struct Session {
    client: Client,
    heard: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(conn: &PgConn) -> Result<Session> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&conn.host)
        .port(conn.port)
        .dbname(&conn.dbname)
        .user(&conn.user)
        .connect_timeout(conn.connect_timeout);
    if let Some(p) = &conn.password {
        cfg.password(p);
    }
    let (client, mut connection) = cfg.connect(NoTls).await.context("tokio-postgres")?;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let task = tokio::spawn(async move {
        let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        pin_mut!(messages);
        while let Some(Ok(m)) = messages.next().await {
            let text = match m {
                AsyncMessage::Notice(n) => format!("notice {n:?}"),
                AsyncMessage::Notification(n) => {
                    format!("notification {} {}", n.channel(), n.payload())
                }
                _ => continue,
            };
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(text);
        }
    });
    Ok(Session {
        client,
        heard,
        task,
    })
}

pub async fn tokio(conn: &PgConn, cases: &[Case], t: Transport) -> Result<Vec<Capture>> {
    let mut session: Option<Session> = None;
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.runs_on(t)) {
        let mut s = match session.take() {
            Some(s) if !s.client.is_closed() => s,
            _ => connect(conn).await?,
        };
        let mut cap = Capture::new(t, i);
        let mut alive = true;
        for step in case.steps_for(t) {
            if let Err(e) = tokio_step(&mut s, &step, t, &mut cap).await {
                cap.text(format!("{e:?}\n{e}"));
                match e.as_db_error() {
                    Some(db) => cap.outcome.fail(db.code().code()),
                    None => cap.outcome.fail(format!("client: {e}")),
                }
                // A FATAL error ends the session, though the client may not know it yet.
                let fatal = e
                    .as_db_error()
                    .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
                if fatal || s.client.is_closed() {
                    cap.outcome.lose(e.to_string());
                    alive = false;
                    break;
                }
            }
        }
        // Notices travel ahead of the response they belong to; let the task hand them over.
        tokio::task::yield_now().await;
        let heard = std::mem::take(
            &mut *s
                .heard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        cap.blobs.extend(heard.into_iter().map(String::into_bytes));
        out.push(cap);
        if alive {
            session = Some(s);
        }
    }
    Ok(out)
}

async fn tokio_step(
    s: &mut Session,
    step: &Step,
    t: Transport,
    cap: &mut Capture,
) -> Result<(), tokio_postgres::Error> {
    match (step, t) {
        (Step::Sql { sql, .. }, Transport::TokioSimple) => {
            // One blob per result, its rows one per line.
            let mut lines = Vec::new();
            for m in s.client.simple_query(sql).await? {
                match m {
                    SimpleQueryMessage::Row(row) => {
                        let values: Vec<&str> = (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL"))
                            .collect();
                        lines.push(values.join(" | "));
                    }
                    SimpleQueryMessage::CommandComplete(n) => {
                        lines.push(format!("rows {n}"));
                        cap.text(lines.join("\n"));
                        lines.clear();
                    }
                    _ => {}
                }
            }
        }
        (Step::Sql { sql, .. }, _) => {
            let rows = s.client.query(sql.as_str(), &[]).await?;
            binary_rows(&rows, cap);
        }
        (Step::Copy { .. }, _) => {
            let sql = step.sql().unwrap_or_default();
            let stream = s.client.copy_out(sql.as_str()).await?;
            let chunks: Vec<_> = stream.try_collect().await?;
            cap.blobs
                .push(chunks.iter().flat_map(|c| c.iter().copied()).collect());
        }
        (Step::Cursor(q), _) => {
            // A portal bound by the driver and executed two rows at a time.
            let tx = s.client.transaction().await?;
            let portal = tx.bind(q.as_str(), &[]).await?;
            loop {
                let rows = tx.query_portal(&portal, 2).await?;
                if rows.is_empty() {
                    break;
                }
                binary_rows(&rows, cap);
            }
            tx.commit().await?;
        }
        (Step::Portal(_), _) => {}
    }
    Ok(())
}

/// A value in the binary format, as the bytes that arrived.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Rows of binary values: each value kept as it arrived, and the rows as one text (one per
/// line), read as text where the type is a number (which the bytes alone do not show).
fn binary_rows(rows: &[tokio_postgres::Row], cap: &mut Capture) {
    let mut lines = Vec::new();
    for row in rows {
        let mut texts = Vec::new();
        for (i, col) in row.columns().iter().enumerate() {
            let Ok(Raw(Some(v))) = row.try_get::<_, Raw>(i) else {
                texts.push("NULL".to_owned());
                continue;
            };
            texts.push(binary_text(col.type_(), &v));
            cap.blobs.push(v);
        }
        lines.push(texts.join(" | "));
    }
    cap.text(lines.join("\n"));
}

fn binary_text(ty: &Type, v: &[u8]) -> String {
    let text = match *ty {
        Type::INT2 => v.try_into().ok().map(|b| i16::from_be_bytes(b).to_string()),
        Type::INT4 => v.try_into().ok().map(|b| i32::from_be_bytes(b).to_string()),
        Type::INT8 => v.try_into().ok().map(|b| i64::from_be_bytes(b).to_string()),
        Type::FLOAT8 => v
            .try_into()
            .ok()
            .map(|b: [u8; 8]| f64::from_be_bytes(b).to_string()),
        Type::FLOAT4 => v
            .try_into()
            .ok()
            .map(|b: [u8; 4]| f32::from_be_bytes(b).to_string()),
        Type::NUMERIC => numeric_text(v),
        _ => None,
    };
    text.unwrap_or_else(|| String::from_utf8_lossy(v).into_owned())
}

/// The text of a binary numeric (`numeric_send`: ndigits, weight, sign, dscale, then
/// base-10000 digits).
fn numeric_text(v: &[u8]) -> Option<String> {
    let word = |i: usize| {
        v.get(2 * i..2 * i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<i16> = (0..ndigits as usize)
        .map(|i| word(4 + i))
        .collect::<Option<_>>()?;
    let mut s = String::from(if sign == 0x4000 { "-" } else { "" });
    if weight < 0 {
        s.push('0');
    }
    for k in 0..=i32::from(weight) {
        let d = digits.get(k as usize).copied().unwrap_or(0);
        if k == 0 {
            s.push_str(&d.to_string());
        } else {
            s.push_str(&format!("{d:04}"));
        }
    }
    // Groups before the first digit when the number is below one, then the digits after the
    // integer part.
    let leading = "0000".repeat((-i32::from(weight) - 1).max(0) as usize);
    let fraction: String = leading
        + &digits
            .iter()
            .skip((i32::from(weight) + 1).max(0) as usize)
            .map(|d| format!("{d:04}"))
            .collect::<String>();
    if !fraction.is_empty() {
        s.push('.');
        s.push_str(&fraction);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_numeric_reads_as_its_digits() {
        // 4111111111111112: weight 3, digits 4111 1111 1111 1112.
        let v = [
            0, 4, 0, 3, 0, 0, 0, 0, 0x10, 0x0F, 0x04, 0x57, 0x04, 0x57, 0x04, 0x58,
        ];
        assert_eq!(super::numeric_text(&v).as_deref(), Some("4111111111111112"));
    }
}
