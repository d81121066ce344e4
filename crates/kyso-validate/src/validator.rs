//! Path building (bounded) and validation of each candidate path with certval.

use std::sync::Arc;

use certval::ocsp::{BasicOcspResponse, CertStatus, OcspResponse, SingleResponse};
use certval::{
    CertificationPath, CertificationPathResults, CertificationPathSettings,
    DefaultSignatureVerificationCache, Error as CertvalError, ExtensionProcessing, PDVCertificate,
    PDVExtension, PathValidationStatus as Status, PkiEnvironment,
    RevocationSource as CertvalRevocationSource, SubjectNameAndKey, TimeOfInterest, cert_id_match,
    check_revocation_local, compare_names, get_trust_anchor_name,
};
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_DELTA_CRL_INDICATOR, ID_CE_SUBJECT_KEY_IDENTIFIER,
};
use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::certificate::Raw;
use x509_cert::crl::{CertificateList, RevokedCert};

use crate::anchors::{AnchorEntry, TrustAnchors, is_weak_signature_algorithm};
use crate::glue::{CallCrl, CallCrls, DecidedGood, SingleAnchorSource};
use crate::indication::{Indication, Message, SubIndication};
use crate::known_certificates::{
    DescribedCertificate, KnownCertificates, KnownCrls, ParsedCertificate,
};
use crate::passed_paths::{IssuerCandidate, NameMatches, PassedPaths, PathKey};
use crate::policy::{ValidationPolicy, ValidationTime};
use crate::report::{CertificateRole, CertificateStatus, PathValidation, RevocationStatus};
use crate::revocation::{
    MAX_REVOCATION_ITEM_BYTES, MAX_REVOCATION_ITEMS, RevocationData, RevocationSource,
};
use crate::revocation_memo::{PassKey, RevocationMemo, RevocationPass};
use kyso_ca::CertificateSummary;

/// At most this many intermediates from one call are considered.
pub const MAX_CALL_INTERMEDIATES: usize = 64;
/// certval's own ceiling on non-self-issued certificates in a path.
const CERTVAL_MAX_PATH: usize = 15;
/// Later revocation-data times tried when nothing current at the time of interest settles a
/// certificate (each try is one revocation pass).
const MAX_LATER_DATA_TIMES: usize = 4;
/// The latest time GeneralizedTime can hold (9999-12-31T23:59:59Z).
const MAX_UNIX: i64 = 253_402_300_799;

/// Validates certification paths against one trust store. Build once, share in an `Arc`:
/// anchors and intermediates are parsed once, and certificate signatures verified once and
/// revocation outcomes are remembered (bounded caches) across validations.
pub struct PathValidator {
    anchors: TrustAnchors,
    signature_cache: Arc<DefaultSignatureVerificationCache>,
    revocation_memo: RevocationMemo,
    passed_paths: PassedPaths,
    name_matches: NameMatches,
    known: KnownCertificates,
    known_crls: KnownCrls,
}

impl std::fmt::Debug for PathValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathValidator")
            .field("anchors", &self.anchors)
            .finish()
    }
}

/// A certificate of this call (the end entity or one it came with), parsed once per validator.
type CallCert = Arc<ParsedCertificate>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeRef {
    Call(usize),
    Store(usize),
}

struct Candidate {
    anchor: Arc<AnchorEntry>,
    /// Issuer of the end entity first.
    chain: Vec<NodeRef>,
}

#[derive(Default)]
struct BuildOutcome {
    paths: Vec<Candidate>,
    loop_seen: bool,
    too_long: bool,
    budget_exhausted: bool,
}

/// certval's view of one candidate path, built when something about it is not remembered.
struct CandidateEnvironment {
    pe: PkiEnvironment,
    cp: CertificationPath,
    cps: CertificationPathSettings,
    /// Certificates this candidate's revocation passes settled as not revoked at the time.
    decided: DecidedGood,
}

struct CallOcsp {
    bytes: Vec<u8>,
    singles: Vec<SingleResponse>,
}

/// The outcome of one candidate path.
struct Outcome {
    indication: Indication,
    sub: Option<SubIndication>,
    /// Index in report order (end entity 0, anchor last).
    failed: Option<usize>,
    detail: Option<String>,
    /// End entity first; anchor excluded.
    revocation: Vec<RevocationStatus>,
    warnings: Vec<Message>,
    /// How far validation got: 0 path checks, 1 validity, 2 revocation, 3 passed.
    progress: u8,
}

struct Call<'a> {
    validator: &'a PathValidator,
    leaf: CallCert,
    pool: Vec<CallCert>,
    time: ValidationTime,
    policy: &'a ValidationPolicy,
    max_path_length: usize,
    crls: Arc<Vec<Arc<CallCrl>>>,
    ocsp: Vec<CallOcsp>,
    later_times: Vec<i64>,
    warnings: Vec<Message>,
}

fn unix_of(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn gen_unix(t: &der::asn1::GeneralizedTime) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn time_of_interest(unix: i64) -> TimeOfInterest {
    // Callers check the range first; the fallback is never "disabled" (which skips checks).
    TimeOfInterest::from_unix_secs(unix.clamp(1, MAX_UNIX) as u64)
        .unwrap_or(TimeOfInterest(der::DateTime::INFINITY))
}

fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

fn failure(indication: Indication, sub: SubIndication, failed: Option<usize>) -> Outcome {
    Outcome {
        indication,
        sub: Some(sub),
        failed,
        detail: None,
        revocation: Vec::new(),
        warnings: Vec::new(),
        progress: 0,
    }
}

impl Outcome {
    fn with_detail(mut self, detail: impl Into<String>) -> Outcome {
        self.detail = Some(detail.into());
        self
    }
}

impl PathValidator {
    pub fn new(anchors: TrustAnchors) -> PathValidator {
        PathValidator {
            anchors,
            signature_cache: Arc::new(DefaultSignatureVerificationCache::new()),
            revocation_memo: RevocationMemo::default(),
            passed_paths: PassedPaths::default(),
            name_matches: NameMatches::default(),
            known: KnownCertificates::default(),
            known_crls: KnownCrls::default(),
        }
    }

    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Asks each source for revocation data about `leaf` and `intermediates`, merged with
    /// `supplied`. A source that fails adds a warning, not an error: the validation then reports
    /// TRY_LATER if nothing else settles the status.
    pub async fn gather_revocation_data(
        &self,
        sources: &[&dyn RevocationSource],
        leaf: &Certificate,
        intermediates: &[Certificate],
        supplied: RevocationData,
    ) -> (RevocationData, Vec<Message>) {
        let mut certificates = Vec::with_capacity(intermediates.len() + 1);
        certificates.push(leaf.clone());
        certificates.extend(intermediates.iter().take(MAX_CALL_INTERMEDIATES).cloned());
        let mut data = supplied;
        let mut warnings = Vec::new();
        for source in sources {
            match source.revocation_data(&certificates).await {
                Ok(more) => data.merge(more),
                Err(e) => warnings.push(Message::new(
                    format!("Không lấy được dữ liệu thu hồi: {e}"),
                    format!("Revocation data could not be obtained: {e}"),
                )),
            }
        }
        (data, warnings)
    }

    /// Validates `leaf` at `time` with the trust store, using `intermediates` (for example the
    /// certificates in a signature) and the store's known intermediates for path building, and
    /// `revocation` for revocation status.
    pub fn validate_path(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        time: ValidationTime,
        revocation: &RevocationData,
        policy: &ValidationPolicy,
    ) -> PathValidation {
        let intermediates: Vec<&Certificate> = intermediates.iter().collect();
        self.validate_path_refs(leaf, &intermediates, time, revocation, policy)
    }

    /// [`PathValidator::validate_path`] with the intermediates by reference.
    pub fn validate_path_refs(
        &self,
        leaf: &Certificate,
        intermediates: &[&Certificate],
        time: ValidationTime,
        revocation: &RevocationData,
        policy: &ValidationPolicy,
    ) -> PathValidation {
        let leaf_der = match self.known.encode(leaf) {
            Ok(d) => d,
            Err(e) => return format_failure(time, format!("end-entity certificate: {e}")),
        };
        let mut ders = Vec::with_capacity(intermediates.len().min(MAX_CALL_INTERMEDIATES));
        for cert in intermediates.iter().take(MAX_CALL_INTERMEDIATES) {
            if let Ok(d) = self.known.encode(cert) {
                ders.push(d);
            }
        }
        let refs: Vec<&[u8]> = ders.iter().map(|d| d.1.as_slice()).collect();
        self.validate_path_der(&leaf_der.1, &refs, time, revocation, policy)
    }

    /// [`PathValidator::validate_path`] over DER certificates.
    pub fn validate_path_der(
        &self,
        leaf: &[u8],
        intermediates: &[&[u8]],
        time: ValidationTime,
        revocation: &RevocationData,
        policy: &ValidationPolicy,
    ) -> PathValidation {
        if !(1..=MAX_UNIX).contains(&time.unix) {
            return format_failure(time, format!("time of interest {} out of range", time.unix));
        }
        let leaf = match self.known.parse(leaf) {
            Ok(parsed) => parsed,
            Err(e) => return format_failure(time, format!("end-entity certificate: {e}")),
        };
        let mut warnings = Vec::new();
        let mut pool = Vec::new();
        for (i, der) in intermediates.iter().enumerate() {
            if i >= MAX_CALL_INTERMEDIATES {
                warnings.push(Message::new(
                    format!("Chỉ xét {MAX_CALL_INTERMEDIATES} chứng thư số trung gian đầu tiên."),
                    format!("Only the first {MAX_CALL_INTERMEDIATES} intermediate certificates were considered."),
                ));
                break;
            }
            match self.known.parse(der) {
                Ok(parsed) => pool.push(parsed),
                Err(e) => warnings.push(Message::new(
                    format!("Bỏ qua một chứng thư số trung gian không đọc được: {e}"),
                    format!("An unreadable intermediate certificate was ignored: {e}"),
                )),
            }
        }
        let (crls, ocsp, later_times) =
            prepare_revocation(&self.known_crls, revocation, time.unix, &mut warnings);
        let mut call = Call {
            validator: self,
            leaf,
            pool,
            time,
            policy,
            max_path_length: policy.max_path_length.clamp(1, CERTVAL_MAX_PATH),
            crls: Arc::new(crls),
            ocsp,
            later_times,
            warnings,
        };
        call.run()
    }
}

fn format_failure(time: ValidationTime, detail: String) -> PathValidation {
    PathValidation {
        indication: Indication::Indeterminate,
        sub_indication: Some(SubIndication::FormatFailure),
        message: SubIndication::FormatFailure.message(),
        time,
        signer: None,
        chain: Vec::new(),
        trust_anchor: None,
        failed_certificate: Some(0),
        detail: Some(detail),
        warnings: Vec::new(),
        paths_tried: 0,
    }
}

/// A CRL as the calls use it.
fn parse_crl(bytes: &[u8]) -> Result<CallCrl, der::Error> {
    let crl = CertificateList::<Raw>::from_der(bytes)?;
    Ok(CallCrl {
        bytes: bytes.to_vec(),
        digest: fingerprint(bytes),
        this_update: unix_of(&crl.tbs_cert_list.this_update),
        next_update: crl.tbs_cert_list.next_update.as_ref().map(unix_of),
        issuer: crl.tbs_cert_list.issuer.clone(),
        weak_signature: is_weak_signature_algorithm(&crl.signature_algorithm.oid),
        is_delta: crl
            .tbs_cert_list
            .crl_extensions
            .as_ref()
            .is_some_and(|exts| exts.iter().any(|e| e.extn_id == ID_CE_DELTA_CRL_INDICATOR)),
    })
}

/// Parses the call's CRLs and OCSP responses once; returns them with the distinct data times
/// later than the time of interest.
fn prepare_revocation(
    known_crls: &KnownCrls,
    data: &RevocationData,
    toi: i64,
    warnings: &mut Vec<Message>,
) -> (Vec<Arc<CallCrl>>, Vec<CallOcsp>, Vec<i64>) {
    let mut ignored = 0usize;
    let mut later = Vec::new();
    let mut crls = Vec::new();
    for bytes in data.crls.iter().take(MAX_REVOCATION_ITEMS) {
        if bytes.len() > MAX_REVOCATION_ITEM_BYTES {
            ignored += 1;
            continue;
        }
        match known_crls.parse(bytes, parse_crl) {
            Ok(crl) => {
                if crl.this_update > toi {
                    later.push(crl.this_update);
                }
                crls.push(crl);
            }
            Err(_) => ignored += 1,
        }
    }
    let mut ocsp = Vec::new();
    for bytes in data.ocsp_responses.iter().take(MAX_REVOCATION_ITEMS) {
        if bytes.len() > MAX_REVOCATION_ITEM_BYTES {
            ignored += 1;
            continue;
        }
        let basic = OcspResponse::from_der(bytes).ok().and_then(|r| {
            r.response_bytes
                .and_then(|rb| BasicOcspResponse::from_der(rb.response.as_bytes()).ok())
        });
        match basic {
            Some(basic) => {
                for single in &basic.tbs_response_data.responses {
                    let t = gen_unix(&single.this_update.0);
                    if t > toi {
                        later.push(t);
                    }
                }
                ocsp.push(CallOcsp {
                    bytes: bytes.clone(),
                    singles: basic.tbs_response_data.responses,
                });
            }
            None => ignored += 1,
        }
    }
    let skipped = data.crls.len().saturating_sub(MAX_REVOCATION_ITEMS)
        + data
            .ocsp_responses
            .len()
            .saturating_sub(MAX_REVOCATION_ITEMS);
    ignored += skipped;
    if ignored > 0 {
        warnings.push(Message::new(
            format!("Bỏ qua {ignored} mục dữ liệu thu hồi không đọc được hoặc quá lớn."),
            format!(
                "{ignored} revocation data items were unreadable or too large and were ignored."
            ),
        ));
    }
    later.sort_unstable();
    later.dedup();
    later.truncate(MAX_LATER_DATA_TIMES);
    (crls, ocsp, later)
}

impl Call<'_> {
    fn cert(&self, node: NodeRef) -> &PDVCertificate {
        match node {
            NodeRef::Call(i) => &self.pool[i].pdv,
            NodeRef::Store(i) => &self.validator.anchors.intermediates[i].pdv,
        }
    }

    fn node_fingerprint(&self, node: NodeRef) -> [u8; 32] {
        match node {
            NodeRef::Call(i) => self.pool[i].fingerprint,
            NodeRef::Store(i) => self.validator.anchors.intermediates[i].fingerprint,
        }
    }

    fn valid_at_toi(&self, cert: &PDVCertificate) -> bool {
        let validity = cert.decoded().tbs_certificate().validity();
        unix_of(&validity.not_before) <= self.time.unix
            && self.time.unix <= unix_of(&validity.not_after)
    }

    fn run(&mut self) -> PathValidation {
        if let Some(anchor) = self.leaf_anchor() {
            return self.leaf_is_anchor(anchor);
        }
        let built = self.build_paths();
        let mut best: Option<(Outcome, usize)> = None;
        let mut paths_tried = 0;
        for (i, candidate) in built.paths.iter().enumerate() {
            paths_tried += 1;
            let outcome = self.validate_candidate(candidate);
            let passed = outcome.indication == Indication::TotalPassed;
            let better = best
                .as_ref()
                .is_none_or(|(b, _)| outcome.progress > b.progress);
            if better {
                best = Some((outcome, i));
            }
            if passed {
                break;
            }
        }
        match best {
            Some((outcome, i)) => self.report(Some(&built.paths[i]), outcome, paths_tried),
            None => {
                let mut reasons = Vec::new();
                if built.loop_seen {
                    reasons.push("a certificate loop was cut");
                }
                if built.too_long {
                    reasons.push("paths longer than the policy's maximum were not followed");
                }
                if built.budget_exhausted {
                    reasons.push("the path building budget was exhausted");
                }
                let detail = if reasons.is_empty() {
                    "no issuer chain leads to a trust anchor".to_owned()
                } else {
                    format!("no path to a trust anchor: {}", reasons.join("; "))
                };
                let outcome = failure(
                    Indication::Indeterminate,
                    SubIndication::NoCertificateChainFound,
                    Some(0),
                )
                .with_detail(detail);
                self.report(None, outcome, 0)
            }
        }
    }

    /// The anchor whose key and name the end-entity certificate carries, if any.
    fn leaf_anchor(&self) -> Option<Arc<AnchorEntry>> {
        let tbs = self.leaf.pdv.decoded().tbs_certificate();
        self.validator
            .anchors
            .anchors
            .iter()
            .find(|a| {
                a.pdv.as_bytes() == self.leaf.pdv.as_bytes()
                    || (certval::get_subject_public_key_info_from_trust_anchor(a.pdv.decoded())
                        == tbs.subject_public_key_info()
                        && get_trust_anchor_name(a.pdv.decoded())
                            .is_ok_and(|n| compare_names(n, tbs.subject())))
            })
            .cloned()
    }

    fn leaf_is_anchor(&mut self, anchor: Arc<AnchorEntry>) -> PathValidation {
        let validity = self.leaf.pdv.decoded().tbs_certificate().validity();
        let outcome = if self.time.unix < unix_of(&validity.not_before) {
            failure(Indication::TotalFailed, SubIndication::NotYetValid, Some(0))
        } else if self.time.unix > unix_of(&validity.not_after) {
            self.expired_outcome(Some(0))
        } else {
            Outcome {
                indication: Indication::TotalPassed,
                sub: None,
                failed: None,
                detail: Some("the certificate is itself a trust anchor".to_owned()),
                revocation: vec![RevocationStatus::NotChecked],
                warnings: Vec::new(),
                progress: 3,
            }
        };
        let mut report = self.report(None, outcome, 0);
        report.trust_anchor = Some(anchor.info.clone());
        if let Some(first) = report.chain.first_mut() {
            first.role = CertificateRole::TrustAnchor;
        }
        report
    }

    fn expired_outcome(&self, failed: Option<usize>) -> Outcome {
        if self.time.proven {
            failure(Indication::TotalFailed, SubIndication::Expired, failed)
        } else {
            failure(
                Indication::Indeterminate,
                SubIndication::OutOfBoundsNoPoe,
                failed,
            )
        }
    }

    // ---------------------------------------------------------------- path building

    fn build_paths(&self) -> BuildOutcome {
        let mut out = BuildOutcome::default();
        let mut path = Vec::new();
        let mut visited = vec![self.leaf.fingerprint];
        let mut steps = 0usize;
        self.extend(
            &self.leaf.pdv,
            self.leaf.fingerprint,
            &mut path,
            &mut visited,
            &mut steps,
            &mut out,
        );
        out
    }

    /// 0: the issuer's key identifier matches the AKID; 1: unknown; 2: it does not. Plus 3 when
    /// the issuer is not valid at the time of interest.
    fn rank(akid: Option<&[u8]>, skid: Option<Vec<u8>>, valid: bool) -> u8 {
        let key = match (akid, skid) {
            (Some(a), Some(s)) if a == s.as_slice() => 0,
            (Some(_), Some(_)) => 2,
            _ => 1,
        };
        key + if valid { 0 } else { 3 }
    }

    fn extend(
        &self,
        cur: &PDVCertificate,
        cur_fingerprint: [u8; 32],
        path: &mut Vec<NodeRef>,
        visited: &mut Vec<[u8; 32]>,
        steps: &mut usize,
        out: &mut BuildOutcome,
    ) {
        let max_paths = self.policy.max_candidate_paths.max(1);
        if out.paths.len() >= max_paths {
            return;
        }
        let issuer = cur.decoded().tbs_certificate().issuer();
        let akid = authority_key_id(cur);

        let mut anchors: Vec<(u8, &Arc<AnchorEntry>)> = self
            .validator
            .anchors
            .anchors
            .iter()
            .filter(|a| {
                let anchor = IssuerCandidate::Anchor(anchor_fingerprint(a));
                self.validator
                    .name_matches
                    .issued_by(cur_fingerprint, anchor, || {
                        get_trust_anchor_name(a.pdv.decoded())
                            .is_ok_and(|n| compare_names(n, issuer))
                    })
            })
            .map(|a| {
                let skid = hex::decode(&a.hex_skid).ok();
                (Self::rank(akid.as_deref(), skid, true), a)
            })
            .collect();
        anchors.sort_by_key(|(r, _)| *r);
        for (_, anchor) in anchors {
            out.paths.push(Candidate {
                anchor: Arc::clone(anchor),
                chain: path.clone(),
            });
            if out.paths.len() >= max_paths {
                return;
            }
        }

        let store = &self.validator.anchors.intermediates;
        let mut next: Vec<(u8, NodeRef)> = (0..self.pool.len())
            .map(NodeRef::Call)
            .chain((0..store.len()).map(NodeRef::Store))
            .filter(|n| {
                let candidate = IssuerCandidate::Certificate(self.node_fingerprint(*n));
                self.validator
                    .name_matches
                    .issued_by(cur_fingerprint, candidate, || {
                        compare_names(self.cert(*n).decoded().tbs_certificate().subject(), issuer)
                    })
            })
            .map(|n| {
                let c = self.cert(n);
                (
                    Self::rank(akid.as_deref(), subject_key_id(c), self.valid_at_toi(c)),
                    n,
                )
            })
            .collect();
        next.sort_by_key(|(r, _)| *r);
        for (_, node) in next {
            let fp = self.node_fingerprint(node);
            if visited.contains(&fp) {
                out.loop_seen = true;
                continue;
            }
            // path holds the intermediates so far; with the end entity and this one the path
            // would have path.len() + 2 certificates.
            if path.len() + 2 > self.max_path_length {
                out.too_long = true;
                continue;
            }
            *steps += 1;
            if *steps > self.policy.max_candidate_certificates {
                out.budget_exhausted = true;
                return;
            }
            visited.push(fp);
            path.push(node);
            self.extend(self.cert(node), fp, path, visited, steps, out);
            path.pop();
            visited.pop();
            if out.paths.len() >= max_paths || out.budget_exhausted {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- validation

    fn settings(&self, unix: i64) -> CertificationPathSettings {
        let mut cps = CertificationPathSettings::new();
        cps.set_time_of_interest(time_of_interest(unix));
        cps.set_initial_policy_set(self.policy.initial_policy_set.clone());
        cps.set_initial_explicit_policy_indicator(self.policy.initial_explicit_policy);
        cps.set_initial_policy_mapping_inhibit_indicator(
            self.policy.initial_policy_mapping_inhibit,
        );
        cps.set_initial_inhibit_any_policy_indicator(self.policy.initial_inhibit_any_policy);
        cps.set_min_rsa_modulus_bits(self.policy.min_rsa_modulus_bits);
        cps.set_check_revocation_status(true);
        cps.set_check_crls(true);
        // Validation never reaches the network.
        cps.set_check_ocsp_from_aia(false);
        cps.set_check_crldp_http(false);
        cps.set_retrieve_from_aia_sia_http(false);
        cps
    }

    fn validate_candidate(&self, candidate: &Candidate) -> Outcome {
        let anchor = &candidate.anchor;
        let n = candidate.chain.len() + 1;
        // Report order: end entity, then the chain upward.
        let report_certs: Vec<&PDVCertificate> = std::iter::once(&self.leaf.pdv)
            .chain(candidate.chain.iter().map(|c| self.cert(*c)))
            .collect();

        let mut warnings = Vec::new();
        for (r, cert) in report_certs.iter().enumerate() {
            if is_weak_signature_algorithm(&cert.decoded().signature_algorithm().oid) {
                if !anchor.info.allow_sha1 {
                    return failure(
                        Indication::Indeterminate,
                        SubIndication::CryptoConstraintsFailureNoPoe,
                        Some(r),
                    )
                    .with_detail(
                        "certificate signed with SHA-1 under an anchor that does not allow it",
                    );
                }
                warnings.push(Message::new(
                    "Chuỗi chứng thư số dùng chữ ký SHA-1 (thuật toán đã lỗi thời), được chấp nhận cho chứng thư số gốc này.",
                    "The certificate chain uses SHA-1 signatures (an obsolete algorithm), accepted for this trust anchor.",
                ));
                break;
            }
        }

        // certval's environment and path are built only when something is not remembered.
        let mut env: Option<CandidateEnvironment> = None;
        let path_key = self.path_memo_key(candidate, n);
        if !self.validator.passed_paths.contains(&path_key) {
            let env = env.get_or_insert_with(|| self.environment(candidate));
            let mut cpr = CertificationPathResults::new();
            // certval's failure index counts from the anchor (0) to the end entity (n).
            let to_report = |f: u32| -> Option<usize> {
                let f = f as usize;
                if f == 0 { Some(n) } else { n.checked_sub(f) }
            };
            if let Err(e) = env.pe.validate_path(&env.pe, &env.cps, &env.cp, &mut cpr) {
                let status = match e {
                    CertvalError::PathValidation(s) => s,
                    _ => cpr
                        .get_validation_status()
                        .unwrap_or(Status::NotYetValidated),
                };
                let failed = cpr.get_failure_index().and_then(to_report);
                let mut outcome = self.map_path_failure(status, failed, &report_certs);
                outcome.detail = Some(match e {
                    CertvalError::PathValidation(s) => format!("certval: {s:?}"),
                    other => format!("certval: {other:?}"),
                });
                outcome.warnings = warnings;
                return outcome;
            }
            self.validator.passed_paths.insert(path_key);
        }

        if !self.ocsp.is_empty() {
            let env = env.get_or_insert_with(|| self.environment(candidate));
            self.attach_ocsp(&mut env.cp, n);
        }

        // Revocation: certval position p is report index n - 1 - p.
        let key = self.revocation_memo_key(candidate, n);
        let remembered = key.and_then(|k| self.validator.revocation_memo.get(&k, self.time.unix));
        let pass = match remembered {
            Some(pass) => pass,
            None => {
                let env = env.get_or_insert_with(|| self.environment(candidate));
                let pass = self.revocation_pass(&env.pe, &env.decided, &mut env.cps, &env.cp, n);
                if let Some(key) = key {
                    self.validator
                        .revocation_memo
                        .insert(key, self.time.unix, &pass);
                }
                pass
            }
        };
        let mut status = match pass {
            RevocationPass::Settled(status) => status,
            RevocationPass::Revoked {
                status,
                position: p,
                detail,
            } => {
                let r = n - 1 - p;
                let sub = match (r == 0, self.time.proven) {
                    (true, true) => SubIndication::Revoked,
                    (true, false) => SubIndication::RevokedNoPoe,
                    (false, _) => SubIndication::RevokedCaNoPoe,
                };
                let indication = sub.indication();
                let mut outcome = failure(indication, sub, Some(r)).with_detail(detail);
                outcome.revocation = report_order(status, n);
                outcome.warnings = warnings;
                outcome.progress = 2;
                return outcome;
            }
        };

        // certval ignores delta CRLs, so a base CRL could say "good" for a certificate that a
        // supplied delta revokes: a status settled by a CRL is not trusted when a delta CRL from
        // the same issuer is present (fail closed).
        for (p, s) in status.iter_mut().enumerate() {
            let cert = self.certval_position(candidate, p);
            let issuer = cert.decoded().tbs_certificate().issuer();
            let by_crl =
                matches!(s, Some(RevocationStatus::Good { source, .. }) if source == "crl");
            if by_crl
                && self
                    .crls
                    .iter()
                    .any(|c| c.is_delta && compare_names(&c.issuer, issuer))
            {
                *s = None;
                warnings.push(Message::new(
                    "Có CRL delta cho chứng thư số này nhưng CRL delta chưa được hỗ trợ: không xác định được tình trạng thu hồi.",
                    "A delta CRL covers this certificate but delta CRLs are not supported: its revocation status is undetermined.",
                ));
            }
        }
        let mut revocation = report_order(status, n);
        let mut missing = None;
        for (r, s) in revocation.iter_mut().enumerate() {
            if matches!(s, RevocationStatus::Unknown) {
                let required = if r == 0 {
                    self.policy.require_revocation_for_end_entity
                } else {
                    self.policy.require_revocation_for_ca
                };
                if required {
                    missing.get_or_insert(r);
                } else {
                    warnings.push(Message::new(
                        "Không kiểm tra tình trạng thu hồi của một chứng thư số (chính sách không yêu cầu).",
                        "The revocation status of a certificate was not checked (not required by the policy).",
                    ));
                }
            }
        }
        if let Some(r) = missing {
            let mut outcome = failure(Indication::Indeterminate, SubIndication::TryLater, Some(r))
                .with_detail("no revocation data current at the time of interest");
            outcome.revocation = revocation;
            outcome.warnings = warnings;
            outcome.progress = 2;
            return outcome;
        }
        if revocation
            .iter()
            .any(|s| matches!(s, RevocationStatus::Good { data_time, .. } if *data_time > self.time.unix))
        {
            warnings.push(Message::new(
                "Tình trạng thu hồi được xác định bằng dữ liệu phát hành sau thời điểm kiểm tra.",
                "Revocation status was established with data issued after the time of interest.",
            ));
        }
        Outcome {
            indication: Indication::TotalPassed,
            sub: None,
            failed: None,
            detail: None,
            revocation,
            warnings,
            progress: 3,
        }
    }

    /// certval's environment and path for `candidate` (`n` certificates besides the anchor).
    fn environment(&self, candidate: &Candidate) -> CandidateEnvironment {
        let anchor = &candidate.anchor;
        let mut pe = PkiEnvironment::new();
        pe.populate_5280_pki_environment();
        pe.add_trust_anchor_source(Box::new(SingleAnchorSource(Arc::clone(anchor))));
        pe.add_signature_cache(Box::new(Arc::clone(&self.validator.signature_cache)));
        pe.add_crl_source(Box::new(CallCrls {
            crls: Arc::clone(&self.crls),
            allow_weak: anchor.info.allow_sha1,
        }));
        let decided = DecidedGood::default();
        pe.add_revocation_cache(Box::new(decided.clone()));
        let intermediates: Vec<PDVCertificate> = candidate
            .chain
            .iter()
            .rev()
            .map(|c| self.cert(*c).clone())
            .collect();
        CandidateEnvironment {
            pe,
            cp: CertificationPath::new(anchor.pdv.clone(), intermediates, self.leaf.pdv.clone()),
            cps: self.settings(self.time.unix),
            decided,
        }
    }

    /// The certificate at certval position `p` of `candidate` (the anchor's subordinate first,
    /// the end entity last).
    fn certval_position<'c>(&'c self, candidate: &Candidate, p: usize) -> &'c PDVCertificate {
        match candidate.chain.len().checked_sub(p + 1) {
            Some(i) => self.cert(candidate.chain[i]),
            None => &self.leaf.pdv,
        }
    }

    /// OCSP responses go to the position whose certificate they name.
    fn attach_ocsp(&self, cp: &mut CertificationPath, n: usize) {
        for p in 0..n {
            let cert = if p + 1 == n {
                &cp.target
            } else {
                &cp.intermediates[p]
            };
            let issuer: &dyn SubjectNameAndKey = if p == 0 {
                cp.trust_anchor.decoded()
            } else {
                cp.intermediates[p - 1].decoded()
            };
            let serial = cert.decoded().tbs_certificate().serial_number();
            if let Some(resp) = self.ocsp.iter().find(|o| {
                o.singles
                    .iter()
                    .any(|s| cert_id_match(&s.cert_id, serial, issuer))
            }) {
                cp.ocsp_responses[p] = Some(resp.bytes.clone());
            }
        }
    }

    /// What certval's validation of `candidate` (`n` certificates besides the anchor) reads
    /// (see `passed_paths`): anchor, path, settings, and the time of interest against each
    /// validity period.
    fn path_memo_key(&self, candidate: &Candidate, n: usize) -> PathKey {
        let toi = self.time.unix;
        let mut h = Sha256::new();
        h.update(b"kyso certval path 1");
        self.hash_candidate(&mut h, candidate, n);
        let mut validity = |cert: &PDVCertificate| {
            let v = cert.decoded().tbs_certificate().validity();
            h.update([
                unix_of(&v.not_before).cmp(&toi) as i8 as u8,
                unix_of(&v.not_after).cmp(&toi) as i8 as u8,
            ]);
        };
        for node in candidate.chain.iter().rev() {
            validity(self.cert(*node));
        }
        validity(&self.leaf.pdv);
        // The anchor's validity, as certval checks it (a name-and-key anchor has none).
        let anchor_validity: u8 = match certval::ta_valid_at_time(
            candidate.anchor.pdv.decoded(),
            time_of_interest(toi),
            true,
        ) {
            Ok(None) => 0,
            Ok(Some(_)) => 1,
            Err(_) => 2,
        };
        h.update([anchor_validity]);
        h.finalize().into()
    }

    /// The anchor, the path (certval order), and the policy settings certval reads.
    fn hash_candidate(&self, h: &mut Sha256, candidate: &Candidate, n: usize) {
        h.update(candidate.anchor.info.sha256.as_bytes());
        h.update([u8::from(candidate.anchor.info.allow_sha1)]);
        h.update((n as u64).to_be_bytes());
        for node in candidate.chain.iter().rev() {
            h.update(self.node_fingerprint(*node));
        }
        h.update(self.leaf.fingerprint);
        let policy = self.policy;
        h.update((policy.initial_policy_set.len() as u64).to_be_bytes());
        for oid in &policy.initial_policy_set {
            h.update((oid.len() as u64).to_be_bytes());
            h.update(oid.as_bytes());
        }
        h.update([
            u8::from(policy.initial_explicit_policy),
            u8::from(policy.initial_policy_mapping_inhibit),
            u8::from(policy.initial_inhibit_any_policy),
        ]);
        h.update(policy.min_rsa_modulus_bits.to_be_bytes());
    }

    /// The key of the revocation pass over `candidate` (`n` certificates besides the anchor) in
    /// this call, or `None` when its outcome is not to be remembered (see `revocation_memo`):
    /// everything the pass reads, with the time of interest as its ordering against each CRL's
    /// thisUpdate and nextUpdate.
    fn revocation_memo_key(&self, candidate: &Candidate, n: usize) -> Option<PassKey> {
        if !self.ocsp.is_empty() || self.crls.iter().any(|c| c.next_update.is_none()) {
            return None;
        }
        let toi = self.time.unix;
        let mut h = Sha256::new();
        h.update(b"kyso revocation pass 2");
        self.hash_candidate(&mut h, candidate, n);
        h.update((self.crls.len() as u64).to_be_bytes());
        for crl in self.crls.iter() {
            h.update(crl.digest);
            let next_update = crl.next_update.unwrap_or(i64::MAX);
            h.update([
                crl.this_update.cmp(&toi) as i8 as u8,
                next_update.cmp(&toi) as i8 as u8,
            ]);
        }
        Some(h.finalize().into())
    }

    /// certval's revocation checks of one candidate path (`cp`, `n` certificates besides the
    /// anchor) at the time of interest and then at each later data time until every certificate is
    /// settled: the status of each certval position, or the first revocation at or before the
    /// time of interest.
    fn revocation_pass(
        &self,
        pe: &PkiEnvironment,
        decided: &DecidedGood,
        cps: &mut CertificationPathSettings,
        cp: &CertificationPath,
        n: usize,
    ) -> RevocationPass {
        let mut status: Vec<Option<RevocationStatus>> = vec![None; n];
        let times: Vec<i64> = std::iter::once(self.time.unix)
            .chain(self.later_times.iter().copied())
            .collect();
        'times: for t in times {
            cps.set_time_of_interest(time_of_interest(t));
            for _ in 0..=n {
                let mut rcpr = CertificationPathResults::new();
                let r = check_revocation_local(pe, cps, cp, &mut rcpr);
                let sources = rcpr.get_revocation_source().unwrap_or_default();
                let source_of = |p: usize| {
                    sources
                        .get(p)
                        .copied()
                        .unwrap_or(CertvalRevocationSource::None)
                };
                match r {
                    Ok(()) => {
                        for (p, s) in status.iter_mut().enumerate() {
                            if s.is_none() {
                                *s = Some(good(source_of(p), t));
                            }
                        }
                        break 'times;
                    }
                    Err(CertvalError::PathValidation(
                        Status::CertificateRevoked
                        | Status::CertificateRevokedEndEntity
                        | Status::CertificateRevokedIntermediateCa,
                    )) => {
                        let Some(p) = rcpr
                            .get_failure_index()
                            .and_then(|f| (f as usize).checked_sub(1))
                            .filter(|p| *p < n)
                        else {
                            break 'times;
                        };
                        let revoked_at = self.revocation_time(&rcpr, cp, p, source_of(p));
                        match revoked_at {
                            Some(at) if at > self.time.unix => {
                                status[p] = Some(RevocationStatus::RevokedAfterTimeOfInterest {
                                    revoked_at: at,
                                });
                                let cert = if p + 1 == n {
                                    &cp.target
                                } else {
                                    &cp.intermediates[p]
                                };
                                decided.mark(cert);
                            }
                            _ => {
                                status[p] = Some(RevocationStatus::Revoked { revoked_at });
                                return RevocationPass::Revoked {
                                    status,
                                    position: p,
                                    detail: format!("certval: {:?}", rcpr.get_validation_status()),
                                };
                            }
                        }
                    }
                    Err(_) => {
                        for (p, s) in status.iter_mut().enumerate() {
                            if s.is_none() && source_of(p) != CertvalRevocationSource::None {
                                *s = Some(good(source_of(p), t));
                                let cert = if p + 1 == n {
                                    &cp.target
                                } else {
                                    &cp.intermediates[p]
                                };
                                decided.mark(cert);
                            }
                        }
                        continue 'times;
                    }
                }
            }
        }
        RevocationPass::Settled(status)
    }

    /// When the revoked certificate at certval position `p` was revoked, from the data certval
    /// used (the CRL entry it recorded, or the OCSP response attached at `p`).
    fn revocation_time(
        &self,
        cpr: &CertificationPathResults,
        cp: &CertificationPath,
        p: usize,
        source: CertvalRevocationSource,
    ) -> Option<i64> {
        if source == CertvalRevocationSource::StapledOcsp {
            let bytes = cp.ocsp_responses.get(p)?.as_ref()?;
            let resp = self.ocsp.iter().find(|o| &o.bytes == bytes)?;
            let n = cp.intermediates.len() + 1;
            let cert = if p + 1 == n {
                &cp.target
            } else {
                &cp.intermediates[p]
            };
            let issuer: &dyn SubjectNameAndKey = if p == 0 {
                cp.trust_anchor.decoded()
            } else {
                cp.intermediates[p - 1].decoded()
            };
            let serial = cert.decoded().tbs_certificate().serial_number();
            return resp.singles.iter().find_map(|s| match &s.cert_status {
                CertStatus::Revoked(info) if cert_id_match(&s.cert_id, serial, issuer) => {
                    Some(gen_unix(&info.revocation_time.0))
                }
                _ => None,
            });
        }
        let entries = cpr.get_crl_entry()?;
        let entry = entries.get(p)?.last()?;
        RevokedCert::<Raw>::from_der(entry)
            .ok()
            .map(|rc| unix_of(&rc.revocation_date))
    }

    fn map_path_failure(
        &self,
        status: Status,
        failed: Option<usize>,
        report_certs: &[&PDVCertificate],
    ) -> Outcome {
        use Indication::{Indeterminate, TotalFailed};
        let first_outside_validity = |before: bool| {
            report_certs.iter().position(|c| {
                let v = c.decoded().tbs_certificate().validity();
                if before {
                    self.time.unix < unix_of(&v.not_before)
                } else {
                    self.time.unix > unix_of(&v.not_after)
                }
            })
        };
        match status {
            Status::InvalidNotBeforeDate => {
                let mut o = failure(
                    TotalFailed,
                    SubIndication::NotYetValid,
                    failed.or_else(|| first_outside_validity(true)),
                );
                o.progress = 1;
                o
            }
            Status::InvalidNotAfterDate => {
                let mut o = self.expired_outcome(failed.or_else(|| first_outside_validity(false)));
                o.progress = 1;
                o
            }
            Status::NameChainingFailure
            | Status::MissingTrustAnchor
            | Status::MissingTrustAnchorName
            | Status::NoPathsFound
            | Status::MissingCertificate => failure(
                Indeterminate,
                SubIndication::NoCertificateChainFound,
                failed,
            ),
            Status::MissingBasicConstraints
            | Status::InvalidBasicConstraints
            | Status::InvalidPathLength
            | Status::InvalidKeyUsage
            | Status::NullPolicySet
            | Status::NameConstraintsViolation
            | Status::UnprocessedCriticalExtension
            | Status::InvalidPolicyMapping
            | Status::TrustAnchorConstraintsMismatch
            | Status::SelfSignedEndIdentity => failure(
                Indeterminate,
                SubIndication::ChainConstraintsFailure,
                failed,
            ),
            Status::InsufficientKeySize => failure(
                Indeterminate,
                SubIndication::CryptoConstraintsFailureNoPoe,
                failed,
            ),
            Status::EncodingError => failure(Indeterminate, SubIndication::FormatFailure, failed),
            _ => failure(
                Indeterminate,
                SubIndication::CertificateChainGeneralFailure,
                failed,
            ),
        }
    }

    // ---------------------------------------------------------------- report

    fn report(
        &mut self,
        candidate: Option<&Candidate>,
        outcome: Outcome,
        paths_tried: usize,
    ) -> PathValidation {
        let mask = self.policy.mask_identities;
        let known = &self.validator.known;
        let describe = |der: &[u8], role: CertificateRole, revocation: RevocationStatus| {
            let described = known.describe(der, describe_certificate);
            CertificateStatus {
                role,
                summary: if mask {
                    described.masked_summary.clone()
                } else {
                    described.summary.clone()
                },
                signature_algorithm: described.signature_algorithm.clone(),
                sha1_signature: described.sha1_signature,
                revocation,
            }
        };
        let mut revocation = outcome.revocation.into_iter();
        let mut next_revocation = || revocation.next().unwrap_or(RevocationStatus::NotChecked);
        let mut chain = vec![describe(
            self.leaf.pdv.as_bytes(),
            CertificateRole::EndEntity,
            next_revocation(),
        )];
        let mut trust_anchor = None;
        if let Some(candidate) = candidate {
            for node in &candidate.chain {
                chain.push(describe(
                    self.cert(*node).as_bytes(),
                    CertificateRole::Intermediate,
                    next_revocation(),
                ));
            }
            chain.push(describe(
                candidate.anchor.pdv.as_bytes(),
                CertificateRole::TrustAnchor,
                RevocationStatus::NotChecked,
            ));
            trust_anchor = Some(candidate.anchor.info.clone());
        }
        let signer = chain
            .first()
            .and_then(|c| c.summary.as_ref())
            .map(|s| s.subject.clone());
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.extend(outcome.warnings);
        warnings.dedup();
        let message = outcome
            .sub
            .map(SubIndication::message)
            .unwrap_or_else(|| outcome.indication.message());
        PathValidation {
            indication: outcome.indication,
            sub_indication: outcome.sub,
            message,
            time: self.time,
            signer,
            chain,
            trust_anchor,
            failed_certificate: outcome.failed,
            detail: outcome.detail,
            warnings,
            paths_tried,
        }
    }
}

/// The report's description of a certificate (before masking), from its DER.
fn describe_certificate(der: &[u8]) -> DescribedCertificate {
    let cert = Certificate::from_der(der).ok();
    let summary = cert.as_ref().and_then(|c| kyso_ca::summarize(c).ok());
    let oid = cert
        .as_ref()
        .map(|c| c.signature_algorithm().oid)
        .or_else(|| {
            PDVCertificate::try_from(der)
                .ok()
                .map(|p| p.decoded().signature_algorithm().oid)
        });
    DescribedCertificate {
        masked_summary: summary.clone().map(CertificateSummary::masked),
        summary,
        signature_algorithm: oid.map(|o| o.to_string()).unwrap_or_default(),
        sha1_signature: oid.is_some_and(|o| is_weak_signature_algorithm(&o)),
    }
}

fn good(source: CertvalRevocationSource, t: i64) -> RevocationStatus {
    let source = match source {
        CertvalRevocationSource::StapledOcsp | CertvalRevocationSource::OcspFromAia => "ocsp",
        CertvalRevocationSource::NoCheckExtension => "ocsp_no_check",
        CertvalRevocationSource::Cache => "decided",
        _ => "crl",
    };
    RevocationStatus::Good {
        source: source.to_owned(),
        data_time: t,
    }
}

/// certval order (anchor side first) to report order (end entity first).
fn report_order(status: Vec<Option<RevocationStatus>>, n: usize) -> Vec<RevocationStatus> {
    let mut v: Vec<RevocationStatus> = status
        .into_iter()
        .map(|s| s.unwrap_or(RevocationStatus::Unknown))
        .collect();
    v.reverse();
    v.truncate(n);
    v
}

/// The SHA-256 of an anchor's DER (kept as hex in its info).
fn anchor_fingerprint(anchor: &AnchorEntry) -> [u8; 32] {
    let mut fingerprint = [0u8; 32];
    // The hex is ours (sha256_fingerprint); a failure would only make the key all zeros, which
    // no certificate's fingerprint is.
    let _ = hex::decode_to_slice(&anchor.info.sha256, &mut fingerprint);
    fingerprint
}

fn authority_key_id(cert: &PDVCertificate) -> Option<Vec<u8>> {
    match cert.get_extension(&ID_CE_AUTHORITY_KEY_IDENTIFIER) {
        Ok(Some(PDVExtension::AuthorityKeyIdentifier(akid))) => {
            akid.key_identifier.as_ref().map(|k| k.as_bytes().to_vec())
        }
        _ => None,
    }
}

fn subject_key_id(cert: &PDVCertificate) -> Option<Vec<u8>> {
    match cert.get_extension(&ID_CE_SUBJECT_KEY_IDENTIFIER) {
        Ok(Some(PDVExtension::SubjectKeyIdentifier(skid))) => Some(skid.0.as_bytes().to_vec()),
        _ => None,
    }
}
