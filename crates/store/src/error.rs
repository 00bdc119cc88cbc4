//! Store errors. Messages are built from database error text with the connection password
//! scrubbed out (see `redact`), and never include the connection URL itself.

/// An error from the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme names no supported backend.
    #[error("unsupported store URL scheme {scheme:?}: use sqlite://, postgres:// or postgresql://")]
    UnsupportedUrl { scheme: String },

    /// The URL could not be parsed into connection options.
    #[error("invalid {backend} store URL: {message}")]
    InvalidUrl {
        backend: &'static str,
        message: String,
    },

    /// Preparing the local filesystem (the SQLite file's directory) failed.
    #[error("cannot create directory {path} for the SQLite store: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the {backend} store: {message}")]
    Connect {
        backend: &'static str,
        message: String,
    },

    /// Running the schema migrations failed.
    #[error("migrating the {backend} store failed: {message}")]
    Migrate {
        backend: &'static str,
        message: String,
    },

    /// A row with the same key already exists (e.g. two gateways share a node name).
    #[error("{op}: a row with the same key already exists: {message}")]
    Conflict { op: &'static str, message: String },

    /// A query failed.
    #[error("{op} failed: {message}")]
    Query { op: &'static str, message: String },
}

impl StoreError {
    /// Classifies a query error, scrubbing `secrets` from its text.
    pub(crate) fn query(op: &'static str, err: &sqlx::Error, secrets: &[String]) -> Self {
        let message = crate::redact::scrub(&err.to_string(), secrets);
        match err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict { op, message },
            _ => Self::Query { op, message },
        }
    }
}
