//! Two kyso nodes on one PostgreSQL database work together: issue on one, revoke on the other, and
//! OCSP on either sees it; their audit records form one intact chain.

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

    let report = kyso_server::tools::verify_audit_store(a.store.as_ref())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(report.verified >= 3, "{report}");
    a.stop().await;
    b.stop().await;
}
