//! Set-up errors: bad issuer settings and dev-issuer key or minting problems.
//!
//! Token refusals are not errors of this kind; they are [`crate::Rejection`]s.

use std::path::PathBuf;

/// Something wrong with the configuration or the dev issuer, found before any token is seen.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("issuer {issuer:?}: {problem}")]
    InvalidIssuer { issuer: String, problem: String },
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    #[error("issuer {issuer:?}: algorithm {alg} is not allowed (HMAC and 'none' never are)")]
    ForbiddenAlgorithm { issuer: String, alg: String },
    #[error("static groups entry {index} names neither a subject nor a client id")]
    EmptyStaticGroups { index: usize },
    #[error("cannot build the HTTP client for key discovery: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("dev issuer key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dev issuer key file {path} is not a P-256 PKCS#8 PEM key: {problem}")]
    KeyFormat { path: PathBuf, problem: String },
    #[error("cannot generate the dev issuer key")]
    KeyGeneration,
    #[error("mint: claim {0:?} is set by the issuer and cannot be overridden")]
    ReservedClaim(String),
    #[error("mint: {0}")]
    InvalidMintRequest(String),
    #[error("mint: signing failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}
