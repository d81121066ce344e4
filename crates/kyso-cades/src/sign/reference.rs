//! The signing code as it was before the signer's parts were pre-encoded (test only): the new code
//! must write the same bytes.

use cms::builder::SignerInfoBuilder;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfos};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, SetOfVec};
use der::{Any, Decode, Encode, Sequence, Tag};
use kyso_asn1::oids;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::builder::Builder;

use super::{
    CadesSigner, Content, Level, SignOptions, TimestampSource, ValidationDataSource, attribute,
    signing_time_attribute,
};
use crate::error::SignError;

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

/// The signing code before the signer's parts were pre-encoded, kept to check that the new code
/// writes the same bytes; then, as the TSA did, the certificates dropped by decoding and
/// re-encoding when `include_certificates` is off.
pub(super) async fn reference_sign(
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
        Content::Attached(data) | Content::AttachedHashed { data, .. } => (
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
    let tbs = signer.certificate.tbs_certificate();
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    });
    let mut info_builder = SignerInfoBuilder::new(
        sid,
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
    let token = content_info
        .to_der()
        .map_err(SignError::encoding("ContentInfo"))?;
    if options.include_certificates {
        return Ok(token);
    }
    let content_info = ContentInfo::from_der(&token).unwrap();
    let mut signed_data: cms::signed_data::SignedData = content_info.content.decode_as().unwrap();
    signed_data.certificates = None;
    Ok(ContentInfo {
        content_type: content_info.content_type,
        content: Any::encode_from(&signed_data).unwrap(),
    }
    .to_der()
    .unwrap())
}
