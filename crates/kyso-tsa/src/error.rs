//! Why a timestamp was not issued, and the RFC 3161 failure each reason is reported as.

use der::asn1::ObjectIdentifier;
use kyso_asn1::rfc3161::{PkiFailureInfo, Rfc3161Error};

use crate::ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    #[error("the query is not a valid TimeStampReq: {source}")]
    MalformedQuery {
        #[source]
        source: Rfc3161Error,
    },
    #[error("TimeStampReq version {version} is not supported (only v1)")]
    UnsupportedVersion { version: u8 },
    #[error("hash algorithm {oid} is not accepted (SHA-256, SHA-384 or SHA-512 only)")]
    UnsupportedHash { oid: ObjectIdentifier },
    #[error("a {hash} message imprint is {expected} bytes, got {actual}")]
    ImprintLength {
        hash: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("policy {policy} is not accepted by this TSA")]
    UnacceptedPolicy { policy: ObjectIdentifier },
    #[error("extension {oid} is not supported")]
    UnacceptedExtension { oid: ObjectIdentifier },
    #[error("time not available: {reason}")]
    ClockUntrusted { reason: String },
    #[error("no secure random serial: {reason}")]
    Random { reason: String },
    #[error("signing the timestamp failed: {source}")]
    Signing {
        #[source]
        source: kyso_cades::SignError,
    },
    #[error("recording the timestamp failed: {source}")]
    Ledger {
        #[source]
        source: LedgerError,
    },
    #[error("no unique serial after {attempts} attempts")]
    SerialsExhausted { attempts: u32 },
    #[error("encoding {what}: {reason}")]
    Encoding { what: &'static str, reason: String },
}

impl TsaError {
    pub fn code(&self) -> &'static str {
        match self {
            TsaError::MalformedQuery { .. } => "tsa_malformed_query",
            TsaError::UnsupportedVersion { .. } => "tsa_unsupported_version",
            TsaError::UnsupportedHash { .. } => "tsa_unsupported_hash",
            TsaError::ImprintLength { .. } => "tsa_imprint_length",
            TsaError::UnacceptedPolicy { .. } => "tsa_unaccepted_policy",
            TsaError::UnacceptedExtension { .. } => "tsa_unaccepted_extension",
            TsaError::ClockUntrusted { .. } => "tsa_time_not_available",
            TsaError::Random { .. } => "tsa_random",
            TsaError::Signing { .. } => "tsa_signing",
            TsaError::Ledger { source } => source.code(),
            TsaError::SerialsExhausted { .. } => "tsa_serials_exhausted",
            TsaError::Encoding { .. } => "tsa_encoding",
        }
    }

    /// The PKIFailureInfo bit a rejection for this error carries (RFC 3161 2.4.2).
    pub fn fail_info(&self) -> PkiFailureInfo {
        match self {
            // A digest of the wrong length is malformed data, as OpenSSL's TSA also answers.
            TsaError::MalformedQuery { .. } | TsaError::ImprintLength { .. } => {
                PkiFailureInfo::BAD_DATA_FORMAT
            }
            TsaError::UnsupportedVersion { .. } => PkiFailureInfo::BAD_REQUEST,
            TsaError::UnsupportedHash { .. } => PkiFailureInfo::BAD_ALG,
            TsaError::UnacceptedPolicy { .. } => PkiFailureInfo::UNACCEPTED_POLICY,
            TsaError::UnacceptedExtension { .. } => PkiFailureInfo::UNACCEPTED_EXTENSION,
            TsaError::ClockUntrusted { .. } => PkiFailureInfo::TIME_NOT_AVAILABLE,
            TsaError::Random { .. }
            | TsaError::Signing { .. }
            | TsaError::Ledger { .. }
            | TsaError::SerialsExhausted { .. }
            | TsaError::Encoding { .. } => PkiFailureInfo::SYSTEM_FAILURE,
        }
    }

    /// Whether the fault is the TSA's (systemFailure, timeNotAvailable) rather than the client's.
    pub fn is_server_side(&self) -> bool {
        let info = self.fail_info();
        info == PkiFailureInfo::SYSTEM_FAILURE || info == PkiFailureInfo::TIME_NOT_AVAILABLE
    }

    pub(crate) fn encoding(what: &'static str) -> impl Fn(der::Error) -> TsaError {
        move |e| TsaError::Encoding {
            what,
            reason: e.to_string(),
        }
    }
}
