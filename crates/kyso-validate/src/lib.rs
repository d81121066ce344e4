//! kyso-validate: certification path validation for kyso's verifier, over `certval`.
//!
//! - [`TrustAnchors`]: anchors from DER/PEM files or folders, pinned by SHA-256 fingerprint;
//!   SHA-1-signed anchors (Vietnam's Government G1 and MIC 2008 roots) only when flagged.
//! - [`PathValidator::validate_path`]: bounded path building from the end entity through the
//!   caller's and the store's intermediates to an anchor, RFC 5280 validation of each candidate
//!   with certval at a time of interest, revocation from the supplied CRLs and OCSP responses, and
//!   an ETSI EN 319 102-1 result ([`Indication`], [`SubIndication`]) with Vietnamese and English
//!   messages.
//! - [`bundles`]: Vietnam's national and Government trust bundles, compiled in and pinned.
//! - [`RevocationSource`]: how kyso's own CA will answer for its certificates.

pub mod anchors;
pub mod bundles;
pub mod certificate_encodings;
pub mod error;
mod glue;
pub mod indication;
mod known_certificates;
mod passed_paths;
pub mod policy;
pub mod report;
pub mod revocation;
mod revocation_memo;
pub mod validator;

pub use anchors::{AnchorFile, AnchorFolder, AnchorInfo, TrustAnchors, sha256_fingerprint};
pub use certificate_encodings::{CertificateEncodings, EncodedCertificate};
pub use error::AnchorError;
pub use indication::{Indication, Message, SubIndication};
pub use policy::{ANY_POLICY, ValidationPolicy, ValidationTime};
pub use report::{CertificateRole, CertificateStatus, PathValidation, RevocationStatus};
pub use revocation::{RevocationData, RevocationSource, RevocationSourceError};
pub use validator::PathValidator;
