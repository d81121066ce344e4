//! Bounded parsing of a ContentInfo carrying SignedData (RFC 5652 section 5), BER or DER.
//!
//! Everything a verifier needs is kept, including the raw bytes the signatures cover. Inner
//! structures with a fixed DER form (certificates, algorithm identifiers, names) are decoded
//! with `der`; the outer layers go through [`crate::ber`]. Never panics; every list is bounded.

use crate::ber::{self, BerError, CLASS_CONTEXT, CLASS_UNIVERSAL, Tlv};
use const_oid::ObjectIdentifier;
use der::Decode;
use spki::AlgorithmIdentifierOwned;
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// Largest CMS message accepted.
pub const MAX_CMS_BYTES: usize = 64 * 1024 * 1024;
pub const MAX_SIGNERS: usize = 64;
pub const MAX_CERTIFICATES: usize = 512;
pub const MAX_REVOCATION_ENTRIES: usize = 1024;
pub const MAX_ATTRIBUTES: usize = 256;
pub const MAX_DIGEST_ALGORITHMS: usize = 32;

/// id-signedData.
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ri-ocsp-response (RFC 5940).
pub const ID_RI_OCSP_RESPONSE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.16.2");

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("the CMS message is empty")]
    Empty,
    #[error("the CMS message is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("malformed CMS: {what}: {source}")]
    Ber {
        what: &'static str,
        #[source]
        source: BerError,
    },
    #[error("malformed CMS: {what}")]
    Malformed { what: String },
    #[error("CMS nested too deeply")]
    TooDeep,
    #[error("the ContentInfo holds {content_type}, not SignedData")]
    NotSignedData { content_type: String },
    #[error("trailing bytes after the CMS message")]
    TrailingData,
    #[error("more than {max} {what} in the SignedData")]
    TooMany { what: &'static str, max: usize },
}

impl ParseError {
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "cms_empty",
            ParseError::TooLarge { .. } => "cms_too_large",
            ParseError::Ber { .. } | ParseError::Malformed { .. } => "cms_malformed",
            ParseError::TooDeep => "cms_too_deep",
            ParseError::NotSignedData { .. } => "cms_not_signed_data",
            ParseError::TrailingData => "cms_trailing_data",
            ParseError::TooMany { .. } => "cms_too_many_elements",
        }
    }
}

fn malformed(what: impl Into<String>) -> ParseError {
    ParseError::Malformed { what: what.into() }
}

fn ber_err(what: &'static str) -> impl Fn(BerError) -> ParseError {
    move |source| match source {
        BerError::TooDeep { .. } => ParseError::TooDeep,
        source => ParseError::Ber { what, source },
    }
}

/// A parsed SignedData with the raw pieces verification needs.
#[derive(Debug, Clone)]
pub struct ParsedSignedData {
    pub version: u8,
    pub digest_algorithms: Vec<AlgorithmIdentifierOwned>,
    pub econtent_type: ObjectIdentifier,
    /// The eContent OCTET STRING's value; `None` when the content is detached.
    pub econtent: Option<Vec<u8>>,
    /// Embedded certificates that decode as X.509 (DER).
    pub certificates: Vec<Certificate>,
    /// Certificate choices that are not plain certificates (attribute or other formats).
    pub other_certificates: usize,
    /// Embedded CRLs (CertificateList DER).
    pub crls: Vec<Vec<u8>>,
    /// Embedded OCSP responses (OtherRevocationInfoFormat id-ri-ocsp-response, OCSPResponse DER).
    pub ocsp_responses: Vec<Vec<u8>>,
    /// Other revocation formats, by OID.
    pub other_revocation_formats: Vec<ObjectIdentifier>,
    pub signer_infos: Vec<ParsedSignerInfo>,
}

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    IssuerAndSerial { issuer: Name, serial: SerialNumber },
    SubjectKeyIdentifier(Vec<u8>),
}

/// One attribute: its type and the raw DER of each value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAttribute {
    pub oid: ObjectIdentifier,
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ParsedSignerInfo {
    pub version: u8,
    pub sid: SignerId,
    pub digest_algorithm: AlgorithmIdentifierOwned,
    /// The signed attributes, in the order sent.
    pub signed_attributes: Option<Vec<ParsedAttribute>>,
    /// What the signature covers when there are signed attributes: their encoding re-tagged as
    /// SET OF (RFC 5652 5.4).
    pub signed_attributes_der: Option<Vec<u8>>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
    pub unsigned_attributes: Vec<ParsedAttribute>,
}

impl ParsedSignerInfo {
    /// The signed attributes of type `oid`.
    pub fn signed(&self, oid: ObjectIdentifier) -> impl Iterator<Item = &ParsedAttribute> {
        self.signed_attributes
            .iter()
            .flatten()
            .filter(move |a| a.oid == oid)
    }

    /// The unsigned attributes of type `oid`.
    pub fn unsigned(&self, oid: ObjectIdentifier) -> impl Iterator<Item = &ParsedAttribute> {
        self.unsigned_attributes
            .iter()
            .filter(move |a| a.oid == oid)
    }
}

/// Parses a ContentInfo (BER or DER) that must carry SignedData. Bounded: at most
/// [`MAX_CMS_BYTES`], [`ber::MAX_DEPTH`] levels and the `MAX_*` counts.
pub fn parse_signed_data(input: &[u8]) -> Result<ParsedSignedData, ParseError> {
    parse_signed_data_with(input, None)
}

/// Embedded certificates decoded before (by their bytes), for a verifier that meets the same CA,
/// TSA and signer certificates in message after message: decoding a certificate costs several
/// times cloning a decoded one. Bounded: cleared when full.
pub struct DecodedCertificates {
    decoded: std::sync::Mutex<std::collections::HashMap<Vec<u8>, std::sync::Arc<Certificate>>>,
    capacity: usize,
}

/// Certificates kept decoded at most (a few KiB each).
pub const MAX_DECODED_CERTIFICATES: usize = 1024;
/// Larger certificates are decoded each time, not kept (real ones are 1-3 KiB).
pub const MAX_DECODED_CERTIFICATE_BYTES: usize = 16 * 1024;

impl Default for DecodedCertificates {
    fn default() -> DecodedCertificates {
        DecodedCertificates::with_capacity(MAX_DECODED_CERTIFICATES)
    }
}

impl std::fmt::Debug for DecodedCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCertificates")
            .field("kept", &self.len())
            .finish()
    }
}

impl DecodedCertificates {
    pub fn with_capacity(capacity: usize) -> DecodedCertificates {
        DecodedCertificates {
            decoded: std::sync::Mutex::default(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.decoded.lock().map(|m| m.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Certificate::from_der(der)`; errors are not kept.
    pub fn decode(&self, der: &[u8]) -> der::Result<Certificate> {
        // Cloned outside the lock (an Arc under it), so threads do not queue on it.
        if let Some(cert) = self.decoded.lock().ok().and_then(|m| m.get(der).cloned()) {
            return Ok((*cert).clone());
        }
        let cert = Certificate::from_der(der)?;
        if der.len() > MAX_DECODED_CERTIFICATE_BYTES {
            return Ok(cert);
        }
        // A poisoned lock: another thread panicked while inserting; nothing is kept.
        if let Ok(mut map) = self.decoded.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(der.to_vec(), std::sync::Arc::new(cert.clone()));
        }
        Ok(cert)
    }
}

/// [`parse_signed_data`], with embedded certificates decoded through `certificates`.
pub fn parse_signed_data_with(
    input: &[u8],
    certificates: Option<&DecodedCertificates>,
) -> Result<ParsedSignedData, ParseError> {
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    if input.len() > MAX_CMS_BYTES {
        return Err(ParseError::TooLarge {
            len: input.len(),
            max: MAX_CMS_BYTES,
        });
    }
    let (content_info, rest) = ber::read(input).map_err(ber_err("ContentInfo"))?;
    if !rest.is_empty() {
        return Err(ParseError::TrailingData);
    }
    if !content_info.is(CLASS_UNIVERSAL, true, 16) {
        return Err(malformed("ContentInfo is not a SEQUENCE"));
    }
    let parts = content_info.children().map_err(ber_err("ContentInfo"))?;
    let [content_type, content] = parts.as_slice() else {
        return Err(malformed("ContentInfo must have contentType and content"));
    };
    let content_type = oid(content_type, "contentType")?;
    if content_type != ID_SIGNED_DATA {
        return Err(ParseError::NotSignedData {
            content_type: content_type.to_string(),
        });
    }
    if !content.is(CLASS_CONTEXT, true, 0) {
        return Err(malformed("ContentInfo content is not [0] EXPLICIT"));
    }
    let inner = content.children().map_err(ber_err("content"))?;
    let [signed_data] = inner.as_slice() else {
        return Err(malformed("ContentInfo [0] must hold one element"));
    };
    parse_signed_data_body(signed_data, certificates)
}

fn parse_signed_data_body(
    sd: &Tlv<'_>,
    decoded: Option<&DecodedCertificates>,
) -> Result<ParsedSignedData, ParseError> {
    if !sd.is(CLASS_UNIVERSAL, true, 16) {
        return Err(malformed("SignedData is not a SEQUENCE"));
    }
    let fields = sd.children().map_err(ber_err("SignedData"))?;
    let mut it = fields.iter().peekable();
    let version = small_int(it.next(), "SignedData version")?;
    let digest_set = it
        .next()
        .filter(|t| t.is(CLASS_UNIVERSAL, true, 17))
        .ok_or_else(|| malformed("SignedData digestAlgorithms"))?;
    let digest_tlvs = digest_set.children().map_err(ber_err("digestAlgorithms"))?;
    if digest_tlvs.len() > MAX_DIGEST_ALGORITHMS {
        return Err(ParseError::TooMany {
            what: "digest algorithms",
            max: MAX_DIGEST_ALGORITHMS,
        });
    }
    let digest_algorithms = digest_tlvs
        .iter()
        .map(|t| algorithm(t, "digestAlgorithm"))
        .collect::<Result<Vec<_>, _>>()?;
    let eci = it
        .next()
        .filter(|t| t.is(CLASS_UNIVERSAL, true, 16))
        .ok_or_else(|| malformed("SignedData encapContentInfo"))?;
    let (econtent_type, econtent) = parse_encap_content(eci)?;

    let mut certificates = Vec::new();
    let mut other_certificates = 0;
    if let Some(set) = it.next_if(|t| t.is(CLASS_CONTEXT, true, 0)) {
        let items = set.children().map_err(ber_err("certificates"))?;
        if items.len() > MAX_CERTIFICATES {
            return Err(ParseError::TooMany {
                what: "certificates",
                max: MAX_CERTIFICATES,
            });
        }
        for item in items {
            if item.is(CLASS_UNIVERSAL, true, 16) {
                let cert = match decoded {
                    Some(decoded) => decoded.decode(item.raw),
                    None => Certificate::from_der(item.raw),
                }
                .map_err(|e| malformed(format!("embedded certificate: {e}")))?;
                certificates.push(cert);
            } else {
                other_certificates += 1;
            }
        }
    }
    let mut crls = Vec::new();
    let mut ocsp_responses = Vec::new();
    let mut other_revocation_formats = Vec::new();
    if let Some(set) = it.next_if(|t| t.is(CLASS_CONTEXT, true, 1)) {
        let items = set.children().map_err(ber_err("crls"))?;
        if items.len() > MAX_REVOCATION_ENTRIES {
            return Err(ParseError::TooMany {
                what: "revocation entries",
                max: MAX_REVOCATION_ENTRIES,
            });
        }
        for item in items {
            if item.is(CLASS_UNIVERSAL, true, 16) {
                crls.push(item.raw.to_vec());
            } else if item.is(CLASS_CONTEXT, true, 1) {
                let parts = item.children().map_err(ber_err("otherRevocationInfo"))?;
                let [format, info] = parts.as_slice() else {
                    return Err(malformed("OtherRevocationInfoFormat"));
                };
                let format = oid(format, "otherRevInfoFormat")?;
                if format == ID_RI_OCSP_RESPONSE {
                    ocsp_responses.push(info.raw.to_vec());
                } else {
                    other_revocation_formats.push(format);
                }
            } else {
                return Err(malformed("unknown RevocationInfoChoice"));
            }
        }
    }
    let signer_set = it
        .next()
        .filter(|t| t.is(CLASS_UNIVERSAL, true, 17))
        .ok_or_else(|| malformed("SignedData signerInfos"))?;
    if it.next().is_some() {
        return Err(malformed("unexpected field after signerInfos"));
    }
    let signer_tlvs = signer_set.children().map_err(ber_err("signerInfos"))?;
    if signer_tlvs.len() > MAX_SIGNERS {
        return Err(ParseError::TooMany {
            what: "signers",
            max: MAX_SIGNERS,
        });
    }
    let signer_infos = signer_tlvs
        .iter()
        .map(parse_signer_info)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedSignedData {
        version,
        digest_algorithms,
        econtent_type,
        econtent,
        certificates,
        other_certificates,
        crls,
        ocsp_responses,
        other_revocation_formats,
        signer_infos,
    })
}

fn parse_encap_content(eci: &Tlv<'_>) -> Result<(ObjectIdentifier, Option<Vec<u8>>), ParseError> {
    let parts = eci.children().map_err(ber_err("encapContentInfo"))?;
    let econtent_type = oid(
        parts
            .first()
            .ok_or_else(|| malformed("encapContentInfo eContentType"))?,
        "eContentType",
    )?;
    let econtent = match parts.get(1) {
        None => None,
        Some(wrapper) if wrapper.is(CLASS_CONTEXT, true, 0) => {
            let inner = wrapper.children().map_err(ber_err("eContent"))?;
            let [octets] = inner.as_slice() else {
                return Err(malformed("eContent [0] must hold one element"));
            };
            if !octets.is_universal(4) {
                return Err(malformed("eContent is not an OCTET STRING"));
            }
            Some(
                octets
                    .octets(MAX_CMS_BYTES)
                    .map_err(ber_err("eContent OCTET STRING"))?,
            )
        }
        Some(_) => return Err(malformed("eContent is not [0] EXPLICIT")),
    };
    if parts.len() > 2 {
        return Err(malformed("encapContentInfo has extra fields"));
    }
    Ok((econtent_type, econtent))
}

fn parse_signer_info(si: &Tlv<'_>) -> Result<ParsedSignerInfo, ParseError> {
    if !si.is(CLASS_UNIVERSAL, true, 16) {
        return Err(malformed("SignerInfo is not a SEQUENCE"));
    }
    let fields = si.children().map_err(ber_err("SignerInfo"))?;
    let mut it = fields.iter().peekable();
    let version = small_int(it.next(), "SignerInfo version")?;
    let sid_tlv = it.next().ok_or_else(|| malformed("SignerInfo sid"))?;
    let sid = if sid_tlv.is(CLASS_UNIVERSAL, true, 16) {
        let isn = cms::cert::IssuerAndSerialNumber::from_der(sid_tlv.raw)
            .map_err(|e| malformed(format!("issuerAndSerialNumber: {e}")))?;
        SignerId::IssuerAndSerial {
            issuer: isn.issuer,
            serial: isn.serial_number,
        }
    } else if sid_tlv.is_context(0) {
        SignerId::SubjectKeyIdentifier(
            sid_tlv
                .octets(1024)
                .map_err(ber_err("subjectKeyIdentifier"))?,
        )
    } else {
        return Err(malformed("SignerInfo sid has an unknown form"));
    };
    let digest_algorithm = algorithm(
        it.next()
            .ok_or_else(|| malformed("SignerInfo digestAlgorithm"))?,
        "digestAlgorithm",
    )?;
    let (signed_attributes, signed_attributes_der) =
        match it.next_if(|t| t.is(CLASS_CONTEXT, true, 0)) {
            Some(attrs) => (Some(attributes(attrs)?), Some(attrs.retagged(0x31))),
            None => (None, None),
        };
    let signature_algorithm = algorithm(
        it.next()
            .ok_or_else(|| malformed("SignerInfo signatureAlgorithm"))?,
        "signatureAlgorithm",
    )?;
    let signature = it
        .next()
        .filter(|t| t.is_universal(4))
        .ok_or_else(|| malformed("SignerInfo signature"))?
        .octets(64 * 1024)
        .map_err(ber_err("signature"))?;
    let unsigned_attributes = match it.next_if(|t| t.is(CLASS_CONTEXT, true, 1)) {
        Some(attrs) => attributes(attrs)?,
        None => Vec::new(),
    };
    if it.next().is_some() {
        return Err(malformed("unexpected field in SignerInfo"));
    }
    Ok(ParsedSignerInfo {
        version,
        sid,
        digest_algorithm,
        signed_attributes,
        signed_attributes_der,
        signature_algorithm,
        signature,
        unsigned_attributes,
    })
}

fn attributes(set: &Tlv<'_>) -> Result<Vec<ParsedAttribute>, ParseError> {
    let items = set.children().map_err(ber_err("attributes"))?;
    if items.len() > MAX_ATTRIBUTES {
        return Err(ParseError::TooMany {
            what: "attributes",
            max: MAX_ATTRIBUTES,
        });
    }
    items
        .iter()
        .map(|item| {
            if !item.is(CLASS_UNIVERSAL, true, 16) {
                return Err(malformed("Attribute is not a SEQUENCE"));
            }
            let parts = item.children().map_err(ber_err("Attribute"))?;
            let [attr_type, values] = parts.as_slice() else {
                return Err(malformed("Attribute must have attrType and attrValues"));
            };
            let oid = oid(attr_type, "attrType")?;
            if !values.is(CLASS_UNIVERSAL, true, 17) {
                return Err(malformed("attrValues is not a SET"));
            }
            let values = values
                .children()
                .map_err(ber_err("attrValues"))?
                .iter()
                .map(|v| v.raw.to_vec())
                .collect();
            Ok(ParsedAttribute { oid, values })
        })
        .collect()
}

fn oid(tlv: &Tlv<'_>, what: &str) -> Result<ObjectIdentifier, ParseError> {
    if !tlv.is(CLASS_UNIVERSAL, false, 6) {
        return Err(malformed(format!("{what} is not an OBJECT IDENTIFIER")));
    }
    ObjectIdentifier::from_der(tlv.raw).map_err(|e| malformed(format!("{what}: {e}")))
}

fn algorithm(tlv: &Tlv<'_>, what: &str) -> Result<AlgorithmIdentifierOwned, ParseError> {
    AlgorithmIdentifierOwned::from_der(tlv.raw).map_err(|e| malformed(format!("{what}: {e}")))
}

fn small_int(tlv: Option<&Tlv<'_>>, what: &str) -> Result<u8, ParseError> {
    let tlv = tlv
        .filter(|t| t.is(CLASS_UNIVERSAL, false, 2))
        .ok_or_else(|| malformed(format!("{what} is not an INTEGER")))?;
    match tlv.contents {
        [v] if *v < 0x80 => Ok(*v),
        _ => Err(malformed(format!("{what} out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_huge_trailing_and_foreign_content() {
        assert_eq!(parse_signed_data(&[]).unwrap_err().code(), "cms_empty");
        let huge = vec![0u8; MAX_CMS_BYTES + 1];
        assert_eq!(
            parse_signed_data(&huge).unwrap_err().code(),
            "cms_too_large"
        );
        // ContentInfo { id-data, [0] { OCTET STRING "" } } followed by a stray byte.
        let data = [
            0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x02, 0x04, 0x00,
        ];
        assert_eq!(
            parse_signed_data(&data).unwrap_err().code(),
            "cms_not_signed_data"
        );
        let mut trailing = data.to_vec();
        trailing.push(0);
        assert_eq!(
            parse_signed_data(&trailing).unwrap_err().code(),
            "cms_trailing_data"
        );
    }

    #[test]
    fn truncations_never_panic() {
        let dir = crate::testdata_dir().join("cms/rfc4134-bc");
        let file = std::fs::read(dir.join("4.2.bin")).unwrap();
        assert!(parse_signed_data(&file).is_ok());
        for len in 0..file.len() {
            assert!(parse_signed_data(&file[..len]).is_err());
        }
        for i in (0..file.len()).step_by(7) {
            let mut bent = file.clone();
            bent[i] ^= 0xff;
            let _ = parse_signed_data(&bent);
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut deep = vec![0x30, 0x80, 0x06, 0x09];
        deep.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
        for _ in 0..200 {
            deep.extend_from_slice(&[0xa0, 0x80]);
        }
        deep.extend(std::iter::repeat_n(0u8, 402));
        assert_eq!(parse_signed_data(&deep).unwrap_err().code(), "cms_too_deep");
    }

    #[test]
    fn decoded_certificates_are_what_decoding_gives_and_stay_bounded() {
        let read = |name: &str| {
            std::fs::read(
                crate::testdata_dir()
                    .join("nist-pkits/certs")
                    .join(format!("{name}.crt")),
            )
            .unwrap()
        };
        let decoded = DecodedCertificates::with_capacity(2);
        let der = read("GoodCACert");
        let fresh = Certificate::from_der(&der).unwrap();
        assert_eq!(decoded.decode(&der).unwrap(), fresh);
        assert_eq!(decoded.decode(&der).unwrap(), fresh, "kept");
        assert_eq!(decoded.len(), 1);
        assert!(decoded.decode(&der[1..]).is_err());
        assert!(decoded.decode(&der[1..]).is_err());
        assert_eq!(decoded.len(), 1, "errors are not kept");
        for name in [
            "GoodsubCACert",
            "TrustAnchorRootCertificate",
            "ValidCertificatePathTest1EE",
        ] {
            let der = read(name);
            assert_eq!(
                decoded.decode(&der).unwrap(),
                Certificate::from_der(&der).unwrap()
            );
            assert!(decoded.len() <= 2);
        }
    }
}
