//! A key officer enrolls a staff member whose key is generated on their own token: pkcs11-tool then
//! sees the issued certificate on that token beside the key.

use kyso_tests::{Node, pkcs11_tool, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_writes_the_certificate_beside_the_key_on_the_staff_token() {
    let node = Node::start().await;
    let staff_token = kyso_hsm::testing::fresh_token("staff");
    let (status, staff) = node
        .post_json(
            "/v1/staff",
            serde_json::json!({
                "full_name": "Trần Thị Bình",
                "agency": "ỦY BAN NHÂN DÂN THÀNH PHỐ ĐÀ NẴNG",
                "unit": "SỞ Y TẾ",
                "title": "Chuyên viên",
                "email": "binhtt@danang.gov.vn",
                "province": "Đà Nẵng",
                "identity_numbers": ["CCCD:048190000123"]
            }),
        )
        .await;
    assert_eq!(status, 201, "{staff}");
    let id = staff["id"].as_i64().unwrap();

    let (status, issued) = node
        .post_json(
            &format!("/v1/staff/{id}/enroll"),
            serde_json::json!({
                "token_label": staff_token.label(),
                "pin": kyso_hsm::testing::USER_PIN,
                "key_algorithm": "p256"
            }),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let key_label = issued["token"]["key_label"].as_str().unwrap().to_owned();

    let out = pkcs11_tool(staff_token.label(), &["--list-objects"]).await;
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("Certificate Object"), "{listing}");
    assert!(listing.contains("Private Key Object"), "{listing}");
    // The certificate and the key share the label and the ID.
    let ids: Vec<&str> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("ID:"))
        .map(str::trim)
        .collect();
    assert!(
        ids.len() >= 2 && ids.iter().all(|i| *i == ids[0]),
        "{listing}"
    );
    assert!(
        listing.matches(&format!("label:      {key_label}")).count() >= 2,
        "{listing}"
    );
    node.stop().await;
}
