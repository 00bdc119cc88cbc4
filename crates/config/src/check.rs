//! Semantic checks that types alone cannot express. `config check` prints all of them;
//! `serve` refuses to start on any error.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::Serialize;

use crate::{Config, SecretRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong with the config or the policies, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// `file:line` or a key path such as `connections[0].password`.
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn error(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            location: location.into(),
            message: message.into(),
        }
    }
    pub fn warning(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            location: location.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.location, self.message)
    }
}

/// Signature algorithms an issuer may use. HMAC and `none` are never allowed: a gateway that
/// accepts HS256 can be fooled with a token keyed by the issuer's public key.
pub const ASYMMETRIC_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Config {
    /// Every semantic problem of the config itself (policies are checked by the caller).
    pub fn check(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            p.push(Problem::error(
                "server.listen",
                format!("`{}` is not an IP:port address", self.server.listen),
            ));
        }
        let url = self.store_url();
        if !["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            p.push(Problem::error(
                "store.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.postgres.enabled && self.postgres.listen.parse::<SocketAddr>().is_err() {
            p.push(Problem::error(
                "postgres.listen",
                format!("`{}` is not an IP:port address", self.postgres.listen),
            ));
        }
        if self.postgres.tls_cert.is_some() != self.postgres.tls_key.is_some() {
            p.push(Problem::error(
                "postgres",
                "set both tls_cert and tls_key, or neither (a self-signed pair is generated)",
            ));
        }
        for f in [&self.postgres.tls_cert, &self.postgres.tls_key]
            .into_iter()
            .flatten()
        {
            if !f.is_file() {
                p.push(Problem::error(
                    "postgres",
                    format!("{} does not exist", f.display()),
                ));
            }
        }
        self.check_postgres_limits(&mut p);
        self.check_identity(&mut p);
        self.check_policy_files(&mut p);
        self.check_connections(&mut p);
        self.check_masking(&mut p);
        self.check_approvals(&mut p);
        if self.exec.max_rows == 0 || self.exec.max_bytes == 0 {
            p.push(Problem::error(
                "exec",
                "max_rows and max_bytes must be at least 1 (an agent would never see a row)",
            ));
        }
        p
    }

    /// Each limit's range is checked while parsing (with the line); these are the limits
    /// that contradict one another, so that one of them can never be reached.
    fn check_postgres_limits(&self, p: &mut Vec<Problem>) {
        let pg = &self.postgres;
        if pg.max_sessions_per_principal > pg.max_sessions_per_connection {
            p.push(Problem::warning(
                "postgres.max_sessions_per_principal",
                format!(
                    "{} is above max_sessions_per_connection ({}), which is reached first",
                    pg.max_sessions_per_principal, pg.max_sessions_per_connection
                ),
            ));
        }
        if pg.pool_size > pg.max_server_connections {
            p.push(Problem::warning(
                "postgres.pool_size",
                format!(
                    "{} is above max_server_connections ({}): the pool never holds more than that",
                    pg.pool_size, pg.max_server_connections
                ),
            ));
        }
    }

    fn check_approvals(&self, p: &mut Vec<Problem>) {
        if self.approvals.hold.is_zero() {
            p.push(Problem::error("approvals.hold", "must be longer than 0s"));
        }
        if self.approvals.ttl < self.approvals.hold {
            p.push(Problem::error(
                "approvals.ttl",
                "shorter than approvals.hold: reviews would expire while statements wait",
            ));
        }
        for (i, w) in self.approvals.webhooks.iter().enumerate() {
            let at = format!("approvals.webhooks[{i}]");
            if !matches!(w.format.as_str(), "generic" | "slack") {
                p.push(Problem::error(
                    format!("{at}.format"),
                    format!("`{}`: use generic or slack", w.format),
                ));
            }
            if let Err(e) = issuer_url_ok(&w.url) {
                p.push(Problem::error(format!("{at}.url"), e));
            }
            if let Some(Err(e)) = w.secret.as_ref().map(SecretRef::resolve) {
                p.push(Problem::error(format!("{at}.secret"), e.to_string()));
            }
        }
    }

    fn check_masking(&self, p: &mut Vec<Problem>) {
        let profiles = match self.masking.profiles() {
            Ok(profiles) => profiles,
            Err(mut e) => return p.append(&mut e),
        };
        for (i, c) in self.connections.iter().enumerate() {
            if let Some(name) = &c.masking
                && !profiles.contains_key(name)
            {
                p.push(Problem::error(
                    format!("connections[{i}].masking"),
                    format!("no masking profile `{name}` (define [masking.profiles.{name}] or use `default`)"),
                ));
            }
        }
        match &self.masking.hmac_key {
            Some(key) => {
                if let Err(e) = key.resolve() {
                    p.push(Problem::error("masking.hmac_key", e.to_string()));
                }
            }
            None if self.masking.needs_key() => p.push(Problem::error(
                "masking.hmac_key",
                "a profile uses the hmac strategy, which needs hmac_key = { env = \"...\" } or { file = \"...\" }",
            )),
            None => {}
        }
    }

    fn check_identity(&self, p: &mut Vec<Problem>) {
        let mut seen = HashSet::new();
        for (i, iss) in self.identity.issuers.iter().enumerate() {
            let at = format!("identity.issuers[{i}]");
            if !seen.insert(iss.issuer.as_str()) {
                p.push(Problem::error(
                    &at,
                    format!("issuer {} is listed twice", iss.issuer),
                ));
            }
            if let Err(why) = issuer_url_ok(&iss.issuer) {
                p.push(Problem::error(format!("{at}.issuer"), why));
            }
            if iss.audiences.is_empty() {
                p.push(Problem::error(
                    format!("{at}.audiences"),
                    "at least one audience is required: tokens without a matching `aud` are refused",
                ));
            }
            if iss.algorithms.is_empty() {
                p.push(Problem::error(format!("{at}.algorithms"), "is empty"));
            }
            for alg in &iss.algorithms {
                if !ASYMMETRIC_ALGORITHMS.contains(&alg.as_str()) {
                    p.push(Problem::error(
                        format!("{at}.algorithms"),
                        format!(
                            "`{alg}` is not allowed; use one of {}",
                            ASYMMETRIC_ALGORITHMS.join(", ")
                        ),
                    ));
                }
            }
        }
        for (i, sg) in self.identity.static_groups.iter().enumerate() {
            if sg.subject.is_none() == sg.client_id.is_none() {
                p.push(Problem::error(
                    format!("identity.static_groups[{i}]"),
                    "set exactly one of `subject` or `client_id`",
                ));
            }
        }
        if self.identity.dev_issuer.enabled
            && let Some(url) = &self.identity.dev_issuer.issuer
            && let Err(why) = issuer_url_ok(url)
        {
            p.push(Problem::error("identity.dev_issuer.issuer", why));
        }
    }

    fn check_policy_files(&self, p: &mut Vec<Problem>) {
        if self.policy.files.is_empty() {
            p.push(Problem::error(
                "policy.files",
                "no policy files: every request would be denied",
            ));
        }
        for pattern in &self.policy.files {
            match glob::glob(pattern) {
                Err(e) => p.push(Problem::error(
                    "policy.files",
                    format!("`{pattern}` is not a valid pattern: {e}"),
                )),
                Ok(paths) => {
                    if paths.count() == 0 {
                        p.push(Problem::error(
                            "policy.files",
                            format!("`{pattern}` matches no file"),
                        ));
                    }
                }
            }
        }
    }

    fn check_connections(&self, p: &mut Vec<Problem>) {
        let mut names = HashSet::new();
        for (i, c) in self.connections.iter().enumerate() {
            let at = format!("connections[{i}]");
            if !names.insert(c.name.as_str()) {
                p.push(Problem::error(
                    &at,
                    format!("connection `{}` is defined twice", c.name),
                ));
            }
            if c.name.is_empty()
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                p.push(Problem::error(
                    format!("{at}.name"),
                    "use letters, digits, `_` and `-` only (it is the database name agents connect to)",
                ));
            }
            if !upstream_ok(&c.upstream) {
                p.push(Problem::error(
                    format!("{at}.upstream"),
                    format!("`{}` is not host:port", c.upstream),
                ));
            }
            if let Some(ca) = &c.ca_file
                && !ca.is_file()
            {
                p.push(Problem::error(
                    format!("{at}.ca_file"),
                    format!("{} does not exist", ca.display()),
                ));
            }
            if c.kind == crate::ConnectionKind::Postgres && c.database.is_none() {
                p.push(Problem::error(
                    format!("{at}.database"),
                    "a postgres connection needs the upstream database name",
                ));
            }
            if c.kind == crate::ConnectionKind::Postgres && c.user.is_none() {
                p.push(Problem::error(
                    format!("{at}.user"),
                    "a postgres connection needs the upstream user the gateway logs in as",
                ));
            }
            match &c.password {
                Some(SecretRef::Value(_)) => p.push(Problem::warning(
                    format!("{at}.password"),
                    "a literal secret is stored in the config file; prefer { env = \"...\" } or { file = \"...\" }",
                )),
                Some(s) => {
                    if let Err(e) = s.resolve() {
                        p.push(Problem::error(format!("{at}.password"), e.to_string()));
                    }
                }
                None => {}
            }
        }
    }
}

/// `https://` always; `http://` only for a loopback host, where nothing crosses a network.
pub fn issuer_url_ok(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = host
            .rsplit_once(':')
            .filter(|(h, port)| port.chars().all(|c| c.is_ascii_digit()) && !h.is_empty())
            .map_or(host, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        return Err(format!(
            "`{url}` uses http:// for a host that is not loopback; use https://"
        ));
    }
    Err(format!("`{url}` is not an https:// URL"))
}

fn upstream_ok(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}
