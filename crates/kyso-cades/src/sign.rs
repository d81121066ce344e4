//! CAdES signing (ETSI EN 319 122-1 baseline B-B, B-T, B-LT) with a key in the HSM.
//!
//! The SignerInfo and the SignedData around it are written here rather than by cms's builders:
//! cms 0.3.0-rc.0 types `OtherRevocationInfoFormat.otherRevInfoFormat` as an AlgorithmIdentifier
//! (RFC 5652 says OBJECT IDENTIFIER), which would mis-encode the OCSP responses B-LT carries; and
//! the builders clone and re-encode per signature what is constant per signer. The HSM signs the
//! signed attributes directly, so its error is kept.

use crate::error::{SignError, TimestampError, ValidationDataError};
use async_trait::async_trait;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{SignedAttributes, SignerIdentifier};
use const_oid::ObjectIdentifier;
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode, Sequence, Tag};
use kyso_asn1::ess::SigningCertificateV2;
use kyso_asn1::oids;
use kyso_hsm::{HashAlgorithm, HsmKey};
use serde::{Deserialize, Serialize};
use spki::AlgorithmIdentifierOwned;
use tlv::Tlv;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
mod tlv;

/// The CAdES baseline level to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "B-B")]
    BB,
    #[serde(rename = "B-T")]
    BT,
    #[serde(rename = "B-LT")]
    BLT,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::BB => "B-B",
            Level::BT => "B-T",
            Level::BLT => "B-LT",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is signed.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// The content travels inside the SignedData.
    Attached(&'a [u8]),
    /// The same, with the content's digest under the signer's hash already computed by the
    /// caller (who needed it anyway), so that a large document is not hashed twice.
    AttachedHashed { data: &'a [u8], digest: &'a [u8] },
    /// The content is hashed here and left out of the SignedData.
    Detached(&'a [u8]),
    /// Only the content's digest is known (client-side hashing); the SignedData is detached.
    Digest {
        algorithm: HashAlgorithm,
        digest: &'a [u8],
    },
}

/// How to sign.
#[derive(Clone, Debug)]
pub struct SignOptions {
    pub level: Level,
    /// eContentType; id-data unless signing e.g. a TSTInfo.
    pub content_type: ObjectIdentifier,
    /// The signing-time attribute, from the caller's clock.
    pub signing_time: time::OffsetDateTime,
    /// Put the chain (intermediates) in SignedData.certificates too (B-LT always does).
    pub include_chain: bool,
    /// Write SignedData.certificates at all (a timestamp token without certReq leaves it out,
    /// RFC 3161 2.4.1).
    pub include_certificates: bool,
}

impl SignOptions {
    /// id-data content, chain included.
    pub fn new(level: Level, signing_time: time::OffsetDateTime) -> SignOptions {
        SignOptions {
            level,
            content_type: oids::ID_DATA,
            signing_time,
            include_chain: true,
            include_certificates: true,
        }
    }
}

/// Gives timestamp tokens for B-T and B-LT.
#[async_trait]
pub trait TimestampSource: Send + Sync {
    /// A TimeStampToken (ContentInfo DER) over `digest` (a `hash` digest of the signature value).
    async fn timestamp(
        &self,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, TimestampError>;
}

/// The chain and revocation data a B-LT signature carries.
#[derive(Clone, Debug, Default)]
pub struct ValidationData {
    /// Certificates to add (the chain up to and including the root, the OCSP responders...).
    pub certificates: Vec<Certificate>,
    /// CRLs, CertificateList DER.
    pub crls: Vec<Vec<u8>>,
    /// OCSP responses, OCSPResponse DER.
    pub ocsp_responses: Vec<Vec<u8>>,
}

/// Gives validation data for B-LT.
#[async_trait]
pub trait ValidationDataSource: Send + Sync {
    /// Chain certificates and revocation data (CRL DER, OCSP response DER) for B-LT;
    /// `chain` starts with the signer's certificate.
    async fn validation_data(
        &self,
        chain: &[Certificate],
    ) -> Result<ValidationData, ValidationDataError>;
}

/// An HSM key with its certificate and chain, ready to sign.
///
/// Everything a signature carries that depends only on the signer (its SignerIdentifier, the
/// algorithm identifiers, the signing-certificate-v2 attribute, the certificates field) is
/// encoded here once rather than for every signature.
#[derive(Clone, Debug)]
pub struct CadesSigner {
    key: HsmKey,
    certificate: Certificate,
    chain: Vec<Certificate>,
    /// The signing-certificate-v2 attribute, the same for every signature.
    signing_certificate: Attribute,
    /// SignerIdentifier (issuerAndSerialNumber) DER.
    sid_der: Vec<u8>,
    /// The key's digest AlgorithmIdentifier DER (SignerInfo.digestAlgorithm).
    digest_algorithm_der: Vec<u8>,
    /// SignedData.digestAlgorithms: the SET holding that one identifier.
    digest_algorithms_der: Vec<u8>,
    /// SignerInfo.signatureAlgorithm DER.
    signature_algorithm_der: Vec<u8>,
    /// The certificates field ([0] IMPLICIT SET OF) holding only the signer's certificate.
    certificates_signer_der: Vec<u8>,
    /// The signer's certificate and the chain, without repeats, in DER SET OF order...
    certificates_with_chain: SetOfVec<Any>,
    /// ...and that set as the encoded certificates field.
    certificates_with_chain_der: Vec<u8>,
}

impl CadesSigner {
    /// `chain`: the intermediates (and optionally the root), nearest first.
    pub fn new(
        key: HsmKey,
        certificate: Certificate,
        chain: Vec<Certificate>,
    ) -> Result<CadesSigner, SignError> {
        if certificate.tbs_certificate().subject_public_key_info() != key.public_key_info() {
            return Err(SignError::KeyCertificateMismatch {
                key: key.label().to_owned(),
            });
        }
        let ess = SigningCertificateV2::for_certificate(&certificate, oids::HashAlgorithm::Sha256)
            .map_err(SignError::encoding("signing-certificate-v2"))?;
        let signing_certificate =
            attribute(oids::ID_AA_SIGNING_CERTIFICATE_V2, Any::encode_from(&ess))?;
        let tbs = certificate.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        let sid_der = sid
            .to_der()
            .map_err(SignError::encoding("SignerIdentifier"))?;
        let digest_algorithm = AlgorithmIdentifierOwned {
            oid: key.hash().oid(),
            parameters: None,
        };
        let digest_algorithm_der = digest_algorithm
            .to_der()
            .map_err(SignError::encoding("digestAlgorithm"))?;
        let digest_algorithms_der =
            Tlv::Constructed(tlv::SET, vec![Tlv::Encoded(&digest_algorithm_der)]).to_vec();
        let signature_algorithm_der = key
            .signature_algorithm()
            .to_der()
            .map_err(SignError::encoding("signatureAlgorithm"))?;
        let mut signer_only = SetOfVec::new();
        add_certificates(&mut signer_only, std::slice::from_ref(&certificate))?;
        let certificates_signer_der = certificates_field(&signer_only)?;
        let mut certificates_with_chain = signer_only;
        add_certificates(&mut certificates_with_chain, &chain)?;
        let certificates_with_chain_der = certificates_field(&certificates_with_chain)?;
        Ok(CadesSigner {
            key,
            certificate,
            chain,
            signing_certificate,
            sid_der,
            digest_algorithm_der,
            digest_algorithms_der,
            signature_algorithm_der,
            certificates_signer_der,
            certificates_with_chain,
            certificates_with_chain_der,
        })
    }

    pub fn key(&self) -> &HsmKey {
        &self.key
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }
}

/// Adds each certificate's DER to `set` unless the same DER is there already.
fn add_certificates(
    set: &mut SetOfVec<Any>,
    certificates: &[Certificate],
) -> Result<(), SignError> {
    for certificate in certificates {
        let der = certificate
            .to_der()
            .map_err(SignError::encoding("certificate"))?;
        let any = Any::from_der(&der).map_err(SignError::encoding("certificate"))?;
        if !set.iter().any(|c| *c == any) {
            set.insert(any)
                .map_err(SignError::encoding("certificates"))?;
        }
    }
    Ok(())
}

/// SignedData.certificates: `[0] IMPLICIT CertificateSet`.
fn certificates_field(set: &SetOfVec<Any>) -> Result<Vec<u8>, SignError> {
    let der = set.to_der().map_err(SignError::encoding("certificates"))?;
    Ok(tlv::retagged(der, tlv::CONTEXT_0))
}

fn attribute(oid: ObjectIdentifier, value: der::Result<Any>) -> Result<Attribute, SignError> {
    let value = value.map_err(SignError::encoding("attribute value"))?;
    let mut values = SetOfVec::new();
    values
        .insert(value)
        .map_err(SignError::encoding("attribute values"))?;
    Ok(Attribute { oid, values })
}

fn signing_time_attribute(time: time::OffsetDateTime) -> Result<Attribute, SignError> {
    let bad = || SignError::BadSigningTime {
        time: time.to_string(),
    };
    let secs = u64::try_from(time.unix_timestamp()).map_err(|_| bad())?;
    let datetime = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|_| bad())?;
    // UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5652 11.3).
    let value = x509_cert::time::Time::from(datetime);
    attribute(oids::ID_SIGNING_TIME, Any::encode_from(&value))
}

/// OtherRevocationInfoFormat (RFC 5652 10.2.1), as RFC 5940 uses it for OCSP responses.
#[derive(Clone, Debug, Sequence)]
struct OtherRevocationInfo {
    format: ObjectIdentifier,
    info: Any,
}

/// Signs `content` and returns the ContentInfo(SignedData) DER.
///
/// The SignedData is written with [`Tlv`] around the signer's pre-encoded parts (see the module
/// note on why not with cms's `SignedDataBuilder`); the signed attributes and what varies per
/// signature are encoded with `der`, so DER SET OF ordering is der's.
pub async fn sign(
    signer: &CadesSigner,
    content: Content<'_>,
    options: &SignOptions,
    tsa: Option<&dyn TimestampSource>,
    validation: Option<&dyn ValidationDataSource>,
) -> Result<Vec<u8>, SignError> {
    let hash = signer.key.hash();
    let tsa = match (options.level, tsa) {
        (Level::BB, _) => None,
        (level, None) => {
            return Err(SignError::TimestampSourceMissing {
                level: level.name(),
            });
        }
        (_, Some(tsa)) => Some(tsa),
    };
    let validation = match (options.level, validation) {
        (Level::BLT, None) => return Err(SignError::ValidationSourceMissing),
        (Level::BLT, Some(v)) => Some(v),
        _ => None,
    };
    // A digest the caller computed must have the length of the signer's hash.
    let checked = |digest: &[u8]| {
        if digest.len() == hash.output_len() {
            Ok(digest.to_vec())
        } else {
            Err(SignError::DigestLength {
                algorithm: hash,
                expected: hash.output_len(),
                actual: digest.len(),
            })
        }
    };
    let (econtent, message_digest) = match content {
        Content::Attached(data) => (Some(data), hash.digest(data)),
        Content::AttachedHashed { data, digest } => {
            let digest = checked(digest)?;
            debug_assert_eq!(digest, hash.digest(data), "AttachedHashed's digest");
            (Some(data), digest)
        }
        Content::Detached(data) => (None, hash.digest(data)),
        Content::Digest { algorithm, digest } => {
            if algorithm != hash {
                return Err(SignError::DigestAlgorithmMismatch {
                    key: signer.key.label().to_owned(),
                    supplied: algorithm,
                    expected: hash,
                });
            }
            (None, checked(digest)?)
        }
    };

    // RFC 5652 5.3-5.4: content-type and message-digest, with CAdES's signing-certificate-v2 and
    // signing-time; DER-sorted as a SET OF, and signed as such.
    let signed_attributes = SignedAttributes::try_from(vec![
        signer.signing_certificate.clone(),
        signing_time_attribute(options.signing_time)?,
        attribute(
            oids::ID_MESSAGE_DIGEST,
            Any::new(Tag::OctetString, message_digest),
        )?,
        attribute(
            oids::ID_CONTENT_TYPE,
            Any::new(Tag::ObjectIdentifier, options.content_type.as_bytes()),
        )?,
    ])
    .map_err(SignError::encoding("signed attributes"))?;
    let to_sign = signed_attributes
        .to_der()
        .map_err(SignError::encoding("signed attributes"))?;
    let signature = signer
        .key
        .sign(&to_sign)
        .await
        .map_err(|source| SignError::Hsm {
            key: signer.key.label().to_owned(),
            source: Box::new(source),
        })?;
    // In the SignerInfo the same SET is [0] IMPLICIT.
    let signed_attributes_field = tlv::retagged(to_sign, tlv::CONTEXT_0);

    let unsigned_attributes_field = match tsa {
        Some(tsa) => {
            let token = tsa.timestamp(hash, &hash.digest(&signature)).await?;
            let token = Any::from_der(&token).map_err(|e| SignError::TimestampTokenMalformed {
                reason: e.to_string(),
            })?;
            let mut unsigned = SetOfVec::new();
            unsigned
                .insert(attribute(oids::ID_AA_TIME_STAMP_TOKEN, Ok(token))?)
                .map_err(SignError::encoding("unsigned attributes"))?;
            let der = unsigned
                .to_der()
                .map_err(SignError::encoding("unsigned attributes"))?;
            Some(tlv::retagged(der, tlv::CONTEXT_1))
        }
        None => None,
    };

    // Certificates: the signer's, then the chain, then B-LT's extras, without repeats. Without
    // extras the field is the one encoded when the signer was made.
    let mut certificates_built = None;
    let mut crls_field = None;
    let mut has_other_revocation = false;
    if let Some(validation) = validation {
        let mut full_chain = vec![signer.certificate.clone()];
        full_chain.extend(signer.chain.iter().cloned());
        let data = validation.validation_data(&full_chain).await?;
        let mut certificates = signer.certificates_with_chain.clone();
        add_certificates(&mut certificates, &data.certificates)?;
        certificates_built = Some(certificates_field(&certificates)?);
        let mut crl_set: SetOfVec<Any> = SetOfVec::new();
        let mut add_crl = |crl: Any| -> Result<(), SignError> {
            if !crl_set.iter().any(|c| *c == crl) {
                crl_set
                    .insert(crl)
                    .map_err(SignError::encoding("revocation data"))?;
            }
            Ok(())
        };
        for (index, crl) in data.crls.iter().enumerate() {
            add_crl(
                Any::from_der(crl).map_err(|e| SignError::RevocationDataMalformed {
                    index,
                    reason: e.to_string(),
                })?,
            )?;
        }
        for (index, response) in data.ocsp_responses.iter().enumerate() {
            let info = Any::from_der(response).map_err(|e| SignError::RevocationDataMalformed {
                index: data.crls.len() + index,
                reason: e.to_string(),
            })?;
            let other = OtherRevocationInfo {
                format: oids::ID_RI_OCSP_RESPONSE,
                info,
            }
            .to_der()
            .map_err(SignError::encoding("OtherRevocationInfoFormat"))?;
            // [1] IMPLICIT: same contents, context tag 1 constructed.
            let contents =
                Any::from_der(&other).map_err(SignError::encoding("OtherRevocationInfoFormat"))?;
            add_crl(
                Any::new(
                    Tag::ContextSpecific {
                        constructed: true,
                        number: der::TagNumber(1),
                    },
                    contents.value(),
                )
                .map_err(SignError::encoding("OtherRevocationInfoFormat"))?,
            )?;
            has_other_revocation = true;
        }
        if !crl_set.is_empty() {
            let der = crl_set
                .to_der()
                .map_err(SignError::encoding("revocation data"))?;
            crls_field = Some(tlv::retagged(der, tlv::CONTEXT_1));
        }
    }
    let certificates_field: &[u8] = match &certificates_built {
        Some(built) => built,
        None if options.include_chain => &signer.certificates_with_chain_der,
        None => &signer.certificates_signer_der,
    };

    // RFC 5652 5.1.
    let version = if has_other_revocation {
        CmsVersion::V5
    } else if options.content_type != oids::ID_DATA {
        CmsVersion::V3
    } else {
        CmsVersion::V1
    };
    let version = [version as u8];
    let signer_info_version = [CmsVersion::V1 as u8]; // issuerAndSerialNumber (RFC 5652 5.3)
    let mut econtent_info = vec![Tlv::Primitive(
        tlv::OBJECT_IDENTIFIER,
        options.content_type.as_bytes(),
    )];
    if let Some(data) = econtent {
        econtent_info.push(Tlv::Constructed(
            tlv::CONTEXT_0,
            vec![Tlv::Primitive(tlv::OCTET_STRING, data)],
        ));
    }
    let mut signer_info = vec![
        Tlv::Primitive(tlv::INTEGER, &signer_info_version),
        Tlv::Encoded(&signer.sid_der),
        Tlv::Encoded(&signer.digest_algorithm_der),
        Tlv::Encoded(&signed_attributes_field),
        Tlv::Encoded(&signer.signature_algorithm_der),
        Tlv::Primitive(tlv::OCTET_STRING, &signature),
    ];
    if let Some(unsigned) = &unsigned_attributes_field {
        signer_info.push(Tlv::Encoded(unsigned));
    }
    let mut signed_data = vec![
        Tlv::Primitive(tlv::INTEGER, &version),
        Tlv::Encoded(&signer.digest_algorithms_der),
        Tlv::Constructed(tlv::SEQUENCE, econtent_info),
    ];
    if options.include_certificates {
        signed_data.push(Tlv::Encoded(certificates_field));
    }
    if let Some(crls) = &crls_field {
        signed_data.push(Tlv::Encoded(crls));
    }
    signed_data.push(Tlv::Constructed(
        tlv::SET,
        vec![Tlv::Constructed(tlv::SEQUENCE, signer_info)],
    ));
    let content_info = Tlv::Constructed(
        tlv::SEQUENCE,
        vec![
            Tlv::Primitive(tlv::OBJECT_IDENTIFIER, oids::ID_SIGNED_DATA.as_bytes()),
            Tlv::Constructed(
                tlv::CONTEXT_0,
                vec![Tlv::Constructed(tlv::SEQUENCE, signed_data)],
            ),
        ],
    );
    Ok(content_info.to_vec())
}
