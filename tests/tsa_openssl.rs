//! The timestamp authority against `openssl ts`: openssl makes the queries, a live node answers at
//! `POST /tsa`, and `openssl ts -reply -text` and `openssl ts -verify` read the replies.

use kyso_tests::{Node, NodeOptions, openssl, text};

/// `openssl ts -query` over `data` with `digest_flag` (e.g. "-sha256"); returns the query DER.
fn openssl_query(dir: &std::path::Path, name: &str, data: &[u8], digest_flag: &str) -> Vec<u8> {
    let data_path = dir.join(format!("{name}.txt"));
    std::fs::write(&data_path, data).expect("write data");
    let query_path = dir.join(format!("{name}.tsq"));
    let out = openssl(&[
        "ts",
        "-query",
        "-data",
        data_path.to_str().unwrap(),
        digest_flag,
        "-cert",
        "-out",
        query_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "openssl ts -query: {}", text(&out));
    std::fs::read(&query_path).expect("read query")
}

/// POSTs `query` to the node's TSA and returns `openssl ts -reply -text` of the reply (written to
/// `<name>.tsr` in `dir`).
async fn reply_text(node: &Node, dir: &std::path::Path, name: &str, query: Vec<u8>) -> String {
    let (status, reply) = node
        .post_bytes("/tsa", "application/timestamp-query", query)
        .await;
    assert_eq!(status, 200);
    let reply_path = dir.join(format!("{name}.tsr"));
    std::fs::write(&reply_path, &reply).unwrap();
    let out = openssl(&["ts", "-reply", "-in", reply_path.to_str().unwrap(), "-text"]);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// The nonce openssl put in a query, as it prints it.
fn query_nonce(dir: &std::path::Path, name: &str) -> String {
    let out = openssl(&[
        "ts",
        "-query",
        "-in",
        dir.join(format!("{name}.tsq")).to_str().unwrap(),
        "-text",
    ]);
    let all = text(&out);
    all.lines()
        .find_map(|l| l.trim().strip_prefix("Nonce: "))
        .unwrap_or_else(|| panic!("no nonce in {all}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verifies_replies_to_its_queries_and_reads_policy_accuracy_and_nonce() {
    let node = Node::start().await;
    let dir = tempfile::tempdir().unwrap();
    let chain = node.write_chain_pem(dir.path()).await;
    for (name, flag) in [
        ("s256", "-sha256"),
        ("s384", "-sha384"),
        ("s512", "-sha512"),
    ] {
        let query = openssl_query(
            dir.path(),
            name,
            format!("Công văn {name}").as_bytes(),
            flag,
        );
        let shown = reply_text(&node, dir.path(), name, query).await;
        let reply_path = dir.path().join(format!("{name}.tsr"));
        assert!(shown.contains("Status: Granted."), "{shown}");
        assert!(
            shown.contains(&format!(
                "Policy OID: {}",
                kyso_server::config::DEFAULT_TSA_POLICY
            )),
            "{shown}"
        );
        assert!(shown.contains("Accuracy: 0x01 seconds"), "{shown}");
        let nonce = query_nonce(dir.path(), name);
        assert!(
            shown.contains(&format!("Nonce: {nonce}")),
            "{nonce} in {shown}"
        );

        let out = openssl(&[
            "ts",
            "-verify",
            "-queryfile",
            dir.path().join(format!("{name}.tsq")).to_str().unwrap(),
            "-in",
            reply_path.to_str().unwrap(),
            "-CAfile",
            chain.to_str().unwrap(),
        ]);
        assert!(
            text(&out).contains("Verification: OK"),
            "openssl ts -verify ({flag}): {}",
            text(&out)
        );
    }
    // Three tokens, three durable ledger rows.
    assert_eq!(node.store.count_timestamps().await.unwrap(), 3);

    // SHA-1 is refused with badAlg, which openssl reads back.
    let query = openssl_query(dir.path(), "s1", b"old", "-sha1");
    let shown = reply_text(&node, dir.path(), "s1", query).await;
    assert!(shown.contains("Status: Rejected"), "{shown}");
    assert!(
        shown.contains("unrecognized or unsupported algorithm identifier"),
        "{shown}"
    );
    assert_eq!(node.store.count_timestamps().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_clock_check_on_the_tsa_answers_as_the_kernel_reports() {
    let node = Node::start_with(NodeOptions {
        require_synchronised_clock: true,
        ..NodeOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let query = openssl_query(dir.path(), "q", b"x", "-sha256");
    let shown = reply_text(&node, dir.path(), "q", query).await;
    // The default bound is 1 s of maximum error; the kernel reports its own.
    let trusted = match kyso_clock::system_sync_status() {
        kyso_clock::SyncStatus::Synchronised { max_error_us, .. } => max_error_us <= 1_000_000,
        _ => false,
    };
    if trusted {
        assert!(shown.contains("Status: Granted."), "{shown}");
    } else {
        assert!(shown.contains("Status: Rejected"), "{shown}");
        assert!(
            shown.contains("the TSA's time source is not available"),
            "{shown}"
        );
        assert_eq!(node.store.count_timestamps().await.unwrap(), 0);
    }
}
