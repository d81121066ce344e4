use std::path::PathBuf;

use der::DecodePem;
use x509_cert::Certificate;

use super::{DetachedContent, SignedDataReport, verify};
use crate::test_pki::{openssl, text};

fn testdata(path: &str) -> PathBuf {
    crate::testdata_dir().join(path)
}

fn codes(report: &SignedDataReport) -> Vec<Vec<&'static str>> {
    report.signers.iter().map(|s| s.failure_codes()).collect()
}

fn warnings(report: &SignedDataReport) -> Vec<&'static str> {
    report
        .signers
        .iter()
        .flat_map(|s| s.warnings.iter().map(|w| w.code))
        .collect()
}

/// A CMS file as DER/BER: PEM (text around it ignored), bare base64, or binary.
fn pem_or_der_cms(path: &str) -> Vec<u8> {
    let bytes = std::fs::read(testdata(path)).unwrap();
    if bytes.first() == Some(&0x30) {
        return bytes;
    }
    let text = String::from_utf8(bytes).unwrap();
    let body: String = if text.contains("-----BEGIN") {
        text.lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect()
    } else {
        text.split_whitespace().collect()
    };
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
}

#[test]
fn rfc4134_rsa_examples_verify_with_a_sha1_warning() {
    // 4.2: RSA, SHA-1, no signed attributes. 4.5: RSA, SHA-1, subjectKeyIdentifier, BER.
    for file in ["4.2.bin", "4.5.bin"] {
        let cms = std::fs::read(testdata(&format!("cms/rfc4134-bc/{file}"))).unwrap();
        let report = verify(&cms, DetachedContent::None, &[]).unwrap();
        assert!(report.passed(), "{file}: {:?}", codes(&report));
        assert!(
            warnings(&report).contains(&"digest_algorithm_sha1"),
            "{file}"
        );
        assert!(warnings(&report).contains(&"rsa_key_below_2048"), "{file}");
        assert_eq!(
            report.econtent.as_deref(),
            Some(&b"This is some sample content."[..])
        );
    }
}

#[test]
fn rfc4134_dsa_examples_are_unsupported_not_broken() {
    // DSA signatures: recognised as an algorithm kyso does not verify.
    for file in ["4.1.bin", "4.6.bin", "4.7.bin", "4.10.bin"] {
        let cms = std::fs::read(testdata(&format!("cms/rfc4134-bc/{file}"))).unwrap();
        let report = verify(&cms, DetachedContent::None, &[]).unwrap();
        assert!(!report.passed(), "{file}");
        for signer in codes(&report) {
            assert!(
                signer.contains(&"signature_algorithm_unsupported"),
                "{file}: {signer:?}"
            );
            assert!(
                !signer.contains(&"message_digest_mismatch"),
                "{file}: {signer:?}"
            );
        }
    }
    // 4.3: detached DSA; with its content the digest matches, without it the content is missing.
    let cms = std::fs::read(testdata("cms/rfc4134-bc/4.3.bin")).unwrap();
    let content = std::fs::read(testdata("cms/rfc4134-bc/ExContent.bin")).unwrap();
    let report = verify(&cms, DetachedContent::Content(&content), &[]).unwrap();
    assert_eq!(
        codes(&report),
        vec![vec!["signature_algorithm_unsupported"]]
    );
    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(codes(&report)[0].contains(&"content_missing"));
}

#[test]
fn rfc4134_multi_signer_and_certificate_only_messages() {
    // 4.4: a DSA signer (not verified here) with an RSA countersignature (reported, not checked).
    let cms = std::fs::read(testdata("cms/rfc4134-bc/4.4.bin")).unwrap();
    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert_eq!(
        codes(&report),
        vec![vec!["signature_algorithm_unsupported"]]
    );
    assert!(warnings(&report).contains(&"countersignature_not_checked"));
    assert!(warnings(&report).contains(&"digest_algorithm_sha1"));
    assert!(report.signers[0].signing_time.is_some());
    // 4.11: certificates and CRLs only, no signers.
    let cms = std::fs::read(testdata("cms/rfc4134-bc/4.11.bin")).unwrap();
    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(report.signers.is_empty() && !report.passed());
    assert_eq!(report.failures[0].code, "cms_no_signers");
    assert!(!report.certificates.is_empty() && !report.crls.is_empty());
}

#[test]
fn rfc4134_non_signed_data_is_refused() {
    for file in [
        "3.1.bin", "3.2.bin", "5.1.bin", "5.2.bin", "6.0.bin", "7.1.bin", "7.2.bin",
    ] {
        let cms = std::fs::read(testdata(&format!("cms/rfc4134-bc/{file}"))).unwrap();
        let err = verify(&cms, DetachedContent::None, &[]).unwrap_err();
        assert_eq!(err.code(), "cms_not_signed_data", "{file}");
    }
}

#[test]
fn openssl_malformed_signed_attributes_fail() {
    let cases = [
        ("bad_signtime_attr.cms", "attribute_not_allowed_unsigned"),
        ("ct_multiple_attr.cms", "attribute_repeated"),
        ("no_ct_attr.cms", "content_type_missing"),
        ("no_md_attr.cms", "message_digest_missing"),
    ];
    for (file, code) in cases {
        let cms = std::fs::read(testdata(&format!("cms/openssl/80-test_cms_data/{file}"))).unwrap();
        let report = verify(&cms, DetachedContent::None, &[]).unwrap();
        assert!(!report.passed(), "{file}");
        assert_eq!(codes(&report), vec![vec![code]], "{file}");
        // The signature itself is sound: only the attribute rules fail.
        assert!(report.signers[0].signature_valid, "{file}");
    }
}

#[test]
fn openssl_weak_digests_and_non_signed_data_fail() {
    // PKCS#7 with MD4: refused as weak.
    let md4 = pem_or_der_cms("cms/openssl/80-test_cms_data/pkcs7-md4.pem");
    let report = verify(&md4, DetachedContent::None, &[]).unwrap();
    assert_eq!(codes(&report), vec![vec!["digest_algorithm_weak"]]);
    // pkcs7-1.pem (MD2) has a stray byte after the DER: refused before any check.
    let md2 = pem_or_der_cms("cms/openssl/pkcs7-1.pem");
    assert_eq!(
        verify(&md2, DetachedContent::None, &[]).unwrap_err().code(),
        "cms_trailing_data"
    );
    let report = verify(&md2[..md2.len() - 1], DetachedContent::None, &[]).unwrap();
    assert!(
        codes(&report)[0].contains(&"digest_algorithm_weak"),
        "{:?}",
        codes(&report)
    );
    // pkcs7.pem: a degenerate certificates-only SignedData (BER).
    let report = verify(
        &pem_or_der_cms("cms/openssl/pkcs7.pem"),
        DetachedContent::None,
        &[],
    )
    .unwrap();
    assert_eq!(report.failures[0].code, "cms_no_signers");
    assert!(!report.certificates.is_empty());
    let der = std::fs::read(testdata(
        "cms/openssl/80-test_cmsapi_data/encryptedData.der",
    ))
    .unwrap();
    assert_eq!(
        verify(&der, DetachedContent::None, &[]).unwrap_err().code(),
        "cms_not_signed_data"
    );
}

#[test]
fn ml_dsa_samples_are_unsupported() {
    for level in ["44", "65", "87"] {
        let key_file =
            std::fs::read_to_string(testdata(&format!("cms/bc-mldsa/ML-DSA-{level}.pem"))).unwrap();
        let start = key_file.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end =
            key_file.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
        let cert_pem = format!("{}\n", &key_file[start..end]);
        let cert = Certificate::from_pem(cert_pem.as_bytes()).unwrap();
        let cms = pem_or_der_cms(&format!("cms/bc-mldsa/SignedData_ML-DSA-{level}.pem"));
        let alone = verify(&cms, DetachedContent::None, &[]).unwrap();
        assert_eq!(
            codes(&alone),
            vec![vec!["signer_certificate_not_found"]],
            "{level}"
        );
        let report = verify(&cms, DetachedContent::None, &[cert]).unwrap();
        assert_eq!(
            codes(&report),
            vec![vec!["signature_algorithm_unsupported"]],
            "{level}"
        );
        assert!(report.signers[0].message_digest_valid, "{level}");
    }
}

#[test]
fn openssl_made_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    std::fs::write(p("doc.txt"), "Công văn số 45/CV-STTTT\n").unwrap();
    for (name, keyopt) in [
        (
            "ec",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        ("rsa", vec!["-newkey", "rsa:2048"]),
    ] {
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=openssl signer",
        ];
        args.extend(keyopt);
        let key = p(&format!("{name}.key"));
        let cert = p(&format!("{name}.pem"));
        args.extend(["-keyout", &key, "-out", &cert]);
        let out = openssl(&args);
        assert!(out.status.success(), "{}", text(&out));
        for detached in [false, true] {
            let sig = p(&format!("{name}-{detached}.p7s"));
            let doc = p("doc.txt");
            let mut sign_args = vec![
                "cms", "-sign", "-binary", "-md", "sha256", "-in", &doc, "-signer", &cert,
                "-inkey", &key, "-outform", "DER", "-out", &sig,
            ];
            if !detached {
                sign_args.push("-nodetach");
            }
            let out = openssl(&sign_args);
            assert!(out.status.success(), "{}", text(&out));
            let cms = std::fs::read(&sig).unwrap();
            let content = std::fs::read(&doc).unwrap();
            let supplied = if detached {
                DetachedContent::Content(&content)
            } else {
                DetachedContent::None
            };
            let report = verify(&cms, supplied, &[]).unwrap();
            assert!(
                report.passed(),
                "{name} detached={detached}: {:?}",
                codes(&report)
            );
            // openssl adds no signing-certificate attribute: reported, not failed.
            assert!(warnings(&report).contains(&"signing_certificate_absent"));
            let pem = std::fs::read(&cert).unwrap();
            assert_eq!(
                report.signers[0].signer_certificate.as_ref(),
                Some(&Certificate::from_pem(&pem).unwrap())
            );

            // Without the embedded certificate (-nocerts) the caller supplies it.
            if detached {
                let nocerts = p(&format!("{name}-nocerts.p7s"));
                let out = openssl(&[
                    "cms", "-sign", "-binary", "-nocerts", "-md", "sha256", "-in", &doc, "-signer",
                    &cert, "-inkey", &key, "-outform", "DER", "-out", &nocerts,
                ]);
                assert!(out.status.success(), "{}", text(&out));
                let cms = std::fs::read(&nocerts).unwrap();
                let alone = verify(&cms, DetachedContent::Content(&content), &[]).unwrap();
                assert_eq!(codes(&alone), vec![vec!["signer_certificate_not_found"]]);
                let cert = Certificate::from_pem(&pem).unwrap();
                let with = verify(&cms, DetachedContent::Content(&content), &[cert]).unwrap();
                assert!(with.passed());
            }
        }
    }
}

#[test]
fn certificate_encodings_are_the_der_and_stay_bounded() {
    use der::{Decode, Encode};
    let read = |name: &str| {
        std::fs::read(
            crate::testdata_dir()
                .join("nist-pkits/certs")
                .join(format!("{name}.crt")),
        )
        .unwrap()
    };
    let encodings = super::CertificateEncodings::with_capacity(2);
    let der = read("GoodCACert");
    let cert = Certificate::from_der(&der).unwrap();
    assert_eq!(encodings.encode(&cert).unwrap().1, der);
    assert_eq!(encodings.encode(&cert).unwrap().1, der, "kept");
    // Same signature value, other content: encoded anew.
    let at = der.windows(7).position(|w| w == b"Good CA").unwrap();
    let mut forged = der.clone();
    forged[at] = b'H';
    let other = Certificate::from_der(&forged).unwrap();
    assert_eq!(encodings.encode(&other).unwrap().1, forged);
    assert_eq!(other.to_der().unwrap(), forged);
    for name in [
        "GoodsubCACert",
        "TrustAnchorRootCertificate",
        "ValidCertificatePathTest1EE",
    ] {
        let der = read(name);
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(encodings.encode(&cert).unwrap().1, der);
        assert!(encodings.len() <= 2);
    }
}
