//! openssl accepts the chains kyso issues over HTTP, with Vietnamese subjects intact.

use kyso_tests::{Node, openssl, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verify_accepts_an_issued_staff_chain() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = node.write_ca_pems(dir.path()).await;

    for csr in [
        "csr/p256.csr.pem",
        "csr/p384.csr.pem",
        "csr/rsa2048.csr.pem",
        "csr/rsa3072-pss.csr.pem",
    ] {
        let issued = node.issue_staff_certificate(csr).await;
        let leaf = dir.path().join("leaf.pem");
        std::fs::write(
            &leaf,
            issued["certificate"]["certificate_pem"].as_str().unwrap(),
        )
        .unwrap();
        let out = openssl(&[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ]);
        assert!(
            out.status.success() && text(&out).contains(": OK"),
            "{csr}: {}",
            text(&out)
        );

        let out = openssl(&[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "utf8,sep_comma_plus",
        ]);
        let subject = text(&out);
        assert!(subject.contains("CN=Nguyễn Văn An"), "{subject}");
        assert!(subject.contains("UID=CCCD:051212345645"), "{subject}");
        assert!(subject.contains("C=VN"), "{subject}");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_kyso_must_refuse_get_stable_codes() {
    let node = Node::start().await;
    for (csr, code) in [
        ("csr/weak-rsa1024.csr.pem", "csr_weak_key"),
        ("csr/sha1-rsa2048.csr.pem", "csr_sha1_signature"),
        ("csr/not-a-csr.pem", "csr_malformed"),
    ] {
        let csr_pem = std::fs::read_to_string(kyso_tests::certs_test(csr)).unwrap();
        let (status, body) = node
            .post_json(
                "/v1/ca/certificates",
                serde_json::json!({
                    "csr_pem": csr_pem,
                    "profile": "staff_signing",
                    "subject": {"common_name": "Nguyễn Văn An", "organisation": "UBND"}
                }),
            )
            .await;
        assert!((400..500).contains(&status), "{csr}: {status} {body}");
        assert_eq!(body["error"]["code"], code, "{csr}: {body}");
        assert!(
            body["error"]["message_vi"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(
            body["error"]["message_en"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    node.stop().await;
}
