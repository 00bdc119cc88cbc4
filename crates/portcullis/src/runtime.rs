//! Turns the loaded config into each crate's runtime settings, once.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use portcullis_config::{Config, PrincipalType};
use portcullis_identity::{
    DevIssuer, IdentitySettings, IssuerSettings, KeySource, PrincipalKind, Revocation, StaticGroups,
};
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource};

/// Loads the config named by `--config`, `PORTCULLIS_CONFIG` or `./portcullis.toml`.
pub fn load_config(flag: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let (path, _) = portcullis_config::locate(flag)?;
    Ok(portcullis_config::load(&path)?)
}

/// Where `durability = "crash"` keeps its audit journal.
pub fn audit_journal(cfg: &Config) -> PathBuf {
    cfg.server.state_dir.join("audit-journal")
}

/// Opens the state store for reading the trail, after moving into it what a gateway killed
/// at `durability = "crash"` left only in its journal (a running gateway moves its own).
pub async fn audit_store(cfg: &Config) -> anyhow::Result<Arc<dyn portcullis_store::Store>> {
    let store = portcullis_store::open(cfg.store_url()).await?;
    portcullis_audit::recover_journal(store.clone(), &audit_journal(cfg), &cfg.audit.node).await?;
    Ok(store)
}

/// Every file the policy globs match, sorted so ids and messages are stable.
pub fn policy_files(cfg: &Config) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for pattern in &cfg.policy.files {
        match glob::glob(pattern) {
            Ok(paths) => files.extend(paths.flatten()),
            Err(e) => problems.push(format!("policy.files: `{pattern}`: {e}")),
        }
    }
    files.sort();
    files.dedup();
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// Reads and compiles the policies; every problem is returned as `file:line:col: message`.
pub fn load_policies(cfg: &Config) -> Result<PolicyEngine, Vec<String>> {
    let files = policy_files(cfg)?;
    if files.is_empty() {
        return Err(vec![format!(
            "policy.files: {:?} match no file: every request would be denied",
            cfg.policy.files
        )]);
    }
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => sources.push(PolicySource {
                name: f.display().to_string(),
                text,
            }),
            Err(e) => problems.push(format!("{}: cannot read: {e}", f.display())),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    PolicyEngine::compile(&sources).map_err(|ps| {
        ps.into_iter()
            .map(|p| match (p.line, p.column) {
                (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", p.source, p.message),
                (Some(l), None) => format!("{}:{l}: {}", p.source, p.message),
                _ => format!("{}: {}", p.source, p.message),
            })
            .collect()
    })
}

/// The dev issuer, when enabled: its key lives in `state_dir`.
pub fn dev_issuer(cfg: &Config) -> anyhow::Result<Option<Arc<DevIssuer>>> {
    if !cfg.identity.dev_issuer.enabled {
        return Ok(None);
    }
    let d = DevIssuer::load_or_create(&cfg.server.state_dir, &cfg.dev_issuer_url())
        .context("loading the dev issuer key")?;
    Ok(Some(Arc::new(d)))
}

/// Identity settings: configured issuers, plus the dev issuer through the same validator.
pub fn identity_settings(
    cfg: &Config,
    dev: Option<&DevIssuer>,
) -> anyhow::Result<IdentitySettings> {
    let mut issuers = Vec::new();
    for ic in &cfg.identity.issuers {
        let mut s = IssuerSettings::new(ic.issuer.clone(), ic.audiences.clone());
        s.algorithms = ic
            .algorithms
            .iter()
            .map(|a| a.parse().with_context(|| format!("unknown algorithm {a}")))
            .collect::<anyhow::Result<_>>()?;
        s.groups_claim = ic.groups_claim.clone();
        s.max_token_lifetime = ic.max_token_lifetime;
        s.leeway = ic.leeway;
        s.jwks_refetch_min_interval = ic.jwks_refetch_min_interval;
        s.kind = match ic.principal_type {
            PrincipalType::Machine => PrincipalKind::Machine,
            PrincipalType::Human => PrincipalKind::Human,
        };
        s.kind_claim = ic.kind_claim.clone();
        s.keys = KeySource::Discovery;
        issuers.push(s);
    }
    if let Some(d) = dev {
        let mut s = d.issuer_settings(vec![cfg.identity.dev_issuer.audience.clone()]);
        // `token mint` refuses a TTL above max_ttl, so the validator accepts up to it.
        s.max_token_lifetime = cfg.identity.dev_issuer.max_ttl;
        issuers.push(s);
    }
    Ok(IdentitySettings {
        issuers,
        static_groups: cfg
            .identity
            .static_groups
            .iter()
            .map(|g| StaticGroups {
                subject: g.subject.clone(),
                client_id: g.client_id.clone(),
                groups: g.groups.clone(),
            })
            .collect(),
        max_token_bytes: cfg.identity.max_token_bytes,
        cache_capacity: 100_000,
    })
}

/// Revocations written in the config.
pub fn config_revocations(cfg: &Config) -> Vec<Revocation> {
    let r = &cfg.identity.revocations;
    r.subjects
        .iter()
        .cloned()
        .map(Revocation::Subject)
        .chain(r.client_ids.iter().cloned().map(Revocation::ClientId))
        .chain(r.token_ids.iter().cloned().map(Revocation::TokenId))
        .collect()
}

/// A configured connection as policy sees it.
pub fn connection_info(cfg: &Config, name: &str) -> Option<ConnectionInfo> {
    cfg.connection(name).map(policy_view)
}

fn policy_view(c: &portcullis_config::ConnectionConfig) -> ConnectionInfo {
    ConnectionInfo {
        name: c.name.clone(),
        kind: c.kind.as_str().to_string(),
        labels: c.labels.clone(),
    }
}

/// The PostgreSQL door's settings and targets. Secrets are resolved here, once, at start.
pub fn pg_door(
    cfg: &Config,
) -> anyhow::Result<(
    portcullis_proxy_postgres::PgDoorSettings,
    Vec<portcullis_proxy_postgres::PgTarget>,
)> {
    use portcullis_config::{ConnectionKind, UpstreamTlsMode};
    use portcullis_proxy_postgres::{PgDoorSettings, PgTarget, TlsFiles, UpstreamTls};
    let listen = cfg
        .postgres
        .listen
        .parse()
        .with_context(|| format!("postgres.listen `{}`", cfg.postgres.listen))?;
    let mut settings = PgDoorSettings::new(listen, cfg.server.state_dir.clone());
    if let (Some(cert), Some(key)) = (&cfg.postgres.tls_cert, &cfg.postgres.tls_key) {
        settings.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    settings.allow_plaintext_loopback = cfg.postgres.allow_plaintext_loopback;
    settings.max_message_bytes = cfg.postgres.max_message_bytes;
    settings.statement_cache = cfg.postgres.statement_cache;
    settings.redact_literals = cfg.postgres.redact_literals;
    settings.pool_size = cfg.postgres.pool_size;
    settings.pool_idle = cfg.postgres.pool_idle;
    let pg = &cfg.postgres;
    settings.limits = portcullis_proxy_postgres::SessionLimits {
        max_sessions_per_principal: pg.max_sessions_per_principal,
        max_sessions_per_connection: pg.max_sessions_per_connection,
        max_server_connections: pg.max_server_connections,
        server_connection_wait: pg.server_connection_wait,
        message_timeout: pg.message_timeout,
        idle_session_timeout: pg.idle_session_timeout,
        idle_in_transaction_timeout: pg.idle_in_transaction_timeout,
        max_pipeline_depth: pg.max_pipeline_depth,
    };
    settings.record_rows = cfg.recording.rows;
    settings.catalog_refresh = cfg.postgres.catalog_refresh;
    let mut targets = Vec::new();
    for c in cfg
        .connections
        .iter()
        .filter(|c| c.kind == ConnectionKind::Postgres)
    {
        let password = match &c.password {
            Some(s) => Some(
                s.resolve()
                    .with_context(|| format!("connection `{}`: password", c.name))?,
            ),
            None => None,
        };
        targets.push(PgTarget {
            info: policy_view(c),
            upstream: c.upstream.clone(),
            database: c.database.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            password,
            tls: match c.upstream_tls {
                UpstreamTlsMode::Disable => UpstreamTls::Disable,
                UpstreamTlsMode::Require => UpstreamTls::Require,
                UpstreamTlsMode::VerifyFull => UpstreamTls::VerifyFull {
                    ca_file: c.ca_file.clone(),
                },
            },
            masking: c.masking.clone(),
            safe_functions: c.safe_functions.clone(),
        });
    }
    Ok((settings, targets))
}

/// `[masking]` as the doors use it: every profile compiled from the config, and the key.
pub fn masking_settings(
    cfg: &portcullis_config::Config,
) -> anyhow::Result<portcullis_pipeline::MaskingSettings> {
    let profiles = cfg.masking.profiles().map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("masking profiles:\n{}", lines.join("\n"))
    })?;
    let hmac_key = match &cfg.masking.hmac_key {
        Some(k) => Some(k.resolve().context("masking.hmac_key")?),
        None => None,
    };
    Ok(portcullis_pipeline::MaskingSettings { profiles, hmac_key })
}
