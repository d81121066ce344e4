//! openssl's OCSP client and CRL verifier against a live kyso node: good, then revoked after a
//! revocation; suspension and its lifting; CRLs that carry the signing CA's key identifier.

use kyso_tests::{Node, openssl, openssl_crl, text};

fn serial_upper(issued: &serde_json::Value) -> String {
    issued["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_sees_good_then_revoked() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = node.write_ca_pems(dir.path()).await;
    let chain = dir.path().join("chain.pem");
    std::fs::write(
        &chain,
        [
            std::fs::read_to_string(&root).unwrap(),
            std::fs::read_to_string(&issuing).unwrap(),
        ]
        .concat(),
    )
    .unwrap();

    let issued = node.issue_staff_certificate("csr/p256.csr.pem").await;
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(
        &leaf,
        issued["certificate"]["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let leaf = leaf.to_string_lossy().into_owned();

    let answer = node.ocsp_status_via_openssl(&issued).await;
    assert!(answer.contains(": good"), "{answer}");

    // Suspension shows as revoked with certificateHold, and its lifting as good again.
    let (status, body) = node
        .post_json(
            &format!("/v1/ca/certificates/{serial}/suspend"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = node.ocsp_status_via_openssl(&issued).await;
    assert!(
        answer.contains(": revoked") && answer.contains("certificateHold"),
        "{answer}"
    );
    let (status, body) = node
        .post_json(
            &format!("/v1/ca/certificates/{serial}/resume"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = node.ocsp_status_via_openssl(&issued).await;
    assert!(answer.contains(": good"), "{answer}");

    let (status, body) = node
        .post_json(
            &format!("/v1/ca/certificates/{serial}/revoke"),
            serde_json::json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = node.ocsp_status_via_openssl(&issued).await;
    assert!(answer.contains(": revoked"), "{answer}");
    assert!(answer.contains("keyCompromise"), "{answer}");

    // The GET form (base64 of the DER request in the path) gives the same answer.
    let req = dir.path().join("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        issuing.to_str().unwrap(),
        "-cert",
        &leaf,
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let (status, der) = node
        .get_bytes(&format!("/ocsp/{}", b64.replace('/', "%2F")))
        .await;
    assert_eq!(status, 200);
    let resp = dir.path().join("resp.der");
    std::fs::write(&resp, der).unwrap();
    let out = openssl(&[
        "ocsp",
        "-respin",
        resp.to_str().unwrap(),
        "-issuer",
        issuing.to_str().unwrap(),
        "-cert",
        &leaf,
        "-CAfile",
        chain.to_str().unwrap(),
        "-resp_text",
    ]);
    let all = text(&out);
    assert!(
        all.contains("Response verify OK") && all.contains(": revoked"),
        "{all}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_crl_verify_accepts_the_issuing_crl_after_revocation() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = node.write_ca_pems(dir.path()).await;
    let issued = node.issue_staff_certificate("csr/rsa2048.csr.pem").await;
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    let (status, body) = node
        .post_json(
            &format!("/v1/ca/certificates/{serial}/revoke"),
            serde_json::json!({"reason": "affiliation_changed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, crl) = node.get_bytes("/crl/kyso-issuing.crl").await;
    assert_eq!(status, 200);
    let out = openssl_crl(dir.path(), &crl, &issuing, &["-text"]);
    let all = text(&out);
    assert!(out.status.success() && all.contains("verify OK"), "{all}");
    assert!(
        all.contains(&serial_upper(&issued)),
        "revoked serial missing: {all}"
    );
    assert!(all.contains("Affiliation Changed"), "{all}");
    assert!(all.contains("X509v3 CRL Number"), "{all}");

    // The CRL's authority key identifier is the issuing CA's own key identifier, not the root's.
    let ski = text(&openssl(&[
        "x509",
        "-in",
        issuing.to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectKeyIdentifier",
    ]));
    let ski = ski.lines().nth(1).unwrap_or_default().trim().to_owned();
    assert!(!ski.is_empty());
    assert!(
        all.contains(&ski),
        "CRL AKI is not the issuing CA's SKI {ski}: {all}"
    );

    // The root's CRL verifies against the root.
    let (status, crl) = node.get_bytes("/crl/kyso-root.crl").await;
    assert_eq!(status, 200);
    let out = openssl_crl(dir.path(), &crl, &root, &[]);
    assert!(text(&out).contains("verify OK"), "{}", text(&out));
    node.stop().await;
}
