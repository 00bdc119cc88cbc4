//! Why a token was refused: one stable reason code per failed check.
//!
//! The codes are part of the external interface (DESIGN.md §10): they appear in problem+json
//! responses and audit records, so a code is never renamed or reused for another meaning.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The check a token failed. Variants are listed in pipeline order: a token is refused for the
/// first check it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    TokenTooLarge,
    TokenMalformed,
    HeaderInvalid,
    AlgNone,
    AlgNotAllowed,
    CritUnsupported,
    ClaimsInvalid,
    IssuerUnknown,
    KidUnknown,
    JwksUnavailable,
    SignatureInvalid,
    ExpMissing,
    Expired,
    NotYetValid,
    IatInFuture,
    AudMissing,
    AudMismatch,
    LifetimeTooLong,
    SubMissing,
    RevokedSubject,
    RevokedClient,
    RevokedToken,
}

impl Reason {
    /// Every reason, in pipeline order (useful for metrics pre-registration and docs).
    pub const ALL: &'static [Reason] = &[
        Reason::TokenTooLarge,
        Reason::TokenMalformed,
        Reason::HeaderInvalid,
        Reason::AlgNone,
        Reason::AlgNotAllowed,
        Reason::CritUnsupported,
        Reason::ClaimsInvalid,
        Reason::IssuerUnknown,
        Reason::KidUnknown,
        Reason::JwksUnavailable,
        Reason::SignatureInvalid,
        Reason::ExpMissing,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::IatInFuture,
        Reason::AudMissing,
        Reason::AudMismatch,
        Reason::LifetimeTooLong,
        Reason::SubMissing,
        Reason::RevokedSubject,
        Reason::RevokedClient,
        Reason::RevokedToken,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::TokenTooLarge => "token_too_large",
            Reason::TokenMalformed => "token_malformed",
            Reason::HeaderInvalid => "header_invalid",
            Reason::AlgNone => "alg_none",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::CritUnsupported => "crit_unsupported",
            Reason::ClaimsInvalid => "claims_invalid",
            Reason::IssuerUnknown => "issuer_unknown",
            Reason::KidUnknown => "kid_unknown",
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::ExpMissing => "exp_missing",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::IatInFuture => "iat_in_future",
            Reason::AudMissing => "aud_missing",
            Reason::AudMismatch => "aud_mismatch",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::SubMissing => "sub_missing",
            Reason::RevokedSubject => "revoked_subject",
            Reason::RevokedClient => "revoked_client",
            Reason::RevokedToken => "revoked_token",
        }
    }

    /// What the caller (often an agent) can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Reason::TokenTooLarge => "send a smaller token: request fewer claims or groups",
            Reason::TokenMalformed => {
                "send a compact JWS: three base64url parts separated by dots, without 'Bearer ' twice"
            }
            Reason::HeaderInvalid => "the token header must be a JSON object with an 'alg'",
            Reason::AlgNone => "unsigned tokens are never accepted; obtain a signed token",
            Reason::AlgNotAllowed => {
                "obtain a token signed with an algorithm this issuer is configured for"
            }
            Reason::CritUnsupported => "obtain a token without a 'crit' header",
            Reason::ClaimsInvalid => {
                "the token payload must be a JSON object with standard claim types"
            }
            Reason::IssuerUnknown => "obtain a token from an identity provider this gateway trusts",
            Reason::KidUnknown => {
                "the signing key is not published by the issuer; obtain a fresh token"
            }
            Reason::JwksUnavailable => "the issuer's keys cannot be fetched right now; retry later",
            Reason::SignatureInvalid => {
                "the token was altered or signed by another key; obtain a new one"
            }
            Reason::ExpMissing => "obtain a token with an expiry ('exp')",
            Reason::Expired => "the token has expired; obtain a new one",
            Reason::NotYetValid => "the token is not valid yet ('nbf'); check clocks or wait",
            Reason::IatInFuture => "the token was issued in the future; check the issuer's clock",
            Reason::AudMissing => "request a token with an audience ('aud') for this gateway",
            Reason::AudMismatch => "request a token whose audience ('aud') is this gateway",
            Reason::LifetimeTooLong => "request a shorter-lived token",
            Reason::SubMissing => "obtain a token that names its subject ('sub')",
            Reason::RevokedSubject => "this identity has been revoked; contact an administrator",
            Reason::RevokedClient => "this client has been revoked; contact an administrator",
            Reason::RevokedToken => "this token has been revoked; obtain a new one",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused token. `detail` is safe to show to the caller: it never contains token bytes or
/// key material. `issuer` is set once the token's issuer is known to be a configured one, and
/// `subject` only once the signature has been verified.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    pub issuer: Option<String>,
    pub subject: Option<String>,
}

impl Rejection {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            issuer: None,
            subject: None,
        }
    }

    pub(crate) fn with_issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    pub(crate) fn with_subject(mut self, subject: Option<&str>) -> Self {
        self.subject = subject.map(str::to_owned);
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_match_serde() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert!(r.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!r.hint().is_empty());
            let json = serde_json::to_string(r).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", r.code()));
        }
        assert_eq!(seen.len(), 22);
    }
}
