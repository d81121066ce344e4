//! The verifier entry points over arbitrary bytes: the cryptographic verification
//! (`kyso_cades::verify::verify`) and the full signature validation (`SignatureValidator`, over an
//! empty trust store at a fixed time). Neither may panic; a report always serializes to JSON that
//! reads back to the same report, and it never says TOTAL-PASSED without a trust anchor.
#![no_main]

use std::sync::{Arc, OnceLock};

use kyso_cades::validation::{CmsInput, SignatureValidator, ValidationReport};
use kyso_cades::verify::{DetachedContent, verify};
use kyso_validate::{Indication, PathValidator, TrustAnchors, ValidationPolicy};
use libfuzzer_sys::fuzz_target;

struct Harness {
    runtime: tokio::runtime::Runtime,
    validator: SignatureValidator,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| Harness {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime"),
        validator: SignatureValidator::new(
            Arc::new(PathValidator::new(TrustAnchors::new())),
            ValidationPolicy::default(),
        ),
    })
}

fuzz_target!(|data: &[u8]| {
    let verified = verify(data, DetachedContent::None, &[]);
    let h = harness();
    // 2025-06-15T00:00:00Z: fixed, so runs are reproducible.
    let now = time::OffsetDateTime::from_unix_timestamp(1_749_945_600).expect("a valid time");
    let validated = h
        .runtime
        .block_on(h.validator.validate_cms(CmsInput::new(data), now));
    assert_eq!(verified.is_ok(), validated.is_ok());
    if let Ok(report) = validated {
        assert_ne!(report.indication, Indication::TotalPassed);
        assert_eq!(
            report.signatures.is_empty(),
            verified.map(|r| r.signers.is_empty()).unwrap_or(true)
        );
        let json = serde_json::to_vec(&report).expect("a report serializes");
        let back: ValidationReport = serde_json::from_slice(&json).expect("a report reads back");
        assert_eq!(back, report);
    }
});
