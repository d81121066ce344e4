//! Revocation data handed to a validation, and the trait a revocation authority implements.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

/// At most this many CRLs and OCSP responses (each) are considered in one validation.
pub const MAX_REVOCATION_ITEMS: usize = 256;
/// CRLs or OCSP responses larger than this are ignored (with a warning in the report).
pub const MAX_REVOCATION_ITEM_BYTES: usize = 64 * 1024 * 1024;

/// CRLs and OCSP responses (DER) from the signature (CAdES revocation values, the PDF DSS), from
/// kyso's own CA, or from the caller. Data that does not apply is ignored; data that does not
/// parse is ignored with a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationData {
    pub crls: Vec<Vec<u8>>,
    pub ocsp_responses: Vec<Vec<u8>>,
}

impl RevocationData {
    pub fn new() -> RevocationData {
        RevocationData::default()
    }

    pub fn is_empty(&self) -> bool {
        self.crls.is_empty() && self.ocsp_responses.is_empty()
    }

    /// Adds `other`'s items that are not already here.
    pub fn merge(&mut self, other: RevocationData) {
        for crl in other.crls {
            if !self.crls.contains(&crl) {
                self.crls.push(crl);
            }
        }
        for ocsp in other.ocsp_responses {
            if !self.ocsp_responses.contains(&ocsp) {
                self.ocsp_responses.push(ocsp);
            }
        }
    }
}

/// Why a [`RevocationSource`] could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationSourceError {
    #[error("revocation source {source_name} is unavailable: {reason}")]
    Unavailable { source_name: String, reason: String },
}

impl RevocationSourceError {
    pub fn code(&self) -> &'static str {
        match self {
            RevocationSourceError::Unavailable { .. } => "revocation_source_unavailable",
        }
    }
}

/// Something that can supply revocation data for certificates it knows, typically kyso's own CA
/// answering for the certificates it issued (a fresh CRL or OCSP response from its store).
///
/// Async, because the answer usually comes from a database or a signing HSM; validation itself
/// is synchronous CPU work, so callers gather data first (see
/// [`crate::PathValidator::gather_revocation_data`]) and then validate.
#[async_trait]
pub trait RevocationSource: Send + Sync {
    /// Revocation data covering any of `certificates` (a signer's certificate and its chain) that
    /// this source is responsible for; empty when it knows none of them.
    async fn revocation_data(
        &self,
        certificates: &[Certificate],
    ) -> Result<RevocationData, RevocationSourceError>;
}
