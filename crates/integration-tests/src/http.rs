//! Plain HTTP helpers. A new client per call: fixtures are shared between tests, each of which
//! has its own Tokio runtime, and a client's pooled connections belong to one runtime.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("body is not JSON (status {}): {}", self.status, self.body))
    }

    /// The `code` of an `application/problem+json` body, if any.
    pub fn problem_code(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.body).ok()?;
        v.get("code")?.as_str().map(str::to_string)
    }

    /// A one-line summary for assertion messages.
    pub fn summary(&self) -> String {
        let mut body = self.body.clone();
        if body.len() > 600 {
            let mut cut = 600;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str("...");
        }
        format!(
            "status {} content-type {:?} body {}",
            self.status, self.content_type, body
        )
    }
}

/// A client that never uses a proxy (everything here is on 127.0.0.1).
pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()
        .context("cannot build HTTP client")
}

async fn read(resp: reqwest::Response) -> Result<Reply> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.text().await.context("cannot read response body")?;
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// `GET url`, with `Authorization: Bearer <token>` when given.
pub async fn get(url: &str, bearer: Option<&str>) -> Result<Reply> {
    let mut req = client()?.get(url);
    if let Some(t) = bearer {
        req = req.header(reqwest::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    read(req.send().await.with_context(|| format!("GET {url}"))?).await
}

/// `GET url` with a raw `Authorization` header value.
pub async fn get_with_authorization(url: &str, authorization: &str) -> Result<Reply> {
    let req = client()?
        .get(url)
        .header(reqwest::header::AUTHORIZATION, authorization);
    read(req.send().await.with_context(|| format!("GET {url}"))?).await
}

/// `POST url` with a JSON body.
pub async fn post_json(url: &str, body: &Value) -> Result<Reply> {
    let req = client()?
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    read(req.send().await.with_context(|| format!("POST {url}"))?).await
}

/// `POST url` with an `application/x-www-form-urlencoded` body, and HTTP basic auth if given.
pub async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Result<Reply> {
    let mut req = client()?
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_encode(form));
    if let Some((user, pass)) = basic {
        // RFC 6749 §2.3.1: client id and secret are form-encoded before basic auth.
        req = req.basic_auth(form_component(user), Some(form_component(pass)));
    }
    read(req.send().await.with_context(|| format!("POST {url}"))?).await
}

/// `application/x-www-form-urlencoded` serialization of pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_component(k), form_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Polls `GET url` until it answers `want`, or fails after `timeout`.
pub async fn wait_status(url: &str, want: u16, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match get(url, None).await {
            Ok(r) if r.status == want => return Ok(()),
            Ok(r) => last = r.summary(),
            Err(e) => last = format!("{e:#}"),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(anyhow!(
                "GET {url} did not answer {want} within {timeout:?}; last: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
