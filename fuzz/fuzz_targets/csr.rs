//! PKCS#10 requests arrive from outside (enrollment API): parsing and the proof-of-possession check
//! must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = kyso_ca::csr::verify_csr(data) {
        // A request that passed must expose a subject and a key without panicking.
        let _ = csr.subject();
        let _ = csr.public_key();
    }
});
