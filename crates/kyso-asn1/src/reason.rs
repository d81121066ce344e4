//! RFC 5280 5.3.1 CRLReason. x509-cert's `CrlReason` is the wire type; this one adds stable
//! snake_case names (JSON, CLI, API) and the numeric codes the database keeps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::CrlReason;

/// RFC 5280 CRLReason. The numeric code is what the database keeps and what goes into CRLs and
/// OCSP (value 7 is unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// 0
    Unspecified,
    /// 1
    KeyCompromise,
    /// 2
    CaCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 6: suspension, which may be lifted (then the entry disappears from the next CRL). The store
    /// sets it through its hold operation, never through revocation.
    CertificateHold,
    /// 8: only meaningful in delta CRLs, which kyso does not issue; never stored.
    RemoveFromCrl,
    /// 9
    PrivilegeWithdrawn,
    /// 10
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The snake_case name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::CaCompromise => "ca_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
            RevocationReason::CertificateHold => "certificate_hold",
            RevocationReason::RemoveFromCrl => "remove_from_crl",
            RevocationReason::PrivilegeWithdrawn => "privilege_withdrawn",
            RevocationReason::AaCompromise => "aa_compromise",
        }
    }

    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        self.to_crl_reason() as u8
    }

    /// The reason for an RFC 5280 code (7 is unused in RFC 5280).
    pub fn from_code(code: u8) -> Option<Self> {
        RevocationReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether this reason revokes for good: hold has its own operation, and removeFromCRL belongs
    /// to delta CRLs only.
    pub fn is_revocation(self) -> bool {
        !matches!(
            self,
            RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl
        )
    }

    /// x509-cert's wire type, for CRL entries and OCSP responses.
    pub fn to_crl_reason(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::CertificateHold => CrlReason::CertificateHold,
            RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl From<RevocationReason> for CrlReason {
    fn from(reason: RevocationReason) -> Self {
        reason.to_crl_reason()
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown reason name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation reason {name:?}")]
pub struct UnknownReason {
    /// The name given (at most 40 characters of it).
    pub name: String,
}

impl UnknownReason {
    pub fn code(&self) -> &'static str {
        "revocation_reason_unknown"
    }
}

impl FromStr for RevocationReason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownReason {
                name: s.chars().take(40).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_reasons_have_rfc5280_codes_and_names() {
        assert_eq!(RevocationReason::KeyCompromise.code(), 1);
        assert_eq!(RevocationReason::CertificateHold.code(), 6);
        assert_eq!(RevocationReason::RemoveFromCrl.code(), 8);
        assert_eq!(RevocationReason::AaCompromise.code(), 10);
        for r in RevocationReason::ALL {
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.name())
            );
        }
        assert_eq!(
            "revoked".parse::<RevocationReason>().unwrap_err().code(),
            "revocation_reason_unknown"
        );
    }

    #[test]
    fn codes_round_trip_and_seven_is_unused() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert_eq!(RevocationReason::from_code(7), None);
        assert_eq!(RevocationReason::from_code(11), None);
        assert_eq!(
            RevocationReason::from_code(0),
            Some(RevocationReason::Unspecified)
        );
    }

    #[test]
    fn hold_and_remove_from_crl_are_not_revocations() {
        let not_revocations: Vec<_> = RevocationReason::ALL
            .into_iter()
            .filter(|r| !r.is_revocation())
            .collect();
        assert_eq!(
            not_revocations,
            [
                RevocationReason::CertificateHold,
                RevocationReason::RemoveFromCrl
            ]
        );
    }
}
