//! Behaviour of the validator on real certificates: PKITS material for revocation timing, loops
//! and path length; Vietnam's public PKI (../shared/testdata/vn-pki) for anchors, pins and SHA-1.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kyso_validate::{
    AnchorError, AnchorFile, AnchorFolder, Indication, PathValidator, RevocationData,
    RevocationStatus, SubIndication, TrustAnchors, ValidationPolicy, ValidationTime,
};

fn testdata() -> PathBuf {
    std::env::var_os("KYSO_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        })
}

fn pkits_cert(name: &str) -> Vec<u8> {
    let path = testdata()
        .join("nist-pkits/certs")
        .join(format!("{name}.crt"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pkits_crl(name: &str) -> Vec<u8> {
    let path = testdata()
        .join("nist-pkits/crls")
        .join(format!("{name}.crl"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pkits_validator() -> PathValidator {
    let mut anchors = TrustAnchors::new();
    anchors
        .add_anchor_der(
            &pkits_cert("TrustAnchorRootCertificate"),
            "pkits",
            None,
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    PathValidator::new(anchors)
}

fn pkits_crls() -> RevocationData {
    RevocationData {
        crls: vec![pkits_crl("TrustAnchorRootCRL"), pkits_crl("GoodCACRL")],
        ocsp_responses: Vec::new(),
    }
}

/// 2010-01-01T08:30:00Z: GoodCACRL's thisUpdate and the notBefore of its certificates.
const PKITS_START: i64 = 1_262_334_600;
/// 2011-04-15T00:00:00Z, PKITS's validation time.
const PKITS_TIME: i64 = 1_302_825_600;

#[test]
fn validator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PathValidator>();
    let validator = Arc::new(pkits_validator());
    let leaf = pkits_cert("ValidCertificatePathTest1EE");
    let ca = pkits_cert("GoodCACert");
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (v, leaf, ca) = (Arc::clone(&validator), leaf.clone(), ca.clone());
            std::thread::spawn(move || {
                v.validate_path_der(
                    &leaf,
                    &[&ca],
                    ValidationTime::from_unix(PKITS_TIME, false),
                    &pkits_crls(),
                    &ValidationPolicy::default(),
                )
                .indication
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().ok(), Some(Indication::TotalPassed));
    }
}

#[test]
fn valid_path_report_names_chain_and_serializes_in_etsi_spelling() {
    let v = pkits_validator();
    let r = v.validate_path_der(
        &pkits_cert("ValidCertificatePathTest1EE"),
        &[&pkits_cert("GoodCACert")],
        ValidationTime::from_unix(PKITS_TIME, true),
        &pkits_crls(),
        &ValidationPolicy::default(),
    );
    assert_eq!(r.indication, Indication::TotalPassed, "{r:?}");
    assert_eq!(r.chain.len(), 3);
    assert!(matches!(
        r.chain[0].revocation,
        RevocationStatus::Good { .. }
    ));
    assert!(matches!(
        r.chain[1].revocation,
        RevocationStatus::Good { .. }
    ));
    let json = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(json["indication"], "TOTAL-PASSED");
    assert_eq!(json["signer"]["common_name"], "Valid EE Certificate Test1");
    assert_eq!(json["message"]["vi"], "Hợp lệ");
}

#[test]
fn no_revocation_data_is_try_later_unless_the_policy_waives_it() {
    let v = pkits_validator();
    let leaf = pkits_cert("ValidCertificatePathTest1EE");
    let ca = pkits_cert("GoodCACert");
    let time = ValidationTime::from_unix(PKITS_TIME, false);
    let r = v.validate_path_der(
        &leaf,
        &[&ca],
        time,
        &RevocationData::default(),
        &ValidationPolicy::default(),
    );
    assert_eq!(r.indication, Indication::Indeterminate);
    assert_eq!(r.sub_indication, Some(SubIndication::TryLater));
    assert_eq!(r.failed_certificate, Some(0));
    let json = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(json["sub_indication"], "TRY_LATER");

    let waived = ValidationPolicy {
        require_revocation_for_end_entity: false,
        require_revocation_for_ca: false,
        ..ValidationPolicy::default()
    };
    let r = v.validate_path_der(&leaf, &[&ca], time, &RevocationData::default(), &waived);
    assert_eq!(r.indication, Indication::TotalPassed);
    assert!(!r.warnings.is_empty());
}

#[test]
fn revocation_after_the_time_of_interest_does_not_revoke_at_that_time() {
    // InvalidRevokedEETest3EE (serial 0F) is revoked at 08:30:01, one second after the CRL's
    // thisUpdate and the certificate's notBefore.
    let v = pkits_validator();
    let leaf = pkits_cert("InvalidRevokedEETest3EE");
    let ca = pkits_cert("GoodCACert");
    let before = v.validate_path_der(
        &leaf,
        &[&ca],
        ValidationTime::from_unix(PKITS_START, true),
        &pkits_crls(),
        &ValidationPolicy::default(),
    );
    assert_eq!(before.indication, Indication::TotalPassed, "{before:?}");
    assert_eq!(
        before.chain[0].revocation,
        RevocationStatus::RevokedAfterTimeOfInterest {
            revoked_at: PKITS_START + 1
        }
    );

    let proven_after = v.validate_path_der(
        &leaf,
        &[&ca],
        ValidationTime::from_unix(PKITS_TIME, true),
        &pkits_crls(),
        &ValidationPolicy::default(),
    );
    assert_eq!(proven_after.indication, Indication::TotalFailed);
    assert_eq!(proven_after.sub_indication, Some(SubIndication::Revoked));

    let unproven_after = v.validate_path_der(
        &leaf,
        &[&ca],
        ValidationTime::from_unix(PKITS_TIME, false),
        &pkits_crls(),
        &ValidationPolicy::default(),
    );
    assert_eq!(unproven_after.indication, Indication::Indeterminate);
    assert_eq!(
        unproven_after.sub_indication,
        Some(SubIndication::RevokedNoPoe)
    );
}

/// End entity, intermediates, time of interest, proven, revocation data.
type PathCase<'a> = (&'a [u8], Vec<&'a [u8]>, i64, bool, &'a RevocationData);

/// The validator remembers revocation outcomes across validations: a second validation of the
/// same path (at the same or another time of interest) must give the report a fresh validator
/// gives, revoked certificates included.
#[test]
fn remembered_revocation_outcomes_give_the_reports_of_a_fresh_validator() {
    let good_ee = pkits_cert("ValidCertificatePathTest1EE");
    let revoked_ee = pkits_cert("InvalidRevokedEETest3EE");
    let revoked_ca_ee = pkits_cert("InvalidRevokedCATest2EE");
    let good_ca = pkits_cert("GoodCACert");
    let revoked_ca = pkits_cert("RevokedsubCACert");
    let with_sub_ca = RevocationData {
        crls: vec![
            pkits_crl("TrustAnchorRootCRL"),
            pkits_crl("GoodCACRL"),
            pkits_crl("RevokedsubCACRL"),
        ],
        ocsp_responses: Vec::new(),
    };
    let root_crl_only = RevocationData {
        crls: vec![pkits_crl("TrustAnchorRootCRL")],
        ocsp_responses: Vec::new(),
    };
    let mut cases: Vec<PathCase<'_>> = Vec::new();
    let crls = pkits_crls();
    for time in [
        PKITS_START - 1,
        PKITS_START,
        PKITS_START + 1,
        PKITS_START + 2,
        PKITS_TIME,
        PKITS_TIME + 86_400,
        // After the certificates' notAfter (2030-12-31).
        1_924_992_000,
    ] {
        for proven in [true, false] {
            cases.push((&good_ee, vec![&good_ca], time, proven, &crls));
            cases.push((&revoked_ee, vec![&good_ca], time, proven, &crls));
            cases.push((&revoked_ee, vec![&good_ca], time, proven, &root_crl_only));
            cases.push((
                &revoked_ca_ee,
                vec![&revoked_ca, &good_ca],
                time,
                proven,
                &with_sub_ca,
            ));
        }
    }
    let policy = ValidationPolicy::default();
    let unmasked = ValidationPolicy {
        mask_identities: !policy.mask_identities,
        ..ValidationPolicy::default()
    };
    let shared = pkits_validator();
    let reports = |v: &PathValidator| -> Vec<String> {
        cases
            .iter()
            .map(|(leaf, ca, time, proven, crls)| {
                let r = v.validate_path_der(
                    leaf,
                    ca,
                    ValidationTime::from_unix(*time, *proven),
                    crls,
                    &policy,
                );
                format!("{r:?}")
            })
            .collect()
    };
    let first = reports(&shared);
    // The other masking between the two: kept descriptions are masked per call.
    let other_mask = shared.validate_path_der(
        &good_ee,
        &[&good_ca],
        ValidationTime::from_unix(PKITS_TIME, true),
        &crls,
        &unmasked,
    );
    let fresh_other_mask = pkits_validator().validate_path_der(
        &good_ee,
        &[&good_ca],
        ValidationTime::from_unix(PKITS_TIME, true),
        &crls,
        &unmasked,
    );
    assert_eq!(format!("{other_mask:?}"), format!("{fresh_other_mask:?}"));
    let second = reports(&shared);
    let fresh: Vec<String> = cases
        .iter()
        .map(|(leaf, ca, time, proven, crls)| {
            let r = pkits_validator().validate_path_der(
                leaf,
                ca,
                ValidationTime::from_unix(*time, *proven),
                crls,
                &policy,
            );
            format!("{r:?}")
        })
        .collect();
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(first[i], fresh[i], "case {i} at {}", case.2);
        assert_eq!(second[i], fresh[i], "case {i} at {}", case.2);
    }
    // The revoked end entity stays revoked through the remembered outcome, with its date.
    let again = shared.validate_path_der(
        &revoked_ee,
        &[&good_ca],
        ValidationTime::from_unix(PKITS_TIME, true),
        &crls,
        &policy,
    );
    assert_eq!(again.sub_indication, Some(SubIndication::Revoked));
    assert_eq!(
        again.chain[0].revocation,
        RevocationStatus::Revoked {
            revoked_at: Some(PKITS_START + 1)
        }
    );
    assert!(fresh.iter().any(|r| r.contains("RevokedCaNoPoe")));
    assert!(
        fresh
            .iter()
            .any(|r| r.contains("RevokedAfterTimeOfInterest"))
    );
}

#[test]
fn revoked_ca_is_revoked_ca_no_poe() {
    let v = pkits_validator();
    let r = v.validate_path_der(
        &pkits_cert("InvalidRevokedCATest2EE"),
        &[&pkits_cert("RevokedsubCACert"), &pkits_cert("GoodCACert")],
        ValidationTime::from_unix(PKITS_TIME, true),
        &RevocationData {
            crls: vec![
                pkits_crl("TrustAnchorRootCRL"),
                pkits_crl("GoodCACRL"),
                pkits_crl("RevokedsubCACRL"),
            ],
            ocsp_responses: Vec::new(),
        },
        &ValidationPolicy::default(),
    );
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::RevokedCaNoPoe),
        "{r:?}"
    );
    assert_eq!(r.failed_certificate, Some(1));
}

#[test]
fn a_certificate_loop_terminates_with_no_chain_found() {
    // A self-issued CA certificate whose only candidate issuer is itself.
    let v = pkits_validator();
    let looping = pkits_cert("pathLenConstraint0SelfIssuedCACert");
    let r = v.validate_path_der(
        &looping,
        &[&looping, &looping],
        ValidationTime::from_unix(PKITS_TIME, false),
        &RevocationData::default(),
        &ValidationPolicy::default(),
    );
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    assert!(r.detail.unwrap_or_default().contains("loop"));
}

#[test]
fn a_path_longer_than_the_policy_allows_is_not_followed() {
    let v = pkits_validator();
    let leaf = pkits_cert("ValidpathLenConstraintTest8EE");
    let ca = pkits_cert("pathLenConstraint0CACert");
    let short = ValidationPolicy {
        max_path_length: 1,
        ..ValidationPolicy::default()
    };
    let r = v.validate_path_der(
        &leaf,
        &[&ca],
        ValidationTime::from_unix(PKITS_TIME, false),
        &RevocationData::default(),
        &short,
    );
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    assert!(r.detail.unwrap_or_default().contains("longer"));
}

#[test]
fn bad_input_gets_format_failure() {
    let v = pkits_validator();
    let r = v.validate_path_der(
        b"\x30\x03\x02\x01",
        &[],
        ValidationTime::from_unix(PKITS_TIME, false),
        &RevocationData::default(),
        &ValidationPolicy::default(),
    );
    assert_eq!(r.sub_indication, Some(SubIndication::FormatFailure));
    let r = v.validate_path_der(
        &pkits_cert("ValidCertificatePathTest1EE"),
        &[b"garbage", &pkits_cert("GoodCACert")],
        ValidationTime::from_unix(PKITS_TIME, false),
        &RevocationData {
            crls: vec![b"not a crl".to_vec()],
            ocsp_responses: vec![b"not ocsp".to_vec()],
        },
        &ValidationPolicy::default(),
    );
    assert_eq!(r.sub_indication, Some(SubIndication::TryLater));
    assert!(r.warnings.len() >= 2);
}

// ------------------------------------------------------------------ Vietnam's public PKI

fn vn() -> PathBuf {
    testdata().join("vn-pki")
}

/// File name -> SHA-256 fingerprint, from the README's table.
fn vn_pins() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(vn().join("README.md")).unwrap_or_default();
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1)?.trim_matches('`');
            let fp = cells.get(6)?.trim_matches('`');
            (fp.len() == 64).then(|| (file.to_owned(), fp.to_owned()))
        })
        .collect()
}

const G1_ROOT: &str = "F7BC89054CEC7F12730D7B8CD3EB7955B163835087E5EB873EDFB584763B3F90";
const MIC_ROOT: &str = "CA918D635BB130BEC97639E6AABF7EDBC4EB1310F8058B9419F467AE0230AD8C";

fn vn_validator() -> PathValidator {
    let pins = vn_pins();
    let folder = AnchorFolder {
        path: vn().join("roots"),
        pins: pins
            .iter()
            .filter_map(|(f, fp)| {
                f.strip_prefix("roots/")
                    .filter(|f| !f.contains('/'))
                    .map(|f| (f.to_owned(), fp.clone()))
            })
            .collect(),
        require_pins: true,
        allow_sha1: vec![G1_ROOT.to_owned(), MIC_ROOT.to_owned()],
    };
    let mut anchors = TrustAnchors::new();
    let loaded = anchors
        .add_anchor_folder(&folder)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.len(),
        6,
        "the TEST root in roots/test must not be loaded"
    );
    assert_eq!(anchors.warnings().len(), 2, "one warning per SHA-1 anchor");
    assert_eq!(loaded.iter().filter(|a| a.sha1_signed).count(), 2);
    anchors
        .add_intermediate_folder(&vn().join("cas"))
        .unwrap_or_else(|e| panic!("{e}"));
    PathValidator::new(anchors)
}

fn vn_cert(rel: &str) -> Vec<u8> {
    let bytes = std::fs::read(vn().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    kyso_validate::anchors::parse_certificates(&bytes, rel)
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
}

fn no_revocation_needed() -> ValidationPolicy {
    ValidationPolicy {
        require_revocation_for_end_entity: false,
        require_revocation_for_ca: false,
        ..ValidationPolicy::default()
    }
}

/// 2025-01-01T00:00:00Z.
const JAN_2025: i64 = 1_735_689_600;

#[test]
fn vietnamese_ca_chains_to_the_national_root() {
    let v = vn_validator();
    let r = v.validate_path_der(
        &vn_cert("cas/vnpt-ca-sha2-2024.crt"),
        &[],
        ValidationTime::from_unix(JAN_2025, false),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(r.indication, Indication::TotalPassed, "{r:?}");
    let anchor = r.trust_anchor.unwrap_or_else(|| panic!("no anchor"));
    assert_eq!(
        anchor.sha256,
        "BAC8BF609AB420A8EE1780D74F4DE5C7F7184959D2A7375B0A75E4C29F0908E7"
    );
    // Revocation is required by default and there is no data here.
    let r = v.validate_path_der(
        &vn_cert("cas/vnpt-ca-sha2-2024.crt"),
        &[],
        ValidationTime::from_unix(JAN_2025, false),
        &RevocationData::default(),
        &ValidationPolicy::default(),
    );
    assert_eq!(r.sub_indication, Some(SubIndication::TryLater));
}

#[test]
fn government_g1_sha1_chain_passes_with_a_warning_under_its_flagged_root() {
    let v = vn_validator();
    let r = v.validate_path_der(
        &vn_cert("cas/vgca-g1-cp.cer"),
        &[],
        ValidationTime::from_unix(JAN_2025, false),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(r.indication, Indication::TotalPassed, "{r:?}");
    assert!(r.chain[0].sha1_signature);
    assert!(r.warnings.iter().any(|w| w.en.contains("SHA-1")));
}

#[test]
fn expired_ca_is_out_of_bounds_or_expired_with_proof_of_existence() {
    let v = vn_validator();
    let leaf = vn_cert("cas/easyca-2020.der");
    let unproven = v.validate_path_der(
        &leaf,
        &[],
        ValidationTime::from_unix(JAN_2025 + 365 * 86_400, false),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(
        unproven.sub_indication,
        Some(SubIndication::OutOfBoundsNoPoe)
    );
    let proven = v.validate_path_der(
        &leaf,
        &[],
        ValidationTime::from_unix(JAN_2025 + 365 * 86_400, true),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(proven.indication, Indication::TotalFailed);
    assert_eq!(proven.sub_indication, Some(SubIndication::Expired));
    let early = v.validate_path_der(
        &leaf,
        &[],
        ValidationTime::from_unix(1_500_000_000, true),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(early.sub_indication, Some(SubIndication::NotYetValid));
}

#[test]
fn test_hierarchy_is_not_trusted() {
    let v = vn_validator();
    let r = v.validate_path_der(
        &vn_cert("cas/test/trustca-sha256-TEST-2020.der"),
        &[],
        ValidationTime::from_unix(1_640_995_200, false),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
}

#[test]
fn sha1_root_needs_the_flag_and_pins_must_match() {
    let mut anchors = TrustAnchors::new();
    let g1 = AnchorFile {
        path: vn().join("roots/vgca-rootca-g1-2010-sha1.cer"),
        sha256: Some(G1_ROOT.to_owned()),
        allow_sha1: false,
    };
    let err = anchors.add_anchor_file(&g1).err();
    assert!(
        matches!(err, Some(AnchorError::Sha1NotAllowed { .. })),
        "{err:?}"
    );
    assert_eq!(err.map(|e| e.code()), Some("anchor_sha1_not_allowed"));

    let wrong_pin = AnchorFile {
        path: vn().join("roots/neac-vietnam-national-root-ca-g3-2024.crt"),
        sha256: Some(G1_ROOT.to_lowercase()),
        allow_sha1: false,
    };
    let err = anchors.add_anchor_file(&wrong_pin).err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        text.contains("neac-vietnam-national-root-ca-g3-2024.crt"),
        "{text}"
    );
    assert!(text.contains(G1_ROOT), "{text}");
    assert!(
        text.contains("7B3269E7D79AEBBFAE5095F45BBB7074771E690CB7DF02B441062B12F7690ECE"),
        "{text}"
    );
    assert_eq!(err.map(|e| e.code()), Some("anchor_fingerprint_mismatch"));

    let g1_flagged = AnchorFile {
        allow_sha1: true,
        ..g1
    };
    let loaded = anchors
        .add_anchor_file(&g1_flagged)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded[0].sha1_signed && loaded[0].allow_sha1);
    assert_eq!(anchors.warnings().len(), 1);
}

#[test]
fn sha1_certificate_under_an_unflagged_anchor_is_a_crypto_constraints_failure() {
    // PKITS's DSA CA signs its end entity with dsa-with-SHA1; the PKITS root is not flagged.
    let v = pkits_validator();
    let r = v.validate_path_der(
        &pkits_cert("ValidDSASignaturesTest4EE"),
        &[&pkits_cert("DSACACert")],
        ValidationTime::from_unix(PKITS_TIME, false),
        &RevocationData::default(),
        &ValidationPolicy::default(),
    );
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::CryptoConstraintsFailureNoPoe)
    );
    assert_eq!(r.failed_certificate, Some(0));
}

#[test]
fn sha1_chain_under_the_flagged_g1_root_passes() {
    let mut anchors = TrustAnchors::new();
    anchors
        .add_anchor_der(
            &vn_cert("roots/vgca-rootca-g1-2010-sha1.cer"),
            "g1",
            Some(G1_ROOT),
            true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let v = PathValidator::new(anchors);
    let r = v.validate_path_der(
        &vn_cert("cas/vgca-g1-bca.cer"),
        &[],
        ValidationTime::from_unix(JAN_2025, false),
        &RevocationData::default(),
        &no_revocation_needed(),
    );
    assert_eq!(r.indication, Indication::TotalPassed, "{r:?}");
}
