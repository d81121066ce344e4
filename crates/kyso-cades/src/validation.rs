//! Signature validation of CMS/CAdES signatures (ETSI EN 319 102-1): the verdict that combines
//! the cryptographic checks of [`crate::verify`] with certification path validation
//! ([`kyso_validate::PathValidator`]) at the best signature time.
//!
//! For each SignerInfo: format and cryptographic checks first (FORMAT_FAILURE, HASH_FAILURE,
//! SIG_CRYPTO_FAILURE, NO_SIGNING_CERTIFICATE_FOUND...); each signature timestamp is validated on
//! its own (its token, its imprint over the signature value, the TSA certificate's path) and the
//! earliest valid one proves when the signature existed; the signer's path is then validated at
//! that proven time, or at the validation time when there is none. Revocation data comes from the
//! signature itself, from the caller and from the configured [`RevocationSource`]s. The result is
//! a [`ValidationReport`] with a stable JSON form (it is stored, returned and signed as a receipt).

use std::sync::Arc;

use const_oid::ObjectIdentifier;
use der::Encode;
use kyso_ca::NameFields;
use kyso_validate::{
    CertificateRole, Indication, Message, PathValidation, PathValidator, RevocationData,
    RevocationSource, RevocationStatus, SubIndication, ValidationPolicy, ValidationTime,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;

use crate::crypto::SignatureScheme;
use crate::parse::{self, ParseError};
use crate::verify::{
    self, DetachedContent, Finding, SignerReport, TimestampReport, VerificationCaches,
};
use crate::{DigestAlgorithm, Level};

#[cfg(test)]
mod tests;

/// A timestamp may be this much later than the validation time (clock differences); a later one
/// proves nothing.
const TIMESTAMP_FUTURE_SKEW: time::Duration = time::Duration::minutes(5);
/// Most certificates handed to the revocation sources in one validation (the signers' and TSAs'
/// first, then the rest; `gather_revocation_data` takes at most 64 besides the first).
const MAX_SOURCE_CERTIFICATES: usize = 65;

/// What to validate: a ContentInfo(SignedData), BER or DER, with what the caller supplies.
#[derive(Debug, Clone, Default)]
pub struct CmsInput<'a> {
    pub cms: &'a [u8],
    /// The content of a detached signature (or its digest); `None` when it is attached.
    pub detached: DetachedContent<'a>,
    /// Certificates searched for signer, TSA and chain certificates besides the embedded ones.
    pub extra_certificates: Vec<Certificate>,
    /// CRLs and OCSP responses supplied by the caller, besides the embedded ones.
    pub revocation: RevocationData,
}

impl<'a> CmsInput<'a> {
    /// An attached signature with nothing supplied.
    pub fn new(cms: &'a [u8]) -> CmsInput<'a> {
        CmsInput {
            cms,
            ..CmsInput::default()
        }
    }
}

/// Validates CMS/CAdES signatures against one trust store and policy. Cheap to share: the path
/// validator is behind an `Arc`.
pub struct SignatureValidator {
    path: Arc<PathValidator>,
    policy: ValidationPolicy,
    sources: Vec<Arc<dyn RevocationSource>>,
    /// P-256 keys and certificates met before (TSA, CAs, repeat signers), shared by every
    /// validation.
    caches: VerificationCaches,
}

impl std::fmt::Debug for SignatureValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureValidator")
            .field("path", &self.path)
            .field("policy", &self.policy)
            .field("revocation_sources", &self.sources.len())
            .field("caches", &self.caches)
            .finish()
    }
}

// ------------------------------------------------------------------------------------ report

/// The format of the validated object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureFormat {
    #[serde(rename = "CMS")]
    Cms,
}

/// Where a signature's best signature time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The earliest valid signature timestamp (a proof of existence).
    Timestamp,
    /// No valid timestamp: the validation time (no proof of existence).
    ValidationTime,
}

/// The verdict on a whole CMS message. Field order is the JSON order (the report is signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The worst over the signatures; TOTAL-FAILED FORMAT_FAILURE when there is none.
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub message: Message,
    /// RFC 3339, UTC, whole seconds.
    #[serde(with = "rfc3339")]
    pub validation_time: OffsetDateTime,
    pub format: SignatureFormat,
    pub content: ContentReport,
    pub signatures: Vec<SignatureValidation>,
    /// Problems of the message as a whole.
    pub findings: Vec<ReportFinding>,
    pub warnings: Vec<ReportFinding>,
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentReport {
    /// eContentType, dotted OID.
    pub content_type: String,
    /// The content travels inside the SignedData.
    pub attached: bool,
    /// Bytes of content checked, when the content itself (not only a digest) was available.
    pub length: Option<u64>,
    /// The content's digest with each digest algorithm the signers use (or the supplied digest).
    pub digests: Vec<ContentDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDigest {
    /// `sha256`, ...
    pub algorithm: String,
    /// Lowercase hex.
    pub value: String,
}

/// The verdict on one SignerInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureValidation {
    /// Position of the SignerInfo in the SignedData, from 0.
    pub index: usize,
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub message: Message,
    /// The signer certificate's subject; identity numbers masked unless the policy says not to.
    pub signer: Option<PartyName>,
    pub signer_certificate: Option<CertificateRef>,
    /// The signing-time attribute: what the signer claims, not a proof.
    #[serde(with = "rfc3339::option")]
    pub claimed_signing_time: Option<OffsetDateTime>,
    /// The time the signer's path was validated at.
    #[serde(with = "rfc3339")]
    pub best_signature_time: OffsetDateTime,
    pub time_source: TimeSource,
    /// B-B; B-T with a valid signature timestamp; B-LT when the chain and revocation data are
    /// embedded as well.
    pub level: Level,
    /// `sha256`, ...; `None` when the algorithm is not accepted.
    pub digest_algorithm: Option<String>,
    pub digest_algorithm_oid: String,
    /// `ecdsa_p256`, `rsa_pkcs1v15`, `rsa_pss`, ... as verified; `None` when not verified.
    pub signature_algorithm: Option<String>,
    pub signature_algorithm_oid: String,
    pub timestamps: Vec<TimestampValidation>,
    /// `None` when there is no signer certificate to validate.
    pub certificate_path: Option<CertificatePath>,
    pub findings: Vec<ReportFinding>,
    pub warnings: Vec<ReportFinding>,
}

/// The verdict on one signature-timestamp token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampValidation {
    pub index: usize,
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub message: Message,
    #[serde(with = "rfc3339::option")]
    pub gen_time: Option<OffsetDateTime>,
    /// TSTInfo serialNumber, lowercase hex.
    pub serial: Option<String>,
    /// TSA policy, dotted OID.
    pub policy: Option<String>,
    pub imprint_algorithm: Option<String>,
    /// The TSTInfo `tsa` field, when it is a directory name or URI.
    pub tsa_name: Option<String>,
    /// The TSA certificate's subject.
    pub tsa: Option<PartyName>,
    pub tsa_certificate: Option<CertificateRef>,
    pub certificate_path: Option<CertificatePath>,
    pub findings: Vec<ReportFinding>,
    pub warnings: Vec<ReportFinding>,
}

/// The fields of an X.509 name (from kyso-ca's [`NameFields`], in a form that also deserializes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyName {
    pub common_name: Option<String>,
    pub organisation: Option<String>,
    pub organisational_units: Vec<String>,
    pub title: Option<String>,
    pub locality: Option<String>,
    pub province: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    /// Identity numbers in full (`CCCD:079212345645`); empty when masked.
    pub identities: Vec<String>,
    /// Identity numbers masked (`CCCD:0792******45`).
    pub masked_identities: Vec<String>,
    /// UID values that are not identity numbers in kyso's format; empty when masked.
    pub other_uids: Vec<String>,
    pub other: Vec<NameAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameAttribute {
    pub oid: String,
    pub value: Option<String>,
}

impl From<NameFields> for PartyName {
    fn from(f: NameFields) -> PartyName {
        PartyName {
            common_name: f.common_name,
            organisation: f.organisation,
            organisational_units: f.organisational_units,
            title: f.title,
            locality: f.locality,
            province: f.province,
            country: f.country,
            email: f.email,
            identities: f.identities.into_iter().map(String::from).collect(),
            masked_identities: f.masked_identities,
            other_uids: f.other_uids,
            other: f
                .other
                .into_iter()
                .map(|o| NameAttribute {
                    oid: o.oid,
                    value: o.value,
                })
                .collect(),
        }
    }
}

/// Which certificate, without its subject (reported separately, masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRef {
    /// Lowercase hex.
    pub serial: String,
    pub issuer: Option<PartyName>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256_fingerprint: String,
    #[serde(with = "rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A certification path validation (kyso-validate's [`PathValidation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatePath {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub message: Message,
    /// The time the path was validated at.
    #[serde(with = "rfc3339")]
    pub time: OffsetDateTime,
    /// That time is proven by a proof of existence (a valid timestamp).
    pub time_proven: bool,
    /// End entity first, trust anchor last.
    pub chain: Vec<ChainCertificate>,
    pub trust_anchor: Option<TrustAnchorRef>,
    /// Index in `chain` of the certificate that made the validation fail.
    pub failed_certificate: Option<usize>,
    /// Technical reason (path building, certval status).
    pub detail: Option<String>,
    pub paths_tried: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainRole {
    EndEntity,
    Intermediate,
    TrustAnchor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCertificate {
    pub role: ChainRole,
    pub common_name: Option<String>,
    pub organisation: Option<String>,
    pub serial: Option<String>,
    pub sha256_fingerprint: Option<String>,
    #[serde(with = "rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// Dotted OID of the certificate's signature algorithm.
    pub signature_algorithm: String,
    pub sha1_signature: bool,
    pub revocation: Revocation,
}

/// Revocation status of one certificate at the path's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Revocation {
    /// Not revoked, settled by `source` (`crl`, `ocsp`, ...) with data current at `data_time`.
    Good {
        source: String,
        #[serde(with = "rfc3339")]
        data_time: OffsetDateTime,
    },
    /// Revoked only after the path's time.
    RevokedAfterTimeOfInterest {
        #[serde(with = "rfc3339")]
        revoked_at: OffsetDateTime,
    },
    Revoked {
        #[serde(with = "rfc3339::option")]
        revoked_at: Option<OffsetDateTime>,
    },
    Unknown,
    NotChecked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAnchorRef {
    pub label: String,
    /// SHA-256 of the anchor's DER, lowercase hex.
    pub sha256: String,
    pub common_name: Option<String>,
    pub allow_sha1: bool,
}

/// One failed check or warning: a stable code, a message in Vietnamese and English, and the
/// technical detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFinding {
    pub code: String,
    pub message: Message,
    pub detail: Option<String>,
}

impl ReportFinding {
    fn new(code: &str, message: Message, detail: Option<String>) -> ReportFinding {
        ReportFinding {
            code: code.to_owned(),
            message,
            detail,
        }
    }
}

impl From<&Finding> for ReportFinding {
    fn from(f: &Finding) -> ReportFinding {
        ReportFinding::new(f.code, finding_message(f.code), Some(f.detail.clone()))
    }
}

impl ValidationReport {
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

impl SignatureValidation {
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

impl TimestampValidation {
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

// ------------------------------------------------------------------------------------ validation

/// What every signer of one message shares.
struct Context<'a> {
    certificates: &'a [Certificate],
    revocation: &'a RevocationData,
    now: OffsetDateTime,
    /// SHA-256 (lowercase hex) of the certificates embedded in the SignedData itself.
    embedded: &'a [String],
    embedded_revocation: bool,
}

impl SignatureValidator {
    pub fn new(path: Arc<PathValidator>, policy: ValidationPolicy) -> SignatureValidator {
        SignatureValidator {
            path,
            policy,
            sources: Vec::new(),
            caches: VerificationCaches::default(),
        }
    }

    /// Adds a source asked for revocation data about the signers', TSAs' and chain certificates
    /// (typically kyso's own CA).
    pub fn with_revocation_source(mut self, source: Arc<dyn RevocationSource>) -> Self {
        self.sources.push(source);
        self
    }

    pub fn policy(&self) -> &ValidationPolicy {
        &self.policy
    }

    pub fn path_validator(&self) -> &Arc<PathValidator> {
        &self.path
    }

    /// Validates every signature of `input.cms` at `now` (the validation time, from the caller's
    /// clock). Malformed or non-SignedData input is an `Err` (the caller answers 4xx); every
    /// outcome of a well-formed message, failures included, is in the report.
    pub async fn validate_cms(
        &self,
        input: CmsInput<'_>,
        now: OffsetDateTime,
    ) -> Result<ValidationReport, ParseError> {
        let now = whole_seconds_utc(now);
        let CmsInput {
            cms,
            detached,
            extra_certificates,
            revocation,
        } = input;
        let parsed = parse::parse_signed_data_with(cms, Some(&self.caches.certificates))?;
        // Only B-LT needs them (revocation data embedded, see `chain_embedded`).
        let embedded: Vec<String> = if parsed.crls.is_empty() && parsed.ocsp_responses.is_empty() {
            Vec::new()
        } else {
            parsed.certificates.iter().map(fingerprint).collect()
        };
        let algorithms: Vec<(ObjectIdentifier, ObjectIdentifier)> = parsed
            .signer_infos
            .iter()
            .map(|si| (si.digest_algorithm.oid, si.signature_algorithm.oid))
            .collect();
        let report = verify::verify_parsed_with(
            Some(&self.caches),
            parsed,
            detached,
            &extra_certificates,
            0,
        );
        let content = content_report(&report, detached);

        let embedded_revocation = !report.crls.is_empty() || !report.ocsp_responses.is_empty();
        let mut supplied = RevocationData {
            crls: report.crls.clone(),
            ocsp_responses: report.ocsp_responses.clone(),
        };
        supplied.merge(revocation);
        let mut warnings = Vec::new();
        let revocation = self.gather(&report, supplied, &mut warnings).await;

        let context = Context {
            certificates: &report.certificates,
            revocation: &revocation,
            now,
            embedded: &embedded,
            embedded_revocation,
        };
        let signatures: Vec<SignatureValidation> = report
            .signers
            .iter()
            .zip(algorithms)
            .map(|(signer, algorithms)| self.validate_signer(&context, signer, algorithms))
            .collect();

        let findings: Vec<ReportFinding> =
            report.failures.iter().map(ReportFinding::from).collect();
        let (indication, sub_indication) = if signatures.is_empty() {
            (Indication::TotalFailed, Some(SubIndication::FormatFailure))
        } else {
            worst(
                signatures
                    .iter()
                    .map(|s| Some((s.indication, s.sub_indication))),
            )
        };
        Ok(ValidationReport {
            indication,
            sub_indication,
            message: verdict(indication, sub_indication),
            validation_time: now,
            format: SignatureFormat::Cms,
            content,
            signatures,
            findings,
            warnings,
        })
    }

    /// The supplied revocation data plus what the sources say about the message's certificates.
    async fn gather(
        &self,
        report: &verify::SignedDataReport,
        supplied: RevocationData,
        warnings: &mut Vec<ReportFinding>,
    ) -> RevocationData {
        if self.sources.is_empty() {
            return supplied;
        }
        // Signers first, then TSAs, then the rest: the sources see at most the first 65.
        let mut wanted: Vec<&Certificate> = Vec::new();
        for signer in &report.signers {
            if let Some(cert) = &signer.signer_certificate {
                push_unique(&mut wanted, cert);
            }
        }
        for signer in &report.signers {
            for ts in signer
                .timestamps
                .iter()
                .take(verify::MAX_TIMESTAMPS_PER_SIGNER)
            {
                if let Some(cert) = &ts.tsa_certificate {
                    push_unique(&mut wanted, cert);
                }
                for cert in ts.token.iter().flat_map(|t| t.certificates.iter()) {
                    push_unique(&mut wanted, cert);
                }
            }
        }
        for cert in &report.certificates {
            push_unique(&mut wanted, cert);
        }
        let Some((leaf, rest)) = wanted.split_first() else {
            return supplied;
        };
        let rest: Vec<Certificate> = rest.iter().map(|c| (*c).clone()).collect();
        let sources: Vec<&dyn RevocationSource> = self.sources.iter().map(|s| &**s).collect();
        let (data, messages) = self
            .path
            .gather_revocation_data(&sources, leaf, &rest, supplied)
            .await;
        warnings.extend(
            messages
                .into_iter()
                .map(|m| ReportFinding::new("revocation_source_unavailable", m, None)),
        );
        data
    }

    fn validate_signer(
        &self,
        context: &Context<'_>,
        signer: &SignerReport,
        (digest_oid, signature_oid): (ObjectIdentifier, ObjectIdentifier),
    ) -> SignatureValidation {
        let mut findings: Vec<ReportFinding> =
            signer.failures.iter().map(ReportFinding::from).collect();
        let mut warnings: Vec<ReportFinding> =
            signer.warnings.iter().map(ReportFinding::from).collect();
        let crypto = signer_outcome(signer);

        // Timestamps: each validated on its own; a failed one is reported and not used.
        let timestamps: Vec<TimestampValidation> = signer
            .timestamps
            .iter()
            .take(verify::MAX_TIMESTAMPS_PER_SIGNER)
            .enumerate()
            .map(|(i, ts)| self.validate_timestamp(context, i, ts))
            .collect();
        for ts in timestamps.iter().filter(|t| !t.passed()) {
            warnings.push(ReportFinding::new(
                "timestamp_not_used",
                finding_message("timestamp_not_used"),
                Some(format!(
                    "timestamp {}: {}",
                    ts.index,
                    ts.sub_indication
                        .map_or(ts.indication.as_str(), SubIndication::as_str)
                )),
            ));
        }
        let proof = timestamps
            .iter()
            .filter(|t| t.passed())
            .filter_map(|t| t.gen_time)
            .min();
        let (best_signature_time, time_source, time) = match proof {
            Some(t) => (t, TimeSource::Timestamp, ValidationTime::proven(t)),
            None => (
                context.now,
                TimeSource::ValidationTime,
                ValidationTime::unproven(context.now),
            ),
        };

        // The signer's path at the best signature time.
        let cert = signer.signer_certificate.as_ref();
        let path = cert.map(|cert| {
            let others = others(context.certificates, cert);
            self.path
                .validate_path_refs(cert, &others, time, context.revocation, &self.policy)
        });
        if let Some(path) = &path {
            if !path.passed() {
                findings.push(ReportFinding::new(
                    "certificate_path",
                    path.message.clone(),
                    path.detail.clone(),
                ));
            }
            warnings.extend(
                path.warnings
                    .iter()
                    .map(|m| ReportFinding::new("certificate_path_warning", m.clone(), None)),
            );
        }

        let level = if proof.is_none() {
            Level::BB
        } else if context.embedded_revocation
            && path
                .as_ref()
                .is_some_and(|p| chain_embedded(p, context.embedded))
        {
            Level::BLT
        } else {
            Level::BT
        };

        let (indication, sub_indication) = worst([
            crypto.map(|(i, s)| (i, Some(s))),
            path.as_ref().map(|p| (p.indication, p.sub_indication)),
        ]);
        SignatureValidation {
            index: signer.index,
            indication,
            sub_indication,
            message: verdict(indication, sub_indication),
            signer: cert.and_then(|c| self.name_of(c, path.as_ref())),
            signer_certificate: cert.map(|c| self.certificate_ref(c, path.as_ref())),
            claimed_signing_time: signer.signing_time.map(utc),
            best_signature_time,
            time_source,
            level,
            digest_algorithm: signer.digest_algorithm.map(|d| d.name().to_owned()),
            digest_algorithm_oid: digest_oid.to_string(),
            signature_algorithm: signer.signature_scheme.map(|s| scheme_name(s).to_owned()),
            signature_algorithm_oid: signature_oid.to_string(),
            timestamps,
            certificate_path: path.map(certificate_path),
            findings,
            warnings,
        }
    }

    fn validate_timestamp(
        &self,
        context: &Context<'_>,
        index: usize,
        ts: &TimestampReport,
    ) -> TimestampValidation {
        let mut findings: Vec<ReportFinding> =
            ts.failures.iter().map(ReportFinding::from).collect();
        let mut warnings: Vec<ReportFinding> =
            ts.warnings.iter().map(ReportFinding::from).collect();
        let token_signer = ts.token.as_ref().and_then(|t| t.signers.first());
        if let Some(signer) = token_signer {
            warnings.extend(signer.warnings.iter().map(ReportFinding::from));
            findings.extend(signer.failures.iter().map(ReportFinding::from));
        }
        let gen_time = ts.gen_time.map(utc);
        let mut outcome = timestamp_outcome(ts);
        if outcome.is_none()
            && let Some(t) = gen_time
            && t > context.now + TIMESTAMP_FUTURE_SKEW
        {
            findings.push(ReportFinding::new(
                "timestamp_in_future",
                finding_message("timestamp_in_future"),
                Some(format!(
                    "genTime {} after the validation time",
                    rfc3339::text(t)
                )),
            ));
            outcome = Some((
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
            ));
        }

        // The TSA's path, at the validation time; a TSA certificate that has expired since is
        // checked at the timestamp's own time (its revocation still at the validation time).
        let mut path = None;
        if outcome.is_none()
            && let Some(tsa) = &ts.tsa_certificate
        {
            let pool = ts
                .token
                .as_ref()
                .map_or(context.certificates, |t| t.certificates.as_slice());
            let others = others(pool, tsa);
            let now = ValidationTime::unproven(context.now);
            let mut result =
                self.path
                    .validate_path_refs(tsa, &others, now, context.revocation, &self.policy);
            if let (
                Some(SubIndication::OutOfBoundsNoPoe | SubIndication::OutOfBoundsNotRevoked),
                Some(t),
            ) = (result.sub_indication, gen_time)
            {
                let at_gen_time = self.path.validate_path_refs(
                    tsa,
                    &others,
                    ValidationTime::unproven(t),
                    context.revocation,
                    &self.policy,
                );
                if at_gen_time.passed() {
                    warnings.push(ReportFinding::new(
                        "timestamp_tsa_certificate_expired",
                        finding_message("timestamp_tsa_certificate_expired"),
                        result.detail.clone(),
                    ));
                    result = at_gen_time;
                }
            }
            if !result.passed() {
                findings.push(ReportFinding::new(
                    "certificate_path",
                    result.message.clone(),
                    result.detail.clone(),
                ));
            }
            warnings.extend(
                result
                    .warnings
                    .iter()
                    .map(|m| ReportFinding::new("certificate_path_warning", m.clone(), None)),
            );
            path = Some(result);
        }
        let (indication, sub_indication) = worst([
            outcome.map(|(i, s)| (i, Some(s))),
            path.as_ref().map(|p| (p.indication, p.sub_indication)),
        ]);
        let tst = ts
            .token
            .as_ref()
            .and_then(|t| t.econtent.as_deref())
            .and_then(|bytes| <kyso_asn1::rfc3161::TstInfo as der::Decode>::from_der(bytes).ok());
        TimestampValidation {
            index,
            indication,
            sub_indication,
            message: verdict(indication, sub_indication),
            gen_time,
            serial: ts.serial.clone(),
            policy: ts.policy.map(|p| p.to_string()),
            imprint_algorithm: ts.imprint_algorithm.map(|a| a.name().to_owned()),
            tsa_name: tst.and_then(|t| t.tsa).and_then(|n| general_name(&n)),
            tsa: ts
                .tsa_certificate
                .as_ref()
                .and_then(|c| self.name_of(c, path.as_ref())),
            tsa_certificate: ts
                .tsa_certificate
                .as_ref()
                .map(|c| self.certificate_ref(c, path.as_ref())),
            certificate_path: path.map(certificate_path),
            findings,
            warnings,
        }
    }

    fn summary(&self, cert: &Certificate) -> Option<kyso_ca::CertificateSummary> {
        let summary = kyso_ca::summarize(cert).ok()?;
        Some(if self.policy.mask_identities {
            summary.masked()
        } else {
            summary
        })
    }

    /// The summary of `cert`: the one in `path` when `cert` is its end entity (`path` was
    /// validated for it, with the same policy, so the summary is the same), else made anew.
    fn summary_in(
        &self,
        cert: &Certificate,
        path: Option<&PathValidation>,
    ) -> Option<kyso_ca::CertificateSummary> {
        path.and_then(|p| p.chain.first())
            .and_then(|end_entity| end_entity.summary.clone())
            .or_else(|| self.summary(cert))
    }

    fn name_of(&self, cert: &Certificate, path: Option<&PathValidation>) -> Option<PartyName> {
        self.summary_in(cert, path)
            .map(|s| PartyName::from(s.subject))
    }

    fn certificate_ref(&self, cert: &Certificate, path: Option<&PathValidation>) -> CertificateRef {
        let tbs = cert.tbs_certificate();
        let validity = tbs.validity();
        let summary = self.summary_in(cert, path);
        // The summary's fingerprint is the same SHA-256 of the same DER.
        let sha256_fingerprint = summary
            .as_ref()
            .map(|s| s.sha256_fingerprint.clone())
            .unwrap_or_else(|| fingerprint(cert));
        CertificateRef {
            serial: summary
                .as_ref()
                .map(|s| s.serial.clone())
                .unwrap_or_else(|| hex::encode(tbs.serial_number().as_bytes())),
            issuer: summary.map(|s| PartyName::from(s.issuer)),
            sha256_fingerprint,
            not_before: from_unix(x509_unix(&validity.not_before)),
            not_after: from_unix(x509_unix(&validity.not_after)),
        }
    }
}

fn push_unique<'c>(wanted: &mut Vec<&'c Certificate>, cert: &'c Certificate) {
    if wanted.len() < MAX_SOURCE_CERTIFICATES && !wanted.contains(&cert) {
        wanted.push(cert);
    }
}

/// `pool` without `cert`: the candidates for its chain.
fn others<'p>(pool: &'p [Certificate], cert: &Certificate) -> Vec<&'p Certificate> {
    pool.iter().filter(|c| *c != cert).collect()
}

/// Every certificate of the validated path below the anchor is embedded in the SignedData.
fn chain_embedded(path: &PathValidation, embedded: &[String]) -> bool {
    path.trust_anchor.is_some()
        && path
            .chain
            .iter()
            .filter(|c| c.role != CertificateRole::TrustAnchor)
            .all(|c| {
                c.summary
                    .as_ref()
                    .is_some_and(|s| embedded.contains(&s.sha256_fingerprint))
            })
}

// ------------------------------------------------------------------------------------ mapping

/// Structural violations of CMS/CAdES (RFC 5652 11, RFC 5035): FORMAT_FAILURE.
const FORMAT_CODES: &[&str] = &[
    "attribute_not_allowed_unsigned",
    "attribute_not_allowed_signed",
    "signed_attributes_required",
    "content_type_missing",
    "content_type_mismatch",
    "content_type_malformed",
    "message_digest_missing",
    "message_digest_malformed",
    "signing_time_malformed",
    "attribute_repeated",
    "attribute_multiple_values",
    "signing_certificate_malformed",
    "signature_malformed",
];

/// The result of the format and cryptographic checks of one signer (EN 319 102-1 5.2.2, 5.2.3,
/// 5.2.7, 5.2.8), definite failures first; `None` when they all passed.
fn signer_outcome(signer: &SignerReport) -> Option<(Indication, SubIndication)> {
    use Indication::{Indeterminate, TotalFailed};
    let has = |codes: &[&str]| signer.failures.iter().any(|f| codes.contains(&f.code));
    let outcome = if has(FORMAT_CODES) {
        (TotalFailed, SubIndication::FormatFailure)
    } else if has(&["message_digest_mismatch"]) {
        (TotalFailed, SubIndication::HashFailure)
    } else if has(&["signature_invalid"]) {
        (TotalFailed, SubIndication::SigCryptoFailure)
    } else if has(&[
        "signer_certificate_not_found",
        "signing_certificate_mismatch",
    ]) {
        // 5.2.3: the signing certificate cannot be identified (absent, or not the one the
        // signing-certificate-v2 attribute names).
        (Indeterminate, SubIndication::NoSigningCertificateFound)
    } else if has(&["content_missing", "digest_algorithm_mismatch"]) {
        (Indeterminate, SubIndication::SignedDataNotFound)
    } else if has(&["digest_algorithm_weak"]) {
        (Indeterminate, SubIndication::CryptoConstraintsFailureNoPoe)
    } else if has(&[
        "digest_algorithm_unsupported",
        "signature_algorithm_unsupported",
    ]) {
        (Indeterminate, SubIndication::CryptoConstraintsFailure)
    } else if !signer.failures.is_empty() || !signer.signature_valid || !signer.message_digest_valid
    {
        // timestamp_too_many, or anything new: never a pass.
        (Indeterminate, SubIndication::SigConstraintsFailure)
    } else {
        return None;
    };
    Some(outcome)
}

/// The result of a timestamp token's own checks (EN 319 102-1 5.4), `None` when they passed.
fn timestamp_outcome(ts: &TimestampReport) -> Option<(Indication, SubIndication)> {
    use Indication::{Indeterminate, TotalFailed};
    let has = |codes: &[&str]| ts.failures.iter().any(|f| codes.contains(&f.code));
    let outcome = if has(&[
        "timestamp_malformed",
        "timestamp_wrong_content_type",
        "timestamp_signer_count",
        "timestamp_nested_too_deep",
    ]) {
        (TotalFailed, SubIndication::FormatFailure)
    } else if has(&["timestamp_imprint_mismatch"]) {
        (TotalFailed, SubIndication::HashFailure)
    } else if has(&["timestamp_signature_invalid"]) {
        ts.token
            .as_ref()
            .and_then(|t| t.signers.first())
            .and_then(signer_outcome)
            .unwrap_or((TotalFailed, SubIndication::FormatFailure))
    } else if has(&["timestamp_imprint_algorithm"]) {
        (Indeterminate, SubIndication::CryptoConstraintsFailure)
    } else if has(&["timestamp_tsa_eku", "timestamp_tsa_eku_not_critical"]) {
        (Indeterminate, SubIndication::ChainConstraintsFailure)
    } else if !ts.failures.is_empty() || ts.gen_time.is_none() {
        (Indeterminate, SubIndication::SigConstraintsFailure)
    } else {
        return None;
    };
    Some(outcome)
}

fn severity(indication: Indication) -> u8 {
    match indication {
        Indication::TotalPassed => 0,
        Indication::Indeterminate => 1,
        Indication::TotalFailed => 2,
    }
}

/// The worst of several results (the first of equally bad ones); TOTAL-PASSED when all are
/// `None` or passed.
fn worst(
    results: impl IntoIterator<Item = Option<(Indication, Option<SubIndication>)>>,
) -> (Indication, Option<SubIndication>) {
    let mut best: (Indication, Option<SubIndication>) = (Indication::TotalPassed, None);
    for (indication, sub) in results.into_iter().flatten() {
        if severity(indication) > severity(best.0) {
            best = (indication, sub);
        }
    }
    best
}

/// What a citizen reads: the verdict, then why.
fn verdict(indication: Indication, sub: Option<SubIndication>) -> Message {
    let head = indication.message();
    match sub {
        None => head,
        Some(sub) => {
            let why = sub.message();
            Message::new(
                format!("{}. {}", head.vi, why.vi),
                format!("{}. {}", head.en, why.en),
            )
        }
    }
}

fn certificate_path(p: PathValidation) -> CertificatePath {
    CertificatePath {
        indication: p.indication,
        sub_indication: p.sub_indication,
        message: p.message,
        time: from_unix(p.time.unix),
        time_proven: p.time.proven,
        chain: p
            .chain
            .into_iter()
            .map(|c| {
                let summary = c.summary;
                ChainCertificate {
                    role: match c.role {
                        CertificateRole::EndEntity => ChainRole::EndEntity,
                        CertificateRole::Intermediate => ChainRole::Intermediate,
                        CertificateRole::TrustAnchor => ChainRole::TrustAnchor,
                    },
                    common_name: summary.as_ref().and_then(|s| s.subject.common_name.clone()),
                    organisation: summary
                        .as_ref()
                        .and_then(|s| s.subject.organisation.clone()),
                    serial: summary.as_ref().map(|s| s.serial.clone()),
                    sha256_fingerprint: summary.as_ref().map(|s| s.sha256_fingerprint.clone()),
                    not_before: summary.as_ref().map(|s| from_unix(s.not_before)),
                    not_after: summary.as_ref().map(|s| from_unix(s.not_after)),
                    signature_algorithm: c.signature_algorithm,
                    sha1_signature: c.sha1_signature,
                    revocation: match c.revocation {
                        RevocationStatus::Good { source, data_time } => Revocation::Good {
                            source,
                            data_time: from_unix(data_time),
                        },
                        RevocationStatus::RevokedAfterTimeOfInterest { revoked_at } => {
                            Revocation::RevokedAfterTimeOfInterest {
                                revoked_at: from_unix(revoked_at),
                            }
                        }
                        RevocationStatus::Revoked { revoked_at } => Revocation::Revoked {
                            revoked_at: revoked_at.map(from_unix),
                        },
                        RevocationStatus::Unknown => Revocation::Unknown,
                        RevocationStatus::NotChecked => Revocation::NotChecked,
                    },
                }
            })
            .collect(),
        trust_anchor: p.trust_anchor.map(|a| TrustAnchorRef {
            label: a.label,
            sha256: a.sha256.to_ascii_lowercase(),
            common_name: a.subject_common_name,
            allow_sha1: a.allow_sha1,
        }),
        failed_certificate: p.failed_certificate,
        detail: p.detail,
        paths_tried: p.paths_tried,
    }
}

fn content_report(
    report: &verify::SignedDataReport,
    detached: DetachedContent<'_>,
) -> ContentReport {
    let mut algorithms: Vec<DigestAlgorithm> = Vec::new();
    for algorithm in report.signers.iter().filter_map(|s| s.digest_algorithm) {
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    let over = |bytes: &[u8]| -> Vec<ContentDigest> {
        algorithms
            .iter()
            .map(|a| ContentDigest {
                algorithm: a.name().to_owned(),
                value: hex::encode(a.digest(bytes)),
            })
            .collect()
    };
    let (attached, length, digests) = match (&report.econtent, detached) {
        (Some(bytes), _) => (true, Some(bytes.len() as u64), over(bytes)),
        (None, DetachedContent::Content(bytes)) => (false, Some(bytes.len() as u64), over(bytes)),
        (None, DetachedContent::Digest { algorithm, digest }) => (
            false,
            None,
            vec![ContentDigest {
                algorithm: algorithm.name().to_owned(),
                value: hex::encode(digest),
            }],
        ),
        (None, DetachedContent::None) => (false, None, Vec::new()),
    };
    ContentReport {
        content_type: report.econtent_type.to_string(),
        attached,
        length,
        digests,
    }
}

fn scheme_name(scheme: SignatureScheme) -> &'static str {
    match scheme {
        SignatureScheme::RsaPkcs1v15 => "rsa_pkcs1v15",
        SignatureScheme::RsaPss => "rsa_pss",
        SignatureScheme::EcdsaP256 => "ecdsa_p256",
        SignatureScheme::EcdsaP384 => "ecdsa_p384",
    }
}

fn general_name(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::DirectoryName(dn) => Some(dn.to_string()),
        GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
        GeneralName::DnsName(dns) => Some(dns.to_string()),
        _ => None,
    }
}

/// SHA-256 of a certificate's DER, lowercase hex (as kyso-ca's summary writes it).
fn fingerprint(cert: &Certificate) -> String {
    cert.to_der()
        .map(|der| hex::encode(Sha256::digest(der)))
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------------ time

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what RFC 3339 can write.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(UtcOffset::UTC)
}

fn whole_seconds_utc(t: OffsetDateTime) -> OffsetDateTime {
    from_unix(t.unix_timestamp())
}

fn from_unix(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix.clamp(MIN_UNIX, MAX_UNIX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn x509_unix(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(MAX_UNIX)
}

/// RFC 3339 (UTC) for serde.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(super) fn text(t: OffsetDateTime) -> String {
        super::utc(t)
            .format(&Rfc3339)
            .unwrap_or_else(|_| t.unix_timestamp().to_string())
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let utc = super::utc(*t);
        let text = utc.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(super::utc)
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] OffsetDateTime);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

// ------------------------------------------------------------------------------------ messages

/// Vietnamese and English for each finding code of [`crate::verify`] and of this module.
fn finding_message(code: &str) -> Message {
    let (vi, en) = match code {
        "cms_no_signers" => (
            "Dữ liệu CMS không chứa chữ ký nào.",
            "The CMS data contains no signature.",
        ),
        "digest_algorithm_weak" => (
            "Thuật toán băm đã bị phá vỡ (MD2, MD4, MD5) và không được chấp nhận.",
            "The digest algorithm is broken (MD2, MD4, MD5) and is not accepted.",
        ),
        "digest_algorithm_unsupported" => (
            "Thuật toán băm không được hỗ trợ.",
            "The digest algorithm is not supported.",
        ),
        "digest_algorithm_sha1" => (
            "Chữ ký dùng thuật toán băm SHA-1 (đã lỗi thời): chỉ chấp nhận cho chữ ký cũ.",
            "The signature uses the SHA-1 digest (obsolete): accepted for old signatures only.",
        ),
        "signature_algorithm_sha1" => (
            "Thuật toán chữ ký dùng SHA-1 (đã lỗi thời).",
            "The signature algorithm uses SHA-1 (obsolete).",
        ),
        "attribute_not_allowed_unsigned" => (
            "Một thuộc tính bắt buộc phải được ký lại nằm trong phần không được ký.",
            "An attribute that must be signed is among the unsigned attributes.",
        ),
        "attribute_not_allowed_signed" => (
            "Chữ ký đồng ký (countersignature) không được nằm trong các thuộc tính được ký.",
            "A countersignature must not be a signed attribute.",
        ),
        "countersignature_not_checked" => (
            "Có chữ ký đồng ký (countersignature) nhưng chữ ký này chưa được kiểm tra.",
            "A countersignature is present but was not checked.",
        ),
        "detached_content_ignored" => (
            "Tài liệu đã nằm trong chữ ký; tài liệu gửi kèm không được dùng.",
            "The content is attached to the signature; the supplied content was not used.",
        ),
        "signer_certificate_not_found" => (
            "Không tìm thấy chứng thư số của người ký trong chữ ký hoặc trong các chứng thư số được cung cấp.",
            "The signer's certificate is neither in the signature nor among the supplied certificates.",
        ),
        "signed_attributes_required" => (
            "Thiếu các thuộc tính được ký (bắt buộc khi nội dung không phải id-data).",
            "Signed attributes are missing (required when the content is not id-data).",
        ),
        "no_signed_attributes" => (
            "Chữ ký không có thuộc tính được ký (không phải chữ ký CAdES).",
            "The signature has no signed attributes (not a CAdES signature).",
        ),
        "content_missing" => (
            "Chữ ký tách rời: cần cung cấp tài liệu gốc hoặc giá trị băm của tài liệu.",
            "Detached signature: supply the original document or its digest.",
        ),
        "signature_invalid" => (
            "Giá trị chữ ký không đúng với khóa công khai của người ký.",
            "The signature value does not verify with the signer's public key.",
        ),
        "signature_algorithm_unsupported" => (
            "Thuật toán chữ ký không được hỗ trợ.",
            "The signature algorithm is not supported.",
        ),
        "signature_malformed" => (
            "Khóa công khai hoặc tham số của thuật toán chữ ký không đúng định dạng.",
            "The public key or the signature algorithm parameters are malformed.",
        ),
        "rsa_key_below_2048" => (
            "Khóa RSA của người ký ngắn hơn 2048 bit.",
            "The signer's RSA key is shorter than 2048 bits.",
        ),
        "timestamp_too_many" => (
            "Chữ ký có quá nhiều dấu thời gian nên không dấu thời gian nào được kiểm tra.",
            "The signature carries too many timestamps, so none was checked.",
        ),
        "timestamp_before_signing_time" => (
            "Dấu thời gian sớm hơn thời điểm ký mà người ký khai báo.",
            "The timestamp is earlier than the signing time the signer claims.",
        ),
        "unknown_signed_attribute" => (
            "Có thuộc tính được ký không xác định.",
            "A signed attribute is not understood.",
        ),
        "content_type_missing" => (
            "Thiếu thuộc tính content-type.",
            "The content-type attribute is missing.",
        ),
        "content_type_mismatch" => (
            "Thuộc tính content-type không khớp với loại nội dung đã ký.",
            "The content-type attribute does not match the signed content type.",
        ),
        "content_type_malformed" => (
            "Thuộc tính content-type không đúng định dạng.",
            "The content-type attribute is malformed.",
        ),
        "message_digest_missing" => (
            "Thiếu thuộc tính message-digest.",
            "The message-digest attribute is missing.",
        ),
        "message_digest_malformed" => (
            "Thuộc tính message-digest không đúng định dạng.",
            "The message-digest attribute is malformed.",
        ),
        "message_digest_mismatch" => (
            "Giá trị băm của tài liệu không khớp với chữ ký: tài liệu đã bị thay đổi sau khi ký.",
            "The document's digest does not match the signature: the document was changed after signing.",
        ),
        "digest_algorithm_mismatch" => (
            "Giá trị băm được cung cấp dùng thuật toán khác với thuật toán người ký đã dùng.",
            "The supplied digest uses another algorithm than the signer's.",
        ),
        "signing_time_malformed" => (
            "Thuộc tính thời điểm ký (signing-time) không đúng định dạng.",
            "The signing-time attribute is malformed.",
        ),
        "attribute_repeated" => (
            "Một thuộc tính được ký xuất hiện nhiều lần.",
            "A signed attribute appears more than once.",
        ),
        "attribute_multiple_values" => (
            "Một thuộc tính được ký có nhiều hơn một giá trị.",
            "A signed attribute has more than one value.",
        ),
        "signing_certificate_malformed" => (
            "Thuộc tính signing-certificate không đúng định dạng.",
            "The signing-certificate attribute is malformed.",
        ),
        "signing_certificate_v1" => (
            "Chữ ký dùng thuộc tính signing-certificate phiên bản 1 (SHA-1) thay vì phiên bản 2.",
            "The signature uses the signing-certificate attribute version 1 (SHA-1) instead of version 2.",
        ),
        "signing_certificate_absent" => (
            "Chữ ký không có thuộc tính signing-certificate-v2: chứng thư số của người ký không được gắn vào chữ ký.",
            "The signature has no signing-certificate-v2 attribute: the signer's certificate is not bound to it.",
        ),
        "signing_certificate_mismatch" => (
            "Thuộc tính signing-certificate không chỉ đến chứng thư số của người ký.",
            "The signing-certificate attribute does not name the signer's certificate.",
        ),
        "timestamp_nested_too_deep" => (
            "Các dấu thời gian lồng nhau quá sâu.",
            "Timestamps are nested too deeply.",
        ),
        "timestamp_malformed" => (
            "Dấu thời gian không đúng định dạng.",
            "The timestamp is malformed.",
        ),
        "timestamp_wrong_content_type" => (
            "Dấu thời gian không chứa TSTInfo.",
            "The timestamp does not contain a TSTInfo.",
        ),
        "timestamp_signature_invalid" => (
            "Chữ ký của dấu thời gian không hợp lệ.",
            "The timestamp's signature is not valid.",
        ),
        "timestamp_signer_count" => (
            "Dấu thời gian phải có đúng một người ký.",
            "A timestamp must have exactly one signer.",
        ),
        "timestamp_tsa_eku_not_critical" => (
            "Phần mở rộng mục đích sử dụng khóa của chứng thư số đơn vị cấp dấu thời gian không được đánh dấu bắt buộc (critical).",
            "The extended key usage of the TSA certificate is not marked critical.",
        ),
        "timestamp_tsa_eku" => (
            "Chứng thư số của đơn vị cấp dấu thời gian không chỉ dành riêng cho việc cấp dấu thời gian.",
            "The TSA certificate is not for timestamping alone.",
        ),
        "timestamp_imprint_sha1" => (
            "Dấu thời gian dùng giá trị băm SHA-1 (đã lỗi thời).",
            "The timestamp uses a SHA-1 imprint (obsolete).",
        ),
        "timestamp_imprint_mismatch" => (
            "Dấu thời gian không được cấp cho giá trị chữ ký này.",
            "The timestamp was not issued over this signature value.",
        ),
        "timestamp_imprint_algorithm" => (
            "Thuật toán băm của dấu thời gian không được chấp nhận.",
            "The timestamp's digest algorithm is not accepted.",
        ),
        "timestamp_not_used" => (
            "Một dấu thời gian không hợp lệ đã bị bỏ qua: nó không được dùng làm bằng chứng về thời điểm ký.",
            "An invalid timestamp was ignored: it is not used as proof of the signing time.",
        ),
        "timestamp_in_future" => (
            "Thời điểm của dấu thời gian muộn hơn thời điểm kiểm tra.",
            "The timestamp's time is later than the validation time.",
        ),
        "timestamp_tsa_certificate_expired" => (
            "Chứng thư số của đơn vị cấp dấu thời gian đã hết hạn sau khi cấp dấu thời gian; dấu thời gian được kiểm tra tại thời điểm cấp.",
            "The TSA certificate has expired since the timestamp was issued; the timestamp was checked at its own time.",
        ),
        _ => (
            "Một bước kiểm tra chữ ký không đạt.",
            "A signature check did not pass.",
        ),
    };
    Message::new(vi, en)
}
