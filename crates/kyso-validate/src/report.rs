//! The result of a path validation, serializable as JSON for the API.

use kyso_ca::{CertificateSummary, NameFields};
use serde::Serialize;

use crate::anchors::AnchorInfo;
use crate::indication::{Indication, Message, SubIndication};
use crate::policy::ValidationTime;

/// The place of a certificate in the chosen path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateRole {
    EndEntity,
    Intermediate,
    TrustAnchor,
}

/// Revocation status of one certificate at the time of interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RevocationStatus {
    /// Not revoked: settled by `source` (`crl`, `ocsp`, `ocsp_no_check`) with data current at
    /// `data_time` (the time of interest, or a later time when only later data was available).
    Good { source: String, data_time: i64 },
    /// Revoked, but only after the time of interest: not revoked at that time.
    RevokedAfterTimeOfInterest { revoked_at: i64 },
    /// Revoked at or before the time of interest (`revoked_at` when the data says).
    Revoked { revoked_at: Option<i64> },
    /// No usable revocation data.
    Unknown,
    /// Not checked: a trust anchor, or the path failed before revocation checking.
    NotChecked,
}

/// One certificate of the chosen path.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateStatus {
    pub role: CertificateRole,
    /// `None` only when the certificate's names cannot be decoded.
    pub summary: Option<CertificateSummary>,
    /// Dotted OID of the certificate's signature algorithm.
    pub signature_algorithm: String,
    /// Signed with SHA-1 (accepted only under anchors that allow it).
    pub sha1_signature: bool,
    pub revocation: RevocationStatus,
}

/// The outcome of [`crate::PathValidator::validate_path`].
#[derive(Debug, Clone, Serialize)]
pub struct PathValidation {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// The sub-indication's message, or the indication's when there is none.
    pub message: Message,
    pub time: ValidationTime,
    /// The signer's (end-entity) subject, identity numbers masked unless the policy says not to.
    pub signer: Option<NameFields>,
    /// The chosen path, end entity first, trust anchor last (only the end entity when no path
    /// to an anchor was found).
    pub chain: Vec<CertificateStatus>,
    pub trust_anchor: Option<AnchorInfo>,
    /// Index in `chain` of the certificate that made the validation fail, when one did.
    pub failed_certificate: Option<usize>,
    /// Technical reason (certval's status, path building limits).
    pub detail: Option<String>,
    pub warnings: Vec<Message>,
    /// Candidate paths examined.
    pub paths_tried: usize,
}

impl PathValidation {
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}
