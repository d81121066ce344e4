//! RFC 6960 OCSP: request parsing (DER, or base64 from a GET path), CertID matching against our
//! CAs, and signed BasicOCSPResponses from the delegated OCSP-signer key, with `certificate_types`
//! from `certval::ocsp` (der 0.8).
//!
//! Speed: the hashes a CertID is matched against are computed once per CA, and a request without
//! a nonce for a single certificate is reported as cacheable ([`OcspAnswer::cache`]), so the server
//! can keep pre-signed responses keyed by the CertID's DER until `nextUpdate` (or a revocation).
//! [`OcspResponder::response_for_serial`] builds one such response ahead of time.

use std::future::Future;
use std::time::{Duration, SystemTime};

use base64::Engine;
use certval::ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Reader};
use kyso_clock::Clock;
use kyso_hsm::HsmKey;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;
use x509_cert::certificate::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::serial_number::SerialNumber;

use crate::crl::RevocationReason;
use crate::keys::{self, KeyError};
use crate::oids;

/// The largest OCSP request accepted (DER), in bytes. Real requests are a few hundred bytes.
pub const MAX_OCSP_REQUEST_BYTES: usize = 16 * 1024;
/// The most CertIDs answered in one request.
pub const MAX_CERT_IDS: usize = 16;
/// The longest nonce echoed (RFC 8954 2.1: 1 to 32 octets).
pub const MAX_NONCE_BYTES: usize = 32;

/// Why an OCSP request could not be answered normally. Stable codes via [`OcspError::code`];
/// [`OcspError::response_status`] says which unsigned error response to send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    #[error("OCSP request is empty")]
    Empty,
    #[error("OCSP request is {len} bytes, at most {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("OCSP request is not valid base64")]
    BadBase64,
    #[error("OCSP request DER is malformed: {reason}")]
    Malformed { reason: String },
    #[error("{extra} bytes follow the OCSP request")]
    TrailingData { extra: usize },
    #[error("OCSP request lists no certificates")]
    NoCertIds,
    #[error("OCSP request lists {count} certificates, at most {max} accepted")]
    TooManyCertIds { count: usize, max: usize },
    #[error("OCSP nonce is {len} bytes; 1 to {max} accepted")]
    BadNonce { len: usize, max: usize },
    #[error("OCSP request has a critical extension {oid} we do not understand")]
    UnsupportedCriticalExtension { oid: String },
    #[error("no CA of this responder issued the certificates asked about")]
    NotOurCa,
    #[error("certificate status lookup failed: {reason}")]
    StatusLookup { reason: String, retry: bool },
    #[error("signing the OCSP response with the key of CA {ca:?} failed: {source}")]
    Hsm {
        ca: String,
        #[source]
        source: Box<kyso_hsm::HsmError>,
    },
    #[error("OCSP signer certificate for CA {ca:?} refused: {reason}")]
    BadSigner { ca: String, reason: String },
    #[error("OCSP {what} could not be encoded: {reason}")]
    Encoding { what: &'static str, reason: String },
    #[error("unknown CA {ca:?}")]
    UnknownCa { ca: String },
}

impl OcspError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            OcspError::Empty => "ocsp_empty",
            OcspError::TooLarge { .. } => "ocsp_too_large",
            OcspError::BadBase64 => "ocsp_bad_base64",
            OcspError::Malformed { .. } => "ocsp_malformed",
            OcspError::TrailingData { .. } => "ocsp_trailing_data",
            OcspError::NoCertIds => "ocsp_no_cert_ids",
            OcspError::TooManyCertIds { .. } => "ocsp_too_many_cert_ids",
            OcspError::BadNonce { .. } => "ocsp_bad_nonce",
            OcspError::UnsupportedCriticalExtension { .. } => "ocsp_unsupported_critical_extension",
            OcspError::NotOurCa => "ocsp_unauthorized",
            OcspError::StatusLookup { .. } => "ocsp_status_lookup",
            OcspError::Hsm { source, .. } => source.code(),
            OcspError::BadSigner { .. } => "ocsp_bad_signer",
            OcspError::Encoding { .. } => "ocsp_encoding",
            OcspError::UnknownCa { .. } => "ocsp_unknown_ca",
        }
    }

    /// The OCSPResponseStatus that answers this error.
    pub fn response_status(&self) -> OcspResponseStatus {
        match self {
            OcspError::Empty
            | OcspError::TooLarge { .. }
            | OcspError::BadBase64
            | OcspError::Malformed { .. }
            | OcspError::TrailingData { .. }
            | OcspError::NoCertIds
            | OcspError::TooManyCertIds { .. }
            | OcspError::BadNonce { .. }
            | OcspError::UnsupportedCriticalExtension { .. } => {
                OcspResponseStatus::MalformedRequest
            }
            OcspError::NotOurCa | OcspError::UnknownCa { .. } => OcspResponseStatus::Unauthorized,
            OcspError::StatusLookup { retry: true, .. } => OcspResponseStatus::TryLater,
            OcspError::StatusLookup { retry: false, .. }
            | OcspError::Hsm { .. }
            | OcspError::BadSigner { .. }
            | OcspError::Encoding { .. } => OcspResponseStatus::InternalError,
        }
    }
}

fn encoding(what: &'static str) -> impl Fn(der::Error) -> OcspError {
    move |e| OcspError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// The DER of an unsigned error response (malformedRequest, internalError, tryLater,
/// sigRequired, unauthorized). `Successful` has no unsigned form and yields internalError.
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    let response = match status {
        OcspResponseStatus::MalformedRequest => OcspResponse::malformed_request(),
        OcspResponseStatus::TryLater => OcspResponse::try_later(),
        OcspResponseStatus::SigRequired => OcspResponse::sig_required(),
        OcspResponseStatus::Unauthorized => OcspResponse::unauthorized(),
        OcspResponseStatus::InternalError | OcspResponseStatus::Successful => {
            OcspResponse::internal_error()
        }
    };
    // SEQUENCE { ENUMERATED n }: written out so this path cannot fail.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
}

/// A parsed request, with what the responder needs up front.
#[derive(Debug, Clone)]
pub struct ParsedOcspRequest {
    pub request: OcspRequest,
    /// The request's nonce extension, echoed verbatim in the response.
    nonce_extension: Option<Extension>,
}

impl ParsedOcspRequest {
    /// The certificates asked about.
    pub fn cert_ids(&self) -> impl Iterator<Item = &CertId> {
        self.request
            .tbs_request
            .request_list
            .iter()
            .map(|r| &r.req_cert)
    }

    /// The nonce value (the OCTET STRING's content), if the client sent one.
    pub fn nonce(&self) -> Option<Vec<u8>> {
        self.request.nonce().map(|n| n.0.as_bytes().to_vec())
    }

    /// A cache key when the answer does not depend on anything but the certificate: a single
    /// CertID and no nonce. It is the CertID's DER.
    pub fn cache_key(&self) -> Option<Vec<u8>> {
        let list = &self.request.tbs_request.request_list;
        if self.nonce_extension.is_some() || list.len() != 1 {
            return None;
        }
        list[0].req_cert.to_der().ok()
    }
}

/// Parses a DER OCSPRequest (size-capped, no trailing bytes, 1..=16 CertIDs, nonce 1..=32 bytes).
pub fn parse_ocsp_request(der: &[u8]) -> Result<ParsedOcspRequest, OcspError> {
    if der.is_empty() {
        return Err(OcspError::Empty);
    }
    if der.len() > MAX_OCSP_REQUEST_BYTES {
        return Err(OcspError::TooLarge {
            len: der.len(),
            max: MAX_OCSP_REQUEST_BYTES,
        });
    }
    let malformed = |e: der::Error| OcspError::Malformed {
        reason: e.to_string(),
    };
    let mut reader = der::SliceReader::new(der).map_err(malformed)?;
    let request = <OcspRequest as Decode>::decode(&mut reader).map_err(malformed)?;
    let extra = usize::try_from(reader.remaining_len()).unwrap_or(usize::MAX);
    if extra != 0 {
        return Err(OcspError::TrailingData { extra });
    }
    let count = request.tbs_request.request_list.len();
    if count == 0 {
        return Err(OcspError::NoCertIds);
    }
    if count > MAX_CERT_IDS {
        return Err(OcspError::TooManyCertIds {
            count,
            max: MAX_CERT_IDS,
        });
    }
    let mut nonce_extension = None;
    let request_exts = request.tbs_request.request_extensions.iter().flatten();
    let single_exts = request
        .tbs_request
        .request_list
        .iter()
        .flat_map(|r| r.single_request_extensions.iter().flatten());
    for ext in request_exts.clone().chain(single_exts) {
        if ext.critical && ext.extn_id != oids::PKIX_OCSP_NONCE {
            return Err(OcspError::UnsupportedCriticalExtension {
                oid: ext.extn_id.to_string(),
            });
        }
    }
    if let Some(ext) = request_exts
        .into_iter()
        .find(|e| e.extn_id == oids::PKIX_OCSP_NONCE)
    {
        let nonce = OctetString::from_der(ext.extn_value.as_bytes()).map_err(malformed)?;
        let len = nonce.as_bytes().len();
        if len == 0 || len > MAX_NONCE_BYTES {
            return Err(OcspError::BadNonce {
                len,
                max: MAX_NONCE_BYTES,
            });
        }
        nonce_extension = Some(Extension {
            critical: false,
            ..ext.clone()
        });
    }
    Ok(ParsedOcspRequest {
        request,
        nonce_extension,
    })
}

/// Parses the base64 form of a GET request (`GET /ocsp/{base64}`), standard or URL-safe alphabet,
/// percent-encoding undone, padding optional.
pub fn parse_ocsp_request_base64(text: &str) -> Result<ParsedOcspRequest, OcspError> {
    let max_text = MAX_OCSP_REQUEST_BYTES.div_ceil(3) * 4 * 3; // room for %XX escapes
    if text.len() > max_text {
        return Err(OcspError::TooLarge {
            len: text.len() / 4 * 3,
            max: MAX_OCSP_REQUEST_BYTES,
        });
    }
    let unescaped = percent_decode(text).ok_or(OcspError::BadBase64)?;
    let trimmed = unescaped.trim().trim_end_matches('=');
    let normalised: String = trimmed
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(normalised.as_bytes())
        .map_err(|_| OcspError::BadBase64)?;
    parse_ocsp_request(&der)
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A certificate's status as the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatusInfo {
    Good,
    Revoked {
        revoked_at: SystemTime,
        reason: RevocationReason,
    },
    /// Never issued by this CA (as far as the store knows).
    Unknown,
}

/// A failed status lookup: `retry` selects tryLater over internalError.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct StatusLookupError {
    pub reason: String,
    pub retry: bool,
}

/// Where the responder learns a certificate's status (the server's store).
pub trait CertStatusSource: Send + Sync {
    /// The status of certificate `serial` issued by the CA named `ca`.
    fn status(
        &self,
        ca: &str,
        serial: &SerialNumber,
    ) -> impl Future<Output = Result<CertStatusInfo, StatusLookupError>> + Send;
}

/// The CertID hash algorithms answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertIdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    fn from_oid(oid: ObjectIdentifier) -> Option<CertIdHash> {
        match oid {
            o if o == oids::SHA1 => Some(CertIdHash::Sha1),
            o if o == oids::SHA256 => Some(CertIdHash::Sha256),
            o if o == oids::SHA384 => Some(CertIdHash::Sha384),
            o if o == oids::SHA512 => Some(CertIdHash::Sha512),
            _ => None,
        }
    }

    const ALL: [CertIdHash; 4] = [
        CertIdHash::Sha1,
        CertIdHash::Sha256,
        CertIdHash::Sha384,
        CertIdHash::Sha512,
    ];

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertIdHash::Sha1 => Sha1::digest(data).to_vec(),
            CertIdHash::Sha256 => Sha256::digest(data).to_vec(),
            CertIdHash::Sha384 => Sha384::digest(data).to_vec(),
            CertIdHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// One CA this responder answers for, with its delegated OCSP signer.
#[derive(Debug, Clone)]
pub struct OcspAuthority {
    ca_name: String,
    signer_certificate: Certificate,
    signer_key: HsmKey,
    responder_id: ResponderId,
    /// (hash, issuerNameHash, issuerKeyHash) for every supported hash.
    id_hashes: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

impl OcspAuthority {
    /// `signer_certificate` must be issued by `ca_certificate` (name, key identifier and
    /// signature checked), carry EKU OCSPSigning, and belong to `signer_key`.
    pub fn new(
        ca_name: &str,
        ca_certificate: &Certificate,
        signer_certificate: Certificate,
        signer_key: HsmKey,
    ) -> Result<OcspAuthority, OcspError> {
        let bad = |reason: &str| OcspError::BadSigner {
            ca: ca_name.to_owned(),
            reason: reason.to_owned(),
        };
        let ca_tbs = ca_certificate.tbs_certificate();
        let tbs = signer_certificate.tbs_certificate();
        if tbs.issuer() != ca_tbs.subject() {
            return Err(bad("its issuer is not the CA"));
        }
        let signed = tbs.to_der().map_err(encoding("signer certificate"))?;
        let signature = signer_certificate
            .signature()
            .as_bytes()
            .ok_or_else(|| bad("signature has unused bits"))?;
        keys::verify_signature(
            ca_tbs.subject_public_key_info(),
            signer_certificate.signature_algorithm(),
            &signed,
            signature,
        )
        .map_err(|e: KeyError| bad(&format!("not signed by the CA: {e}")))?;
        let eku = tbs
            .get_extension::<ExtendedKeyUsage>()
            .map_err(encoding("signer EKU"))?;
        if !eku.is_some_and(|(_, eku)| eku.0.contains(&oids::KP_OCSP_SIGNING)) {
            return Err(bad("it lacks EKU OCSPSigning"));
        }
        if signer_key.public_key_info() != tbs.subject_public_key_info() {
            return Err(bad("the HSM key does not match it"));
        }
        let responder_key_hash =
            Sha1::digest(tbs.subject_public_key_info().subject_public_key.raw_bytes());
        let responder_id = ResponderId::ByKey(
            OctetString::new(responder_key_hash.as_slice()).map_err(encoding("responder id"))?,
        );
        let name_der = ca_tbs.subject().to_der().map_err(encoding("CA name"))?;
        let key_bits = ca_tbs
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        let id_hashes = CertIdHash::ALL
            .into_iter()
            .map(|h| (h, h.digest(&name_der), h.digest(key_bits)))
            .collect();
        Ok(OcspAuthority {
            ca_name: ca_name.to_owned(),
            signer_certificate,
            signer_key,
            responder_id,
            id_hashes,
        })
    }

    pub fn ca_name(&self) -> &str {
        &self.ca_name
    }

    /// Whether `cert_id` names this CA (issuerNameHash and issuerKeyHash computed with the
    /// CertID's own hash algorithm; SHA-1, SHA-256, SHA-384 and SHA-512 are understood).
    pub fn matches(&self, cert_id: &CertId) -> bool {
        let Some(hash) = CertIdHash::from_oid(cert_id.hash_algorithm.oid) else {
            return false;
        };
        self.id_hashes.iter().any(|(h, name, key)| {
            *h == hash
                && name == cert_id.issuer_name_hash.as_bytes()
                && key == cert_id.issuer_key_hash.as_bytes()
        })
    }

    /// A CertID for `serial` under this CA with SHA-1 (what openssl sends by default).
    pub fn cert_id(&self, serial: &SerialNumber) -> Result<CertId, OcspError> {
        let (_, name, key) = self
            .id_hashes
            .iter()
            .find(|(h, _, _)| *h == CertIdHash::Sha1)
            .ok_or(OcspError::Encoding {
                what: "CertID",
                reason: "no SHA-1 hashes".into(),
            })?;
        Ok(CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: oids::SHA1,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: OctetString::new(name.as_slice()).map_err(encoding("CertID"))?,
            issuer_key_hash: OctetString::new(key.as_slice()).map_err(encoding("CertID"))?,
            serial_number: serial.clone(),
        })
    }
}

/// Where a response may be cached: until `valid_until` or until `serial` of `ca` changes status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHint {
    /// The CertID's DER (= [`ParsedOcspRequest::cache_key`]).
    pub key: Vec<u8>,
    pub ca: String,
    pub serial: SerialNumber,
    /// The response's nextUpdate.
    pub valid_until: SystemTime,
}

/// The outcome of one request: always a DER OCSPResponse to send (HTTP 200,
/// `application/ocsp-response`), plus what happened for logs and caching.
#[derive(Debug)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    pub status: OcspResponseStatus,
    /// Why the response is an error response, if it is.
    pub error: Option<OcspError>,
    /// Set for a successful response that may be served again to the same CertID without nonce.
    pub cache: Option<CacheHint>,
}

impl OcspAnswer {
    fn from_error(error: OcspError) -> OcspAnswer {
        let status = error.response_status();
        OcspAnswer {
            der: error_response(status),
            status,
            error: Some(error),
            cache: None,
        }
    }
}

/// The responder: the CAs it speaks for and how long its answers stay valid.
#[derive(Debug, Clone)]
pub struct OcspResponder {
    authorities: Vec<OcspAuthority>,
    response_validity: Duration,
}

impl OcspResponder {
    /// `response_validity` is nextUpdate - thisUpdate of every SingleResponse (e.g. 1 hour).
    pub fn new(authorities: Vec<OcspAuthority>, response_validity: Duration) -> OcspResponder {
        OcspResponder {
            authorities,
            response_validity,
        }
    }

    pub fn authorities(&self) -> &[OcspAuthority] {
        &self.authorities
    }

    /// Parses and answers a DER request; every failure becomes the matching unsigned response.
    pub async fn respond_der<S: CertStatusSource>(
        &self,
        der: &[u8],
        source: &S,
        clock: &dyn Clock,
    ) -> OcspAnswer {
        match parse_ocsp_request(der) {
            Ok(request) => self.respond(&request, source, clock).await,
            Err(e) => OcspAnswer::from_error(e),
        }
    }

    /// Answers a parsed request: the first CertID naming one of our CAs picks the authority
    /// (and signer); CertIDs for anything else are answered `unknown`. None of ours: unauthorized.
    pub async fn respond<S: CertStatusSource>(
        &self,
        request: &ParsedOcspRequest,
        source: &S,
        clock: &dyn Clock,
    ) -> OcspAnswer {
        match self.try_respond(request, source, clock).await {
            Ok(answer) => answer,
            Err(e) => OcspAnswer::from_error(e),
        }
    }

    async fn try_respond<S: CertStatusSource>(
        &self,
        request: &ParsedOcspRequest,
        source: &S,
        clock: &dyn Clock,
    ) -> Result<OcspAnswer, OcspError> {
        let authority = request
            .cert_ids()
            .find_map(|id| self.authorities.iter().find(|a| a.matches(id)))
            .ok_or(OcspError::NotOurCa)?;
        let mut statuses = Vec::new();
        for id in request.cert_ids() {
            let status = if authority.matches(id) {
                source
                    .status(&authority.ca_name, &id.serial_number)
                    .await
                    .map_err(|e| OcspError::StatusLookup {
                        reason: e.reason,
                        retry: e.retry,
                    })?
            } else {
                CertStatusInfo::Unknown
            };
            statuses.push((id.clone(), status));
        }
        let now = clock.now();
        let der = self
            .sign_response(authority, &statuses, request.nonce_extension.clone(), now)
            .await?;
        let cache = match (request.cache_key(), statuses.as_slice()) {
            (Some(key), [(id, _)]) => Some(CacheHint {
                key,
                ca: authority.ca_name.clone(),
                serial: id.serial_number.clone(),
                valid_until: whole_seconds(now) + self.response_validity,
            }),
            _ => None,
        };
        Ok(OcspAnswer {
            der,
            status: OcspResponseStatus::Successful,
            error: None,
            cache,
        })
    }

    /// Builds and signs the response for one certificate ahead of time (for a pre-signed cache):
    /// `cert_id` as a client will send it (see [`OcspAuthority::cert_id`]), `status` from the store.
    pub async fn response_for_serial(
        &self,
        ca: &str,
        cert_id: &CertId,
        status: CertStatusInfo,
        clock: &dyn Clock,
    ) -> Result<OcspAnswer, OcspError> {
        let authority = self
            .authorities
            .iter()
            .find(|a| a.ca_name == ca)
            .ok_or_else(|| OcspError::UnknownCa {
                ca: ca.chars().take(64).collect(),
            })?;
        if !authority.matches(cert_id) {
            return Err(OcspError::NotOurCa);
        }
        let now = clock.now();
        let der = self
            .sign_response(authority, &[(cert_id.clone(), status)], None, now)
            .await?;
        Ok(OcspAnswer {
            der,
            status: OcspResponseStatus::Successful,
            error: None,
            cache: Some(CacheHint {
                key: cert_id.to_der().map_err(encoding("CertID"))?,
                ca: authority.ca_name.clone(),
                serial: cert_id.serial_number.clone(),
                valid_until: whole_seconds(now) + self.response_validity,
            }),
        })
    }

    async fn sign_response(
        &self,
        authority: &OcspAuthority,
        statuses: &[(CertId, CertStatusInfo)],
        nonce: Option<Extension>,
        now: SystemTime,
    ) -> Result<Vec<u8>, OcspError> {
        let now = whole_seconds(now);
        let time = |t: SystemTime| {
            OcspGeneralizedTime::try_from(whole_seconds(t)).map_err(encoding("time"))
        };
        let this_update = time(now)?;
        let next_update = time(now + self.response_validity)?;
        let mut responses = Vec::with_capacity(statuses.len());
        for (cert_id, status) in statuses {
            let cert_status = match status {
                CertStatusInfo::Good => CertStatus::good(),
                CertStatusInfo::Unknown => CertStatus::unknown(),
                CertStatusInfo::Revoked { revoked_at, reason } => {
                    CertStatus::revoked(RevokedInfo {
                        revocation_time: time(*revoked_at)?,
                        revocation_reason: match reason {
                            RevocationReason::Unspecified => None,
                            r => Some(r.to_crl_reason()),
                        },
                    })
                }
            };
            responses.push(SingleResponse {
                cert_id: cert_id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            });
        }
        let tbs_response_data = ResponseData {
            version: Version::V1,
            responder_id: authority.responder_id.clone(),
            produced_at: this_update,
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let tbs_der = tbs_response_data
            .to_der()
            .map_err(encoding("ResponseData"))?;
        let signature = authority
            .signer_key
            .sign(&tbs_der)
            .await
            .map_err(|source| OcspError::Hsm {
                ca: authority.ca_name.clone(),
                source: Box::new(source),
            })?;
        let basic = BasicOcspResponse {
            tbs_response_data,
            signature_algorithm: authority.signer_key.signature_algorithm(),
            signature: der::asn1::BitString::from_bytes(&signature)
                .map_err(encoding("signature"))?,
            certs: Some(vec![authority.signer_certificate.clone()]),
        };
        OcspResponse::successful(basic)
            .map_err(encoding("OCSPResponse"))?
            .to_der()
            .map_err(encoding("OCSPResponse"))
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    kyso_clock::from_unix_seconds(kyso_clock::unix_seconds(t))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use kyso_clock::Clock;

    use super::*;
    use crate::profile::ProfileKind;
    use crate::subject::VnSubject;
    use crate::test_pki::{TestPki, openssl, openssl_ok, staff_subject};

    /// The store, for tests: status by serial; `fail` makes every lookup fail.
    #[derive(Default)]
    struct MapSource {
        statuses: Mutex<HashMap<Vec<u8>, CertStatusInfo>>,
        fail: Option<StatusLookupError>,
    }

    impl MapSource {
        fn set(&self, cert: &Certificate, status: CertStatusInfo) {
            let serial = cert.tbs_certificate().serial_number().as_bytes().to_vec();
            self.statuses.lock().unwrap().insert(serial, status);
        }
    }

    impl CertStatusSource for MapSource {
        async fn status(
            &self,
            ca: &str,
            serial: &SerialNumber,
        ) -> Result<CertStatusInfo, StatusLookupError> {
            assert_eq!(ca, "issuing");
            if let Some(e) = &self.fail {
                return Err(e.clone());
            }
            Ok(self
                .statuses
                .lock()
                .unwrap()
                .get(serial.as_bytes())
                .copied()
                .unwrap_or(CertStatusInfo::Unknown))
        }
    }

    struct Fixture {
        pki: TestPki,
        responder: OcspResponder,
        source: MapSource,
    }

    async fn fixture(name: &str) -> Fixture {
        let pki = TestPki::new(name).await;
        let (signer, signer_key) = pki
            .issue("ocsp", ProfileKind::OcspSigner, VnSubject::new("kyso OCSP"))
            .await;
        let authority =
            OcspAuthority::new("issuing", pki.issuing.certificate(), signer, signer_key).unwrap();
        let responder = OcspResponder::new(vec![authority], Duration::from_secs(3600));
        Fixture {
            pki,
            responder,
            source: MapSource::default(),
        }
    }

    impl Fixture {
        /// A staff certificate for a new key `label`, written to `{label}.pem`.
        async fn staff_cert(&self, label: &str) -> Certificate {
            let (cert, _) = self
                .pki
                .issue(label, ProfileKind::StaffSigning, staff_subject())
                .await;
            self.pki.write_pem(&format!("{label}.pem"), &cert);
            cert
        }

        /// openssl makes a request for `cert_file` (extra args e.g. -no_nonce, -sha256), we answer,
        /// openssl checks the answer; returns (our answer, openssl's output).
        async fn round_trip(&self, cert_file: &str, extra: &[&str]) -> (OcspAnswer, String) {
            let dir = self.pki.dir.path();
            // Options such as -sha256 must come before -cert.
            let mut args = vec!["ocsp"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&[
                "-issuer",
                "issuing.pem",
                "-cert",
                cert_file,
                "-reqout",
                "req.der",
            ]);
            openssl_ok(dir, &args);
            let req = std::fs::read(dir.join("req.der")).unwrap();
            let answer = self
                .responder
                .respond_der(&req, &self.source, &self.pki.clock)
                .await;
            std::fs::write(dir.join("resp.der"), &answer.der).unwrap();
            // openssl builds a fresh request (new nonce) whenever -cert is given, so the nonce is
            // checked against the request file alone, the per-certificate status with -cert.
            let (_, nonce_check) = openssl(
                dir,
                &[
                    "ocsp",
                    "-respin",
                    "resp.der",
                    "-reqin",
                    "req.der",
                    "-verify_other",
                    "issuing.pem",
                    "-CAfile",
                    "root.pem",
                ],
            );
            let mut args = vec![
                "ocsp",
                "-respin",
                "resp.der",
                "-no_nonce",
                "-CAfile",
                "root.pem",
                "-resp_text",
            ];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["-issuer", "issuing.pem", "-cert", cert_file]);
            let (_, out) = openssl(dir, &args);
            (answer, format!("{nonce_check}\n{out}"))
        }
    }

    #[tokio::test]
    async fn ocsp_openssl_accepts_good_revoked_and_hold_with_nonce_echoed() {
        let f = fixture("ocsp-openssl").await;
        let good = f.staff_cert("good").await;
        let bad = f.staff_cert("bad").await;
        let held = f.staff_cert("held").await;
        let revoked_at = kyso_clock::from_unix_seconds(f.pki.clock.now_unix() - 60);
        f.source.set(&good, CertStatusInfo::Good);
        f.source.set(
            &bad,
            CertStatusInfo::Revoked {
                revoked_at,
                reason: RevocationReason::KeyCompromise,
            },
        );
        f.source.set(
            &held,
            CertStatusInfo::Revoked {
                revoked_at,
                reason: RevocationReason::CertificateHold,
            },
        );

        let (answer, out) = f.round_trip("good.pem", &[]).await;
        assert_eq!(answer.status, OcspResponseStatus::Successful);
        assert_eq!(out.matches("Response verify OK").count(), 2, "{out}");
        assert!(!out.contains("Nonce Verify error"), "{out}");
        assert!(out.contains("good.pem: good"), "{out}");
        assert!(out.contains("OCSP Nonce"), "nonce echoed:\n{out}");
        assert!(!out.contains("WARNING"), "{out}");
        assert!(out.contains("Responder Id: "), "{out}");
        assert!(answer.cache.is_none(), "a nonce makes the answer unique");

        let (_, out) = f.round_trip("bad.pem", &[]).await;
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("bad.pem: revoked"), "{out}");
        assert!(out.contains("Reason: keyCompromise"), "{out}");
        assert!(out.contains("Revocation Time:"), "{out}");

        let (_, out) = f.round_trip("held.pem", &["-sha256"]).await;
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("held.pem: revoked"), "{out}");
        assert!(out.contains("Reason: certificateHold"), "{out}");
    }

    #[tokio::test]
    async fn ocsp_unknown_serial_and_cacheable_answer_without_nonce() {
        let f = fixture("ocsp-unknown").await;
        let stranger = f.staff_cert("stranger").await;
        let (answer, out) = f.round_trip("stranger.pem", &["-no_nonce"]).await;
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("stranger.pem: unknown"), "{out}");
        let hint = answer.cache.expect("no nonce, one CertID: cacheable");
        assert_eq!(hint.ca, "issuing");
        assert_eq!(&hint.serial, stranger.tbs_certificate().serial_number());
        assert_eq!(
            hint.valid_until,
            kyso_clock::from_unix_seconds(f.pki.clock.now_unix() + 3600)
        );
        let req = parse_ocsp_request(&std::fs::read(f.pki.path("req.der")).unwrap()).unwrap();
        assert_eq!(req.cache_key(), Some(hint.key));
        assert_eq!(req.nonce(), None);
    }

    #[tokio::test]
    async fn ocsp_presigned_response_for_a_serial_verifies() {
        let f = fixture("ocsp-presign").await;
        let leaf = f.staff_cert("leaf").await;
        let authority = &f.responder.authorities()[0];
        let cert_id = authority
            .cert_id(leaf.tbs_certificate().serial_number())
            .unwrap();
        let answer = f
            .responder
            .response_for_serial("issuing", &cert_id, CertStatusInfo::Good, &f.pki.clock)
            .await
            .unwrap();
        std::fs::write(f.pki.path("pre.der"), &answer.der).unwrap();
        let out = openssl_ok(
            f.pki.dir.path(),
            &[
                "ocsp",
                "-respin",
                "pre.der",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "root.pem",
                "-resp_text",
            ],
        );
        assert!(
            out.contains("Response verify OK") && out.contains("leaf.pem: good"),
            "{out}"
        );
        // The pre-signed answer's key is what openssl's own request for that certificate yields.
        openssl_ok(
            f.pki.dir.path(),
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-no_nonce",
                "-reqout",
                "r.der",
            ],
        );
        let req = parse_ocsp_request(&std::fs::read(f.pki.path("r.der")).unwrap()).unwrap();
        assert_eq!(req.cache_key(), answer.cache.map(|c| c.key));
        assert_eq!(
            f.responder
                .response_for_serial("nope", &cert_id, CertStatusInfo::Good, &f.pki.clock)
                .await
                .unwrap_err()
                .code(),
            "ocsp_unknown_ca"
        );
    }

    #[tokio::test]
    async fn ocsp_get_form_parses_the_same_request() {
        let f = fixture("ocsp-get").await;
        f.staff_cert("leaf").await;
        openssl_ok(
            f.pki.dir.path(),
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-reqout",
                "r.der",
            ],
        );
        let der = std::fs::read(f.pki.path("r.der")).unwrap();
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
        let escaped = std_b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let direct = parse_ocsp_request(&der).unwrap();
        for text in [&std_b64, &url_b64, &escaped] {
            let parsed = parse_ocsp_request_base64(text).unwrap();
            assert_eq!(parsed.request, direct.request);
            assert_eq!(parsed.nonce(), direct.nonce());
        }
        assert_eq!(
            parse_ocsp_request_base64("not base64!").unwrap_err().code(),
            "ocsp_bad_base64"
        );
        assert_eq!(
            parse_ocsp_request_base64("%zz").unwrap_err().code(),
            "ocsp_bad_base64"
        );
    }

    #[tokio::test]
    async fn ocsp_errors_become_unsigned_responses() {
        let mut f = fixture("ocsp-errors").await;
        let dir = f.pki.dir.path().to_owned();
        // A certificate the root issued (the issuing CA itself): not ours to answer.
        openssl_ok(
            &dir,
            &[
                "ocsp",
                "-issuer",
                "root.pem",
                "-cert",
                "issuing.pem",
                "-reqout",
                "root-req.der",
            ],
        );
        let answer = f
            .responder
            .respond_der(
                &std::fs::read(dir.join("root-req.der")).unwrap(),
                &f.source,
                &f.pki.clock,
            )
            .await;
        assert_eq!(answer.status, OcspResponseStatus::Unauthorized);
        assert_eq!(
            answer.error.as_ref().map(OcspError::code),
            Some("ocsp_unauthorized")
        );
        std::fs::write(dir.join("unauth.der"), &answer.der).unwrap();
        let (_, out) = openssl(
            &dir,
            &["ocsp", "-respin", "unauth.der", "-resp_text", "-noverify"],
        );
        assert!(out.contains("unauthorized (6)"), "{out}");

        let answer = f
            .responder
            .respond_der(b"\x30\x03\x02\x01\x00", &f.source, &f.pki.clock)
            .await;
        assert_eq!(answer.status, OcspResponseStatus::MalformedRequest);
        assert_eq!(answer.der, vec![0x30, 0x03, 0x0a, 0x01, 0x01]);

        f.staff_cert("leaf").await;
        openssl_ok(
            &dir,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-reqout",
                "r.der",
            ],
        );
        let req = std::fs::read(dir.join("r.der")).unwrap();
        f.source.fail = Some(StatusLookupError {
            reason: "database busy".into(),
            retry: true,
        });
        let answer = f.responder.respond_der(&req, &f.source, &f.pki.clock).await;
        assert_eq!(answer.status, OcspResponseStatus::TryLater);
        f.source.fail = Some(StatusLookupError {
            reason: "database gone".into(),
            retry: false,
        });
        let answer = f.responder.respond_der(&req, &f.source, &f.pki.clock).await;
        assert_eq!(answer.status, OcspResponseStatus::InternalError);
        assert_eq!(
            error_response(OcspResponseStatus::InternalError),
            vec![0x30, 0x03, 0x0a, 0x01, 0x02]
        );
    }

    #[tokio::test]
    async fn ocsp_request_parser_bounds_and_framing() {
        let f = fixture("ocsp-parse").await;
        f.staff_cert("leaf").await;
        let dir = f.pki.dir.path();
        openssl_ok(
            dir,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-reqout",
                "r.der",
            ],
        );
        let der = std::fs::read(dir.join("r.der")).unwrap();
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            parse_ocsp_request(&trailing).unwrap_err().code(),
            "ocsp_trailing_data"
        );
        assert_eq!(
            parse_ocsp_request(&der[..der.len() - 1])
                .unwrap_err()
                .code(),
            "ocsp_malformed"
        );
        assert_eq!(parse_ocsp_request(&[]).unwrap_err().code(), "ocsp_empty");
        assert_eq!(
            parse_ocsp_request(&vec![0x30; MAX_OCSP_REQUEST_BYTES + 1])
                .unwrap_err()
                .code(),
            "ocsp_too_large"
        );

        // 17 CertIDs: too many.
        let mut args = vec!["ocsp", "-issuer", "issuing.pem", "-reqout", "many.der"];
        let serials: Vec<String> = (1..=17).map(|i| format!("{i}")).collect();
        for s in &serials {
            args.push("-serial");
            args.push(s);
        }
        openssl_ok(dir, &args);
        let many = std::fs::read(dir.join("many.der")).unwrap();
        assert_eq!(
            parse_ocsp_request(&many).unwrap_err().code(),
            "ocsp_too_many_cert_ids"
        );

        // A 33-byte nonce is refused (RFC 8954).
        openssl_ok(
            dir,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-nonce",
                "-reqout",
                "n.der",
            ],
        );
        let parsed = parse_ocsp_request(&std::fs::read(dir.join("n.der")).unwrap()).unwrap();
        assert!(
            parsed
                .nonce()
                .is_some_and(|n| !n.is_empty() && n.len() <= MAX_NONCE_BYTES)
        );
        let mut request = parsed.request.clone();
        let long = OctetString::new(vec![7u8; 33]).unwrap().to_der().unwrap();
        for ext in request.tbs_request.request_extensions.iter_mut().flatten() {
            ext.extn_value = OctetString::new(long.clone()).unwrap();
        }
        assert_eq!(
            parse_ocsp_request(&request.to_der().unwrap())
                .unwrap_err()
                .code(),
            "ocsp_bad_nonce"
        );
    }
}
