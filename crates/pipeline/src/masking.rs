//! The masking profile registry every door shares (DESIGN.md §6): the configured profiles,
//! compiled on first use per profile set and kept (there are few sets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use portcullis_masking::{Masker, ProfileSpec};
use secrecy::{ExposeSecret, SecretString};

/// The masking profiles connections and policies may name (`[masking]` in `portcullis.toml`).
#[derive(Debug, Clone)]
pub struct MaskingSettings {
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// The deployment's key for `hmac` tokens.
    pub hmac_key: Option<SecretString>,
}

impl Default for MaskingSettings {
    /// The built-in `default` profile only.
    fn default() -> Self {
        Self {
            profiles: BTreeMap::from([("default".to_owned(), ProfileSpec::builtin_default())]),
            hmac_key: None,
        }
    }
}

/// Compiled maskers by profile set.
pub struct Maskers {
    settings: MaskingSettings,
    built: Mutex<HashMap<Vec<String>, Masker>>,
}

impl std::fmt::Debug for Maskers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maskers")
            .field(
                "profiles",
                &self.settings.profiles.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Maskers {
    pub fn new(settings: MaskingSettings) -> Self {
        Self {
            settings,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// Checks that a profile set compiles (an hmac strategy without a key is the usual
    /// mistake), so a door refuses to start rather than every command.
    pub fn check(&self, names: &[String]) -> Result<(), String> {
        self.get(names).map(drop)
    }

    /// The masker for `names` (sorted, deduplicated by the caller). An unknown profile name
    /// (a policy naming a profile the config lacks) is replaced by the built-in default: the
    /// policy wanted masking, so the answer is masked rather than passed in the clear.
    pub fn get(&self, names: &[String]) -> Result<Masker, String> {
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(m) = built.get(names) {
            return Ok(m.clone());
        }
        let fallback = ProfileSpec::builtin_default();
        let specs: Vec<&ProfileSpec> = names
            .iter()
            .map(|n| {
                self.settings.profiles.get(n).unwrap_or_else(|| {
                    tracing::warn!(profile = %n, "unknown masking profile; applying the built-in default");
                    &fallback
                })
            })
            .collect();
        let key = self
            .settings
            .hmac_key
            .as_ref()
            .map(|k| k.expose_secret().as_bytes());
        let masker = Masker::new(&specs, key).map_err(|e| e.to_string())?;
        built.insert(names.to_vec(), masker.clone());
        Ok(masker)
    }
}
