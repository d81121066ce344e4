//! Two kyso nodes on one PostgreSQL database work together: issue on one, revoke on the other, and
//! OCSP on either sees it; their audit records form one intact chain.

use base64::Engine;
use kyso_tests::{Node, NodeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_on_one_node_revoke_on_the_other_ocsp_on_either() {
    let Some(cluster) = kyso_store::testing::postgres_or_skip() else {
        return;
    };
    let token = kyso_hsm::testing::fresh_token("shared-ca");
    let a = Node::start_with(NodeOptions {
        database_url: Some(cluster.url().to_owned()),
        token: Some(token.clone()),
        ..NodeOptions::default()
    })
    .await;
    let b = Node::start_with(NodeOptions {
        database_url: Some(cluster.url().to_owned()),
        token: Some(token),
        init: false,
        admin_key: Some(a.admin_key.clone()),
        ..NodeOptions::default()
    })
    .await;

    let issued = a.issue_staff_certificate("csr/p256.csr.pem").await;
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();

    let (status, view) = b.get_json(&format!("/v1/ca/certificates/{serial}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "good");

    let (status, body) = b
        .post_json(
            &format!("/v1/ca/certificates/{serial}/revoke"),
            serde_json::json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for node in [&a, &b] {
        let (status, view) = node
            .get_json(&format!("/v1/ca/certificates/{serial}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(view["status"], "revoked", "{view}");
        let status = node.ocsp_status_via_openssl(&issued).await;
        assert!(
            status.contains(": revoked") && status.contains("superseded"),
            "{status}"
        );
    }

    // Both nodes sign with one key and timestamp through one ledger: serials never collide, and
    // a signature made on one node verifies on the other.
    let (client, _) = a.signing_client("shared-signing", "p256").await;
    let doc = base64::engine::general_purpose::STANDARD.encode("Biên bản họp");
    let mut signatures = Vec::new();
    for node in [&a, &b, &a, &b] {
        let (status, signed) = node
            .post_json_as(
                &client,
                "/v1/sign/cms",
                serde_json::json!({"key": "shared-signing", "level": "B-T",
                                   "documents": [{"content": doc}]}),
            )
            .await;
        assert_eq!(status, 200, "{signed}");
        assert_eq!(signed["results"][0]["ok"], true, "{signed}");
        signatures.push(signed["results"][0]["cms"].as_str().unwrap().to_owned());
    }
    assert_eq!(a.store.count_timestamps().await.unwrap(), 4);
    let (status, verified) = b
        .post_json(
            "/v1/verify",
            serde_json::json!({"signature": signatures[0]}),
        )
        .await;
    assert_eq!(status, 201, "{verified}");
    assert_eq!(verified["indication"], "TOTAL-PASSED", "{verified:#}");
    let id = verified["id"].as_str().unwrap();
    let (status, again) = a.get_json(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["receipt"], verified["receipt"]);

    let report = kyso_server::tools::verify_audit_store(a.store.as_ref())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(report.verified >= 3, "{report}");
    a.stop().await;
    b.stop().await;
}
