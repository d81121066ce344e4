//! Enhanced Security Services signing-certificate attributes (RFC 2634 5.4, RFC 5035 3).
//!
//! ```text
//! SigningCertificateV2 ::= SEQUENCE {
//!     certs        SEQUENCE OF ESSCertIDv2,
//!     policies     SEQUENCE OF PolicyInformation OPTIONAL }
//! ESSCertIDv2 ::= SEQUENCE {
//!     hashAlgorithm AlgorithmIdentifier DEFAULT {algorithm id-sha256},
//!     certHash      Hash,
//!     issuerSerial  IssuerSerial OPTIONAL }
//! SigningCertificate ::= SEQUENCE {
//!     certs        SEQUENCE OF ESSCertID,
//!     policies     SEQUENCE OF PolicyInformation OPTIONAL }
//! ESSCertID ::= SEQUENCE {
//!     certHash     Hash,               -- SHA-1 hash of the entire certificate
//!     issuerSerial IssuerSerial OPTIONAL }
//! IssuerSerial ::= SEQUENCE {
//!     issuer       GeneralNames,
//!     serialNumber CertificateSerialNumber }
//! ```

use der::asn1::OctetString;
use der::{Decode, DecodeValue, Encode, EncodeValue, Header, Length, Reader, Sequence, Writer};
use sha1::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;

use crate::oids::{HashAlgorithm, ID_SHA1, ID_SHA256};

/// SigningCertificateV2 (RFC 5035 3), the value of the id-aa-signingCertificateV2 attribute.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<PolicyInformation>>,
}

impl SigningCertificateV2 {
    /// The attribute value naming one signer certificate, with its issuer and serial.
    pub fn for_certificate(certificate: &Certificate, hash: HashAlgorithm) -> der::Result<Self> {
        Ok(Self {
            certs: vec![EssCertIdV2::for_certificate(certificate, hash)?],
            policies: None,
        })
    }

    /// Whether the first ESSCertIDv2 (the one naming the signer, RFC 5035 3) matches `certificate`.
    pub fn names_signer(&self, certificate: &Certificate) -> bool {
        self.certs.first().is_some_and(|id| id.matches(certificate))
    }

    /// [`SigningCertificateV2::names_signer`] with the certificate's DER already at hand.
    pub fn names_signer_der(&self, certificate: &Certificate, der: &[u8]) -> bool {
        self.certs
            .first()
            .is_some_and(|id| id.matches_der(certificate, der))
    }
}

/// ESSCertIDv2 (RFC 5035 4). Encoded by hand: der_derive's DEFAULT support needs a `Copy` field.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct EssCertIdV2 {
    /// Absent on the wire when it is SHA-256 with absent parameters (the DEFAULT).
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub cert_hash: OctetString,
    pub issuer_serial: Option<IssuerSerial>,
}

impl EssCertIdV2 {
    /// The hashAlgorithm as it goes on the wire: `None` when it is the DEFAULT.
    fn encoded_hash_algorithm(&self) -> Option<&AlgorithmIdentifierOwned> {
        (self.hash_algorithm != default_ess_hash_algorithm()).then_some(&self.hash_algorithm)
    }
}

impl<'a> DecodeValue<'a> for EssCertIdV2 {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        Ok(Self {
            hash_algorithm: Option::<AlgorithmIdentifierOwned>::decode(reader)?
                .unwrap_or_else(default_ess_hash_algorithm),
            cert_hash: OctetString::decode(reader)?,
            issuer_serial: Option::<IssuerSerial>::decode(reader)?,
        })
    }
}

impl EncodeValue for EssCertIdV2 {
    fn value_len(&self) -> der::Result<Length> {
        let algorithm_len = match self.encoded_hash_algorithm() {
            Some(algorithm) => algorithm.encoded_len()?,
            None => Length::ZERO,
        };
        algorithm_len + self.cert_hash.encoded_len()? + self.issuer_serial.encoded_len()?
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        if let Some(algorithm) = self.encoded_hash_algorithm() {
            algorithm.encode(writer)?;
        }
        self.cert_hash.encode(writer)?;
        self.issuer_serial.encode(writer)
    }
}

impl<'a> Sequence<'a> for EssCertIdV2 {}

/// The DEFAULT of ESSCertIDv2.hashAlgorithm: id-sha256 with no parameters.
pub fn default_ess_hash_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: None,
    }
}

impl EssCertIdV2 {
    /// An ESSCertIDv2 for `certificate`: its `hash` digest plus its issuer and serial number.
    pub fn for_certificate(certificate: &Certificate, hash: HashAlgorithm) -> der::Result<Self> {
        let der = certificate.to_der()?;
        Ok(Self {
            hash_algorithm: hash.algorithm_identifier(),
            cert_hash: OctetString::new(hash.digest(&der))?,
            issuer_serial: Some(IssuerSerial::for_certificate(certificate)),
        })
    }

    /// The hash algorithm this id uses, if kyso knows it.
    pub fn hash(&self) -> Option<HashAlgorithm> {
        HashAlgorithm::from_oid(&self.hash_algorithm.oid)
    }

    /// True when the certificate hash matches and, if present, the issuer and serial too.
    /// An unknown hash algorithm never matches.
    pub fn matches(&self, certificate: &Certificate) -> bool {
        if self.hash().is_none() {
            return false;
        }
        let Ok(der) = certificate.to_der() else {
            return false;
        };
        self.matches_der(certificate, &der)
    }

    /// [`EssCertIdV2::matches`] with `der`, the certificate's DER encoding, already at hand.
    pub fn matches_der(&self, certificate: &Certificate, der: &[u8]) -> bool {
        let Some(hash) = self.hash() else {
            return false;
        };
        if hash.digest(der).as_slice() != self.cert_hash.as_bytes() {
            return false;
        }
        self.issuer_serial
            .as_ref()
            .is_none_or(|is| is.matches(certificate))
    }
}

/// ESSCertID (RFC 2634 5.4.1): SHA-1 only, kept so older signatures can be checked.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertId {
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

impl EssCertId {
    /// True when the SHA-1 hash matches and, if present, the issuer and serial too.
    pub fn matches(&self, certificate: &Certificate) -> bool {
        let Ok(der) = certificate.to_der() else {
            return false;
        };
        if sha1::Sha1::digest(&der).as_slice() != self.cert_hash.as_bytes() {
            return false;
        }
        self.issuer_serial
            .as_ref()
            .is_none_or(|is| is.matches(certificate))
    }

    /// The OID of the only hash an ESSCertID can use.
    pub fn hash_oid() -> der::asn1::ObjectIdentifier {
        ID_SHA1
    }
}

/// SigningCertificate (RFC 2634 5.4), the value of the id-aa-signingCertificate attribute.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificate {
    pub certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<PolicyInformation>>,
}

impl SigningCertificate {
    /// Whether the first ESSCertID (the one naming the signer) matches `certificate`.
    pub fn names_signer(&self, certificate: &Certificate) -> bool {
        self.certs.first().is_some_and(|id| id.matches(certificate))
    }
}

/// IssuerSerial (RFC 5035 4).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

impl IssuerSerial {
    /// The certificate's issuer (as a directoryName) and serial number.
    pub fn for_certificate(certificate: &Certificate) -> Self {
        let tbs = certificate.tbs_certificate();
        Self {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
            serial_number: tbs.serial_number().clone(),
        }
    }

    /// True when the serial numbers are equal and one of the names is the certificate's issuer.
    pub fn matches(&self, certificate: &Certificate) -> bool {
        let tbs = certificate.tbs_certificate();
        self.serial_number.as_bytes() == tbs.serial_number().as_bytes()
            && self
                .issuer
                .iter()
                .any(|name| matches!(name, GeneralName::DirectoryName(n) if n == tbs.issuer()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::ObjectIdentifier;
    use std::str::FromStr;
    use x509_cert::name::Name;

    fn testdata() -> std::path::PathBuf {
        std::env::var_os("KYSO_TESTDATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
            })
    }

    /// A real certificate from the shared test data (any one will do; they are read in place).
    fn some_certificate() -> Certificate {
        let path = testdata().join("rfc3161/openssl-80-test_tsa_data/sectigo-signer.pem");
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        use der::DecodePem;
        Certificate::from_pem(&pem).expect("test certificate parses")
    }

    fn other_issuer_serial() -> IssuerSerial {
        IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(
                Name::from_str("CN=Someone Else").expect("name"),
            )],
            serial_number: SerialNumber::new(&[0x42]).expect("serial"),
        }
    }

    #[test]
    fn ess_cert_id_v2_sha256_omits_the_default_algorithm() {
        let cert = some_certificate();
        let id = EssCertIdV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("id");
        let der = id.to_der().expect("encode");
        // SEQUENCE { OCTET STRING (32 bytes), IssuerSerial }: the first element is the hash itself.
        let inner = &der[2..];
        let first = if der[1] & 0x80 != 0 {
            &der[2 + usize::from(der[1] & 0x7f)..]
        } else {
            inner
        };
        assert_eq!(
            first[0], 0x04,
            "certHash comes first when the algorithm is the default"
        );
        assert_eq!(first[1], 32);
        let decoded = EssCertIdV2::from_der(&der).expect("decode");
        assert_eq!(decoded, id);
        assert_eq!(decoded.hash_algorithm, default_ess_hash_algorithm());
        assert!(decoded.matches(&cert));
    }

    #[test]
    fn ess_cert_id_v2_sha384_and_sha512_keep_the_algorithm() {
        let cert = some_certificate();
        for hash in [HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
            let id = EssCertIdV2::for_certificate(&cert, hash).expect("id");
            let der = id.to_der().expect("encode");
            let decoded = EssCertIdV2::from_der(&der).expect("decode");
            assert_eq!(decoded.hash(), Some(hash));
            assert_eq!(decoded.cert_hash.as_bytes().len(), hash.output_len());
            assert!(decoded.matches(&cert));
            assert_eq!(decoded.to_der().expect("re-encode"), der);
        }
    }

    #[test]
    fn ess_cert_id_v2_absent_algorithm_decodes_as_sha256() {
        // SEQUENCE { OCTET STRING 32 x 0xAB }
        let mut der = vec![0x30, 34, 0x04, 32];
        der.extend([0xAB; 32]);
        let id = EssCertIdV2::from_der(&der).expect("decode");
        assert_eq!(id.hash(), Some(HashAlgorithm::Sha256));
        assert!(id.issuer_serial.is_none());
        assert_eq!(id.to_der().expect("encode"), der);
    }

    #[test]
    fn ess_cert_id_v2_mismatches_are_detected() {
        let cert = some_certificate();
        let mut id = EssCertIdV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("id");
        id.issuer_serial = Some(other_issuer_serial());
        assert!(!id.matches(&cert), "wrong issuer/serial");

        let mut id = EssCertIdV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("id");
        id.cert_hash = OctetString::new(vec![0u8; 32]).expect("octets");
        assert!(!id.matches(&cert), "wrong hash");

        let mut id = EssCertIdV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("id");
        id.hash_algorithm.oid = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert!(!id.matches(&cert), "unknown algorithm");

        let mut id = EssCertIdV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("id");
        id.issuer_serial = None;
        assert!(
            id.matches(&cert),
            "hash alone is enough when issuerSerial is absent"
        );
    }

    #[test]
    fn signing_certificate_v2_round_trips() {
        let cert = some_certificate();
        let attr =
            SigningCertificateV2::for_certificate(&cert, HashAlgorithm::Sha256).expect("attr");
        let der = attr.to_der().expect("encode");
        let decoded = SigningCertificateV2::from_der(&der).expect("decode");
        assert_eq!(decoded, attr);
        assert!(decoded.names_signer(&cert));
        // With the DER at hand: the same answers, and another certificate's DER does not match.
        let cert_der = cert.to_der().expect("encode");
        assert!(decoded.names_signer_der(&cert, &cert_der));
        let mut other_der = cert_der.clone();
        let last = other_der.len() - 1;
        other_der[last] ^= 1;
        assert!(!decoded.names_signer_der(&cert, &other_der));
        assert!(
            !SigningCertificateV2 {
                certs: vec![],
                policies: None
            }
            .names_signer(&cert)
        );
    }

    #[test]
    fn signing_certificate_v1_matches_by_sha1() {
        let cert = some_certificate();
        let hash = sha1::Sha1::digest(cert.to_der().expect("der")).to_vec();
        let attr = SigningCertificate {
            certs: vec![EssCertId {
                cert_hash: OctetString::new(hash).expect("octets"),
                issuer_serial: Some(IssuerSerial::for_certificate(&cert)),
            }],
            policies: None,
        };
        let der = attr.to_der().expect("encode");
        let decoded = SigningCertificate::from_der(&der).expect("decode");
        assert_eq!(decoded, attr);
        assert!(decoded.names_signer(&cert));

        let mut wrong = decoded.clone();
        wrong.certs[0].issuer_serial = Some(other_issuer_serial());
        assert!(!wrong.names_signer(&cert));
    }
}
