//! Timestamp queries arrive from anyone at `POST /tsa`, and timestamp replies from external TSAs:
//! neither parser may panic or allocate without bound, and what parses must re-encode to bytes that
//! parse to the same value.
#![no_main]

use der::Encode;
use kyso_asn1::rfc3161::{TimeStampReq, TimeStampResp, parse_token, parse_token_der};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = TimeStampReq::from_der(data) {
        let _ = req.message_imprint.hash();
        let der = req.to_der().expect("a parsed query re-encodes");
        let again = TimeStampReq::from_der(&der).expect("a re-encoded query parses");
        assert_eq!(again, req);
    }
    if let Ok(resp) = TimeStampResp::from_der(data) {
        if let Some(token) = &resp.time_stamp_token {
            let _ = parse_token(token);
        }
    }
    let _ = parse_token_der(data);
});
