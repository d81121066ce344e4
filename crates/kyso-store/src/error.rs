//! The store's error type.

use crate::records::CertStatus;

/// Everything a store operation can fail with. Serials in messages are lowercase hex.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres://` / `postgresql://`, or cannot be parsed.
    #[error("unsupported or malformed database URL ({reason})")]
    BadUrl {
        /// What is wrong (the URL itself is not repeated: it may hold a password).
        reason: String,
    },
    /// Connecting to the database failed.
    #[error("cannot connect to the database: {source}")]
    Connect {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Running the embedded migrations failed.
    #[error("database migration failed: {source}")]
    Migrate {
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed for a reason not covered by a more specific variant.
    #[error("database error during {operation}: {source}")]
    Database {
        /// The store operation, e.g. "reserve_certificate".
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A write could not be committed, or the writer is gone (a shutting-down store); nothing of the
    /// operation was stored.
    #[error("database write during {operation} not committed: {detail}")]
    Unavailable {
        /// The store operation.
        operation: &'static str,
        /// What happened.
        detail: String,
    },
    /// The thing asked for does not exist.
    #[error("{entity} not found: {key}")]
    NotFound {
        /// "certificate", "ca", "staff", "api_client", ...
        entity: &'static str,
        /// Its key (hex serial, name, id).
        key: String,
    },
    /// A certificate, or a time-stamp token, with this serial already exists (certificate serials
    /// and time-stamp serials are each unique per database).
    #[error("duplicate serial {serial}")]
    DuplicateSerial {
        /// Hex serial.
        serial: String,
    },
    /// Another unique value collided (CA name, API key hash).
    #[error("{entity} already exists: {key}")]
    AlreadyExists {
        /// "ca", "api_client", "verification".
        entity: &'static str,
        /// The colliding key (never an API key or its hash).
        key: String,
    },
    /// The record refers to something that does not exist (unknown CA, staff id, parent CA, client).
    #[error("{what} refers to something that does not exist")]
    UnknownReference {
        /// Which reference, e.g. "certificate.ca".
        what: &'static str,
    },
    /// The certificate was already completed with its DER.
    #[error("certificate {serial} is already completed")]
    AlreadyCompleted {
        /// Hex serial.
        serial: String,
    },
    /// The certificate is already revoked (revocation is final).
    #[error("certificate {serial} is already revoked")]
    AlreadyRevoked {
        /// Hex serial.
        serial: String,
    },
    /// The certificate is already on hold.
    #[error("certificate {serial} is already on hold")]
    AlreadyOnHold {
        /// Hex serial.
        serial: String,
    },
    /// Releasing a hold needs a certificate on hold.
    #[error("certificate {serial} is not on hold (status {status})")]
    NotOnHold {
        /// Hex serial.
        serial: String,
        /// Its current status.
        status: CertStatus,
    },
    /// A CRL number not above the latest stored one for the CA.
    #[error("CRL number {number} for CA {ca} is not above the latest stored number {latest}")]
    CrlNumberNotIncreasing {
        /// CA name.
        ca: String,
        /// The number offered.
        number: i64,
        /// The latest stored.
        latest: i64,
    },
    /// An argument is out of bounds (empty serial, oversized text, bad reason for this operation...).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A signing authorisation was withdrawn (or something else that may have been) after it
    /// was read: the audit record that would have released a signature made on it was not
    /// written. Read the authorisation again.
    #[error(
        "signing authority changed since it was read (authorisation epoch {expected}, now {current})"
    )]
    AuthorisationChanged {
        /// The epoch the authorisation was read at.
        expected: i64,
        /// The epoch now.
        current: i64,
    },
    /// The database holds a value this code does not understand.
    #[error("unexpected stored {what}: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What was found.
        detail: String,
    },
}

impl StoreError {
    /// A stable snake_case code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::BadUrl { .. } => "store_bad_url",
            StoreError::Connect { .. } => "store_unavailable",
            StoreError::Migrate { .. } => "store_migration_failed",
            StoreError::Database { .. } => "store_error",
            StoreError::Unavailable { .. } => "store_unavailable",
            StoreError::NotFound { .. } => "not_found",
            StoreError::DuplicateSerial { .. } => "duplicate_serial",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::UnknownReference { .. } => "unknown_reference",
            StoreError::AlreadyCompleted { .. } => "already_completed",
            StoreError::AlreadyRevoked { .. } => "already_revoked",
            StoreError::AlreadyOnHold { .. } => "already_on_hold",
            StoreError::NotOnHold { .. } => "not_on_hold",
            StoreError::CrlNumberNotIncreasing { .. } => "crl_number_not_increasing",
            StoreError::InvalidInput { .. } => "invalid_input",
            StoreError::AuthorisationChanged { .. } => "authorisation_changed",
            StoreError::Corrupt { .. } => "store_corrupt",
        }
    }

    /// Whether this is the store refusing an operation on the data's merits (nothing was written),
    /// as opposed to a failure of the database or of stored data.
    pub fn is_refusal(&self) -> bool {
        match self {
            StoreError::NotFound { .. }
            | StoreError::DuplicateSerial { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::UnknownReference { .. }
            | StoreError::AlreadyCompleted { .. }
            | StoreError::AlreadyRevoked { .. }
            | StoreError::AlreadyOnHold { .. }
            | StoreError::NotOnHold { .. }
            | StoreError::CrlNumberNotIncreasing { .. }
            | StoreError::InvalidInput { .. }
            | StoreError::AuthorisationChanged { .. } => true,
            StoreError::BadUrl { .. }
            | StoreError::Connect { .. }
            | StoreError::Migrate { .. }
            | StoreError::Database { .. }
            | StoreError::Unavailable { .. }
            | StoreError::Corrupt { .. } => false,
        }
    }

    /// A `Database` error for `operation`.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { operation, source }
    }
}
