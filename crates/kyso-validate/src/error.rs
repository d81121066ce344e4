//! Errors of loading trust anchors and intermediates. Validation itself never errors: every
//! outcome of a validation is a [`crate::PathValidation`] with an ETSI indication.

use std::path::PathBuf;

/// Why a trust anchor or intermediate could not be loaded. Stable codes via [`AnchorError::code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    #[error("cannot read {path:?}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{source_name} is not a DER or PEM X.509 certificate: {reason}")]
    NotACertificate { source_name: String, reason: String },
    #[error("{source_name} is larger than {limit} bytes")]
    TooLarge { source_name: String, limit: usize },
    #[error("{source_name} contains no certificate")]
    Empty { source_name: String },
    #[error(
        "{source_name}: SHA-256 fingerprint {actual} does not match the pinned fingerprint {expected}"
    )]
    FingerprintMismatch {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("pinned fingerprint {value:?} for {source_name} is not 64 hexadecimal digits")]
    BadFingerprint { source_name: String, value: String },
    #[error(
        "{source_name} (SHA-256 {fingerprint}) is signed with SHA-1; it may only be trusted when flagged allow_sha1"
    )]
    Sha1NotAllowed {
        source_name: String,
        fingerprint: String,
    },
    #[error("{source_name} is not a CA certificate (basicConstraints cA is not true)")]
    NotACa { source_name: String },
    #[error("pin for {file:?} names a file that is not in folder {folder:?}")]
    PinnedFileMissing { folder: PathBuf, file: String },
    #[error("{path:?} in a pinned folder has no pinned fingerprint")]
    UnpinnedFile { path: PathBuf },
    #[error("too many certificates: the limit is {limit}")]
    TooMany { limit: usize },
}

impl AnchorError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AnchorError::Read { .. } => "anchor_read",
            AnchorError::NotACertificate { .. } => "anchor_not_a_certificate",
            AnchorError::TooLarge { .. } => "anchor_too_large",
            AnchorError::Empty { .. } => "anchor_empty",
            AnchorError::FingerprintMismatch { .. } => "anchor_fingerprint_mismatch",
            AnchorError::BadFingerprint { .. } => "anchor_bad_fingerprint",
            AnchorError::Sha1NotAllowed { .. } => "anchor_sha1_not_allowed",
            AnchorError::NotACa { .. } => "anchor_not_a_ca",
            AnchorError::PinnedFileMissing { .. } => "anchor_pinned_file_missing",
            AnchorError::UnpinnedFile { .. } => "anchor_unpinned_file",
            AnchorError::TooMany { .. } => "anchor_too_many",
        }
    }
}
