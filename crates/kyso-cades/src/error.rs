//! Signing errors, with stable codes.

use kyso_hsm::{HashAlgorithm, HsmError};
use thiserror::Error;

/// Why a timestamp could not be obtained from a [`crate::TimestampSource`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The TSA could not be reached or could not issue now (clock not trusted, HSM down...).
    #[error("timestamp authority unavailable: {reason}")]
    Unavailable { reason: String },
    /// The TSA answered with a rejection.
    #[error("timestamp authority refused: status {status}, {detail}")]
    Rejected { status: String, detail: String },
    /// The TSA's reply was malformed or did not match the request.
    #[error("invalid timestamp response: {reason}")]
    InvalidResponse { reason: String },
}

impl TimestampError {
    pub fn code(&self) -> &'static str {
        match self {
            TimestampError::Unavailable { .. } => "timestamp_unavailable",
            TimestampError::Rejected { .. } => "timestamp_rejected",
            TimestampError::InvalidResponse { .. } => "timestamp_invalid_response",
        }
    }
}

/// Why chain or revocation data for B-LT could not be gathered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ValidationDataError {
    /// Revocation data (CRL/OCSP) could not be obtained.
    #[error("revocation data unavailable for {subject}: {reason}")]
    RevocationUnavailable { subject: String, reason: String },
    /// A certificate of the chain is revoked: a B-LT signature must not be made.
    #[error("certificate {serial} is revoked")]
    Revoked { serial: String },
    #[error("validation data: {reason}")]
    Other { reason: String },
}

impl ValidationDataError {
    pub fn code(&self) -> &'static str {
        match self {
            ValidationDataError::RevocationUnavailable { .. } => "validation_data_unavailable",
            ValidationDataError::Revoked { .. } => "validation_data_revoked",
            ValidationDataError::Other { .. } => "validation_data_error",
        }
    }
}

/// Why [`crate::sign`] (or [`crate::CadesSigner::new`]) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("the certificate's public key is not key {key:?}'s")]
    KeyCertificateMismatch { key: String },
    #[error("the supplied digest is {supplied}, but key {key:?} signs with {expected}")]
    DigestAlgorithmMismatch {
        key: String,
        supplied: HashAlgorithm,
        expected: HashAlgorithm,
    },
    #[error("a {algorithm} digest is {expected} bytes, got {actual}")]
    DigestLength {
        algorithm: HashAlgorithm,
        expected: usize,
        actual: usize,
    },
    #[error("level {level} needs a timestamp source")]
    TimestampSourceMissing { level: &'static str },
    #[error("level B-LT needs a validation data source")]
    ValidationSourceMissing,
    #[error("signing time {time} cannot be encoded")]
    BadSigningTime { time: String },
    /// Boxed to keep `Result`s small; `code()` is the HSM error's own.
    #[error("HSM signing with key {key:?} failed: {source}")]
    Hsm {
        key: String,
        #[source]
        source: Box<HsmError>,
    },
    #[error("timestamp: {0}")]
    Timestamp(#[from] TimestampError),
    #[error("the timestamp token is not a ContentInfo: {reason}")]
    TimestampTokenMalformed { reason: String },
    #[error("validation data: {0}")]
    ValidationData(#[from] ValidationDataError),
    #[error("revocation data item {index} is not DER: {reason}")]
    RevocationDataMalformed { index: usize, reason: String },
    #[error("encoding {what}: {reason}")]
    Encoding { what: &'static str, reason: String },
}

impl SignError {
    pub fn code(&self) -> &'static str {
        match self {
            SignError::KeyCertificateMismatch { .. } => "cades_key_certificate_mismatch",
            SignError::DigestAlgorithmMismatch { .. } => "cades_digest_algorithm_mismatch",
            SignError::DigestLength { .. } => "cades_digest_length",
            SignError::TimestampSourceMissing { .. } => "cades_timestamp_source_missing",
            SignError::ValidationSourceMissing => "cades_validation_source_missing",
            SignError::BadSigningTime { .. } => "cades_bad_signing_time",
            SignError::Hsm { source, .. } => source.code(),
            SignError::Timestamp(e) => e.code(),
            SignError::TimestampTokenMalformed { .. } => "timestamp_token_malformed",
            SignError::ValidationData(e) => e.code(),
            SignError::RevocationDataMalformed { .. } => "cades_revocation_data_malformed",
            SignError::Encoding { .. } => "cades_encoding",
        }
    }

    pub(crate) fn encoding(what: &'static str) -> impl Fn(der::Error) -> SignError {
        move |e| SignError::Encoding {
            what,
            reason: e.to_string(),
        }
    }
}
