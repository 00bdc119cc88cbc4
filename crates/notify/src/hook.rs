//! Webhook settings ([`Webhook`]) and their validated runtime form ([`Hook`]).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use crate::error::NotifyError;

/// Per-attempt timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per delivery (the first one included) when none is configured.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The body a hook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The [`Notification`](crate::Notification) as JSON.
    Generic,
    /// A Slack incoming-webhook message (`text` plus Block Kit `blocks`).
    Slack,
}

/// One receiver of notifications.
#[derive(Clone)]
pub struct Webhook {
    /// `https://…`; `http://` only to a loopback host (checked by `Notifier::start`).
    pub url: String,
    /// HMAC key for `X-Portcullis-Signature`; no signature header without it.
    pub secret: Option<SecretString>,
    pub format: Format,
    /// Deliver only notifications concerning one of these reviewer groups; empty = all.
    pub groups: Vec<String>,
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Attempts per delivery, the first one included; at least 1.
    pub max_attempts: u32,
}

impl Webhook {
    /// A generic-format hook for every group, unsigned, with the default timeout and attempts.
    pub fn new(url: impl Into<String>) -> Self {
        Webhook {
            url: url.into(),
            secret: None,
            format: Format::Generic,
            groups: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

// By hand rather than derived: the URL itself may carry credentials (userinfo, a token in the
// query), so Debug shows the redacted form, and the secret shows only whether it is set.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redact_str(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("format", &self.format)
            .field("groups", &self.groups)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// A validated [`Webhook`], as the worker uses it.
pub(crate) struct Hook {
    pub(crate) url: Url,
    /// What failures and logs show instead of `url`.
    pub(crate) redacted: String,
    pub(crate) secret: Option<SecretString>,
    pub(crate) format: Format,
    pub(crate) groups: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
}

impl Hook {
    pub(crate) fn compile(index: usize, hook: Webhook) -> Result<Hook, NotifyError> {
        let redacted = redact_str(&hook.url);
        let invalid = |reason: String| NotifyError::InvalidUrl {
            index,
            url: redacted.clone(),
            reason,
        };
        let url = Url::parse(&hook.url).map_err(|e| invalid(e.to_string()))?;
        check_scheme(&url).map_err(|r| invalid(r.to_owned()))?;
        let bad = |reason| NotifyError::InvalidHook {
            index,
            url: redacted.clone(),
            reason,
        };
        if hook.max_attempts == 0 {
            return Err(bad("max_attempts must be at least 1"));
        }
        if hook.timeout.is_zero() {
            return Err(bad("timeout must be greater than zero"));
        }
        Ok(Hook {
            url,
            redacted,
            secret: hook.secret,
            format: hook.format,
            groups: hook.groups,
            timeout: hook.timeout,
            max_attempts: hook.max_attempts,
        })
    }

    /// Whether a notification for `groups` goes to this hook.
    pub(crate) fn wants(&self, groups: &[String]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// Plain HTTP would expose the payload (review details, the signature) to the network, so it
/// is accepted only when the receiver is on this machine, e.g. a local relay or a test.
fn check_scheme(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("http:// is allowed only to a loopback host; use https://"),
        "https" => Err("no host"),
        _ => Err("the scheme must be https (or http to a loopback host)"),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // `host_str` keeps the brackets of an IPv6 literal and normalizes IPv4 spellings such as
    // `2130706433` to dotted form, so parsing it is enough.
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The URL without userinfo, query or fragment, which is where webhook credentials usually
/// hide. An unparsable URL is not echoed at all, since it may be a secret mistyped.
pub(crate) fn redact_str(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => redact(&url),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

fn redact(url: &Url) -> String {
    let mut clean = url.clone();
    // Both setters fail only for URLs that cannot have credentials; nothing to strip then.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<(), String> {
        Hook::compile(0, Webhook::new(url))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn schemes_and_hosts() {
        assert!(check("https://hooks.example.com/x").is_ok());
        assert!(check("http://127.0.0.1:8080/x").is_ok());
        assert!(check("http://127.1.2.3/x").is_ok());
        assert!(check("http://[::1]:9/x").is_ok());
        assert!(check("http://localhost/x").is_ok());
        assert!(check("http://LOCALHOST/x").is_ok());
        assert!(check("http://2130706433/x").is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "http://10.0.0.1/x",
            "http://localhost.evil.com/x",
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(check(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ranges() {
        let mut hook = Webhook::new("https://h.example/");
        hook.max_attempts = 0;
        assert!(Hook::compile(0, hook.clone()).is_err());
        hook.max_attempts = 1;
        hook.timeout = Duration::ZERO;
        assert!(Hook::compile(0, hook).is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_str("https://user:pw@h.example:8443/p/a?token=t#frag"),
            "https://h.example:8443/p/a"
        );
        assert_eq!(redact_str("nonsense tok3n"), "<unparsable URL>");
        let err = check("http://user:pw@example.com/?token=t").unwrap_err();
        assert!(!err.contains("pw") && !err.contains("token"), "{err}");
    }

    #[test]
    fn routing() {
        let mut hook = Hook::compile(0, Webhook::new("https://h.example/")).unwrap();
        assert!(hook.wants(&[]));
        hook.groups = vec!["dba".into()];
        assert!(hook.wants(&["sre".into(), "dba".into()]));
        assert!(!hook.wants(&["security".into()]));
        assert!(!hook.wants(&[]));
    }
}
