//! The verified-token cache: SHA-256 of the token's canonical form ([`crate::canonical`]) to
//! the principal it proved. Keyed on the canonical form, the two strings of an ECDSA token
//! (`s` and `n - s`) are one entry: rewriting a signature yields neither a second entry nor a
//! token the gateway could tell apart from the original.
//!
//! A hit skips the claims and the signature check, which is what makes a warm validation cost
//! a hash and a map lookup (plus, for ES256/ES384, reading the header's `alg`). Entries are
//! never served at or past the token's `exp` (no leeway), and revocations are checked by the
//! caller on every hit, so caching never extends access.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::digest;

use crate::principal::Principal;

pub(crate) type CacheKey = [u8; 32];

#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    map: RwLock<HashMap<CacheKey, Arc<Principal>>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Hashing rather than storing the token keeps bearer secrets out of memory we hold on to.
    /// `token` is the canonical form: the caller makes it so.
    pub fn key(token: &str) -> CacheKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    pub fn get(&self, key: &CacheKey, now: i64) -> Option<Arc<Principal>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key).filter(|p| p.expires_at > now).cloned()
    }

    /// When full, expired entries go first; if that frees nothing, everything goes. A full
    /// clear is crude but bounded and cheap, and the next requests simply re-verify.
    pub fn insert(&self, key: CacheKey, principal: Arc<Principal>, now: i64) {
        if self.capacity == 0 || principal.expires_at <= now {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, p| p.expires_at > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, principal);
    }

    pub fn clear(&self) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
