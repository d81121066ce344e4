//! Object identifiers used by CMS/CAdES signing, ESS attributes and RFC 3161 timestamping.
//!
//! Written out here (rather than picked from `const_oid::db`) so every crate names them the same way
//! and a reader can check each against its RFC in one place.

use der::asn1::ObjectIdentifier;
use spki::AlgorithmIdentifierOwned;

/// id-data (RFC 5652 4).
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 5.1).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo (RFC 3161 2.4.2).
pub const ID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// PKCS#9 content-type attribute (RFC 5652 11.1).
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// PKCS#9 message-digest attribute (RFC 5652 11.2).
pub const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// PKCS#9 signing-time attribute (RFC 5652 11.3).
pub const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// id-aa-signingCertificate (RFC 2634 5.4).
pub const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// id-aa-timeStampToken, the unsigned signature-time-stamp attribute (RFC 3161 appendix A).
pub const ID_AA_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-aa-ets-certValues (RFC 5126 6.3.3).
pub const ID_AA_ETS_CERT_VALUES: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.23");
/// id-aa-ets-revocationValues (RFC 5126 6.3.4).
pub const ID_AA_ETS_REVOCATION_VALUES: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.24");
/// id-aa-signingCertificateV2 (RFC 5035 3).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// id-ri-ocsp-response, OtherRevocationInfoFormat for an OCSP response (RFC 5940 4).
pub const ID_RI_OCSP_RESPONSE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.16.2");
/// id-kp-timeStamping extended key usage (RFC 3161 2.3).
pub const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// id-sha1 (RFC 3279 2.2.1).
pub const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754 2.2).
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384 (RFC 5754 2.3).
pub const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512 (RFC 5754 2.4).
pub const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The digest algorithms kyso produces (SHA-1 is only ever checked, see [`crate::ess::EssCertId`]).
///
/// kyso-hsm has an enum with the same variants; this one lives here so the ASN.1 layer does not
/// depend on the PKCS#11 crate. Convert by name: `kyso_asn1::HashAlgorithm::from_name(h.name())`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 3] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// "sha256", "sha384" or "sha512".
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm for a name as [`HashAlgorithm::name`] gives it (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => ID_SHA256,
            HashAlgorithm::Sha384 => ID_SHA384,
            HashAlgorithm::Sha512 => ID_SHA512,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlgorithm::Sha256 => sha2::Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(message).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    /// The AlgorithmIdentifier with absent parameters (RFC 5754 3: the preferred form).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_match_the_const_oid_database() {
        use const_oid::db::{rfc3161, rfc5911, rfc5912};
        assert_eq!(ID_CT_TST_INFO, rfc3161::ID_CT_TST_INFO);
        assert_eq!(
            ID_AA_SIGNING_CERTIFICATE_V2,
            rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2
        );
        assert_eq!(
            ID_AA_SIGNING_CERTIFICATE,
            rfc5911::ID_AA_SIGNING_CERTIFICATE
        );
        assert_eq!(ID_AA_TIME_STAMP_TOKEN, rfc3161::ID_AA_TIME_STAMP_TOKEN);
        assert_eq!(ID_SHA256, rfc5912::ID_SHA_256);
        assert_eq!(ID_SHA384, rfc5912::ID_SHA_384);
        assert_eq!(ID_SHA512, rfc5912::ID_SHA_512);
        assert_eq!(ID_SHA1, rfc5912::ID_SHA_1);
        assert_eq!(ID_KP_TIME_STAMPING, rfc5912::ID_KP_TIME_STAMPING);
        assert_eq!(ID_MESSAGE_DIGEST, rfc5911::ID_MESSAGE_DIGEST);
        assert_eq!(ID_CONTENT_TYPE, rfc5911::ID_CONTENT_TYPE);
        assert_eq!(ID_SIGNING_TIME, rfc5911::ID_SIGNING_TIME);
    }

    #[test]
    fn hash_algorithm_names_oids_and_lengths_agree() {
        for hash in HashAlgorithm::ALL {
            assert_eq!(HashAlgorithm::from_name(hash.name()), Some(hash));
            assert_eq!(HashAlgorithm::from_oid(&hash.oid()), Some(hash));
            assert_eq!(hash.digest(b"abc").len(), hash.output_len());
        }
        assert_eq!(
            HashAlgorithm::from_name("SHA384"),
            Some(HashAlgorithm::Sha384)
        );
        assert_eq!(HashAlgorithm::from_name("sha1"), None);
        assert_eq!(HashAlgorithm::from_oid(&ID_SHA1), None);
    }
}
