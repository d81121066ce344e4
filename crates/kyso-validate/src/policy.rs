//! What a validation is asked to check, and at which time.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// anyPolicy (RFC 5280 4.2.1.4).
pub const ANY_POLICY: &str = "2.5.29.32.0";

/// The time at which the path must be valid, and whether that time is proven.
///
/// A proven time comes from a proof of existence (a trusted timestamp over the signature): then a
/// certificate revoked or expired before it makes the signature definitely invalid
/// (TOTAL-FAILED). An unproven time (now, or a claimed signing time) only makes it INDETERMINATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationTime {
    /// Unix seconds.
    pub unix: i64,
    pub proven: bool,
}

impl ValidationTime {
    /// A time proven by a proof of existence (a validated timestamp).
    pub fn proven(at: OffsetDateTime) -> ValidationTime {
        ValidationTime {
            unix: at.unix_timestamp(),
            proven: true,
        }
    }

    /// The current time or a claimed time, with no proof of existence.
    pub fn unproven(at: OffsetDateTime) -> ValidationTime {
        ValidationTime {
            unix: at.unix_timestamp(),
            proven: false,
        }
    }

    pub fn from_unix(unix: i64, proven: bool) -> ValidationTime {
        ValidationTime { unix, proven }
    }
}

/// RFC 5280 section 6.1.1 inputs plus kyso's limits and revocation requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidationPolicy {
    /// user-initial-policy-set, dotted OIDs.
    pub initial_policy_set: Vec<String>,
    pub initial_explicit_policy: bool,
    pub initial_policy_mapping_inhibit: bool,
    pub initial_inhibit_any_policy: bool,
    /// Revocation status of the end-entity certificate must be known (else TRY_LATER).
    pub require_revocation_for_end_entity: bool,
    /// Revocation status of intermediate CA certificates must be known (else TRY_LATER).
    pub require_revocation_for_ca: bool,
    /// Most certificates in a path, end entity included, trust anchor excluded.
    pub max_path_length: usize,
    /// Most certificates examined while building paths (bounds loops and fan-out).
    pub max_candidate_certificates: usize,
    /// Most complete candidate paths validated before giving up.
    pub max_candidate_paths: usize,
    /// Shortest RSA modulus accepted in a certificate that verifies a signature in the path.
    pub min_rsa_modulus_bits: u16,
    /// Mask identity numbers (UID) in the report.
    pub mask_identities: bool,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        ValidationPolicy {
            initial_policy_set: vec![ANY_POLICY.to_owned()],
            initial_explicit_policy: false,
            initial_policy_mapping_inhibit: false,
            initial_inhibit_any_policy: false,
            require_revocation_for_end_entity: true,
            require_revocation_for_ca: true,
            max_path_length: 8,
            max_candidate_certificates: 64,
            max_candidate_paths: 8,
            min_rsa_modulus_bits: 2048,
            mask_identities: true,
        }
    }
}
