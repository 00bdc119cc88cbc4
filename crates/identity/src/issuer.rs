//! One configured issuer at run time: its settings and its cached keys.
//!
//! Keys are read lock-free in effect (an `Arc` snapshot under a briefly held lock). Fetches
//! for unknown key ids are single-flight (one async mutex per issuer; a caller that waited
//! while another fetched re-reads the keys instead of fetching again) and rate-limited to one
//! per `jwks_refetch_min_interval`, so a flood of tokens with invented `kid`s cannot turn the
//! gateway into a load generator against the IdP. A failed fetch keeps the cached keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use jsonwebtoken::Algorithm;

use crate::cache::TokenCache;
use crate::fetch::{FetchError, fetch_keys};
use crate::keys::{KeySet, Selection, VerifyKey};
use crate::reason::{Reason, Rejection};
use crate::settings::{IssuerSettings, KeySource};

#[derive(Debug)]
pub(crate) struct Issuer {
    pub settings: IssuerSettings,
    keys: RwLock<Arc<KeySet>>,
    /// When the last fetch started; held across the fetch to make it single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Counts completed fetch attempts, so a waiter can tell someone fetched while it waited.
    attempts: AtomicU64,
}

impl Issuer {
    pub fn new(settings: IssuerSettings) -> Self {
        let keys = match &settings.keys {
            KeySource::Static(set) => KeySet::from_jwks(&set.keys),
            KeySource::Discovery => KeySet::default(),
        };
        Self {
            settings,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
        }
    }

    pub fn is_discovery(&self) -> bool {
        matches!(self.settings.keys, KeySource::Discovery)
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys that may have signed a token with this `kid` and `alg`, fetching once (rate
    /// limited, single-flight) when none is known. Cancel-safe: dropping the future at worst
    /// abandons a fetch, and the rate limit still counts it.
    pub async fn keys_for(
        &self,
        client: &reqwest::Client,
        cache: &TokenCache,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<VerifyKey>, Rejection> {
        // Read before the snapshot: if it is unchanged once we hold the lock, no fetch has
        // completed since the snapshot was taken (a fetch stores its keys, then counts).
        let seen = self.attempts.load(Ordering::Acquire);
        match self.current().select(kid, alg) {
            Selection::Found(keys) => return Ok(keys),
            Selection::KidWrongAlg => return Err(kid_wrong_alg()),
            Selection::NotFound if !self.is_discovery() => {
                return Err(Rejection::new(
                    Reason::KidUnknown,
                    "no configured key fits the token",
                ));
            }
            Selection::NotFound => {}
        }
        {
            let mut last = self.last_fetch.lock().await;
            let someone_fetched = self.attempts.load(Ordering::Acquire) != seen;
            let limited =
                last.is_some_and(|t| t.elapsed() < self.settings.jwks_refetch_min_interval);
            if !someone_fetched && !limited {
                *last = Some(Instant::now());
                self.fetch_and_store(client, cache).await;
            }
        }
        let current = self.current();
        match current.select(kid, alg) {
            Selection::Found(keys) => Ok(keys),
            Selection::KidWrongAlg => Err(kid_wrong_alg()),
            Selection::NotFound if !current.loaded => Err(Rejection::new(
                Reason::JwksUnavailable,
                "the issuer's keys have never been fetched and cannot be fetched now",
            )),
            Selection::NotFound => Err(Rejection::new(
                Reason::KidUnknown,
                "no key of the issuer's key set fits the token, even after a refresh",
            )),
        }
    }

    /// A scheduled refresh: ignores the rate limit but still joins the single flight.
    pub async fn refresh(&self, client: &reqwest::Client, cache: &TokenCache) {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_store(client, cache).await;
    }

    /// Must be called with `last_fetch` held. Failures are logged and keep the cached keys.
    /// The attempt is counted after the keys are stored, whatever the outcome.
    async fn fetch_and_store(&self, client: &reqwest::Client, cache: &TokenCache) {
        match fetch_keys(client, &self.settings.issuer).await {
            Ok(next) => self.store(next, cache),
            Err(e) => log_failure(&self.settings.issuer, &e),
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
    }

    fn store(&self, next: KeySet, cache: &TokenCache) {
        let withdrawn = self.current().loses_keys_in(&next);
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        // Tokens verified with a key the IdP has withdrawn must be verified again.
        if withdrawn {
            cache.clear();
        }
        tracing::debug!(issuer = %self.settings.issuer, withdrawn, "issuer keys refreshed");
    }
}

fn kid_wrong_alg() -> Rejection {
    Rejection::new(
        Reason::SignatureInvalid,
        "the key named by 'kid' does not fit the token's 'alg'",
    )
}

fn log_failure(issuer: &str, e: &FetchError) {
    tracing::warn!(issuer, error = %e, "fetching issuer keys failed; keeping cached keys");
}

#[cfg(test)]
mod tests;
