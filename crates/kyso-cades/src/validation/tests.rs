use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use der::{DecodePem, Encode};
use kyso_ca::{
    CertificateOrder, CrlParams, ProfileKind, RevocationReason, RevokedEntry, build_crl,
    issue_certificate, random_serial,
};
use kyso_clock::{Clock, SystemClock};
use kyso_hsm::{KeyAlgorithm, RsaPadding};
use kyso_validate::{
    Indication, PathValidator, RevocationData, RevocationSource, RevocationSourceError,
    SubIndication, TrustAnchors, ValidationPolicy,
};
use time::OffsetDateTime;
use x509_cert::Certificate;

use super::{CmsInput, Revocation, SignatureValidator, TimeSource, ValidationReport};
use crate::test_pki::{FakeTsa, FakeValidation, TestPki, openssl, subject, text};
use crate::verify::DetachedContent;
use crate::{CadesSigner, Content, DigestAlgorithm, Level, ValidationData, sign};

const DOCUMENT: &[u8] = "Quyết định số 45/QĐ-UBND về việc cấp giấy phép xây dựng.\n".as_bytes();

fn testdata(path: &str) -> PathBuf {
    crate::testdata_dir().join(path)
}

fn validator(anchors: &[&Certificate], policy: ValidationPolicy) -> SignatureValidator {
    let mut store = TrustAnchors::new();
    for (i, anchor) in anchors.iter().enumerate() {
        store
            .add_anchor_der(
                &anchor.to_der().unwrap(),
                &format!("anchor-{i}"),
                None,
                false,
            )
            .unwrap();
    }
    SignatureValidator::new(Arc::new(PathValidator::new(store)), policy)
}

fn pki_validator(pki: &TestPki) -> SignatureValidator {
    validator(&[pki.root.certificate()], ValidationPolicy::default())
}

async fn tsa(pki: &TestPki, label: &str, tamper: bool) -> FakeTsa {
    FakeTsa {
        signer: pki
            .signer(
                label,
                KeyAlgorithm::EcP256,
                RsaPadding::Pkcs1v15,
                ProfileKind::Tsa,
            )
            .await,
        clock: pki.clock.clone(),
        requests: Mutex::new(Vec::new()),
        tamper,
    }
}

/// A root CRL (for the issuing CA) and an issuing-CA CRL listing `revoked`, both issued now by
/// the test PKI's clock.
async fn crls(pki: &TestPki, revoked: &[RevokedEntry]) -> RevocationData {
    let now = pki.clock.now();
    let params = CrlParams {
        number: 1,
        this_update: now,
        next_update: now + Duration::from_secs(86_400),
    };
    let root = build_crl(&pki.root, params, &[]).await.unwrap();
    let issuing = build_crl(&pki.issuing, params, revoked).await.unwrap();
    RevocationData {
        crls: vec![root.to_der().unwrap(), issuing.to_der().unwrap()],
        ocsp_responses: Vec::new(),
    }
}

fn revoked(cert: &Certificate, at: std::time::SystemTime) -> RevokedEntry {
    RevokedEntry {
        serial: cert.tbs_certificate().serial_number().clone(),
        revoked_at: at,
        reason: RevocationReason::KeyCompromise,
    }
}

fn input<'a>(cms: &'a [u8], revocation: &RevocationData) -> CmsInput<'a> {
    CmsInput {
        revocation: revocation.clone(),
        ..CmsInput::new(cms)
    }
}

fn detached_input<'a>(
    cms: &'a [u8],
    detached: DetachedContent<'a>,
    revocation: &RevocationData,
) -> CmsInput<'a> {
    CmsInput {
        detached,
        ..input(cms, revocation)
    }
}

fn sub(report: &ValidationReport) -> Option<SubIndication> {
    report.sub_indication
}

fn finding_codes(report: &ValidationReport) -> Vec<Vec<String>> {
    report
        .signatures
        .iter()
        .map(|s| s.findings.iter().map(|f| f.code.clone()).collect())
        .collect()
}

fn warning_codes(report: &ValidationReport) -> Vec<String> {
    report
        .signatures
        .iter()
        .flat_map(|s| s.warnings.iter().map(|w| w.code.clone()))
        .collect()
}

fn round_trips(report: &ValidationReport) -> String {
    let json = serde_json::to_string_pretty(report).unwrap();
    let back: ValidationReport = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, report);
    assert_eq!(serde_json::to_string_pretty(&back).unwrap(), json);
    json
}

#[tokio::test]
async fn b_b_with_crls_is_total_passed_and_names_the_signer() {
    let pki = TestPki::new("val-bb").await;
    let signer = pki.staff_p256_signer("bb").await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let revocation = crls(&pki, &[]).await;
    let now = pki.clock.now_utc();
    let report = pki_validator(&pki)
        .validate_cms(input(&cms, &revocation), now)
        .await
        .unwrap();
    let json = round_trips(&report);
    println!("{json}");
    assert_eq!(report.indication, Indication::TotalPassed, "{json}");
    assert_eq!(report.sub_indication, None);
    assert_eq!(report.message.vi, "Hợp lệ");
    assert_eq!(
        report.validation_time.unix_timestamp(),
        now.unix_timestamp()
    );
    assert!(report.content.attached);
    assert_eq!(report.content.length, Some(DOCUMENT.len() as u64));
    assert_eq!(
        report.content.digests[0].value,
        hex::encode(DigestAlgorithm::Sha256.digest(DOCUMENT))
    );

    let s = &report.signatures[0];
    assert_eq!(s.level, Level::BB);
    assert_eq!(s.time_source, TimeSource::ValidationTime);
    assert_eq!(s.best_signature_time, report.validation_time);
    assert_eq!(
        s.claimed_signing_time.map(|t| t.unix_timestamp()),
        Some(now.unix_timestamp())
    );
    assert_eq!(s.digest_algorithm.as_deref(), Some("sha256"));
    assert_eq!(s.signature_algorithm.as_deref(), Some("ecdsa_p256"));
    assert_eq!(s.signature_algorithm_oid, "1.2.840.10045.4.3.2");
    let name = s.signer.as_ref().unwrap();
    assert_eq!(name.common_name.as_deref(), Some("Nguyễn Văn bb"));
    assert_eq!(name.province.as_deref(), Some("Đà Nẵng"));
    assert_eq!(name.masked_identities, vec!["CCCD:0792******45"]);
    assert!(name.identities.is_empty());
    assert!(!json.contains("079212345645"), "identity leaked: {json}");
    let cert = s.signer_certificate.as_ref().unwrap();
    assert_eq!(
        cert.issuer.as_ref().unwrap().common_name.as_deref(),
        Some("kyso Test Issuing CA")
    );
    assert_eq!(
        cert.sha256_fingerprint,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            signer.certificate().to_der().unwrap()
        ))
    );
    let path = s.certificate_path.as_ref().unwrap();
    assert_eq!(path.chain.len(), 3);
    assert!(!path.time_proven);
    assert!(matches!(
        path.chain[0].revocation,
        Revocation::Good { ref source, .. } if source == "crl"
    ));
    assert!(s.findings.is_empty(), "{:?}", s.findings);

    // The field order is fixed: the report is signed as a receipt.
    let keys = [
        "\"indication\"",
        "\"sub_indication\"",
        "\"message\"",
        "\"validation_time\"",
        "\"format\": \"CMS\"",
        "\"content\"",
        "\"signatures\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| json.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // Identities in full only when the policy says so.
    let policy = ValidationPolicy {
        mask_identities: false,
        ..ValidationPolicy::default()
    };
    let report = validator(&[pki.root.certificate()], policy)
        .validate_cms(input(&cms, &revocation), now)
        .await
        .unwrap();
    let name = report.signatures[0].signer.as_ref().unwrap();
    assert_eq!(name.identities, vec!["CCCD:079212345645"]);
    assert!(name.masked_identities.is_empty());
}

#[tokio::test]
async fn b_t_is_validated_at_the_proven_timestamp_time() {
    let pki = TestPki::new("val-bt").await;
    let signer = pki.staff_p256_signer("bt").await;
    let tsa = tsa(&pki, "tsa", false).await;
    let signed_at = pki.clock.now_utc();
    let cms = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    pki.clock.advance(Duration::from_secs(600));
    let revocation = crls(&pki, &[]).await;
    let cms_input = detached_input(&cms, DetachedContent::Content(DOCUMENT), &revocation);
    let report = pki_validator(&pki)
        .validate_cms(cms_input, pki.clock.now_utc())
        .await
        .unwrap();
    round_trips(&report);
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert!(!report.content.attached);
    let s = &report.signatures[0];
    assert_eq!(s.level, Level::BT);
    assert_eq!(s.time_source, TimeSource::Timestamp);
    assert_eq!(
        s.best_signature_time.unix_timestamp(),
        signed_at.unix_timestamp()
    );
    assert!(s.certificate_path.as_ref().unwrap().time_proven);
    let ts = &s.timestamps[0];
    assert_eq!(ts.indication, Indication::TotalPassed, "{ts:#?}");
    assert_eq!(ts.serial.as_deref(), Some("012345"));
    assert_eq!(ts.policy.as_deref(), Some("1.3.6.1.4.1.99999.1"));
    assert_eq!(ts.imprint_algorithm.as_deref(), Some("sha256"));
    assert_eq!(
        ts.tsa.as_ref().unwrap().common_name.as_deref(),
        Some("Nguyễn Văn tsa")
    );
    // The TSA's own path, validated at the validation time.
    let tsa_path = ts.certificate_path.as_ref().unwrap();
    assert_eq!(tsa_path.indication, Indication::TotalPassed);
    assert!(!tsa_path.time_proven);
    assert_eq!(tsa_path.time, report.validation_time);
}

#[tokio::test]
async fn b_lt_validates_with_its_embedded_chain_and_crls_alone() {
    let pki = TestPki::new("val-blt").await;
    let signer = pki.staff_p256_signer("blt").await;
    let tsa = tsa(&pki, "tsa-blt", false).await;
    let embedded = crls(&pki, &[]).await;
    let validation = FakeValidation {
        data: ValidationData {
            certificates: vec![pki.root.certificate().clone()],
            crls: embedded.crls.clone(),
            ocsp_responses: Vec::new(),
        },
        asked_for: Mutex::new(0),
    };
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BLT),
        Some(&tsa),
        Some(&validation),
    )
    .await
    .unwrap();
    let validator = pki_validator(&pki);
    let report = validator
        .validate_cms(CmsInput::new(&cms), pki.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert_eq!(report.signatures[0].level, Level::BLT);

    // B-T with the chain embedded but the CRLs supplied by the caller: B-T, not B-LT.
    let bt = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    let report = validator
        .validate_cms(input(&bt, &embedded), pki.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalPassed);
    assert_eq!(report.signatures[0].level, Level::BT);
}

#[tokio::test]
async fn cryptographic_failures_map_to_their_sub_indications() {
    let pki = TestPki::new("val-crypto").await;
    let signer = pki.staff_p256_signer("crypto").await;
    let revocation = crls(&pki, &[]).await;
    let validator = pki_validator(&pki);
    let now = pki.clock.now_utc();
    let attached = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let good = validator
        .validate_cms(input(&attached, &revocation), now)
        .await
        .unwrap();
    assert!(good.passed(), "{good:#?}");

    // A flipped byte of the signature value.
    let parsed = crate::parse::parse_signed_data(&attached).unwrap();
    let value = parsed.signer_infos[0].signature.clone();
    let at = attached
        .windows(value.len())
        .position(|w| w == value.as_slice())
        .unwrap();
    let mut bent = attached.clone();
    bent[at + value.len() / 2] ^= 0x01;
    let report = validator
        .validate_cms(input(&bent, &revocation), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(sub(&report), Some(SubIndication::SigCryptoFailure));
    assert_eq!(finding_codes(&report), vec![vec!["signature_invalid"]]);
    assert!(report.message.vi.starts_with("Không hợp lệ"));

    // The wrong detached content, no content, and the right content by digest.
    let detached = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let with = |d| detached_input(&detached, d, &revocation);
    let report = validator
        .validate_cms(with(DetachedContent::Content(b"other")), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(sub(&report), Some(SubIndication::HashFailure));
    assert_eq!(
        finding_codes(&report),
        vec![vec!["message_digest_mismatch"]]
    );
    let report = validator
        .validate_cms(with(DetachedContent::None), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(sub(&report), Some(SubIndication::SignedDataNotFound));
    let digest = DigestAlgorithm::Sha256.digest(DOCUMENT);
    let report = validator
        .validate_cms(
            with(DetachedContent::Digest {
                algorithm: DigestAlgorithm::Sha256,
                digest: &digest,
            }),
            now,
        )
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.content.length, None);
    assert_eq!(report.content.digests[0].value, hex::encode(&digest));
}

#[tokio::test]
async fn empty_trust_store_is_no_certificate_chain_found() {
    let pki = TestPki::new("val-notrust").await;
    let signer = pki.staff_p256_signer("notrust").await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let revocation = crls(&pki, &[]).await;
    let report = validator(&[], ValidationPolicy::default())
        .validate_cms(input(&cms, &revocation), pki.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(sub(&report), Some(SubIndication::NoCertificateChainFound));
    assert_eq!(finding_codes(&report), vec![vec!["certificate_path"]]);
    // Names are reported even without a path.
    assert_eq!(
        report.signatures[0]
            .signer
            .as_ref()
            .unwrap()
            .common_name
            .as_deref(),
        Some("Nguyễn Văn notrust")
    );
}

#[tokio::test]
async fn no_revocation_data_is_try_later_never_valid() {
    let pki = TestPki::new("val-trylater").await;
    let signer = pki.staff_p256_signer("trylater").await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let now = pki.clock.now_utc();
    let report = pki_validator(&pki)
        .validate_cms(CmsInput::new(&cms), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(sub(&report), Some(SubIndication::TryLater));
    assert!(
        report.message.vi.starts_with("Chưa xác định"),
        "{:?}",
        report.message
    );
    assert!(!report.message.vi.contains("Hợp lệ"));
    let path = report.signatures[0].certificate_path.as_ref().unwrap();
    assert_eq!(path.chain[0].revocation, Revocation::Unknown);

    // A policy that waives revocation checking passes it, with a warning.
    let policy = ValidationPolicy {
        require_revocation_for_end_entity: false,
        require_revocation_for_ca: false,
        ..ValidationPolicy::default()
    };
    let report = validator(&[pki.root.certificate()], policy)
        .validate_cms(CmsInput::new(&cms), now)
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert!(warning_codes(&report).contains(&"certificate_path_warning".to_owned()));
}

/// A revocation authority answering with real CRLs (as kyso's own CA does from its store).
struct CrlSource {
    data: Option<RevocationData>,
    asked: Mutex<usize>,
}

#[async_trait]
impl RevocationSource for CrlSource {
    async fn revocation_data(
        &self,
        certificates: &[Certificate],
    ) -> Result<RevocationData, RevocationSourceError> {
        *self.asked.lock().unwrap() = certificates.len();
        self.data
            .clone()
            .ok_or_else(|| RevocationSourceError::Unavailable {
                source_name: "test CA".into(),
                reason: "database down".into(),
            })
    }
}

#[tokio::test]
async fn revocation_sources_are_asked_and_their_failure_is_try_later() {
    let pki = TestPki::new("val-source").await;
    let signer = pki.staff_p256_signer("source").await;
    let tsa = tsa(&pki, "tsa-source", false).await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    let source = Arc::new(CrlSource {
        data: Some(crls(&pki, &[]).await),
        asked: Mutex::new(0),
    });
    let report = pki_validator(&pki)
        .with_revocation_source(source.clone())
        .validate_cms(CmsInput::new(&cms), pki.clock.now_utc())
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    // The signer, the TSA and the issuing CA (the root is not embedded).
    assert_eq!(*source.asked.lock().unwrap(), 3);

    let down = Arc::new(CrlSource {
        data: None,
        asked: Mutex::new(0),
    });
    let report = pki_validator(&pki)
        .with_revocation_source(down)
        .validate_cms(CmsInput::new(&cms), pki.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(sub(&report), Some(SubIndication::TryLater));
    assert_eq!(report.warnings[0].code, "revocation_source_unavailable");
    // The timestamp could not be trusted either (its TSA's status is unknown): no proof.
    assert_eq!(report.signatures[0].time_source, TimeSource::ValidationTime);
    assert_eq!(
        report.signatures[0].timestamps[0].sub_indication,
        Some(SubIndication::TryLater)
    );
}

#[tokio::test]
async fn revoked_before_the_signing_time_is_revoked() {
    let pki = TestPki::new("val-revoked").await;
    let signer = pki.staff_p256_signer("revoked").await;
    let tsa = tsa(&pki, "tsa-revoked", false).await;
    let revoked_at = pki.clock.now() + Duration::from_secs(60);
    pki.clock.advance(Duration::from_secs(3600));
    // Signed (and timestamped) an hour after the revocation.
    let bt = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    let bb = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let revocation = crls(&pki, &[revoked(signer.certificate(), revoked_at)]).await;
    let validator = pki_validator(&pki);
    let now = pki.clock.now_utc();

    // Proven by the timestamp: definitely invalid.
    let report = validator
        .validate_cms(input(&bt, &revocation), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalFailed, "{report:#?}");
    assert_eq!(sub(&report), Some(SubIndication::Revoked));
    assert_eq!(report.signatures[0].time_source, TimeSource::Timestamp);
    let path = report.signatures[0].certificate_path.as_ref().unwrap();
    assert!(matches!(
        path.chain[0].revocation,
        Revocation::Revoked { revoked_at: Some(t) } if t.unix_timestamp() == kyso_clock::unix_seconds(revoked_at)
    ));

    // Without a timestamp there is no proof of when it was signed: REVOKED_NO_POE.
    let report = validator
        .validate_cms(input(&bb, &revocation), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(sub(&report), Some(SubIndication::RevokedNoPoe));
}

#[tokio::test]
async fn revoked_after_the_timestamp_still_passes() {
    let pki = TestPki::new("val-later").await;
    let signer = pki.staff_p256_signer("later").await;
    let tsa = tsa(&pki, "tsa-later", false).await;
    let bt = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    let bb = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let revoked_at = pki.clock.now() + Duration::from_secs(1800);
    pki.clock.advance(Duration::from_secs(3600));
    let revocation = crls(&pki, &[revoked(signer.certificate(), revoked_at)]).await;
    let validator = pki_validator(&pki);
    let now = pki.clock.now_utc();

    let report = validator
        .validate_cms(input(&bt, &revocation), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    let path = report.signatures[0].certificate_path.as_ref().unwrap();
    assert!(path.time_proven);
    assert!(matches!(
        path.chain[0].revocation,
        Revocation::RevokedAfterTimeOfInterest { .. }
    ));

    // The same signer without a timestamp: revoked now, no proof it signed before.
    let report = validator
        .validate_cms(input(&bb, &revocation), now)
        .await
        .unwrap();
    assert_eq!(sub(&report), Some(SubIndication::RevokedNoPoe));
}

#[tokio::test]
async fn a_timestamp_over_other_bytes_is_ignored() {
    let pki = TestPki::new("val-badts").await;
    let signer = pki.staff_p256_signer("badts").await;
    let tsa = tsa(&pki, "tsa-bad", true).await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();
    let revocation = crls(&pki, &[]).await;
    let now = pki.clock.now_utc();
    let report = pki_validator(&pki)
        .validate_cms(input(&cms, &revocation), now)
        .await
        .unwrap();
    // The signature itself is fine now; the timestamp proves nothing.
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    let s = &report.signatures[0];
    assert_eq!(s.level, Level::BB);
    assert_eq!(s.time_source, TimeSource::ValidationTime);
    assert_eq!(s.timestamps[0].indication, Indication::TotalFailed);
    assert_eq!(
        s.timestamps[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
    assert!(s.timestamps[0].certificate_path.is_none());
    assert!(warning_codes(&report).contains(&"timestamp_not_used".to_owned()));
}

#[tokio::test]
async fn signing_certificate_v2_naming_another_certificate_is_no_signing_certificate_found() {
    let pki = TestPki::new("val-sigcert").await;
    let key = pki
        .token
        .generate_key("sigcert", KeyAlgorithm::EcP256)
        .await
        .unwrap();
    let order = CertificateOrder {
        profile: ProfileKind::StaffSigning,
        subject: subject("Nguyễn Văn sigcert"),
        public_key: key.public_key_info().clone(),
        validity_days: None,
        client_auth: false,
    };
    // Two certificates with the same issuer, serial and key (a re-issue), of equal length.
    let serial = random_serial();
    let issue = || {
        issue_certificate(
            &pki.issuing,
            &order,
            &pki.settings,
            serial.clone(),
            &pki.clock,
        )
    };
    let named = issue().await.unwrap();
    let named_der = named.to_der().unwrap();
    let mut other_der = Vec::new();
    for _ in 0..32 {
        let other = issue().await.unwrap().to_der().unwrap();
        if other.len() == named_der.len() && other != named_der {
            other_der = other;
            break;
        }
    }
    assert!(!other_der.is_empty(), "no re-issue of the same length");
    let signer = CadesSigner::new(key, named, vec![pki.issuing.certificate().clone()]).unwrap();
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    // Embed the other certificate in place of the one the attribute names.
    let at = cms
        .windows(named_der.len())
        .position(|w| w == named_der.as_slice())
        .unwrap();
    let mut swapped = cms.clone();
    swapped[at..at + named_der.len()].copy_from_slice(&other_der);
    let revocation = crls(&pki, &[]).await;
    let validator = pki_validator(&pki);
    let now = pki.clock.now_utc();
    assert!(
        validator
            .validate_cms(input(&cms, &revocation), now)
            .await
            .unwrap()
            .passed()
    );
    let report = validator
        .validate_cms(input(&swapped, &revocation), now)
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate, "{report:#?}");
    assert_eq!(sub(&report), Some(SubIndication::NoSigningCertificateFound));
    assert_eq!(
        finding_codes(&report),
        vec![vec!["signing_certificate_mismatch"]]
    );
}

// ------------------------------------------------------------------------------------ test vectors

fn rfc4134(file: &str) -> Vec<u8> {
    std::fs::read(testdata(&format!("cms/rfc4134-bc/{file}"))).unwrap()
}

fn carl_rsa() -> Vec<u8> {
    rfc4134("CarlRSASelf.cer")
}

/// 1 January 2020: inside the RFC 4134 certificates' validity, fixed (no wall clock).
fn in_2020() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_577_836_800).unwrap()
}

#[tokio::test]
async fn rfc4134_sha1_signatures_pass_with_sha1_warnings() {
    let mut store = TrustAnchors::new();
    store
        .add_anchor_der(&carl_rsa(), "CarlRSA", None, true)
        .unwrap();
    let path = Arc::new(PathValidator::new(store));
    // 1999's 1024-bit RSA keys and no current CRL: accepted only by a policy that says so.
    let old = ValidationPolicy {
        min_rsa_modulus_bits: 1024,
        require_revocation_for_end_entity: false,
        require_revocation_for_ca: false,
        ..ValidationPolicy::default()
    };
    let lenient = SignatureValidator::new(path.clone(), old);
    let strict = SignatureValidator::new(path, ValidationPolicy::default());
    for file in ["4.2.bin", "4.5.bin"] {
        let cms = rfc4134(file);
        let report = lenient
            .validate_cms(CmsInput::new(&cms), in_2020())
            .await
            .unwrap();
        round_trips(&report);
        assert_eq!(
            report.indication,
            Indication::TotalPassed,
            "{file}: {report:#?}"
        );
        let warnings = warning_codes(&report);
        for code in [
            "digest_algorithm_sha1",
            "rsa_key_below_2048",
            "no_signed_attributes",
        ] {
            assert!(
                warnings.contains(&code.to_owned()),
                "{file}: {code} not in {warnings:?}"
            );
        }
        let s = &report.signatures[0];
        assert_eq!(s.digest_algorithm.as_deref(), Some("sha1"));
        assert_eq!(
            s.signer.as_ref().unwrap().common_name.as_deref(),
            Some("AliceRSA")
        );
        let path = s.certificate_path.as_ref().unwrap();
        assert!(path.chain.iter().all(|c| c.sha1_signature));
        // The SHA-1 chain is said too, never silently accepted.
        assert!(
            s.warnings
                .iter()
                .any(|w| w.code == "certificate_path_warning" && w.message.en.contains("SHA-1")),
            "{file}: {:?}",
            s.warnings
        );

        // Under today's policy the 1024-bit key is refused.
        let report = strict
            .validate_cms(CmsInput::new(&cms), in_2020())
            .await
            .unwrap();
        assert_eq!(
            sub(&report),
            Some(SubIndication::CryptoConstraintsFailureNoPoe),
            "{file}"
        );
    }
}

#[tokio::test]
async fn rfc4134_unsupported_detached_unsigned_and_non_signed_data() {
    let validator = validator(&[], ValidationPolicy::default());
    // 4.3: detached DSA. With its content: the algorithm is not accepted; without: no data.
    let cms = rfc4134("4.3.bin");
    let content = rfc4134("ExContent.bin");
    let report = validator
        .validate_cms(
            CmsInput {
                detached: DetachedContent::Content(&content),
                ..CmsInput::new(&cms)
            },
            in_2020(),
        )
        .await
        .unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(sub(&report), Some(SubIndication::CryptoConstraintsFailure));
    let report = validator
        .validate_cms(CmsInput::new(&cms), in_2020())
        .await
        .unwrap();
    assert_eq!(sub(&report), Some(SubIndication::SignedDataNotFound));

    // 4.11: certificates and CRLs only.
    let report = validator
        .validate_cms(CmsInput::new(&rfc4134("4.11.bin")), in_2020())
        .await
        .unwrap();
    assert!(report.signatures.is_empty());
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(sub(&report), Some(SubIndication::FormatFailure));
    assert_eq!(report.findings[0].code, "cms_no_signers");
    round_trips(&report);

    // Not SignedData at all: an error for the caller to turn into a 4xx.
    let err = validator
        .validate_cms(CmsInput::new(&rfc4134("3.1.bin")), in_2020())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "cms_not_signed_data");
    let err = validator
        .validate_cms(CmsInput::new(b"\x30\x03\x02\x01"), in_2020())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "cms_malformed");
}

#[tokio::test]
async fn openssl_signatures_with_bad_signed_attributes_are_format_failures() {
    let validator = validator(&[], ValidationPolicy::default());
    for (file, code) in [
        ("bad_signtime_attr.cms", "attribute_not_allowed_unsigned"),
        ("ct_multiple_attr.cms", "attribute_repeated"),
        ("no_ct_attr.cms", "content_type_missing"),
        ("no_md_attr.cms", "message_digest_missing"),
    ] {
        let cms = std::fs::read(testdata(&format!("cms/openssl/80-test_cms_data/{file}"))).unwrap();
        let report = validator
            .validate_cms(CmsInput::new(&cms), in_2020())
            .await
            .unwrap();
        assert_eq!(report.indication, Indication::TotalFailed, "{file}");
        assert_eq!(sub(&report), Some(SubIndication::FormatFailure), "{file}");
        assert!(
            finding_codes(&report)[0].contains(&code.to_owned()),
            "{file}"
        );
    }
}

/// `openssl ca` over the S/MIME test root, in `dir`: a CRL (DER), after revoking `revoke`.
fn openssl_crl(dir: &Path, root: &str, revoke: Option<&str>) -> Vec<u8> {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    std::fs::write(p("index.txt"), "").unwrap();
    std::fs::write(p("crlnumber"), "01\n").unwrap();
    std::fs::write(
        p("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = {}\ncrlnumber = {}\ndefault_md = sha256\ndefault_crl_days = 1\n",
            p("index.txt"),
            p("crlnumber")
        ),
    )
    .unwrap();
    let ca = |extra: &[&str]| {
        let cnf = p("ca.cnf");
        let mut args = vec!["ca", "-config", &cnf, "-keyfile", root, "-cert", root];
        args.extend(extra);
        let out = openssl(&args);
        assert!(out.status.success(), "{}", text(&out));
    };
    if let Some(cert) = revoke {
        ca(&["-revoke", cert, "-crl_reason", "keyCompromise"]);
    }
    let pem = p("crl.pem");
    ca(&["-gencrl", "-out", &pem]);
    let der = p("crl.der");
    let out = openssl(&["crl", "-in", &pem, "-outform", "DER", "-out", &der]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read(der).unwrap()
}

#[tokio::test]
async fn openssl_made_signatures_under_the_smime_test_root() {
    let certs = testdata("cms/openssl/smime-certs");
    let root_pem = certs.join("smroot.pem");
    let text_of_root = std::fs::read_to_string(&root_pem).unwrap();
    let begin = text_of_root.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = text_of_root.find("-----END CERTIFICATE-----").unwrap() + 25;
    let root = Certificate::from_pem(&text_of_root[begin..end]).unwrap();
    let validator = validator(&[&root], ValidationPolicy::default());
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    std::fs::write(p("doc.txt"), DOCUMENT).unwrap();
    let root_path = root_pem.to_str().unwrap();

    for (signer, cades) in [("smrsa1.pem", true), ("smec1.pem", false)] {
        let signer_path = certs.join(signer);
        let signer_path = signer_path.to_str().unwrap();
        let sig = p(&format!("{signer}.p7s"));
        let doc = p("doc.txt");
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-md",
            "sha256",
            "-in",
            &doc,
            "-signer",
            signer_path,
            "-outform",
            "DER",
            "-out",
            &sig,
        ];
        if cades {
            args.push("-cades");
        }
        let out = openssl(&args);
        assert!(out.status.success(), "{}", text(&out));
        let cms = std::fs::read(&sig).unwrap();

        let crl_dir = tempfile::tempdir().unwrap();
        let good = RevocationData {
            crls: vec![openssl_crl(crl_dir.path(), root_path, None)],
            ocsp_responses: Vec::new(),
        };
        let now = SystemClock.now_utc();
        let report = validator
            .validate_cms(input(&cms, &good), now)
            .await
            .unwrap();
        assert_eq!(
            report.indication,
            Indication::TotalPassed,
            "{signer}: {report:#?}"
        );
        let warnings = warning_codes(&report);
        assert_eq!(
            warnings.contains(&"signing_certificate_absent".to_owned()),
            !cades,
            "{signer}: {warnings:?}"
        );

        let crl_dir = tempfile::tempdir().unwrap();
        let revoked = RevocationData {
            crls: vec![openssl_crl(crl_dir.path(), root_path, Some(signer_path))],
            ocsp_responses: Vec::new(),
        };
        let report = validator
            .validate_cms(input(&cms, &revoked), SystemClock.now_utc())
            .await
            .unwrap();
        assert_eq!(report.indication, Indication::Indeterminate, "{signer}");
        assert_eq!(sub(&report), Some(SubIndication::RevokedNoPoe), "{signer}");
    }
}

#[test]
fn validate_cms_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let validator = validator(&[], ValidationPolicy::default());
    let future = validator.validate_cms(CmsInput::new(&[]), in_2020());
    assert_send(&future);
}

/// The real Sectigo timestamp token (`openssl-80-test_tsa_data`): its signature and ESS binding
/// verify, and its TSA certificate chains to the USERTrust root at the token's own time.
#[tokio::test]
async fn the_real_sectigo_timestamp_token_validates_under_its_root() {
    let dir = "rfc3161/openssl-80-test_tsa_data";
    let reply = std::fs::read(testdata(&format!("{dir}/sectigo-all-zero.tsr"))).unwrap();
    let token = kyso_asn1::rfc3161::TimeStampResp::from_der(&reply)
        .unwrap()
        .time_stamp_token
        .expect("a granted reply")
        .to_der()
        .unwrap();
    let pem = |name: &str| {
        Certificate::from_pem(std::fs::read(testdata(&format!("{dir}/{name}"))).unwrap()).unwrap()
    };
    let signer = pem("sectigo-signer.pem");
    let intermediate = pem("sectigo-time-stamping-ca.pem");
    let root = pem("user-trust-ca.pem");
    // Cryptographic checks alone.
    let report =
        crate::verify::verify(&token, DetachedContent::None, std::slice::from_ref(&signer))
            .unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failure_codes());
    assert!(report.signers[0].signing_certificate_bound);
    let gen_time = kyso_asn1::rfc3161::parse_token_der(&token)
        .unwrap()
        .tst_info
        .gen_time
        .to_offset_date_time();
    // With the path: no revocation data for a Sectigo certificate here, so it is TRY_LATER with
    // the default policy, and TOTAL-PASSED when revocation is not required.
    let mut input = CmsInput::new(&token);
    input.extra_certificates = vec![signer.clone(), intermediate.clone()];
    let strict = validator(&[&root], ValidationPolicy::default())
        .validate_cms(input.clone(), gen_time)
        .await
        .unwrap();
    assert_eq!(strict.indication, Indication::Indeterminate, "{strict:#?}");
    assert_eq!(sub(&strict), Some(SubIndication::TryLater));
    let lenient = validator(
        &[&root],
        ValidationPolicy {
            require_revocation_for_end_entity: false,
            require_revocation_for_ca: false,
            ..ValidationPolicy::default()
        },
    )
    .validate_cms(input, gen_time)
    .await
    .unwrap();
    assert_eq!(lenient.indication, Indication::TotalPassed, "{lenient:#?}");
    let signer_name = lenient.signatures[0].signer.as_ref().unwrap();
    assert!(
        signer_name
            .common_name
            .as_deref()
            .unwrap_or_default()
            .contains("Sectigo"),
        "{signer_name:?}"
    );
    // Under another root (AAA Certificate Services, SHA-1 signed, so flagged as allowed): the
    // cross certificate is not supplied, so there is no chain.
    let other = pem("comodo-aaa.pem");
    let mut store = TrustAnchors::new();
    store
        .add_anchor_der(&other.to_der().unwrap(), "aaa", None, true)
        .unwrap();
    let mut input = CmsInput::new(&token);
    input.extra_certificates = vec![signer, intermediate];
    let wrong = SignatureValidator::new(
        Arc::new(PathValidator::new(store)),
        ValidationPolicy::default(),
    )
    .validate_cms(input, gen_time)
    .await
    .unwrap();
    assert_eq!(
        sub(&wrong),
        Some(SubIndication::NoCertificateChainFound),
        "{wrong:#?}"
    );
}

/// The Bouncy Castle evidence-record test tokens (BER, streaming-encoded): their signatures verify.
#[test]
fn the_real_bouncy_castle_timestamp_tokens_verify() {
    let dir =
        testdata("rfc3161/bc-tsp/20170316_Testdaten/Testdaten_ERS-Testool/rfc4998/2Chains3ATS");
    let mut checked = 0;
    for name in [
        "BIN_ER.ers.0.0.tsr",
        "BIN_ER.ers.0.1.tsr",
        "BIN_ER.ers.1.0.tsr",
    ] {
        // Each is a TimeStampToken (ContentInfo), BER with indefinite lengths.
        let token = std::fs::read(dir.join(name)).unwrap();
        let report = crate::verify::verify(&token, DetachedContent::None, &[]).unwrap();
        let signer = &report.signers[0];
        assert!(
            signer.signature_valid,
            "{name}: {:?}",
            signer.failure_codes()
        );
        assert!(signer.message_digest_valid, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// The validator's caches (P-256 key tables, remembered revocation outcomes, known
/// certificates) are warm after the first validations: every later report must be the one a
/// fresh validator gives, failures and revocations included.
#[tokio::test]
async fn warm_caches_give_the_reports_of_a_fresh_validator() {
    let pki = TestPki::new("val-warm").await;
    let signer = pki.staff_p256_signer("warm").await;
    let revoked_signer = pki.staff_p256_signer("warm-revoked").await;
    let tsa = tsa(&pki, "tsa-warm", false).await;
    let revoked_at = pki.clock.now() + Duration::from_secs(60);
    pki.clock.advance(Duration::from_secs(3600));
    let mut signatures = Vec::new();
    for (who, level) in [
        (&signer, Level::BT),
        (&signer, Level::BT),
        (&signer, Level::BB),
        (&revoked_signer, Level::BT),
        (&revoked_signer, Level::BB),
    ] {
        let timestamps = (level == Level::BT).then_some(&tsa);
        let cms = sign(
            who,
            Content::Detached(DOCUMENT),
            &pki.options(level),
            timestamps.map(|t| t as &dyn crate::TimestampSource),
            None,
        )
        .await
        .unwrap();
        signatures.push(cms);
        pki.clock.advance(Duration::from_secs(5));
    }
    let revocation = crls(&pki, &[revoked(revoked_signer.certificate(), revoked_at)]).await;
    let now = pki.clock.now_utc();
    let other_document = b"another document".to_vec();
    let inputs = |cms: &[u8]| -> Vec<(Vec<u8>, bool)> {
        // The right document, and another one (a message digest failure).
        vec![(cms.to_vec(), true), (cms.to_vec(), false)]
    };
    let cases: Vec<(Vec<u8>, bool)> = signatures.iter().flat_map(|c| inputs(c)).collect();
    let shared = pki_validator(&pki);
    for round in 0..3 {
        for (i, (cms, right)) in cases.iter().enumerate() {
            let document: &[u8] = if *right { DOCUMENT } else { &other_document };
            let warm = shared
                .validate_cms(
                    detached_input(cms, DetachedContent::Content(document), &revocation),
                    now,
                )
                .await
                .unwrap();
            let fresh = pki_validator(&pki)
                .validate_cms(
                    detached_input(cms, DetachedContent::Content(document), &revocation),
                    now,
                )
                .await
                .unwrap();
            assert_eq!(warm, fresh, "round {round}, case {i}");
        }
    }
    // What the cases cover: a pass, a revoked signer, a digest failure.
    let report = |i: usize, right: bool| {
        let document: &[u8] = if right { DOCUMENT } else { &other_document };
        shared.validate_cms(
            detached_input(
                &signatures[i],
                DetachedContent::Content(document),
                &revocation,
            ),
            now,
        )
    };
    assert_eq!(
        report(0, true).await.unwrap().indication,
        Indication::TotalPassed
    );
    assert_eq!(
        sub(&report(3, true).await.unwrap()),
        Some(SubIndication::Revoked)
    );
    assert_eq!(
        sub(&report(0, false).await.unwrap()),
        Some(SubIndication::HashFailure)
    );
}
