//! Bad input and HSM failure against a live node: each gets a clear error with a stable code, never a
//! panic, and the node keeps serving.

use kyso_tests::{Node, certs_test, openssl, pkcs11_tool, text};

fn csr_pem() -> String {
    std::fs::read_to_string(certs_test("csr/p256.csr.pem")).unwrap()
}

fn subject() -> serde_json::Value {
    serde_json::json!({"common_name": "Nguyễn Văn An", "organisation": "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_profile_oversized_csr_and_unknown_token_get_stable_codes() {
    let node = Node::start().await;

    let (status, body) = node
        .post_json(
            "/v1/ca/certificates",
            serde_json::json!({"csr_pem": csr_pem(), "profile": "no_such_profile", "subject": subject()}),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(body["error"]["code"], "profile_unknown", "{body}");

    // A CSR far over the 64 KiB bound is refused before any parsing work.
    let huge = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        "A".repeat(100 * 1024)
    );
    let (status, body) = node
        .post_json(
            "/v1/ca/certificates",
            serde_json::json!({"csr_pem": huge, "profile": "staff_signing", "subject": subject()}),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        code == "csr_too_large" || code == "payload_too_large",
        "{body}"
    );

    // Enrollment on a token that is not there names the problem.
    let (status, staff) = node
        .post_json(
            "/v1/staff",
            serde_json::json!({"full_name": "Lê Văn Cường", "agency": "SỞ Y TẾ", "identity_numbers": ["CCCD:001099012345"]}),
        )
        .await;
    assert_eq!(status, 201, "{staff}");
    let id = staff["id"].as_i64().unwrap();
    let (status, body) = node
        .post_json(
            &format!("/v1/staff/{id}/enroll"),
            serde_json::json!({"token_label": "no-such-token", "pin": "1234", "key_algorithm": "p256"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "hsm_token_not_found", "{body}");

    let (status, _) = node.get_bytes("/healthz").await;
    assert_eq!(status, 200);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ocsp_requests_get_a_malformed_request_response() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    for body in [
        b"not DER at all".to_vec(),
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        Vec::new(),
    ] {
        let response = node
            .http
            .post(node.url("/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let der = response.bytes().await.unwrap();
        let path = dir.path().join("resp.der");
        std::fs::write(&path, &der).unwrap();
        let out = openssl(&[
            "ocsp",
            "-respin",
            path.to_str().unwrap(),
            "-resp_text",
            "-noverify",
        ]);
        assert!(text(&out).contains("malformedrequest"), "{}", text(&out));
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_key_removed_from_the_token_fails_issuance_cleanly() {
    let node = Node::start().await;
    // Issue once so the key handle is cached, then delete the issuing CA's private key with
    // pkcs11-tool, as an operator (or a failing HSM) might.
    node.issue_staff_certificate("csr/p256.csr.pem").await;
    let out = pkcs11_tool(
        node.token.label(),
        &[
            "--delete-object",
            "--type",
            "privkey",
            "--label",
            "kyso-issuing-ca",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let (status, body) = node
        .post_json(
            "/v1/ca/certificates",
            serde_json::json!({"csr_pem": csr_pem(), "profile": "staff_signing", "subject": subject()}),
        )
        .await;
    assert!(
        status >= 500,
        "issuing without the CA key must fail: {status} {body}"
    );
    assert_eq!(body["error"]["code"], "hsm_key_not_found", "{body}");
    // Nothing more was issued: only the first certificate has a DER; the second serial stayed a
    // reservation.
    let (status, list) = node.get_json("/v1/ca/certificates").await;
    assert_eq!(status, 200, "{list}");
    let items = list["certificates"]
        .as_array()
        .expect("a list of certificates");
    let staff: Vec<_> = items
        .iter()
        // The validation service's own certificate has the staff-signing profile too.
        .filter(|c| {
            c["profile"] == "staff_signing" && c["key_location"]["label"] != "kyso-validation"
        })
        .collect();
    assert_eq!(staff.len(), 2, "{list}");
    let with_der = staff
        .iter()
        .filter(|c| c["certificate_pem"].is_string())
        .count();
    assert_eq!(
        with_der, 1,
        "the failed issuance must leave only a reservation: {list}"
    );
    // The node still answers.
    let (status, _) = node.get_bytes("/ca/kyso-issuing.crt").await;
    assert_eq!(status, 200);
    node.stop().await;
}
