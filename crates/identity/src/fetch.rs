//! Fetching an issuer's keys: [OpenID Connect Discovery] then its `jwks_uri` ([RFC 7517 §5]).
//!
//! Bodies are read with a hard size bound, redirects are not followed (a redirect could move
//! a fetch from HTTPS to plain HTTP), and the discovery document's `issuer` must equal the
//! configured issuer exactly (Discovery §4.3), which stops one IdP vouching for another.
//!
//! [OpenID Connect Discovery]: https://openid.net/specs/openid-connect-discovery-1_0.html
//! [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5

use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;

use crate::error::IdentityError;
use crate::keys::KeySet;
use crate::settings::check_fetch_url;

/// Discovery documents and key sets are a few kilobytes; this leaves room for large tenants.
const MAX_BODY_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a key fetch failed. Logged, never shown to token holders.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("GET {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge { url: String },
    #[error("GET {url}: invalid JSON: {source}")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("discovery document names issuer {found:?}, not the configured one")]
    IssuerMismatch { found: String },
    #[error("jwks_uri refused: {0}")]
    JwksUri(String),
    #[error("the key set has no usable signature key")]
    NoUsableKeys,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The HTTP client shared by all issuers.
pub(crate) fn client() -> Result<reqwest::Client, IdentityError> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(IdentityError::HttpClient)
}

/// Discovery, then the key set. Keys that cannot verify signatures are skipped; a set with no
/// usable key at all is an error, so that the cached keys are kept rather than emptied.
pub(crate) async fn fetch_keys(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<KeySet, FetchError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc: Discovery = get_json(client, &discovery_url).await?;
    if doc.issuer != issuer {
        return Err(FetchError::IssuerMismatch { found: doc.issuer });
    }
    check_fetch_url(&doc.jwks_uri).map_err(FetchError::JwksUri)?;
    let jwks: JwksLoose = get_json(client, &doc.jwks_uri).await?;
    // Keys are parsed one by one: one key of an unknown type must not hide the others.
    let parsed: Vec<Jwk> = jwks
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value(k).ok())
        .collect();
    let set = KeySet::from_jwks(&parsed);
    if set.keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(set)
}

#[derive(Deserialize)]
struct JwksLoose {
    keys: Vec<Value>,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, FetchError> {
    let http = |source| FetchError::Http {
        url: url.to_owned(),
        source,
    };
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resp.status().as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|source| FetchError::Json {
        url: url.to_owned(),
        source,
    })
}
