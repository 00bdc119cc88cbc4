//! `portcullis reviews list|show|approve|deny`: the approval queue of a running gateway,
//! through its API (`/v1/reviews`), with the reviewer's own token; and `portcullis
//! connections refresh NAME` (`/v1/connections/{name}/refresh`), with an admin's.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::cli::{ConnectionsCmd, Global, ReviewsCmd};
use crate::output::emit;
use crate::token_cmd::api_url;

/// `portcullis connections refresh NAME`.
pub async fn connections(g: &Global, cmd: &ConnectionsCmd) -> anyhow::Result<ExitCode> {
    let ConnectionsCmd::Refresh(a) = cmd;
    let url = format!("{}/v1/connections/{}/refresh", api_url(g)?, encode(&a.name));
    let request = reqwest::Client::new().post(&url);
    call(g, request, &a.auth.token, &url, |b| {
        format!(
            "{}: catalog read again ({} relations, {} user functions)",
            s(b, "connection"),
            b["relations"],
            b["user_functions"]
        )
    })
    .await
}

pub async fn run(g: &Global, cmd: &ReviewsCmd) -> anyhow::Result<ExitCode> {
    let base = format!("{}/v1/reviews", api_url(g)?);
    let client = reqwest::Client::new();
    let (request, token) = match cmd {
        ReviewsCmd::List(a) => (
            client.get(format!("{base}?status={}", encode(&a.status))),
            &a.auth.token,
        ),
        ReviewsCmd::Show(a) => {
            let mut url = format!("{base}/{}", encode(&a.id));
            if let Some(w) = &a.wait {
                url.push_str(&format!("?wait={}", encode(w)));
            }
            (client.get(url), &a.auth.token)
        }
        ReviewsCmd::Approve(a) | ReviewsCmd::Deny(a) => {
            let verb = if matches!(cmd, ReviewsCmd::Approve(_)) {
                "approve"
            } else {
                "deny"
            };
            let body = serde_json::json!({ "comment": a.comment });
            let url = format!("{base}/{}/{verb}", encode(&a.id));
            (client.post(url).json(&body), &a.auth.token)
        }
    };
    call(g, request, token, &base, |b| {
        match b["reviews"].as_array() {
            Some(list) if list.is_empty() => "no reviews".to_owned(),
            Some(list) => list.iter().map(line).collect::<Vec<_>>().join("\n"),
            None => detail(b),
        }
    })
    .await
}

/// Sends `request` with `token` and prints the answer: `shown` for a success, the problem's
/// code, detail and hint for a refusal (exit 1).
async fn call(
    g: &Global,
    request: reqwest::RequestBuilder,
    token: &str,
    url: &str,
    shown: impl Fn(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    let resp = request.bearer_auth(token).send().await.with_context(|| {
        format!("cannot reach the gateway at {url}: is `portcullis serve` running?")
    })?;
    let ok = resp.status().is_success();
    let body: Value = resp
        .json()
        .await
        .context("the gateway's answer is not JSON")?;
    emit(g, &body, |b| {
        if ok {
            return shown(b);
        }
        format!(
            "refused ({}): {}\nhint: {}",
            b["code"].as_str().unwrap_or("?"),
            s(b, "detail"),
            s(b, "hint")
        )
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

/// One line per review: id, status, who, what, where.
fn line(r: &Value) -> String {
    format!(
        "{}  {:<8}  {}  {} on {}: {}",
        s(r, "id"),
        s(r, "status"),
        s(&r["requester"], "subject"),
        s(r, "action"),
        s(r, "connection"),
        s(r, "command")
    )
}

fn detail(r: &Value) -> String {
    let verdicts = |k: &str| -> Vec<String> {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|v| format!("{} ({})", s(&v["reviewer"], "subject"), s(v, "comment")))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "review: {}\nstatus: {}\nrequested by: {}\nconnection: {}\naction: {}\ncommand: {}\npolicies: {}\nreviewers: {} ({} approval(s) needed)",
        s(r, "id"),
        s(r, "status"),
        s(&r["requester"], "subject"),
        s(r, "connection"),
        s(r, "action"),
        s(r, "command"),
        join(&r["policies"]),
        join(&r["reviewers"]),
        r["approvals_needed"]
    );
    let approvals = verdicts("approvals");
    if !approvals.is_empty() {
        out.push_str(&format!("\napproved by: {}", approvals.join(", ")));
    }
    if !r["denial"].is_null() {
        out.push_str(&format!(
            "\ndenied by: {} ({})",
            s(&r["denial"]["reviewer"], "subject"),
            s(&r["denial"], "comment")
        ));
    }
    out
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Percent-encodes everything but unreserved characters, for a path segment or query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
