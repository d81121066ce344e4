//! What openssl signs, a live node verifies at `POST /v1/verify`: `openssl cms -sign` (attached,
//! detached, `-cades`) with a key whose certificate kyso issued, before and after its revocation;
//! a signature under an outside root configured as a pinned trust anchor (no revocation data:
//! "chưa xác định", never "hợp lệ"); and the receipt checked back with `openssl cms -verify`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_tests::{Node, NodeOptions, certs_test, openssl, text};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// `openssl cms -sign` of `doc` with `cert`/`key`; returns the DER signature.
fn openssl_sign(
    dir: &std::path::Path,
    doc: &str,
    cert: &str,
    key: &str,
    extra: &[&str],
) -> Vec<u8> {
    let out = dir.join("openssl.p7s");
    let mut args = vec![
        "cms",
        "-sign",
        "-binary",
        "-in",
        doc,
        "-signer",
        cert,
        "-inkey",
        key,
        "-outform",
        "DER",
        "-out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let output = openssl(&args);
    assert!(
        output.status.success(),
        "openssl cms -sign: {}",
        text(&output)
    );
    std::fs::read(out).unwrap()
}

async fn verify(node: &Node, body: serde_json::Value) -> serde_json::Value {
    let (status, answer) = node.post_json("/v1/verify", body).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_signatures_over_kyso_certificates_verify_until_revoked() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let issued = node.issue_staff_certificate("csr/p256.csr.pem").await;
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    let leaf = write(
        dir.path(),
        "leaf.pem",
        issued["certificate"]["certificate_pem"]
            .as_str()
            .unwrap()
            .as_bytes(),
    );
    let (_, issuing) = node.write_ca_pems(dir.path()).await;
    let key = certs_test("csr/keys/p256.key.pem");
    let doc_bytes = "CÔNG VĂN số 88/UBND-VP".as_bytes();
    let doc = write(dir.path(), "doc.txt", doc_bytes);
    let issuing = issuing.to_str().unwrap();

    // Attached, with the issuing CA in the signature.
    let attached = openssl_sign(
        dir.path(),
        &doc,
        &leaf,
        key.to_str().unwrap(),
        &["-nodetach", "-certfile", issuing],
    );
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&attached)}),
    )
    .await;
    assert_eq!(answer["indication"], "TOTAL-PASSED", "{answer:#}");
    let signature = &answer["statement"]["report"]["signatures"][0];
    assert_eq!(signature["signer_certificate"]["serial"], serial);
    assert_eq!(signature["signer"]["common_name"], "Nguyễn Văn An");
    assert_eq!(
        signature["signer"]["masked_identities"][0],
        "CCCD:0512******45"
    );

    // Detached CAdES (signing-certificate-v2), with the content; the chain from our own CA.
    let detached = openssl_sign(dir.path(), &doc, &leaf, key.to_str().unwrap(), &["-cades"]);
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&detached), "content": B64.encode(doc_bytes)}),
    )
    .await;
    assert_eq!(answer["indication"], "TOTAL-PASSED", "{answer:#}");
    // The same without its content: not a pass.
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&detached)}),
    )
    .await;
    assert_ne!(answer["indication"], "TOTAL-PASSED", "{answer:#}");
    // With the content's digest instead.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(doc_bytes);
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&detached), "digest": B64.encode(digest), "digest_algorithm": "sha256"}),
    )
    .await;
    assert_eq!(answer["indication"], "TOTAL-PASSED", "{answer:#}");

    // A signed attribute kyso does not know (an S/MIME receipt request): still valid, with a
    // warning that names it.
    let with_request = openssl_sign(
        dir.path(),
        &doc,
        &leaf,
        key.to_str().unwrap(),
        &[
            "-nodetach",
            "-receipt_request_all",
            "-receipt_request_to",
            "vanthu@quangngai.gov.vn",
        ],
    );
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&with_request)}),
    )
    .await;
    assert_eq!(answer["indication"], "TOTAL-PASSED", "{answer:#}");
    let warnings = answer["statement"]["report"]["signatures"][0]["warnings"].to_string();
    assert!(warnings.contains("unknown_signed_attribute"), "{warnings}");

    // The receipt: openssl verifies it over the statement text, under our chain.
    let chain = node.write_chain_pem(dir.path()).await;
    let statement = write(
        dir.path(),
        "statement.json",
        answer["statement_json"].as_str().unwrap().as_bytes(),
    );
    let receipt = write(
        dir.path(),
        "receipt.p7s",
        &B64.decode(answer["receipt"].as_str().unwrap()).unwrap(),
    );
    let out = openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        &receipt,
        "-content",
        &statement,
        "-CAfile",
        chain.to_str().unwrap(),
        "-out",
        "/dev/null",
    ]);
    assert!(
        out.status.success(),
        "openssl cms -verify of the receipt: {}",
        text(&out)
    );

    // Revoked (key compromise): the same signature no longer passes.
    let (status, revoked) = node
        .post_json(
            &format!("/v1/ca/certificates/{serial}/revoke"),
            serde_json::json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let answer = verify(
        &node,
        serde_json::json!({"signature": B64.encode(&attached)}),
    )
    .await;
    assert_ne!(answer["indication"], "TOTAL-PASSED", "{answer:#}");
    let sub = answer["statement"]["report"]["signatures"][0]["sub_indication"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(sub.starts_with("REVOKED"), "{sub}: {answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_root_is_trusted_only_when_pinned_and_without_revocation_data_is_undetermined() {
    let root = certs_test("external/root.pem");
    let fingerprint = text(&openssl(&[
        "x509",
        "-in",
        root.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]));
    let pin = fingerprint.trim().rsplit('=').next().unwrap().to_owned();
    let anchor_root = root.clone();
    let node = Node::start_with(NodeOptions {
        configure: Some(Box::new(move |config| {
            config.validation.anchor_files = vec![kyso_validate::AnchorFile {
                path: anchor_root,
                sha256: Some(pin),
                allow_sha1: false,
            }];
            // The Vietnamese bundles load beside it (their own tests are in kyso-validate).
            config.validation.bundles = vec!["vn-national".into(), "vn-government".into()];
        })),
        ..NodeOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let doc = write(dir.path(), "doc.txt", b"to khai");
    let cms = openssl_sign(
        dir.path(),
        &doc,
        certs_test("external/leaf.pem").to_str().unwrap(),
        certs_test("external/leaf.key.pem").to_str().unwrap(),
        &["-nodetach"],
    );
    let answer = verify(&node, serde_json::json!({"signature": B64.encode(&cms)})).await;
    let report = &answer["statement"]["report"];
    assert_eq!(report["indication"], "INDETERMINATE", "{answer:#}");
    assert_eq!(
        report["signatures"][0]["sub_indication"], "TRY_LATER",
        "{answer:#}"
    );
    assert!(
        report["message"]["vi"]
            .as_str()
            .unwrap()
            .starts_with("Chưa xác định"),
        "{report:#}"
    );
    node.stop().await;

    // The same root with a wrong pin: the node refuses to start.
    let store = kyso_store::open_with_clock("sqlite::memory:", kyso_clock::SystemClock::shared())
        .await
        .unwrap();
    let token = kyso_hsm::testing::fresh_token("pin");
    let mut config = kyso_server::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.hsm.module = kyso_hsm::testing::softhsm_module_path();
    config.hsm.token_label = token.label().to_owned();
    kyso_server::init::init_with(
        &config,
        store.clone(),
        &token,
        kyso_clock::SystemClock::shared(),
    )
    .await
    .unwrap();
    config.validation.anchor_files = vec![kyso_validate::AnchorFile {
        path: root,
        sha256: Some("00".repeat(32)),
        allow_sha1: false,
    }];
    let err = kyso_server::app::state_from_parts(
        config,
        store,
        kyso_clock::SystemClock::shared(),
        kyso_hsm::testing::softhsm().clone(),
        token,
    )
    .await
    .expect_err("a pin mismatch stops start-up");
    assert!(
        err.to_string().contains("fingerprint") || err.to_string().contains("pin"),
        "{err}"
    );
}
