//! Signatures arrive from anyone at `POST /v1/verify`: the bounded BER/DER SignedData parser must
//! never panic, and what it accepts is self-consistent.
#![no_main]

use kyso_cades::parse::{MAX_CERTIFICATES, MAX_SIGNERS, parse_signed_data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_signed_data(data) {
        Ok(parsed) => {
            assert!(parsed.signer_infos.len() <= MAX_SIGNERS);
            assert!(parsed.certificates.len() <= MAX_CERTIFICATES);
            for si in &parsed.signer_infos {
                // The DER that is signed is present exactly when there are signed attributes.
                assert_eq!(
                    si.signed_attributes.is_some(),
                    si.signed_attributes_der.is_some()
                );
            }
        }
        Err(e) => {
            assert!(!e.code().is_empty());
        }
    }
});
