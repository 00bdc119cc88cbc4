//! Runtime identity settings and their checks.
//!
//! The config crate owns the file format; it translates its strict structs into these once at
//! load. [`check_issuer`] runs in `Validator::new`, so a bad issuer fails start-up rather than
//! the first request.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use reqwest::Url;

use crate::error::IdentityError;
use crate::principal::PrincipalKind;

/// Everything the [`crate::Validator`] needs.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub issuers: Vec<IssuerSettings>,
    pub static_groups: Vec<StaticGroups>,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
    /// Maximum number of verified tokens kept; 0 disables the cache.
    pub cache_capacity: usize,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            static_groups: Vec::new(),
            max_token_bytes: 16 * 1024,
            cache_capacity: 100_000,
        }
    }
}

/// One trusted token issuer.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// Compared to the token's `iss` as an exact string.
    pub issuer: String,
    /// The token's `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// Allow-list for the header `alg`; HMAC algorithms are refused at set-up.
    pub algorithms: Vec<Algorithm>,
    /// The claim holding group names (array of strings, or a space/comma separated string).
    pub groups_claim: String,
    /// Longest accepted `exp - iat` (or `exp - nbf`, or `exp - now`).
    pub max_token_lifetime: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Kind given to principals of this issuer unless `kind_claim` says otherwise.
    pub kind: PrincipalKind,
    /// A claim whose value `"human"` (or `"machine"`) overrides `kind`.
    pub kind_claim: Option<String>,
    /// Minimum time between two JWKS fetches caused by unknown key ids.
    pub jwks_refetch_min_interval: Duration,
    pub keys: KeySource,
}

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery,
    /// A fixed key set (the embedded dev issuer, or an air-gapped IdP).
    Static(JwkSet),
}

/// Groups granted by configuration to a subject and/or client id, for IdPs that put no groups
/// in machine tokens. When both fields are set, both must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticGroups {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub groups: Vec<String>,
}

impl StaticGroups {
    pub(crate) fn matches(&self, subject: &str, client_id: Option<&str>) -> bool {
        let subject_ok = self.subject.as_deref().is_none_or(|s| s == subject);
        let client_ok = match &self.client_id {
            None => true,
            Some(want) => client_id == Some(want.as_str()),
        };
        subject_ok && client_ok && (self.subject.is_some() || self.client_id.is_some())
    }
}

impl IssuerSettings {
    /// Defaults: RS256 and ES256, `groups`, 1 h maximum lifetime, 30 s leeway, machine
    /// principals, 10 s between refetches, keys by discovery.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            groups_claim: "groups".to_owned(),
            max_token_lifetime: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
            kind: PrincipalKind::Machine,
            kind_claim: None,
            jwks_refetch_min_interval: Duration::from_secs(10),
            keys: KeySource::Discovery,
        }
    }
}

/// Refuses settings that would weaken validation or leak key fetches onto plain HTTP.
pub(crate) fn check_issuer(s: &IssuerSettings) -> Result<(), IdentityError> {
    let invalid = |problem: &str| IdentityError::InvalidIssuer {
        issuer: s.issuer.clone(),
        problem: problem.to_owned(),
    };
    if s.issuer.is_empty() {
        return Err(invalid("the issuer is empty"));
    }
    if s.audiences.is_empty() || s.audiences.iter().any(String::is_empty) {
        return Err(invalid("at least one non-empty audience is required"));
    }
    if s.algorithms.is_empty() {
        return Err(invalid("the algorithm allow-list is empty"));
    }
    if let Some(alg) = s
        .algorithms
        .iter()
        .find(|a| a.family() == AlgorithmFamily::Hmac)
    {
        return Err(IdentityError::ForbiddenAlgorithm {
            issuer: s.issuer.clone(),
            alg: format!("{alg:?}"),
        });
    }
    if s.groups_claim.is_empty() {
        return Err(invalid("the groups claim name is empty"));
    }
    // A static-key issuer's URL is only a name compared to `iss`; nothing is fetched from it,
    // so the transport rule below protects nothing there.
    if matches!(s.keys, KeySource::Discovery) {
        check_fetch_url(&s.issuer).map_err(|p| invalid(&p))?;
    }
    Ok(())
}

/// Keys may only be fetched over HTTPS, or plain HTTP to a loopback host (tests, sidecars).
pub(crate) fn check_fetch_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("an issuer URL has no query or fragment".to_owned());
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(parsed.host_str()) => Ok(parsed),
        "http" => Err("plain http is only allowed to a loopback host".to_owned()),
        other => Err(format!("unsupported scheme {other:?}")),
    }
}

fn is_loopback(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    // `host_str` keeps the brackets of an IPv6 literal.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(issuer: &str) -> bool {
        check_issuer(&IssuerSettings::new(issuer, vec!["aud".into()])).is_ok()
    }

    #[test]
    fn transport_rule() {
        assert!(check("https://idp.example.com"));
        assert!(check("http://127.0.0.1:8080"));
        assert!(check("http://127.9.9.9"));
        assert!(check("http://[::1]:9000/realms/x"));
        assert!(check("http://localhost:9000"));
        assert!(!check("http://idp.example.com"));
        assert!(!check("http://10.0.0.1"));
        assert!(!check("ftp://127.0.0.1"));
        assert!(!check("https://idp.example.com/?a=b"));
        assert!(!check("not a url"));
    }

    #[test]
    fn static_issuer_may_use_any_name() {
        let mut s = IssuerSettings::new("http://portcullis.internal", vec!["a".into()]);
        s.keys = KeySource::Static(JwkSet { keys: vec![] });
        assert!(check_issuer(&s).is_ok());
    }

    #[test]
    fn refuses_hmac_and_empty_lists() {
        let mut s = IssuerSettings::new("https://idp", vec!["a".into()]);
        s.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
        assert!(matches!(
            check_issuer(&s),
            Err(IdentityError::ForbiddenAlgorithm { .. })
        ));
        s.algorithms = vec![];
        assert!(check_issuer(&s).is_err());
        let s = IssuerSettings::new("https://idp", vec![]);
        assert!(check_issuer(&s).is_err());
    }

    #[test]
    fn static_groups_match_all_set_fields() {
        let g = |s: Option<&str>, c: Option<&str>| StaticGroups {
            subject: s.map(Into::into),
            client_id: c.map(Into::into),
            groups: vec![],
        };
        assert!(g(Some("a"), None).matches("a", None));
        assert!(g(None, Some("c")).matches("x", Some("c")));
        assert!(!g(None, Some("c")).matches("c", None));
        assert!(g(Some("a"), Some("c")).matches("a", Some("c")));
        assert!(!g(Some("a"), Some("c")).matches("a", Some("d")));
        assert!(!g(None, None).matches("a", None));
    }
}
