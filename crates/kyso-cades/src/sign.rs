//! CAdES signing (ETSI EN 319 122-1 baseline B-B, B-T, B-LT) with a key in the HSM.
//!
//! cms's `SignerInfoBuilder` builds the SignerInfo (content-type and message-digest attributes,
//! the bytes to sign); the HSM signs them here directly so its error is kept. The SignedData
//! around it is assembled here rather than by `SignedDataBuilder`, because cms 0.3.0-rc.0 types
//! `OtherRevocationInfoFormat.otherRevInfoFormat` as an AlgorithmIdentifier (RFC 5652 says OBJECT
//! IDENTIFIER), which would mis-encode the OCSP responses B-LT carries.

use crate::error::{SignError, TimestampError, ValidationDataError};
use async_trait::async_trait;
use cms::builder::SignerInfoBuilder;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfos};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, SetOfVec};
use der::{Any, Decode, Encode, Sequence, Tag};
use kyso_asn1::ess::SigningCertificateV2;
use kyso_asn1::oids;
use kyso_hsm::{HashAlgorithm, HsmKey};
use serde::{Deserialize, Serialize};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::builder::Builder;

#[cfg(test)]
mod tests;

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
}

impl SignOptions {
    /// id-data content, chain included.
    pub fn new(level: Level, signing_time: time::OffsetDateTime) -> SignOptions {
        SignOptions {
            level,
            content_type: oids::ID_DATA,
            signing_time,
            include_chain: true,
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
#[derive(Clone, Debug)]
pub struct CadesSigner {
    key: HsmKey,
    certificate: Certificate,
    chain: Vec<Certificate>,
    /// The signing-certificate-v2 attribute, the same for every signature.
    signing_certificate: Attribute,
    sid: SignerIdentifier,
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
        Ok(CadesSigner {
            key,
            certificate,
            chain,
            signing_certificate,
            sid,
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

/// SignedData as written (see the module note on RevocationInfoChoices).
#[derive(Clone, Debug, Sequence)]
struct SignedDataOut {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<SetOfVec<Any>>,
    signer_infos: SignerInfos,
}

/// OtherRevocationInfoFormat (RFC 5652 10.2.1), as RFC 5940 uses it for OCSP responses.
#[derive(Clone, Debug, Sequence)]
struct OtherRevocationInfo {
    format: ObjectIdentifier,
    info: Any,
}

/// Signs `content` and returns the ContentInfo(SignedData) DER.
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
    let (econtent, external_digest) = match content {
        Content::Attached(data) => (
            Some(Any::new(Tag::OctetString, data).map_err(SignError::encoding("eContent"))?),
            None,
        ),
        Content::Detached(data) => (None, Some(hash.digest(data))),
        Content::Digest { algorithm, digest } => {
            if algorithm != hash {
                return Err(SignError::DigestAlgorithmMismatch {
                    key: signer.key.label().to_owned(),
                    supplied: algorithm,
                    expected: hash,
                });
            }
            if digest.len() != algorithm.output_len() {
                return Err(SignError::DigestLength {
                    algorithm,
                    expected: algorithm.output_len(),
                    actual: digest.len(),
                });
            }
            (None, Some(digest.to_vec()))
        }
    };
    let eci = EncapsulatedContentInfo {
        econtent_type: options.content_type,
        econtent,
    };
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: hash.oid(),
        parameters: None,
    };
    let builder_error = |e: x509_cert::builder::Error| SignError::Encoding {
        what: "SignerInfo",
        reason: e.to_string(),
    };
    let cms_error = |e: cms::builder::Error| SignError::Encoding {
        what: "SignerInfo",
        reason: e.to_string(),
    };
    let mut info_builder = SignerInfoBuilder::new(
        signer.sid.clone(),
        digest_algorithm.clone(),
        &eci,
        external_digest.as_deref(),
    )
    .map_err(cms_error)?;
    info_builder
        .add_signed_attribute(signer.signing_certificate.clone())
        .map_err(cms_error)?;
    info_builder
        .add_signed_attribute(signing_time_attribute(options.signing_time)?)
        .map_err(cms_error)?;
    let to_sign = info_builder.finalize(&signer.key).map_err(builder_error)?;
    let signature = signer
        .key
        .sign(&to_sign)
        .await
        .map_err(|source| SignError::Hsm {
            key: signer.key.label().to_owned(),
            source: Box::new(source),
        })?;
    let bits = BitString::from_bytes(&signature).map_err(SignError::encoding("signature"))?;
    let mut signer_info = info_builder
        .assemble(bits, &signer.key)
        .map_err(builder_error)?;

    if let Some(tsa) = tsa {
        let token = tsa.timestamp(hash, &hash.digest(&signature)).await?;
        let token = Any::from_der(&token).map_err(|e| SignError::TimestampTokenMalformed {
            reason: e.to_string(),
        })?;
        let attr = attribute(oids::ID_AA_TIME_STAMP_TOKEN, Ok(token))?;
        let mut unsigned = signer_info.unsigned_attrs.take().unwrap_or_default();
        unsigned
            .insert(attr)
            .map_err(SignError::encoding("unsigned attributes"))?;
        signer_info.unsigned_attrs = Some(unsigned);
    }

    // Certificates: the signer's, then the chain, then B-LT's extras, without repeats.
    let mut certificates: Vec<Certificate> = vec![signer.certificate.clone()];
    if options.include_chain || options.level == Level::BLT {
        certificates.extend(signer.chain.iter().cloned());
    }
    let mut crls = Vec::new();
    let mut has_other_revocation = false;
    if let Some(validation) = validation {
        let mut full_chain = vec![signer.certificate.clone()];
        full_chain.extend(signer.chain.iter().cloned());
        let data = validation.validation_data(&full_chain).await?;
        certificates.extend(data.certificates);
        for (index, crl) in data.crls.iter().enumerate() {
            crls.push(
                Any::from_der(crl).map_err(|e| SignError::RevocationDataMalformed {
                    index,
                    reason: e.to_string(),
                })?,
            );
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
            crls.push(
                Any::new(
                    Tag::ContextSpecific {
                        constructed: true,
                        number: der::TagNumber(1),
                    },
                    contents.value(),
                )
                .map_err(SignError::encoding("OtherRevocationInfoFormat"))?,
            );
            has_other_revocation = true;
        }
    }
    let mut cert_set = SetOfVec::new();
    let mut seen = Vec::new();
    for cert in &certificates {
        let der = cert.to_der().map_err(SignError::encoding("certificate"))?;
        if seen.contains(&der) {
            continue;
        }
        cert_set
            .insert(Any::from_der(&der).map_err(SignError::encoding("certificate"))?)
            .map_err(SignError::encoding("certificates"))?;
        seen.push(der);
    }
    let mut crl_set = SetOfVec::new();
    for crl in crls {
        if !crl_set.iter().any(|c| *c == crl) {
            crl_set
                .insert(crl)
                .map_err(SignError::encoding("revocation data"))?;
        }
    }

    // RFC 5652 5.1.
    let version = if has_other_revocation {
        CmsVersion::V5
    } else if options.content_type != oids::ID_DATA {
        CmsVersion::V3
    } else {
        CmsVersion::V1
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms
        .insert(digest_algorithm)
        .map_err(SignError::encoding("digestAlgorithms"))?;
    let signed_data = SignedDataOut {
        version,
        digest_algorithms,
        encap_content_info: eci,
        certificates: Some(cert_set),
        crls: (!crl_set.is_empty()).then_some(crl_set),
        signer_infos: SignerInfos::try_from(vec![signer_info])
            .map_err(SignError::encoding("signerInfos"))?,
    };
    let content_info = ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(SignError::encoding("SignedData"))?,
    };
    content_info
        .to_der()
        .map_err(SignError::encoding("ContentInfo"))
}
