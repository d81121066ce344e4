//! CMS/CAdES signatures made by a live node at `POST /v1/sign/cms`, checked by `openssl cms
//! -verify` (attached and detached, B-B, B-T and B-LT) and the signature timestamp by `openssl ts
//! -verify`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_tests::{Node, openssl, text};
use sha2::Digest;

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// `openssl cms -verify` of a DER signature; `content`: the detached content's file.
fn openssl_cms_verify(sig: &str, chain: &str, content: Option<&str>, out: &str) -> String {
    let mut args = vec![
        "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", chain, "-out", out,
    ];
    if let Some(content) = content {
        args.extend(["-content", content]);
    }
    let output = openssl(&args);
    let all = text(&output);
    assert!(
        output.status.success() && all.contains("Verification successful"),
        "openssl cms -verify: {all}"
    );
    all
}

async fn sign(
    node: &Node,
    client: &str,
    key: &str,
    level: &str,
    packaging: &str,
    documents: &[&[u8]],
) -> Vec<Vec<u8>> {
    let docs: Vec<_> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| serde_json::json!({"id": format!("doc-{i}"), "content": B64.encode(d)}))
        .collect();
    let (status, body) = node
        .post_json_as(
            client,
            "/v1/sign/cms",
            serde_json::json!({"key": key, "level": level, "packaging": packaging,
                               "documents": docs}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["ok"], true, "{r}");
            B64.decode(r["cms"].as_str().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verifies_attached_and_detached_b_b_b_t_and_b_lt() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let chain = node.write_chain_pem(dir.path()).await;
    let chain = chain.to_str().unwrap();
    for (label, algorithm) in [("an-p256", "p256"), ("an-rsa", "rsa2048")] {
        let (client, _) = node.signing_client(label, algorithm).await;
        let docs: [&[u8]; 3] = [
            "QUYẾT ĐỊNH Về việc phê duyệt kế hoạch".as_bytes(),
            b"\x00\x01binary\xff",
            &[b'a'; 4096],
        ];
        for level in ["B-B", "B-T", "B-LT"] {
            // Attached: openssl prints back the content.
            let signed = sign(&node, &client, label, level, "attached", &docs).await;
            assert_eq!(signed.len(), 3);
            for (i, (cms, doc)) in signed.iter().zip(docs).enumerate() {
                let sig = write(dir.path(), &format!("{label}-{level}-{i}.p7s"), cms);
                let out = dir.path().join("out.bin");
                openssl_cms_verify(&sig, chain, None, out.to_str().unwrap());
                assert_eq!(
                    std::fs::read(&out).unwrap(),
                    doc,
                    "{level} attached content"
                );
            }
            // Detached: checked against the document beside it; another document fails.
            let signed = sign(&node, &client, label, level, "detached", &docs[..1]).await;
            let sig = write(dir.path(), &format!("{level}-detached.p7s"), &signed[0]);
            let content = write(dir.path(), "doc.txt", docs[0]);
            let out = dir.path().join("out.bin");
            openssl_cms_verify(&sig, chain, Some(&content), out.to_str().unwrap());
            let other = write(dir.path(), "other.txt", b"a different document");
            let bad = openssl(&[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                &sig,
                "-CAfile",
                chain,
                "-content",
                &other,
                "-out",
                "/dev/null",
            ]);
            assert!(!bad.status.success(), "a changed document must fail");
            assert!(
                text(&bad).contains("content verify error"),
                "{}",
                text(&bad)
            );

            let printed = text(&openssl(&[
                "cms", "-cmsout", "-print", "-inform", "DER", "-in", &sig,
            ]));
            // signing-certificate-v2 is signed in every level.
            assert!(
                printed.contains("id-smime-aa-signingCertificateV2"),
                "{printed}"
            );
            let has_token = printed.contains("id-smime-aa-timeStampToken");
            assert_eq!(has_token, level != "B-B", "{level}: {printed}");
            if level == "B-LT" {
                // The chain and the CA's CRLs travel in the signature.
                assert!(
                    printed.contains("crls:") && !printed.contains("crls:\n    <ABSENT>"),
                    "{printed}"
                );
                assert!(printed.contains("kyso Root CA"), "{printed}");
            }
            if has_token {
                check_signature_timestamp(dir.path(), &signed[0], chain);
            }
        }
    }
}

/// The signature timestamp of a B-T signature covers its signature value, and openssl's TSA
/// verification accepts the token.
fn check_signature_timestamp(dir: &std::path::Path, cms: &[u8], chain: &str) {
    let parsed = kyso_cades::parse::parse_signed_data(cms).expect("parse our CMS");
    let signer = &parsed.signer_infos[0];
    let digest = hex::encode(sha2::Sha256::digest(&signer.signature));
    let token = signer
        .unsigned(kyso_asn1::oids::ID_AA_TIME_STAMP_TOKEN)
        .next()
        .expect("a timestamp token")
        .values[0]
        .clone();
    let token_path = write(dir, "token.der", &token);
    let out = openssl(&[
        "ts",
        "-verify",
        "-digest",
        &digest,
        "-in",
        &token_path,
        "-token_in",
        "-CAfile",
        chain,
    ]);
    assert!(
        text(&out).contains("Verification: OK"),
        "openssl ts -verify of the signature timestamp: {}",
        text(&out)
    );
}
