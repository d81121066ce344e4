//! OCSP requests arrive from anyone on the network, as DER (POST) or base64 in the URL (GET): neither
//! parser may panic or allocate without bound, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = kyso_ca::ocsp::parse_ocsp_request(data) {
        let _ = request.cert_ids();
        let _ = request.nonce();
        let _ = request.cache_key();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kyso_ca::ocsp::parse_ocsp_request_base64(text);
    }
});
