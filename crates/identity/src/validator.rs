//! The validation pipeline: bearer token in, [`Principal`] or [`Rejection`] out.
//!
//! Order (each step its own [`Reason`]): size (of the input as given); then ASCII whitespace
//! at both ends is dropped and the token brought to its canonical form ([`crate::canonical`]);
//! then shape, header, issuer-independent algorithm checks, claim types, issuer selection by
//! exact `iss`, the issuer's algorithm allow-list, key lookup, signature, then time, audience,
//! lifetime and subject, and finally revocation.
//! Nothing but `iss` is read before the signature is verified, and `iss` only picks the keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;

use crate::cache::TokenCache;
use crate::canonical::canonical;
use crate::error::IdentityError;
use crate::issuer::Issuer;
use crate::principal::Principal;
use crate::reason::{Reason, Rejection};
use crate::revocation::Revocations;
use crate::settings::{IdentitySettings, StaticGroups, check_issuer};
use crate::token;

/// Validates tokens against the configured issuers. Cheap to clone; clones share keys, the
/// verified-token cache and the revocation set.
#[derive(Clone)]
pub struct Validator(Arc<Inner>);

struct Inner {
    issuers: HashMap<String, Issuer>,
    /// Configuration order, for `issuers()` and logs.
    order: Vec<String>,
    /// Union of every issuer's allow-list, for the checks made before `iss` is known.
    allowed: Vec<Algorithm>,
    static_groups: Vec<StaticGroups>,
    max_token_bytes: usize,
    cache: TokenCache,
    revocations: Revocations,
    client: reqwest::Client,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("issuers", &self.0.order)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Checks the settings and prepares the issuers. Does no network I/O: Discovery issuers
    /// fetch their keys on first use or on `refresh_all`.
    pub fn new(settings: IdentitySettings) -> Result<Self, IdentityError> {
        let mut issuers = HashMap::new();
        let mut order = Vec::new();
        let mut allowed = Vec::new();
        for s in settings.issuers {
            check_issuer(&s)?;
            if issuers.contains_key(&s.issuer) {
                return Err(IdentityError::DuplicateIssuer(s.issuer));
            }
            for alg in &s.algorithms {
                if !allowed.contains(alg) {
                    allowed.push(*alg);
                }
            }
            order.push(s.issuer.clone());
            issuers.insert(s.issuer.clone(), Issuer::new(s));
        }
        if let Some(index) = settings
            .static_groups
            .iter()
            .position(|g| g.subject.is_none() && g.client_id.is_none())
        {
            return Err(IdentityError::EmptyStaticGroups { index });
        }
        Ok(Self(Arc::new(Inner {
            issuers,
            order,
            allowed,
            static_groups: settings.static_groups,
            max_token_bytes: settings.max_token_bytes,
            cache: TokenCache::new(settings.cache_capacity),
            revocations: Revocations::new(),
            client: crate::fetch::client()?,
        })))
    }

    /// Validates `token` at the current system time.
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>, Rejection> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.validate_at(token, now).await
    }

    /// Validates `token` as of `now_unix` (seconds). Cancel-safe.
    pub async fn validate_at(
        &self,
        token: &str,
        now_unix: i64,
    ) -> Result<Arc<Principal>, Rejection> {
        let inner = &*self.0;
        if token.len() > inner.max_token_bytes {
            let d = format!("the token is longer than {} bytes", inner.max_token_bytes);
            return Err(Rejection::new(Reason::TokenTooLarge, d));
        }
        // Every door hands its token over as it came (an HTTP header, a PostgreSQL password, a
        // token file read with its newline), so surrounding whitespace is dropped here, once,
        // for all of them. Whitespace inside is not base64url, so `split` refuses it.
        let token = token.trim_ascii();
        // Keyed on, and verified in, its canonical form: the two strings of an ECDSA token
        // are one cache entry, and the string that is verified is the string that is cached.
        let token = canonical(token);
        let key = TokenCache::key(&token);
        let principal = match inner.cache.get(&key, now_unix) {
            Some(hit) => hit,
            None => {
                let fresh = Arc::new(self.verify(&token, now_unix).await?);
                // Cached even if revoked below: revocation is checked on every hit, and this
                // spares a signature check on each retry of a revoked token.
                inner.cache.insert(key, fresh.clone(), now_unix);
                fresh
            }
        };
        match inner.revocations.check(&principal) {
            None => Ok(principal),
            Some(reason) => Err(
                Rejection::new(reason, "this identity or token has been revoked")
                    .with_issuer(&principal.issuer)
                    .with_subject(Some(&principal.subject)),
            ),
        }
    }

    /// Every check except revocation, without the cache.
    async fn verify(&self, token: &str, now: i64) -> Result<Principal, Rejection> {
        let inner = &*self.0;
        let parsed = token::parse(token, &inner.allowed)?;
        let unknown = || Rejection::new(Reason::IssuerUnknown, "'iss' is not a trusted issuer");
        let iss = parsed.claims.iss.as_deref().ok_or_else(unknown)?;
        let issuer = inner.issuers.get(iss).ok_or_else(unknown)?;
        let s = &issuer.settings;
        let tag = |r: Rejection| r.with_issuer(&s.issuer);
        if !s.algorithms.contains(&parsed.alg) {
            let d = format!("{:?} is not allowed for this issuer", parsed.alg);
            return Err(tag(Rejection::new(Reason::AlgNotAllowed, d)));
        }
        let keys = issuer
            .keys_for(
                &inner.client,
                &inner.cache,
                parsed.kid.as_deref(),
                parsed.alg,
            )
            .await
            .map_err(tag)?;
        if !keys
            .iter()
            .any(|k| k.verify(parsed.signing_input, parsed.signature, parsed.alg))
        {
            let r = Rejection::new(Reason::SignatureInvalid, "the signature does not verify");
            return Err(tag(r));
        }
        // From here on the claims are the issuer's word, so the subject may be reported.
        let claims = parsed.claims;
        let subject = claims.sub.clone();
        let with_sub = |r: Rejection| tag(r).with_subject(subject.as_deref());
        claims.check(s, now).map_err(with_sub)?;
        claims
            .into_principal(s, &inner.static_groups)
            .map_err(|d| with_sub(Rejection::new(Reason::ClaimsInvalid, d)))
    }

    pub fn revocations(&self) -> &Revocations {
        &self.0.revocations
    }

    /// Fetches discovery and keys for every Discovery issuer, concurrently. Failures are
    /// logged and keep the cached keys.
    pub async fn refresh_all(&self) {
        let mut tasks = tokio::task::JoinSet::new();
        for name in &self.0.order {
            if self.0.issuers.get(name).is_some_and(Issuer::is_discovery) {
                let (this, name) = (self.clone(), name.clone());
                tasks.spawn(async move {
                    if let Some(issuer) = this.0.issuers.get(&name) {
                        issuer.refresh(&this.0.client, &this.0.cache).await;
                    }
                });
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Refreshes every `every` (at least one second), starting now. The task ends by itself
    /// once every clone of this validator is dropped.
    pub fn spawn_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.0);
        let every = every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Validator(inner).refresh_all().await;
            }
        })
    }

    /// The configured issuers, in configuration order.
    pub fn issuers(&self) -> Vec<String> {
        self.0.order.clone()
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.0.cache.len()
    }
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;
