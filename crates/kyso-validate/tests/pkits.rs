//! NIST PKITS (sections 4.1-4.16) through the validator, each case with its own initial policy
//! settings and CRLs. Fails when the number passed in any section drops below the committed
//! table, or when a case that does not pass is missing from `pkits-deviations.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kyso_validate::{
    Indication, PathValidator, RevocationData, TrustAnchors, ValidationPolicy, ValidationTime,
};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Cases passed per section, as achieved (see pkits-deviations.md for the others).
const EXPECTED_PASSED: &[(&str, usize, usize)] = &[
    // (section, passed, total)
    ("4.1", 4, 6),
    ("4.2", 7, 8),
    ("4.3", 11, 11),
    ("4.4", 20, 21),
    ("4.5", 5, 8),
    ("4.6", 15, 17),
    ("4.7", 5, 5),
    ("4.8", 35, 35),
    ("4.9", 7, 8),
    ("4.10", 23, 23),
    ("4.11", 10, 11),
    ("4.12", 9, 11),
    ("4.13", 37, 38),
    ("4.14", 24, 35),
    ("4.15", 6, 10),
    ("4.16", 2, 2),
];

#[derive(Deserialize)]
struct Suite {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    test_number: String,
    title: String,
    certs: Vec<String>,
    crls: Vec<String>,
    should_validate: bool,
    initial_policy_set: Vec<String>,
    initial_explicit_policy: bool,
    initial_policy_mapping_inhibit: bool,
    initial_inhibit_any_policy: bool,
    validation_time: String,
}

fn testdata() -> PathBuf {
    std::env::var_os("KYSO_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        })
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn section(number: &str) -> String {
    number.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn pkits_sections_pass_at_least_the_committed_counts() {
    let dir = testdata().join("nist-pkits");
    let suite: Suite = serde_json::from_slice(&read(dir.join("pkits-tests.json")))
        .unwrap_or_else(|e| panic!("pkits-tests.json: {e}"));
    let deviations = String::from_utf8(read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pkits-deviations.md"),
    ))
    .unwrap_or_default();

    let mut validators: BTreeMap<String, PathValidator> = BTreeMap::new();
    let mut passed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut not_passed = Vec::new();
    for case in &suite.tests {
        let (anchor_name, rest) = case
            .certs
            .split_first()
            .unwrap_or_else(|| panic!("{} has no certs", case.test_number));
        let (leaf_name, intermediate_names) = rest
            .split_last()
            .unwrap_or_else(|| panic!("{} has no leaf", case.test_number));
        let validator = validators.entry(anchor_name.clone()).or_insert_with(|| {
            let mut anchors = TrustAnchors::new();
            let der = read(dir.join("certs").join(format!("{anchor_name}.crt")));
            anchors
                .add_anchor_der(&der, anchor_name, None, false)
                .unwrap_or_else(|e| panic!("anchor {anchor_name}: {e}"));
            PathValidator::new(anchors)
        });
        let leaf = read(dir.join("certs").join(format!("{leaf_name}.crt")));
        let intermediates: Vec<Vec<u8>> = intermediate_names
            .iter()
            .map(|n| read(dir.join("certs").join(format!("{n}.crt"))))
            .collect();
        let refs: Vec<&[u8]> = intermediates.iter().map(Vec::as_slice).collect();
        let revocation = RevocationData {
            crls: case
                .crls
                .iter()
                .map(|n| read(dir.join("crls").join(format!("{n}.crl"))))
                .collect(),
            ocsp_responses: Vec::new(),
        };
        let policy = ValidationPolicy {
            initial_policy_set: case.initial_policy_set.clone(),
            initial_explicit_policy: case.initial_explicit_policy,
            initial_policy_mapping_inhibit: case.initial_policy_mapping_inhibit,
            initial_inhibit_any_policy: case.initial_inhibit_any_policy,
            ..ValidationPolicy::default()
        };
        let at = OffsetDateTime::parse(&case.validation_time, &Rfc3339)
            .unwrap_or_else(|e| panic!("{}: {e}", case.test_number));
        let result = validator.validate_path_der(
            &leaf,
            &refs,
            ValidationTime::unproven(at),
            &revocation,
            &policy,
        );
        let ok = (result.indication == Indication::TotalPassed) == case.should_validate;
        let entry = passed.entry(section(&case.test_number)).or_default();
        entry.1 += 1;
        if ok {
            entry.0 += 1;
        } else {
            not_passed.push(format!(
                "{} (expected {}, got {} {:?}: {})",
                case.title,
                if case.should_validate {
                    "valid"
                } else {
                    "invalid"
                },
                result.indication.as_str(),
                result.sub_indication.map(|s| s.as_str()),
                result.detail.unwrap_or_default()
            ));
        }
    }

    let mut sections: Vec<_> = passed.iter().collect();
    sections.sort_by_key(|(s, _)| {
        s.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    println!("NIST PKITS passed per section:");
    for (s, (ok, total)) in &sections {
        println!("  {s}: {ok}/{total}");
    }
    let total_ok: usize = sections.iter().map(|(_, (ok, _))| ok).sum();
    println!("  total: {total_ok}/{}", suite.tests.len());
    for line in &not_passed {
        println!("not passed: {line}");
    }

    let mut problems = Vec::new();
    for (s, expected, total) in EXPECTED_PASSED {
        let (ok, seen) = passed.get(*s).copied().unwrap_or_default();
        if seen != *total {
            problems.push(format!("section {s}: {seen} cases, the table says {total}"));
        }
        if ok < *expected {
            problems.push(format!(
                "section {s}: {ok} passed, fewer than the committed {expected}"
            ));
        }
    }
    for s in passed.keys() {
        if !EXPECTED_PASSED.iter().any(|(e, _, _)| e == s) {
            problems.push(format!("section {s} is missing from the committed table"));
        }
    }
    for line in &not_passed {
        let number = line.split_whitespace().next().unwrap_or_default();
        if !deviations.contains(&format!("| {number} |")) {
            problems.push(format!(
                "{number} does not pass and is not listed in pkits-deviations.md"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
