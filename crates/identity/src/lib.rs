//! Identity: turns a bearer token into a [`Principal`] (DESIGN.md §3).
//!
//! A [`Validator`] holds the trusted issuers ([`IssuerSettings`]), their keys (fetched by
//! [OpenID Connect Discovery] or configured statically), a cache of verified tokens and the
//! [`Revocations`]. [`DevIssuer`] is the embedded issuer; its tokens go through the same
//! validator. This crate knows nothing of doors, policy or config files.
//!
//! Architecture Invariant: no claim but `iss` is read before the signature is verified, and
//! `iss` only selects the keys. No HMAC key is ever built, so a public key can never be used
//! as a shared secret (the RS256/HS256 confusion attack).
//!
//! Architecture Invariant: revocation is checked on every validation, cached or not.
//!
//! # Reason codes
//!
//! Checks run in this order; a token is refused for the first one it fails. Codes are stable.
//!
//! | code | meaning | hint for the caller |
//! |---|---|---|
//! | `token_too_large` | longer than `max_token_bytes` (checked first) | request fewer claims or groups |
//! | `token_malformed` | not three unpadded base64url parts | send a compact JWS |
//! | `header_invalid` | header not a JSON object, no string `alg`, or non-string `kid` | fix the token header |
//! | `alg_none` | `alg` is `none` | obtain a signed token |
//! | `alg_not_allowed` | `alg` unknown, HMAC, or not in the issuer's allow-list | use an algorithm the issuer is configured for |
//! | `crit_unsupported` | the header has `crit` (no extension is understood) | obtain a token without `crit` |
//! | `claims_invalid` | payload not a JSON object, or a claim of the wrong type | fix claim types |
//! | `issuer_unknown` | no `iss`, or not a configured issuer (exact match) | use a trusted IdP |
//! | `kid_unknown` | no key fits `kid`/`alg`, even after one rate-limited refetch | obtain a fresh token |
//! | `jwks_unavailable` | the issuer's keys were never fetched and cannot be now | retry later |
//! | `signature_invalid` | no candidate key verifies the signature | obtain a new token |
//! | `exp_missing` | no `exp` | obtain a token with an expiry |
//! | `expired` | `now >= exp + leeway` | obtain a new token |
//! | `not_yet_valid` | `now + leeway < nbf` | check clocks or wait |
//! | `iat_in_future` | `iat > now + leeway` | check the issuer's clock |
//! | `aud_missing` | no `aud` | request a token for this gateway |
//! | `aud_mismatch` | no `aud` value is a configured audience | request a token for this gateway |
//! | `lifetime_too_long` | `exp - (iat, else nbf, else now) > max_token_lifetime` | request a shorter-lived token |
//! | `sub_missing` | no or empty `sub` | obtain a token with a subject |
//! | `revoked_subject` | the subject, or an actor in `act`, is revoked | contact an administrator |
//! | `revoked_client` | the client id, or an actor's, is revoked | contact an administrator |
//! | `revoked_token` | the `jti` is revoked | obtain a new token |
//!
//! [`Reason::hint`] gives the full hint text. A [`Rejection`]'s `detail` never contains token
//! bytes or key material.
//!
//! [OpenID Connect Discovery]: https://openid.net/specs/openid-connect-discovery-1_0.html

mod cache;
mod canonical;
mod claims;
mod dev_issuer;
mod error;
mod fetch;
mod issuer;
mod keys;
mod principal;
mod reason;
mod revocation;
mod settings;
mod token;
mod validator;

#[cfg(test)]
mod test_support;

pub use dev_issuer::{DevIssuer, MintRequest};
pub use error::IdentityError;
pub use principal::{Actor, Principal, PrincipalKind};
pub use reason::{Reason, Rejection};
pub use revocation::{Revocation, Revocations};
pub use settings::{IdentitySettings, IssuerSettings, KeySource, StaticGroups};
pub use validator::Validator;
