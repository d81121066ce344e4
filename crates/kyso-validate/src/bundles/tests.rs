use der::Decode;
use time::macros::datetime;
use x509_cert::Certificate;

use super::*;
use crate::{
    Indication, PathValidator, RevocationData, SubIndication, ValidationPolicy, ValidationTime,
};

#[test]
fn every_bundle_certificate_matches_its_pin_and_loads() {
    for bundle in BUNDLES {
        let mut anchors = TrustAnchors::new();
        let loaded = anchors.add_bundle(bundle).expect(bundle.name);
        let expected_anchors = bundle
            .certificates
            .iter()
            .filter(|c| c.role == BundleRole::Anchor)
            .count();
        assert_eq!(loaded.len(), expected_anchors, "{}", bundle.name);
        assert_eq!(
            anchors.intermediate_count(),
            bundle.certificates.len() - expected_anchors
        );
        for cert in bundle.certificates {
            assert_eq!(
                crate::sha256_fingerprint(cert.der),
                cert.sha256,
                "{}",
                cert.file
            );
            let parsed = Certificate::from_der(cert.der).expect(cert.file);
            let issuer_is_subject =
                parsed.tbs_certificate().issuer() == parsed.tbs_certificate().subject();
            assert_eq!(
                issuer_is_subject,
                cert.role == BundleRole::Anchor,
                "{}",
                cert.file
            );
        }
        // The SHA-1 roots are flagged, and only they.
        for info in &loaded {
            assert_eq!(info.allow_sha1, info.sha1_signed, "{info:?}");
        }
    }
    assert!(bundle("vn-national").is_some() && bundle("vn-government").is_some());
    assert!(bundle("vn-test").is_none());
}

/// The intermediates chain to their bundle's anchors: validating a CA certificate as the end of a
/// path finds its root (revocation then decides, and none is available offline here).
#[test]
fn intermediates_chain_to_their_roots() {
    let policy = ValidationPolicy {
        require_revocation_for_end_entity: false,
        require_revocation_for_ca: false,
        ..ValidationPolicy::default()
    };
    let cases = [
        (
            &VN_NATIONAL,
            "vnpt-ca-sha2-2024.der",
            datetime!(2025-06-01 0:00 UTC),
            "Vietnam National Root CA",
        ),
        (
            &VN_NATIONAL,
            "mic-vnptca-sha1.der",
            datetime!(2015-06-01 0:00 UTC),
            "MIC National Root CA",
        ),
        (
            &VN_GOVERNMENT,
            "vgca-g2-cpcag2-ca-phuc-vu-co-quan-nha-nuoc.der",
            datetime!(2025-06-01 0:00 UTC),
            "RootCA chuyên dùng Chính phủ G2",
        ),
        (
            &VN_GOVERNMENT,
            "vgca-g1-cp.der",
            datetime!(2025-06-01 0:00 UTC),
            "Co quan chung thuc so chuyen dung Chinh phu (RootCA)",
        ),
    ];
    for (bundle, file, at, root) in cases {
        let mut anchors = TrustAnchors::new();
        anchors.add_bundle(bundle).unwrap();
        let validator = PathValidator::new(anchors);
        let der = bundle
            .certificates
            .iter()
            .find(|c| c.file == file)
            .unwrap()
            .der;
        let leaf = Certificate::from_der(der).unwrap();
        let result = validator.validate_path(
            &leaf,
            &[],
            ValidationTime::unproven(at),
            &RevocationData::new(),
            &policy,
        );
        assert_eq!(
            result.indication,
            Indication::TotalPassed,
            "{file}: {result:#?}"
        );
        let anchor = result.trust_anchor.as_ref().expect("an anchor");
        assert_eq!(anchor.subject_common_name.as_deref(), Some(root), "{file}");
        // With the other bundle only: no chain.
        let mut other = TrustAnchors::new();
        let other_bundle = if bundle.name == "vn-national" {
            &VN_GOVERNMENT
        } else {
            &VN_NATIONAL
        };
        other.add_bundle(other_bundle).unwrap();
        let result = PathValidator::new(other).validate_path(
            &leaf,
            &[],
            ValidationTime::unproven(at),
            &RevocationData::new(),
            &policy,
        );
        assert_eq!(
            result.sub_indication,
            Some(SubIndication::NoCertificateChainFound),
            "{file}"
        );
    }
}
