//! The error of issuance, CRL and OCSP building (subject, CSR and profile errors wrap into it).

use kyso_hsm::HsmError;

use crate::csr::CsrError;
use crate::keys::KeyError;
use crate::profile::ProfileError;
use crate::subject::SubjectError;

/// Why a CA operation failed. Stable codes via [`CaError::code`]; wrapped errors keep their code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Subject(#[from] SubjectError),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("signing the {what} with the key of CA {ca:?} failed: {source}")]
    Hsm {
        what: &'static str,
        ca: String,
        #[source]
        source: Box<HsmError>,
    },
    #[error("the key {key_label:?} on token {token:?} does not match the certificate of CA {ca:?}")]
    IssuerKeyMismatch {
        ca: String,
        token: String,
        key_label: String,
    },
    #[error("the public key of CA {ca:?} is not one kyso can check signatures with: {source}")]
    IssuerKeyRefused {
        ca: String,
        #[source]
        source: KeyError,
    },
    #[error("the signature the HSM made for the {what} of CA {ca:?} does not verify: {source}")]
    SignatureSelfCheck {
        what: &'static str,
        ca: String,
        #[source]
        source: KeyError,
    },
    #[error("serial number {value:?} is not 1 to 20 bytes of hexadecimal for a positive integer")]
    BadSerial { value: String },
    #[error("time {unix} cannot be encoded in a {what}")]
    BadTime { what: &'static str, unix: i64 },
    #[error("{what} could not be encoded: {reason}")]
    Encoding { what: &'static str, reason: String },
    #[error("CRL nextUpdate {next_update} is not after thisUpdate {this_update}")]
    CrlTimes { this_update: i64, next_update: i64 },
}

impl CaError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CaError::Profile(e) => e.code(),
            CaError::Subject(e) => e.code(),
            CaError::Csr(e) => e.code(),
            CaError::Hsm { source, .. } => source.code(),
            CaError::IssuerKeyMismatch { .. } => "ca_issuer_key_mismatch",
            CaError::IssuerKeyRefused { .. } => "ca_issuer_key_refused",
            CaError::SignatureSelfCheck { .. } => "ca_signature_self_check",
            CaError::BadSerial { .. } => "ca_bad_serial",
            CaError::BadTime { .. } => "ca_bad_time",
            CaError::Encoding { .. } => "ca_encoding",
            CaError::CrlTimes { .. } => "crl_bad_times",
        }
    }

    pub(crate) fn encoding(what: &'static str) -> impl Fn(der::Error) -> CaError {
        move |e| CaError::Encoding {
            what,
            reason: e.to_string(),
        }
    }
}
