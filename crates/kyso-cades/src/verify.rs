//! Cryptographic verification of CMS SignedData / CAdES signatures (no path validation).
//!
//! For each SignerInfo: the signer certificate (embedded or supplied), the signature value, the
//! signed-attribute rules of RFC 5652 section 11 (content-type, message-digest, signing-time:
//! signed, single-valued, present once), the ESS signing-certificate(-v2) binding, the
//! algorithm policy (SHA-1 with a warning, MD2/MD4/MD5 refused), and every signature timestamp
//! (its own SignedData, checked recursively here, its imprint over the signature value, its TSA
//! certificate's critical timeStamping EKU). Every failure and warning has a stable code.
//! The certificates, CRLs and OCSP responses found are returned for the path validator.

use crate::crypto::{
    self, DigestAlgorithm, DigestRefusal, P256KeyCache, SignatureFailure, SignatureScheme,
    verify_signature_with,
};
use crate::parse::{self, ParseError, ParsedSignedData, ParsedSignerInfo, SignerId};

use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::OctetString;
use kyso_asn1::ess::{SigningCertificate, SigningCertificateV2};
use kyso_asn1::oids;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};

#[cfg(test)]
mod tests;

/// How many timestamp tokens may nest (a token's own signer carrying a token...).
pub const MAX_TIMESTAMP_DEPTH: usize = 2;
/// Most signature-timestamp tokens checked per signer.
pub const MAX_TIMESTAMPS_PER_SIGNER: usize = 8;

const ID_SMIME_CAPABILITIES: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.15");
const ID_CMS_ALGORITHM_PROTECTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.52");
const ID_COUNTERSIGNATURE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.6");

/// The content a detached signature is checked against.
#[derive(Clone, Copy, Debug, Default)]
pub enum DetachedContent<'a> {
    /// Nothing supplied: the content must be attached.
    #[default]
    None,
    /// The content itself.
    Content(&'a [u8]),
    /// The content's digest, computed by the caller with `algorithm`.
    Digest {
        algorithm: DigestAlgorithm,
        digest: &'a [u8],
    },
}

/// One failed check or one warning: a stable machine code and a human detail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub detail: String,
}

impl Finding {
    fn new(code: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            code,
            detail: detail.into(),
        }
    }
}

/// The outcome for a whole SignedData.
#[derive(Clone, Debug)]
pub struct SignedDataReport {
    pub econtent_type: ObjectIdentifier,
    /// The attached content, if any.
    pub econtent: Option<Vec<u8>>,
    /// Embedded certificates plus the supplied ones, without repeats.
    pub certificates: Vec<Certificate>,
    /// Embedded CRLs (CertificateList DER), for the path validator.
    pub crls: Vec<Vec<u8>>,
    /// Embedded OCSP responses (OCSPResponse DER), for the path validator.
    pub ocsp_responses: Vec<Vec<u8>>,
    pub signers: Vec<SignerReport>,
    /// Problems of the message as a whole (no signers at all...).
    pub failures: Vec<Finding>,
}

impl SignedDataReport {
    /// At least one signer, and every signer (and each of its timestamps) passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
            && !self.signers.is_empty()
            && self.signers.iter().all(SignerReport::passed)
    }
}

/// The outcome for one SignerInfo.
#[derive(Clone, Debug, Default)]
pub struct SignerReport {
    pub index: usize,
    pub signer_certificate: Option<Certificate>,
    pub digest_algorithm: Option<DigestAlgorithm>,
    pub signature_scheme: Option<SignatureScheme>,
    /// The signing-time attribute (a claim of the signer, not a proof).
    pub signing_time: Option<OffsetDateTime>,
    pub signature_valid: bool,
    pub message_digest_valid: bool,
    /// A signing-certificate(-v2) attribute names the signer certificate.
    pub signing_certificate_bound: bool,
    pub unknown_signed_attributes: Vec<ObjectIdentifier>,
    pub timestamps: Vec<TimestampReport>,
    pub failures: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl SignerReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.timestamps.iter().all(TimestampReport::passed)
    }

    /// The codes of every failure, this signer's and its timestamps'.
    pub fn failure_codes(&self) -> Vec<&'static str> {
        let mut codes: Vec<_> = self.failures.iter().map(|f| f.code).collect();
        for ts in &self.timestamps {
            codes.extend(ts.failures.iter().map(|f| f.code));
        }
        codes
    }

    fn fail(&mut self, code: &'static str, detail: impl Into<String>) {
        self.failures.push(Finding::new(code, detail));
    }

    fn warn(&mut self, code: &'static str, detail: impl Into<String>) {
        self.warnings.push(Finding::new(code, detail));
    }
}

/// The outcome for one signature-timestamp token.
#[derive(Clone, Debug, Default)]
pub struct TimestampReport {
    pub gen_time: Option<OffsetDateTime>,
    pub policy: Option<ObjectIdentifier>,
    /// TSTInfo serialNumber, lowercase hex.
    pub serial: Option<String>,
    pub imprint_algorithm: Option<DigestAlgorithm>,
    pub tsa_certificate: Option<Certificate>,
    /// The token's own SignedData verification.
    pub token: Option<Box<SignedDataReport>>,
    pub failures: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl TimestampReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn fail(&mut self, code: &'static str, detail: impl Into<String>) {
        self.failures.push(Finding::new(code, detail));
    }
}

/// Verifies a ContentInfo(SignedData), BER or DER. `extra_certificates` are searched for signer
/// and TSA certificates besides the embedded ones. Malformed input is an `Err`; every check on
/// a well-formed message is reported in the result.
pub fn verify(
    cms: &[u8],
    detached: DetachedContent<'_>,
    extra_certificates: &[Certificate],
) -> Result<SignedDataReport, ParseError> {
    let parsed = parse::parse_signed_data(cms)?;
    Ok(verify_parsed(parsed, detached, extra_certificates, 0))
}

/// [`verify`] over an already parsed SignedData.
pub fn verify_parsed(
    parsed: ParsedSignedData,
    detached: DetachedContent<'_>,
    extra_certificates: &[Certificate],
    depth: usize,
) -> SignedDataReport {
    verify_parsed_with(None, parsed, detached, extra_certificates, depth)
}

/// What a long-lived verifier keeps between messages: tables of P-256 keys seen before, and
/// embedded certificates decoded before. Both only speed verification up; answers are the same.
#[derive(Debug, Default)]
pub struct VerificationCaches {
    pub p256_keys: P256KeyCache,
    pub certificates: parse::DecodedCertificates,
    pub encodings: CertificateEncodings,
}

/// Certificates encoded before (for the signing-certificate hash): the same cache path
/// validation keeps.
pub use kyso_validate::{CertificateEncodings, EncodedCertificate};

/// [`verify_parsed`], with the verifier's caches.
pub fn verify_parsed_with(
    caches: Option<&VerificationCaches>,
    mut parsed: ParsedSignedData,
    detached: DetachedContent<'_>,
    extra_certificates: &[Certificate],
    depth: usize,
) -> SignedDataReport {
    // Moved, not copied: the signers read the SignedData's other fields only.
    let mut certificates = std::mem::take(&mut parsed.certificates);
    for cert in extra_certificates {
        if !certificates.contains(cert) {
            certificates.push(cert.clone());
        }
    }
    let mut failures = Vec::new();
    if parsed.signer_infos.is_empty() {
        failures.push(Finding::new(
            "cms_no_signers",
            "the SignedData has no SignerInfo",
        ));
    }
    let signers = parsed
        .signer_infos
        .iter()
        .enumerate()
        .map(|(index, si)| {
            verify_signer(caches, index, si, &parsed, detached, &certificates, depth)
        })
        .collect();
    SignedDataReport {
        econtent_type: parsed.econtent_type,
        econtent: parsed.econtent,
        certificates,
        crls: parsed.crls,
        ocsp_responses: parsed.ocsp_responses,
        signers,
        failures,
    }
}

fn find_signer_certificate<'c>(
    sid: &SignerId,
    certificates: &'c [Certificate],
) -> Option<&'c Certificate> {
    certificates.iter().find(|cert| {
        let tbs = cert.tbs_certificate();
        match sid {
            SignerId::IssuerAndSerial { issuer, serial } => {
                tbs.issuer() == issuer && tbs.serial_number() == serial
            }
            SignerId::SubjectKeyIdentifier(ski) => matches!(
                tbs.get_extension::<SubjectKeyIdentifier>(),
                Ok(Some((_, found))) if found.0.as_bytes() == ski.as_slice()
            ),
        }
    })
}

/// Signed attributes whose meaning this verifier knows (checked or harmless).
fn is_known_signed_attribute(oid: &ObjectIdentifier) -> bool {
    [
        oids::ID_CONTENT_TYPE,
        oids::ID_MESSAGE_DIGEST,
        oids::ID_SIGNING_TIME,
        oids::ID_AA_SIGNING_CERTIFICATE,
        oids::ID_AA_SIGNING_CERTIFICATE_V2,
        ID_SMIME_CAPABILITIES,
        ID_CMS_ALGORITHM_PROTECTION,
    ]
    .contains(oid)
}

/// The single value of a signed attribute that must occur once with one value
/// (RFC 5652 11.1-11.3), or a failure.
fn single_value<'s>(
    si: &'s ParsedSignerInfo,
    oid: ObjectIdentifier,
    name: &str,
    report: &mut SignerReport,
) -> Option<&'s [u8]> {
    let mut found = si.signed(oid);
    let first = found.next()?;
    if found.next().is_some() {
        report.fail(
            "attribute_repeated",
            format!("{name} appears more than once"),
        );
        return None;
    }
    match first.values.as_slice() {
        [value] => Some(value),
        _ => {
            report.fail(
                "attribute_multiple_values",
                format!(
                    "{name} must have exactly one value, has {}",
                    first.values.len()
                ),
            );
            None
        }
    }
}

fn verify_signer(
    caches: Option<&VerificationCaches>,
    index: usize,
    si: &ParsedSignerInfo,
    parsed: &ParsedSignedData,
    detached: DetachedContent<'_>,
    certificates: &[Certificate],
    depth: usize,
) -> SignerReport {
    let mut report = SignerReport {
        index,
        ..SignerReport::default()
    };

    // Algorithm policy.
    let digest = match DigestAlgorithm::from_oid(&si.digest_algorithm.oid) {
        Ok(d) => Some(d),
        Err(DigestRefusal::Weak(name)) => {
            report.fail("digest_algorithm_weak", format!("{name} is not accepted"));
            None
        }
        Err(DigestRefusal::Unknown(oid)) => {
            report.fail(
                "digest_algorithm_unsupported",
                format!("digest algorithm {oid}"),
            );
            None
        }
    };
    if digest == Some(DigestAlgorithm::Sha1) {
        report.warn(
            "digest_algorithm_sha1",
            "SHA-1 digest: accepted for old signatures only",
        );
    }
    report.digest_algorithm = digest;

    // Attributes that must be signed must not appear unsigned; a countersignature must not be signed.
    for attr in &si.unsigned_attributes {
        if [
            oids::ID_CONTENT_TYPE,
            oids::ID_MESSAGE_DIGEST,
            oids::ID_SIGNING_TIME,
        ]
        .contains(&attr.oid)
        {
            report.fail(
                "attribute_not_allowed_unsigned",
                format!("attribute {} must be a signed attribute", attr.oid),
            );
        }
    }
    if si.unsigned(ID_COUNTERSIGNATURE).next().is_some() {
        report.warn(
            "countersignature_not_checked",
            "countersignatures are reported but not verified",
        );
    }
    if si.signed(ID_COUNTERSIGNATURE).next().is_some() {
        report.fail(
            "attribute_not_allowed_signed",
            "countersignature must be an unsigned attribute",
        );
    }

    // The content, or its digest, the message-digest attribute is compared with.
    let content: Option<ContentRef<'_>> = match (&parsed.econtent, detached) {
        (Some(attached), DetachedContent::None) => Some(ContentRef::Bytes(attached)),
        (Some(attached), _) => {
            report.warn(
                "detached_content_ignored",
                "the content is attached; the supplied content was not used",
            );
            Some(ContentRef::Bytes(attached))
        }
        (None, DetachedContent::Content(bytes)) => Some(ContentRef::Bytes(bytes)),
        (None, DetachedContent::Digest { algorithm, digest }) => {
            Some(ContentRef::Digest(algorithm, digest))
        }
        (None, DetachedContent::None) => None,
    };

    // Signer certificate.
    let cert = find_signer_certificate(&si.sid, certificates);
    if cert.is_none() {
        report.fail(
            "signer_certificate_not_found",
            "no embedded or supplied certificate matches the signer identifier",
        );
    }

    // Signature value.
    let signed_bytes: Option<Vec<u8>> = match (&si.signed_attributes_der, content) {
        (Some(attrs), _) => Some(attrs.clone()),
        (None, Some(ContentRef::Bytes(bytes))) => Some(bytes.to_vec()),
        (None, _) => None,
    };
    if si.signed_attributes.is_none() {
        if parsed.econtent_type != crypto::ID_DATA {
            report.fail(
                "signed_attributes_required",
                "signed attributes are required when eContentType is not id-data",
            );
        }
        report.warn(
            "no_signed_attributes",
            "no signed attributes (not a CAdES signature)",
        );
    }
    if let (Some(cert), Some(digest)) = (cert, digest) {
        match &signed_bytes {
            None => report.fail(
                "content_missing",
                "a signature without signed attributes needs the content itself",
            ),
            Some(message) => {
                let spki = cert.tbs_certificate().subject_public_key_info();
                match verify_signature_with(
                    caches.map(|c| &c.p256_keys),
                    spki,
                    &si.signature_algorithm,
                    digest,
                    message,
                    &si.signature,
                ) {
                    Ok(scheme) => {
                        report.signature_valid = true;
                        report.signature_scheme = Some(scheme);
                        if let Some(bits) = crypto::rsa_bits(spki).filter(|b| *b < 2048) {
                            report.warn("rsa_key_below_2048", format!("RSA key of {bits} bits"));
                        }
                    }
                    Err(SignatureFailure::Invalid) => {
                        report.fail("signature_invalid", "the signature value does not verify")
                    }
                    Err(SignatureFailure::Unsupported(what)) => {
                        report.fail("signature_algorithm_unsupported", what)
                    }
                    Err(SignatureFailure::Malformed(what)) => {
                        report.fail("signature_malformed", what)
                    }
                }
            }
        }
        if [
            const_oid::db::rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
            ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"),
        ]
        .contains(&si.signature_algorithm.oid)
        {
            report.warn("signature_algorithm_sha1", "SHA-1 signature algorithm");
        }
    }
    report.signer_certificate = cert.cloned();

    if si.signed_attributes.is_some() {
        check_signed_attributes(caches, si, parsed, digest, content, cert, &mut report);
    } else {
        // The signature is over the content itself: a valid one binds the content.
        report.message_digest_valid = report.signature_valid;
    }

    // Signature timestamps.
    let tokens: Vec<&Vec<u8>> = si
        .unsigned(oids::ID_AA_TIME_STAMP_TOKEN)
        .flat_map(|a| a.values.iter())
        .collect();
    if tokens.len() > MAX_TIMESTAMPS_PER_SIGNER {
        report.fail(
            "timestamp_too_many",
            format!(
                "{} timestamp tokens, at most {MAX_TIMESTAMPS_PER_SIGNER}",
                tokens.len()
            ),
        );
    } else {
        for token in tokens {
            let ts = verify_timestamp_token(caches, token, &si.signature, certificates, depth);
            if let (Some(issued), Some(signed)) = (ts.gen_time, report.signing_time)
                && issued < signed - time::Duration::minutes(5)
            {
                report.warn(
                    "timestamp_before_signing_time",
                    format!("timestamp {issued} is earlier than the claimed signing time {signed}"),
                );
            }
            report.timestamps.push(ts);
        }
    }
    report
}

#[derive(Clone, Copy)]
enum ContentRef<'a> {
    Bytes(&'a [u8]),
    Digest(DigestAlgorithm, &'a [u8]),
}

fn check_signed_attributes(
    caches: Option<&VerificationCaches>,
    si: &ParsedSignerInfo,
    parsed: &ParsedSignedData,
    digest: Option<DigestAlgorithm>,
    content: Option<ContentRef<'_>>,
    cert: Option<&Certificate>,
    report: &mut SignerReport,
) {
    report.unknown_signed_attributes = si
        .signed_attributes
        .iter()
        .flatten()
        .map(|a| a.oid)
        .filter(|oid| !is_known_signed_attribute(oid))
        .collect();
    for oid in report.unknown_signed_attributes.clone() {
        report.warn(
            "unknown_signed_attribute",
            format!("signed attribute {oid} is not understood"),
        );
    }

    // content-type (RFC 5652 11.1).
    if si.signed(oids::ID_CONTENT_TYPE).next().is_none() {
        report.fail("content_type_missing", "no content-type signed attribute");
    } else if let Some(value) = single_value(si, oids::ID_CONTENT_TYPE, "content-type", report) {
        match ObjectIdentifier::from_der(value) {
            Ok(ct) if ct == parsed.econtent_type => {}
            Ok(ct) => report.fail(
                "content_type_mismatch",
                format!(
                    "content-type {ct} but eContentType {}",
                    parsed.econtent_type
                ),
            ),
            Err(e) => report.fail("content_type_malformed", e.to_string()),
        }
    }

    // message-digest (RFC 5652 11.2).
    if si.signed(oids::ID_MESSAGE_DIGEST).next().is_none() {
        report.fail(
            "message_digest_missing",
            "no message-digest signed attribute",
        );
    } else if let Some(value) = single_value(si, oids::ID_MESSAGE_DIGEST, "message-digest", report)
    {
        match OctetString::from_der(value) {
            Err(e) => report.fail("message_digest_malformed", e.to_string()),
            Ok(claimed) => match (content, digest) {
                (None, _) => report.fail(
                    "content_missing",
                    "detached signature: supply the content or its digest",
                ),
                (_, None) => {}
                (Some(ContentRef::Bytes(bytes)), Some(digest)) => {
                    if digest.digest(bytes) == claimed.as_bytes() {
                        report.message_digest_valid = true;
                    } else {
                        report.fail(
                            "message_digest_mismatch",
                            "the content does not match the message-digest attribute",
                        );
                    }
                }
                (Some(ContentRef::Digest(algorithm, supplied)), Some(digest)) => {
                    if algorithm != digest {
                        report.fail(
                            "digest_algorithm_mismatch",
                            format!(
                                "supplied a {} digest, the signer used {}",
                                algorithm.name(),
                                digest.name()
                            ),
                        );
                    } else if supplied == claimed.as_bytes() {
                        report.message_digest_valid = true;
                    } else {
                        report.fail(
                            "message_digest_mismatch",
                            "the supplied digest does not match the message-digest attribute",
                        );
                    }
                }
            },
        }
    }

    // signing-time (RFC 5652 11.3).
    if si.signed(oids::ID_SIGNING_TIME).next().is_some()
        && let Some(value) = single_value(si, oids::ID_SIGNING_TIME, "signing-time", report)
    {
        match x509_cert::time::Time::from_der(value)
            .ok()
            .and_then(|t| i64::try_from(t.to_unix_duration().as_secs()).ok())
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        {
            Some(t) => report.signing_time = Some(t),
            None => report.fail("signing_time_malformed", "signing-time is not a valid Time"),
        }
    }

    // ESS signing-certificate-v2 (RFC 5035) or v1 (RFC 2634).
    let v2 = si
        .signed(oids::ID_AA_SIGNING_CERTIFICATE_V2)
        .next()
        .is_some();
    let v1 = si.signed(oids::ID_AA_SIGNING_CERTIFICATE).next().is_some();
    if v2 {
        if let Some(value) = single_value(
            si,
            oids::ID_AA_SIGNING_CERTIFICATE_V2,
            "signing-certificate-v2",
            report,
        ) {
            match SigningCertificateV2::from_der(value) {
                Err(e) => report.fail("signing_certificate_malformed", e.to_string()),
                Ok(sc) => bind(
                    cert.map(|c| match caches {
                        // The DER from the cache; an encoding error is a mismatch, as in
                        // names_signer.
                        Some(caches) => caches
                            .encodings
                            .encode(c)
                            .is_ok_and(|e| sc.names_signer_der(c, &e.1)),
                        None => sc.names_signer(c),
                    }),
                    report,
                ),
            }
        }
    } else if v1 {
        if let Some(value) = single_value(
            si,
            oids::ID_AA_SIGNING_CERTIFICATE,
            "signing-certificate",
            report,
        ) {
            match SigningCertificate::from_der(value) {
                Err(e) => report.fail("signing_certificate_malformed", e.to_string()),
                Ok(sc) => {
                    report.warn(
                        "signing_certificate_v1",
                        "signing-certificate (v1, SHA-1) instead of v2",
                    );
                    bind(cert.map(|c| sc.names_signer(c)), report)
                }
            }
        }
    } else {
        report.warn(
            "signing_certificate_absent",
            "no signing-certificate-v2 attribute: the signer certificate is not bound (CAdES requires it)",
        );
    }
}

/// Records the signing-certificate binding (`None`: no signer certificate to compare with,
/// already reported).
fn bind(matched: Option<bool>, report: &mut SignerReport) {
    match matched {
        Some(true) => report.signing_certificate_bound = true,
        Some(false) => report.fail(
            "signing_certificate_mismatch",
            "the signing-certificate attribute does not name the signer certificate",
        ),
        None => {}
    }
}

/// Checks one id-aa-timeStampToken value against `signature` (the SignerInfo signature value).
fn verify_timestamp_token(
    caches: Option<&VerificationCaches>,
    token: &[u8],
    signature: &[u8],
    certificates: &[Certificate],
    depth: usize,
) -> TimestampReport {
    let mut ts = TimestampReport::default();
    if depth >= MAX_TIMESTAMP_DEPTH {
        ts.fail(
            "timestamp_nested_too_deep",
            format!("timestamps nested more than {MAX_TIMESTAMP_DEPTH} deep"),
        );
        return ts;
    }
    let parsed = match parse::parse_signed_data_with(token, caches.map(|c| &c.certificates)) {
        Ok(p) => p,
        Err(e) => {
            ts.fail("timestamp_malformed", format!("{} ({})", e, e.code()));
            return ts;
        }
    };
    if parsed.econtent_type != oids::ID_CT_TST_INFO {
        ts.fail(
            "timestamp_wrong_content_type",
            format!("eContentType {}", parsed.econtent_type),
        );
    }
    let report = verify_parsed_with(
        caches,
        parsed,
        DetachedContent::None,
        certificates,
        depth + 1,
    );
    if !report.passed() {
        let codes: Vec<&str> = report
            .failures
            .iter()
            .map(|f| f.code)
            .chain(report.signers.iter().flat_map(SignerReport::failure_codes))
            .collect();
        ts.fail(
            "timestamp_signature_invalid",
            format!("the token does not verify: {}", codes.join(", ")),
        );
    }
    if report.signers.len() != 1 {
        ts.fail(
            "timestamp_signer_count",
            format!("a token has one signer, this one {}", report.signers.len()),
        );
    }
    if let Some(signer) = report.signers.first() {
        ts.tsa_certificate = signer.signer_certificate.clone();
        if let Some(cert) = &signer.signer_certificate {
            check_tsa_certificate(cert, &mut ts);
        }
    }
    match &report.econtent {
        None => ts.fail("timestamp_malformed", "the token has no TSTInfo"),
        Some(tst) => check_tst_info(tst, signature, &mut ts),
    }
    ts.token = Some(Box::new(report));
    ts
}

/// RFC 3161 2.3: the TSA certificate has exactly one extended key usage, timeStamping, critical.
fn check_tsa_certificate(cert: &Certificate, ts: &mut TimestampReport) {
    match cert.tbs_certificate().get_extension::<ExtendedKeyUsage>() {
        Ok(Some((critical, eku))) => {
            if !critical {
                ts.fail(
                    "timestamp_tsa_eku_not_critical",
                    "the TSA certificate's extended key usage is not critical",
                );
            }
            if eku.0.as_slice() != [oids::ID_KP_TIME_STAMPING] {
                ts.fail(
                    "timestamp_tsa_eku",
                    "the TSA certificate's extended key usage is not timeStamping alone",
                );
            }
        }
        Ok(None) => ts.fail(
            "timestamp_tsa_eku",
            "the TSA certificate has no extended key usage",
        ),
        Err(e) => ts.fail("timestamp_tsa_eku", format!("extended key usage: {e}")),
    }
}

fn check_tst_info(tst: &[u8], signature: &[u8], ts: &mut TimestampReport) {
    let info = match kyso_asn1::rfc3161::TstInfo::from_der(tst) {
        Ok(info) => info,
        Err(e) => {
            ts.fail("timestamp_malformed", format!("TSTInfo: {e}"));
            return;
        }
    };
    ts.policy = Some(info.policy);
    ts.serial = Some(hex::encode(info.serial_number.as_bytes()));
    ts.gen_time = Some(info.gen_time.to_offset_date_time());
    let imprint = &info.message_imprint;
    match DigestAlgorithm::from_oid(&imprint.hash_algorithm.oid) {
        Ok(alg) => {
            ts.imprint_algorithm = Some(alg);
            if alg == DigestAlgorithm::Sha1 {
                ts.warnings.push(Finding::new(
                    "timestamp_imprint_sha1",
                    "SHA-1 message imprint",
                ));
            }
            if alg.digest(signature) != imprint.hashed_message.as_bytes() {
                ts.fail(
                    "timestamp_imprint_mismatch",
                    "the timestamp is not over this signature value",
                );
            }
        }
        Err(DigestRefusal::Weak(name)) => {
            ts.fail("timestamp_imprint_algorithm", format!("{name} imprint"))
        }
        Err(DigestRefusal::Unknown(oid)) => ts.fail(
            "timestamp_imprint_algorithm",
            format!("imprint algorithm {oid}"),
        ),
    }
}
