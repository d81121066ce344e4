use std::sync::Mutex;

use kyso_ca::{CrlParams, ProfileKind, build_crl};
use kyso_clock::Clock;
use kyso_hsm::{HashAlgorithm, KeyAlgorithm, RsaPadding};

use crate::test_pki::{FakeTsa, FakeValidation, TestPki, openssl, text};
use crate::verify::{DetachedContent, verify};
use crate::{Content, DigestAlgorithm, Level, SignError, ValidationData, sign};

const DOCUMENT: &[u8] = "Quyết định số 123/QĐ-UBND: phê duyệt kế hoạch năm 2025.\n".as_bytes();

/// openssl cms -verify of `cms` (DER) against the test root, with `content` for a detached one.
fn openssl_verify(pki: &TestPki, name: &str, cms: &[u8], content: Option<&[u8]>) -> String {
    let cms_path = pki.write(&format!("{name}.p7s"), cms);
    let out_path = pki.path(&format!("{name}.out"));
    let root = pki.path("root.pem");
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        cms_path.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
        "-out",
        out_path.to_str().unwrap(),
    ];
    let content_path;
    if let Some(content) = content {
        content_path = pki.write(&format!("{name}.bin"), content);
        args.extend(["-content", content_path.to_str().unwrap()]);
    }
    let output = openssl(&args);
    let report = text(&output);
    assert!(output.status.success(), "openssl rejected {name}: {report}");
    assert_eq!(std::fs::read(&out_path).unwrap(), DOCUMENT, "{name}");
    report
}

async fn sign_and_check_with_openssl(
    pki: &TestPki,
    label: &str,
    algorithm: KeyAlgorithm,
    padding: RsaPadding,
) {
    let signer = pki
        .signer(label, algorithm, padding, ProfileKind::StaffSigning)
        .await;
    let options = pki.options(Level::BB);
    let attached = sign(&signer, Content::Attached(DOCUMENT), &options, None, None)
        .await
        .unwrap();
    let report = openssl_verify(pki, &format!("{label}-attached"), &attached, None);
    assert!(report.contains("Verification successful"), "{report}");
    let detached = sign(&signer, Content::Detached(DOCUMENT), &options, None, None)
        .await
        .unwrap();
    openssl_verify(pki, &format!("{label}-detached"), &detached, Some(DOCUMENT));

    // Our verifier agrees.
    let ours = verify(&attached, DetachedContent::None, &[]).unwrap();
    assert!(ours.passed(), "{:?}", ours.signers);
    let signer_report = &ours.signers[0];
    assert!(signer_report.signing_certificate_bound && signer_report.message_digest_valid);
    assert_eq!(
        signer_report.signing_time.unwrap().unix_timestamp(),
        pki.clock.now_unix()
    );
    assert_eq!(
        signer_report.signer_certificate.as_ref(),
        Some(signer.certificate())
    );
    let ours = verify(&detached, DetachedContent::Content(DOCUMENT), &[]).unwrap();
    assert!(ours.passed(), "{:?}", ours.signers);
    let missing = verify(&detached, DetachedContent::None, &[]).unwrap();
    assert_eq!(missing.signers[0].failure_codes(), vec!["content_missing"]);

    // The attributes openssl sees.
    let cms_path = pki.path(&format!("{label}-attached.p7s"));
    let printed = text(&openssl(&[
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        cms_path.to_str().unwrap(),
    ]));
    assert!(printed.contains("signingCertificateV2"), "{printed}");
    assert!(printed.contains("signingTime"), "{printed}");
    assert!(
        printed.contains("messageDigest") && printed.contains("contentType"),
        "{printed}"
    );
}

#[tokio::test]
async fn p256_signatures_verify_with_openssl() {
    let pki = TestPki::new("cades-p256").await;
    sign_and_check_with_openssl(&pki, "p256", KeyAlgorithm::EcP256, RsaPadding::Pkcs1v15).await;
}

#[tokio::test]
async fn rsa_pkcs1_signatures_verify_with_openssl() {
    let pki = TestPki::new("cades-rsa").await;
    sign_and_check_with_openssl(&pki, "rsa", KeyAlgorithm::Rsa2048, RsaPadding::Pkcs1v15).await;
}

#[tokio::test]
async fn rsa_pss_signatures_verify_with_openssl() {
    let pki = TestPki::new("cades-pss").await;
    sign_and_check_with_openssl(&pki, "pss", KeyAlgorithm::Rsa2048, RsaPadding::Pss).await;
}

#[tokio::test]
async fn client_digest_signs_detached_and_checks_its_length() {
    let pki = TestPki::new("cades-digest").await;
    let signer = pki.staff_p256_signer("digest").await;
    let options = pki.options(Level::BB);
    let digest = HashAlgorithm::Sha256.digest(DOCUMENT);
    let cms = sign(
        &signer,
        Content::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: &digest,
        },
        &options,
        None,
        None,
    )
    .await
    .unwrap();
    openssl_verify(&pki, "digest", &cms, Some(DOCUMENT));
    let by_digest = DetachedContent::Digest {
        algorithm: DigestAlgorithm::Sha256,
        digest: &digest,
    };
    assert!(verify(&cms, by_digest, &[]).unwrap().passed());

    let short = sign(
        &signer,
        Content::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: &digest[..31],
        },
        &options,
        None,
        None,
    )
    .await;
    assert_eq!(short.unwrap_err().code(), "cades_digest_length");
    let wrong = sign(
        &signer,
        Content::Digest {
            algorithm: HashAlgorithm::Sha384,
            digest: &[0; 48],
        },
        &options,
        None,
        None,
    )
    .await;
    assert!(matches!(
        wrong,
        Err(SignError::DigestAlgorithmMismatch { .. })
    ));
}

#[tokio::test]
async fn a_digest_computed_by_the_caller_signs_attached_content_once() {
    let pki = TestPki::new("cades-attached-hashed").await;
    let signer = pki.staff_p256_signer("hashed").await;
    let options = pki.options(Level::BB);
    let digest = HashAlgorithm::Sha256.digest(DOCUMENT);
    let content = Content::AttachedHashed {
        data: DOCUMENT,
        digest: &digest,
    };
    let cms = sign(&signer, content, &options, None, None).await.unwrap();
    let report = openssl_verify(&pki, "attached-hashed", &cms, None);
    assert!(report.contains("Verification successful"), "{report}");
    let ours = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(ours.passed(), "{:?}", ours.signers);
    assert!(ours.signers[0].message_digest_valid);
    // The content travels inside, as with Content::Attached.
    use der::Decode;
    let info = cms::content_info::ContentInfo::from_der(&cms).unwrap();
    let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
    let econtent = signed.encap_content_info.econtent.expect("attached");
    assert_eq!(econtent.value(), DOCUMENT);

    let short = Content::AttachedHashed {
        data: DOCUMENT,
        digest: &digest[..31],
    };
    let err = sign(&signer, short, &options, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "cades_digest_length");
}

#[tokio::test]
async fn tampering_is_detected() {
    let pki = TestPki::new("cades-tamper").await;
    let signer = pki.staff_p256_signer("tamper").await;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();

    // A content byte: the message digest no longer matches.
    let at = cms
        .windows(DOCUMENT.len())
        .position(|w| w == DOCUMENT)
        .unwrap();
    let mut bent = cms.clone();
    bent[at + 3] ^= 0x01;
    let report = verify(&bent, DetachedContent::None, &[]).unwrap();
    assert_eq!(
        report.signers[0].failure_codes(),
        vec!["message_digest_mismatch"]
    );
    assert!(report.signers[0].signature_valid);

    // A signature byte: the signature no longer verifies.
    let sig = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(sig.passed());
    let parsed = crate::parse::parse_signed_data(&cms).unwrap();
    let value = &parsed.signer_infos[0].signature;
    let at = cms
        .windows(value.len())
        .position(|w| w == value.as_slice())
        .unwrap();
    let mut bent = cms.clone();
    bent[at + value.len() / 2] ^= 0x01;
    let report = verify(&bent, DetachedContent::None, &[]).unwrap();
    assert_eq!(report.signers[0].failure_codes(), vec!["signature_invalid"]);

    // The wrong detached content.
    let detached = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BB),
        None,
        None,
    )
    .await
    .unwrap();
    let report = verify(&detached, DetachedContent::Content(b"other"), &[]).unwrap();
    assert_eq!(
        report.signers[0].failure_codes(),
        vec!["message_digest_mismatch"]
    );
}

#[tokio::test]
async fn key_and_certificate_must_match() {
    let pki = TestPki::new("cades-mismatch").await;
    let a = pki.staff_p256_signer("a").await;
    let b = pki.staff_p256_signer("b").await;
    let err =
        crate::CadesSigner::new(a.key().clone(), b.certificate().clone(), vec![]).unwrap_err();
    assert_eq!(err.code(), "cades_key_certificate_mismatch");
    let err = sign(
        &a,
        Content::Attached(DOCUMENT),
        &pki.options(Level::BT),
        None,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "cades_timestamp_source_missing");
}

async fn fake_tsa(pki: &TestPki, tamper: bool) -> FakeTsa {
    FakeTsa {
        signer: pki
            .signer(
                if tamper { "tsa-bad" } else { "tsa" },
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

#[tokio::test]
async fn b_t_stamps_the_signature_value() {
    let pki = TestPki::new("cades-bt").await;
    let signer = pki.staff_p256_signer("bt").await;
    let tsa = fake_tsa(&pki, false).await;
    let cms = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&tsa),
        None,
    )
    .await
    .unwrap();

    let parsed = crate::parse::parse_signed_data(&cms).unwrap();
    let signature = &parsed.signer_infos[0].signature;
    let requests = tsa.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![(
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha256.digest(signature)
        )]
    );

    let report = verify(&cms, DetachedContent::Content(DOCUMENT), &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers);
    let ts = &report.signers[0].timestamps;
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].imprint_algorithm, Some(DigestAlgorithm::Sha256));
    assert_eq!(ts[0].serial.as_deref(), Some("012345"));
    assert_eq!(
        ts[0].tsa_certificate.as_ref(),
        Some(tsa.signer.certificate())
    );
    assert_eq!(
        ts[0].gen_time.unwrap().unix_timestamp(),
        pki.clock.now_unix()
    );
    openssl_verify(&pki, "bt", &cms, Some(DOCUMENT));

    // A token over other bytes is caught.
    let bad_tsa = fake_tsa(&pki, true).await;
    let cms = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&bad_tsa),
        None,
    )
    .await
    .unwrap();
    let report = verify(&cms, DetachedContent::Content(DOCUMENT), &[]).unwrap();
    assert_eq!(
        report.signers[0].failure_codes(),
        vec!["timestamp_imprint_mismatch"]
    );

    // A "TSA" whose certificate lacks the timeStamping EKU is caught.
    let not_tsa = FakeTsa {
        signer: pki.staff_p256_signer("not-tsa").await,
        clock: pki.clock.clone(),
        requests: Mutex::new(Vec::new()),
        tamper: false,
    };
    let cms = sign(
        &signer,
        Content::Detached(DOCUMENT),
        &pki.options(Level::BT),
        Some(&not_tsa),
        None,
    )
    .await
    .unwrap();
    let report = verify(&cms, DetachedContent::Content(DOCUMENT), &[]).unwrap();
    assert_eq!(
        report.signers[0].failure_codes(),
        vec!["timestamp_tsa_eku_not_critical", "timestamp_tsa_eku"]
    );
}

#[tokio::test]
async fn b_lt_carries_chain_crls_and_ocsp_responses() {
    let pki = TestPki::new("cades-blt").await;
    let signer = pki.staff_p256_signer("blt").await;
    let tsa = fake_tsa(&pki, false).await;
    let now = pki.clock.now();
    let crl = build_crl(
        &pki.issuing,
        CrlParams {
            number: 1,
            this_update: now,
            next_update: now + std::time::Duration::from_secs(86400),
        },
        &[],
    )
    .await
    .unwrap();
    let crl_der = der::Encode::to_der(&crl).unwrap();
    let ocsp_b64 =
        std::fs::read_to_string(crate::testdata_dir().join("openssl-ocsp/ocsp-tests/D1.ors"))
            .unwrap();
    let ocsp = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        ocsp_b64.split_whitespace().collect::<String>(),
    )
    .unwrap();
    let validation = FakeValidation {
        data: ValidationData {
            certificates: vec![pki.root.certificate().clone()],
            crls: vec![crl_der.clone()],
            ocsp_responses: vec![ocsp.clone()],
        },
        asked_for: Mutex::new(0),
    };
    let mut options = pki.options(Level::BLT);
    options.include_chain = false;
    let cms = sign(
        &signer,
        Content::Attached(DOCUMENT),
        &options,
        Some(&tsa),
        Some(&validation),
    )
    .await
    .unwrap();
    assert_eq!(*validation.asked_for.lock().unwrap(), 2);

    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers);
    assert_eq!(report.crls, vec![crl_der]);
    assert_eq!(report.ocsp_responses, vec![ocsp]);
    for cert in [
        signer.certificate(),
        pki.issuing.certificate(),
        pki.root.certificate(),
    ] {
        assert!(report.certificates.contains(cert));
    }
    let printed = text(&openssl(&[
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        pki.write("blt.p7s", &cms).to_str().unwrap(),
    ]));
    assert!(
        printed.contains("1.3.6.1.5.5.7.16.2") || printed.contains("ocsp"),
        "{printed}"
    );
    openssl_verify(&pki, "blt-openssl", &cms, None);
}

/// A timestamp source answering every request with the same token (so that two signatures over
/// the same bytes are byte for byte comparable).
struct FixedToken(Vec<u8>);

#[async_trait::async_trait]
impl crate::TimestampSource for FixedToken {
    async fn timestamp(
        &self,
        _hash: HashAlgorithm,
        _digest: &[u8],
    ) -> Result<Vec<u8>, crate::TimestampError> {
        Ok(self.0.clone())
    }
}

/// The pre-encoded signer parts (SignerIdentifier, algorithms, certificates field) give the
/// bytes the previous code wrote, field by field re-encoded per signature. RSA PKCS#1 v1.5
/// signatures are deterministic, so whole signatures compare.
#[tokio::test]
async fn signatures_are_byte_for_byte_what_the_previous_code_wrote() {
    use super::reference::reference_sign;
    use crate::TimestampSource as _;

    let pki = TestPki::new("cades-same-bytes").await;
    let plain = pki
        .signer(
            "same-bytes",
            KeyAlgorithm::Rsa2048,
            RsaPadding::Pkcs1v15,
            ProfileKind::StaffSigning,
        )
        .await;
    // The chain repeats the issuing CA and holds the signer's own certificate: written once each.
    let signer = crate::CadesSigner::new(
        plain.key().clone(),
        plain.certificate().clone(),
        vec![
            pki.issuing.certificate().clone(),
            plain.certificate().clone(),
            pki.issuing.certificate().clone(),
            pki.root.certificate().clone(),
        ],
    )
    .unwrap();
    let token = fake_tsa(&pki, false)
        .await
        .timestamp(HashAlgorithm::Sha256, &HashAlgorithm::Sha256.digest(b"x"))
        .await
        .unwrap();
    let tsa = FixedToken(token);
    let crl = build_crl(
        &pki.issuing,
        CrlParams {
            number: 1,
            this_update: pki.clock.now(),
            next_update: pki.clock.now() + std::time::Duration::from_secs(86400),
        },
        &[],
    )
    .await
    .unwrap();
    let crl_der = der::Encode::to_der(&crl).unwrap();
    let validation = FakeValidation {
        data: ValidationData {
            // Repeats of what the signer already carries, and the CRL twice: dropped.
            certificates: vec![
                pki.root.certificate().clone(),
                pki.issuing.certificate().clone(),
            ],
            crls: vec![crl_der.clone(), crl_der],
            ocsp_responses: Vec::new(),
        },
        asked_for: Mutex::new(0),
    };
    let digest = HashAlgorithm::Sha256.digest(DOCUMENT);
    let contents = [
        Content::Attached(DOCUMENT),
        Content::Detached(DOCUMENT),
        Content::Digest {
            algorithm: HashAlgorithm::Sha256,
            digest: &digest,
        },
        Content::Attached(b""),
    ];
    let mut compared = 0;
    for level in [Level::BB, Level::BT, Level::BLT] {
        for content in contents {
            for (include_chain, include_certificates, content_type) in [
                (true, true, kyso_asn1::oids::ID_DATA),
                (false, true, kyso_asn1::oids::ID_DATA),
                (true, false, kyso_asn1::oids::ID_CT_TST_INFO),
                (true, true, kyso_asn1::oids::ID_CT_TST_INFO),
            ] {
                let mut options = pki.options(level);
                options.include_chain = include_chain;
                options.include_certificates = include_certificates;
                options.content_type = content_type;
                let ours = sign(&signer, content, &options, Some(&tsa), Some(&validation))
                    .await
                    .unwrap();
                let before =
                    reference_sign(&signer, content, &options, Some(&tsa), Some(&validation))
                        .await
                        .unwrap();
                assert_eq!(
                    ours, before,
                    "{level} {content:?} chain {include_chain} certificates {include_certificates}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 48);

    // The certificates field: signer, issuing and root once each; openssl agrees on the result.
    let mut options = pki.options(Level::BB);
    options.include_chain = true;
    let cms = sign(&signer, Content::Attached(DOCUMENT), &options, None, None)
        .await
        .unwrap();
    let parsed = crate::parse::parse_signed_data(&cms).unwrap();
    assert_eq!(parsed.certificates.len(), 3);
    openssl_verify(&pki, "same-bytes", &cms, None);
}
