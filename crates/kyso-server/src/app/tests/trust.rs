//! Router tests of the trust services: the timestamp authority and CMS signing for API clients.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::Encode;
use der::asn1::Int;
use kyso_asn1::HashAlgorithm as ImprintHash;
use kyso_asn1::rfc3161::{MessageImprint, PkiFailureInfo, TimeStampReq, TimeStampResp};
use kyso_cades::verify::{DetachedContent, verify};
use kyso_hsm::testing;
use serde_json::{Value, json};
use sha2::Digest;

use super::{Harness, assert_error, staff_body};

fn query(hash: ImprintHash, digest: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    TimeStampReq {
        version: 1,
        message_imprint: MessageImprint::new(hash, digest).unwrap(),
        req_policy: None,
        nonce: nonce.map(|n| Int::new(n).unwrap()),
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .unwrap()
}

fn sha1_query() -> Vec<u8> {
    let mut req = TimeStampReq::from_der(&query(ImprintHash::Sha256, &[7; 32], None)).unwrap();
    req.message_imprint.hash_algorithm.oid = kyso_asn1::oids::ID_SHA1;
    req.message_imprint.hashed_message = der::asn1::OctetString::new([7u8; 20]).unwrap();
    req.to_der().unwrap()
}

async fn post_tsa(h: &Harness, body: Vec<u8>, content_type: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method("POST")
        .uri("/tsa")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let (status, headers, bytes) = h.send(request).await;
    if status == StatusCode::OK {
        assert_eq!(headers[header::CONTENT_TYPE], "application/timestamp-reply");
    }
    (status, bytes)
}

fn failure(reply: &[u8]) -> PkiFailureInfo {
    let resp = TimeStampResp::from_der(reply).unwrap();
    assert!(!resp.status.status.is_granted(), "{:?}", resp.status);
    assert!(resp.time_stamp_token.is_none());
    resp.status.fail_info.expect("a failure info")
}

#[tokio::test]
async fn the_tsa_grants_records_and_echoes_the_nonce() {
    let h = Harness::new("tsa-grant").await;
    let digest = sha2::Sha256::digest(b"van ban");
    let nonce = [0x3a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    let before = h.store().count_timestamps().await.unwrap();
    let (status, reply) = post_tsa(
        &h,
        query(ImprintHash::Sha256, &digest, Some(&nonce)),
        "application/timestamp-query",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let resp = TimeStampResp::from_der(&reply).unwrap();
    assert!(resp.status.status.is_granted(), "{:?}", resp.status);
    let token = resp.time_stamp_token.unwrap().to_der().unwrap();
    let parsed = kyso_asn1::rfc3161::parse_token_der(&token).unwrap();
    let tst = parsed.tst_info;
    assert_eq!(tst.nonce.unwrap().as_bytes(), &nonce);
    assert_eq!(tst.message_imprint.hashed_message.as_bytes(), &digest[..]);
    assert_eq!(tst.policy.to_string(), crate::config::DEFAULT_TSA_POLICY);
    assert_eq!(
        tst.gen_time.to_offset_date_time().unix_timestamp(),
        super::START
    );
    // The token's signature and ESS binding verify, and the TSA certificate is in it (certReq).
    let report = verify(&token, DetachedContent::None, &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failures);
    let tsa_cert = report.signers[0].signer_certificate.as_ref().unwrap();
    assert_eq!(tsa_cert, h.state.pki().tsa().1);
    // Durable in the ledger, under the serial the token carries.
    assert_eq!(h.store().count_timestamps().await.unwrap(), before + 1);
    let record = h
        .store()
        .get_timestamp(tst.serial_number.as_bytes())
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(record.message_imprint, digest.to_vec());
    assert_eq!(record.nonce.as_deref(), Some(&nonce[..]));
    assert_eq!(
        record.token_sha256,
        sha2::Sha256::digest(&token).to_vec(),
        "the ledger names the exact token sent"
    );
    let metrics = h.state.metrics().render();
    assert!(
        metrics.contains("kyso_timestamp_replies_total{status=\"granted\"} 1"),
        "{metrics}"
    );
    // The HSM drops every session (as after a token reset): the next query is granted again,
    // without restarting anything.
    h.state.pki().token().testing_close_all_sessions();
    let (status, reply) = post_tsa(
        &h,
        query(ImprintHash::Sha512, &[9; 64], None),
        "application/timestamp-query",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let resp = TimeStampResp::from_der(&reply).unwrap();
    assert!(resp.status.status.is_granted(), "{:?}", resp.status);
    assert!(h.state.pki().token().rebuild_count() >= 1);
    assert_eq!(h.store().count_timestamps().await.unwrap(), before + 2);
}

#[tokio::test]
async fn the_tsa_refuses_with_the_rfc_3161_failure_info() {
    let h = Harness::new("tsa-refuse").await;
    // SHA-1 imprints: badAlg.
    let (status, reply) = post_tsa(&h, sha1_query(), "application/timestamp-query").await;
    assert_eq!(status, StatusCode::OK);
    assert!(failure(&reply).contains(PkiFailureInfo::BAD_ALG));
    // A digest of the wrong length for its algorithm: badDataFormat.
    let (_, reply) = post_tsa(
        &h,
        query(ImprintHash::Sha256, &[1; 20], None),
        "application/timestamp-query",
    )
    .await;
    assert!(failure(&reply).contains(PkiFailureInfo::BAD_DATA_FORMAT));
    // Garbage: badDataFormat, never a panic or a 5xx.
    let (status, reply) = post_tsa(
        &h,
        b"\x30\x03\x02\x01".to_vec(),
        "application/timestamp-query",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(failure(&reply).contains(PkiFailureInfo::BAD_DATA_FORMAT));
    // An untrusted clock: timeNotAvailable, until it is trusted again.
    h.clock_trust.set(false);
    let (_, reply) = post_tsa(
        &h,
        query(ImprintHash::Sha384, &[2; 48], None),
        "application/timestamp-query",
    )
    .await;
    assert!(failure(&reply).contains(PkiFailureInfo::TIME_NOT_AVAILABLE));
    h.clock_trust.set(true);
    let (_, reply) = post_tsa(
        &h,
        query(ImprintHash::Sha384, &[2; 48], None),
        "application/timestamp-query",
    )
    .await;
    assert!(
        TimeStampResp::from_der(&reply)
            .unwrap()
            .status
            .status
            .is_granted()
    );
    assert_eq!(
        h.store().count_timestamps().await.unwrap(),
        1,
        "only the granted one is recorded"
    );
    // HTTP-level errors: the media type and the size.
    let (status, body) = post_tsa(
        &h,
        query(ImprintHash::Sha256, &[3; 32], None),
        "application/octet-stream",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let (status, _) = post_tsa(&h, vec![0x30; 10_000], "application/timestamp-query").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Enrolls a staff member with a key generated on the CA token (the default signing token) and
/// returns the key's label and a client key granted it.
async fn signing_key_and_client(h: &Harness, label: &str) -> (String, String) {
    let officer = h.client_key("officer").await;
    let (_, staff) = h
        .json("POST", "/v1/staff", Some(&officer), Some(staff_body()))
        .await;
    let id = staff["id"].as_i64().unwrap();
    let (status, issued) = h
        .json(
            "POST",
            &format!("/v1/staff/{id}/enroll"),
            Some(&officer),
            Some(
                json!({"token_label": h.config.hsm.token_label, "pin": testing::USER_PIN,
                        "key_algorithm": "p256", "key_label": label}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let (status, created) = h
        .json(
            "POST",
            "/v1/clients",
            Some(&h.admin_key),
            Some(json!({"name": "Hệ thống quản lý văn bản", "role": "client"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client_id = created["client"]["id"].as_i64().unwrap();
    let client = created["api_key"].as_str().unwrap().to_owned();
    let (status, body) = h
        .json(
            "PUT",
            &format!("/v1/clients/{client_id}/grants/{label}"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        issued["certificate"]["serial"].as_str().unwrap().to_owned(),
        client,
    )
}

/// The id of the client [`signing_key_and_client`] created.
async fn signing_client_id(h: &Harness) -> i64 {
    h.store()
        .list_api_clients()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Hệ thống quản lý văn bản")
        .unwrap()
        .id
}

#[tokio::test]
async fn a_granted_client_signs_a_batch_at_b_b_and_b_t() {
    let h = Harness::new("sign-batch").await;
    let (serial, client) = signing_key_and_client(&h, "an-ky-so").await;
    let doc = "Quyết định số 12/QĐ-UBND".as_bytes();
    let digest = sha2::Sha256::digest(b"detached by digest");
    let (status, body) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(json!({
                "key": "an-ky-so",
                "level": "B-T",
                "documents": [
                    {"id": "qd-12", "content": B64.encode(doc)},
                    {"id": "by-digest", "digest": B64.encode(digest), "digest_algorithm": "sha256"},
                    {"id": "bad", "content": "***"},
                    {"id": "wrong-hash", "digest": B64.encode([0u8; 48]), "digest_algorithm": "sha384"},
                ]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["certificate_serial"], serial);
    assert_eq!(body["level"], "B-T");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[2]["error"]["code"], "document_bad_base64");
    assert_eq!(
        results[3]["error"]["code"],
        "cades_digest_algorithm_mismatch"
    );
    // Attached: verifies with its own content, carries a signature timestamp from our TSA.
    let cms = B64.decode(results[0]["cms"].as_str().unwrap()).unwrap();
    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failure_codes());
    assert_eq!(report.econtent.as_deref(), Some(doc));
    let signer = &report.signers[0];
    assert_eq!(signer.timestamps.len(), 1);
    assert!(signer.timestamps[0].passed());
    assert_eq!(
        signer.signing_time.unwrap().unix_timestamp(),
        super::START,
        "signing-time comes from the injected clock"
    );
    // By digest: detached, checks against the digest.
    let cms = B64.decode(results[1]["cms"].as_str().unwrap()).unwrap();
    let report = verify(
        &cms,
        DetachedContent::Digest {
            algorithm: kyso_cades::DigestAlgorithm::Sha256,
            digest: &digest,
        },
        &[],
    )
    .unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failure_codes());
    assert!(report.econtent.is_none());
    // Each answer names what it signed: the document's SHA-256, or that of the digest.
    assert_eq!(
        results[0]["document_sha256"],
        hex::encode(sha2::Sha256::digest(doc))
    );
    assert_eq!(
        results[1]["document_sha256"],
        hex::encode(sha2::Sha256::digest(digest))
    );
    // One audit record with the signed documents' hashes.
    let audit = h.last_audit().await;
    assert_eq!(audit.action, "sign.cms");
    assert!(
        audit
            .details
            .contains(&hex::encode(sha2::Sha256::digest(doc)))
    );
    assert_eq!(h.store().count_timestamps().await.unwrap(), 2);

    // Detached with the content sent: the signature checks against that content only.
    let (status, body) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(json!({"key": "an-ky-so", "packaging": "detached",
                        "documents": [{"content": B64.encode(doc)}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["results"][0];
    assert_eq!(
        result["document_sha256"],
        hex::encode(sha2::Sha256::digest(doc))
    );
    let cms = B64.decode(result["cms"].as_str().unwrap()).unwrap();
    let report = verify(&cms, DetachedContent::Content(doc), &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failure_codes());
    assert!(report.econtent.is_none());
    let other = verify(&cms, DetachedContent::Content(b"another document"), &[]).unwrap();
    assert!(!other.passed());
}

#[tokio::test]
async fn signing_is_refused_without_a_grant_or_with_a_revoked_certificate() {
    let h = Harness::new("sign-refuse").await;
    let (serial, client) = signing_key_and_client(&h, "an-ky-so").await;
    let body = |key: &str| json!({"key": key, "documents": [{"content": B64.encode(b"x")}]});
    // Not granted: 403 and an audit record.
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(body("other-key")),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::FORBIDDEN,
        "signing_key_not_granted",
    );
    let audit = h.last_audit().await;
    assert_eq!(audit.action, "sign.cms");
    assert_eq!(audit.outcome, kyso_store::AuditOutcome::Failure);
    // An officer may not sign at all.
    let officer = h.client_key("officer").await;
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&officer),
            Some(body("an-ky-so")),
        )
        .await;
    assert_error(status, &value, StatusCode::FORBIDDEN, "forbidden");
    // Empty batches and unknown fields.
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(json!({"key": "an-ky-so", "documents": []})),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_empty",
    );
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(json!({"key": "an-ky-so", "level": "B-X", "documents": []})),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_json_fields",
    );
    // Suspended, then revoked: refused with the status's code.
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/suspend"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(body("an-ky-so")),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::CONFLICT,
        "signing_certificate_on_hold",
    );
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/revoke"),
            Some(&h.admin_key),
            Some(json!({"reason": "key_compromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, value) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client),
            Some(body("an-ky-so")),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::CONFLICT,
        "signing_certificate_revoked",
    );
    // Expired: the clock moves past notAfter (staff certificates: 730 days).
    let h2 = Harness::new("sign-expired").await;
    let (_, client2) = signing_key_and_client(&h2, "an-ky-so").await;
    h2.clock
        .advance(std::time::Duration::from_secs(731 * 86_400));
    let (status, value) = h2
        .json(
            "POST",
            "/v1/sign/cms",
            Some(&client2),
            Some(body("an-ky-so")),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::CONFLICT,
        "signing_certificate_expired",
    );
}

/// Once a key is loaded, its grant and its certificate's status are read together on every
/// call: a withdrawn grant, another client, a suspension and a revocation count at the very next
/// call, with the same answers and audit records as before the key was loaded.
#[tokio::test]
async fn refusals_count_at_once_for_a_loaded_signing_key() {
    let h = Harness::new("sign-refuse-loaded").await;
    let (serial, client) = signing_key_and_client(&h, "an-loaded").await;
    let client_id = signing_client_id(&h).await;
    let body = json!({"key": "an-loaded", "documents": [{"content": B64.encode(b"x")}]});
    let sign = |key: String| {
        let body = body.clone();
        let h = &h;
        async move { h.json("POST", "/v1/sign/cms", Some(&key), Some(body)).await }
    };
    // Loaded by a first signature.
    let (status, value) = sign(client.clone()).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    // Another client without a grant of it.
    let other = h.client_key("client").await;
    let (status, value) = sign(other).await;
    assert_error(
        status,
        &value,
        StatusCode::FORBIDDEN,
        "signing_key_not_granted",
    );
    let audit = h.last_audit().await;
    assert_eq!(audit.outcome, kyso_store::AuditOutcome::Failure);
    assert!(
        audit.details.contains("signing_key_not_granted"),
        "{}",
        audit.details
    );
    // Suspended: refused, audited with the reason; resumed: signs again.
    for (action, want) in [
        ("suspend", Some("signing_certificate_on_hold")),
        ("resume", None),
    ] {
        let (status, value) = h
            .json(
                "POST",
                &format!("/v1/ca/certificates/{serial}/{action}"),
                Some(&h.admin_key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {value}");
        let (status, value) = sign(client.clone()).await;
        match want {
            Some(code) => {
                assert_error(status, &value, StatusCode::CONFLICT, code);
                let audit = h.last_audit().await;
                assert_eq!(audit.outcome, kyso_store::AuditOutcome::Failure);
                assert!(audit.details.contains(code), "{}", audit.details);
            }
            None => assert_eq!(status, StatusCode::OK, "{value}"),
        }
    }
    // The grant withdrawn: refused at once.
    let (status, value) = h
        .json(
            "DELETE",
            &format!("/v1/clients/{client_id}/grants/an-loaded"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}: {value}");
    let (status, value) = sign(client.clone()).await;
    assert_error(
        status,
        &value,
        StatusCode::FORBIDDEN,
        "signing_key_not_granted",
    );
    // Granted again, then revoked: refused at once.
    let (status, value) = h
        .json(
            "PUT",
            &format!("/v1/clients/{client_id}/grants/an-loaded"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/revoke"),
            Some(&h.admin_key),
            Some(json!({"reason": "key_compromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, value) = sign(client.clone()).await;
    assert_error(
        status,
        &value,
        StatusCode::CONFLICT,
        "signing_certificate_revoked",
    );
}

/// A signing authorisation kept from an earlier call saves the next call's read, and a withdrawal
/// committed meanwhile by another process on the same database (a second store handle, as the
/// CLI would be) still refuses the very next call: its signatures are made but never released.
#[tokio::test]
async fn a_kept_authorisation_yields_to_a_withdrawal_by_another_process() {
    let h = Harness::new("sign-kept").await;
    let (serial, client) = signing_key_and_client(&h, "an-kept").await;
    let serial = hex::decode(serial).unwrap();
    let other_process = kyso_store::open_with_clock(&h.config.database_url(), h.clock.shared())
        .await
        .unwrap();
    let client_id = signing_client_id(&h).await;
    let body = json!({"key": "an-kept", "documents": [{"content": B64.encode(b"x")}]});
    let sign = || {
        let body = body.clone();
        let (h, client) = (&h, &client);
        async move {
            h.json("POST", "/v1/sign/cms", Some(client), Some(body))
                .await
        }
    };
    let releases = || async {
        let records = h.store().list_audit(1, 1000).await.unwrap();
        records
            .iter()
            .filter(|r| r.action == "sign.cms" && r.outcome == kyso_store::AuditOutcome::Success)
            .count()
    };
    let kept = || h.state.signing_authorisations().len();

    // The first call loads the key from the token; the second reads the authorisation and
    // keeps it.
    for n in 1..=2 {
        let (status, value) = sign().await;
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(releases().await, n);
    }
    assert_eq!(kept(), 1);

    // A withdrawal of something else moves the epoch: the kept authorisation is read again at
    // release, still holds, and the call's one record goes out at the new epoch.
    let bystander = other_process
        .create_api_client(&kyso_store::NewApiClient {
            name: "bystander".into(),
            role: kyso_store::ClientRole::Client,
            key_hash: vec![0x5a; 32],
            key_prefix: "kyso_bystande".into(),
        })
        .await
        .unwrap();
    other_process
        .grant_key(bystander.id, "an-kept")
        .await
        .unwrap();
    other_process
        .revoke_key_grant(bystander.id, "an-kept")
        .await
        .unwrap();
    let (status, value) = sign().await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(releases().await, 3);
    assert_eq!(kept(), 1);

    // Each withdrawal by the other process refuses the next call, audited with its reason, and
    // adds no release; restoring the authorisation lets the call after it sign.
    let hold = other_process.hold_certificate(&serial);
    hold.await.unwrap();
    let (status, value) = sign().await;
    assert_error(
        status,
        &value,
        StatusCode::CONFLICT,
        "signing_certificate_on_hold",
    );
    let audit = h.last_audit().await;
    assert_eq!(audit.outcome, kyso_store::AuditOutcome::Failure);
    assert!(
        audit.details.contains("signing_certificate_on_hold"),
        "{}",
        audit.details
    );
    assert_eq!(releases().await, 3);
    other_process.release_hold(&serial).await.unwrap();
    let (status, value) = sign().await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(releases().await, 4);

    other_process
        .revoke_key_grant(client_id, "an-kept")
        .await
        .unwrap();
    let (status, value) = sign().await;
    assert_error(
        status,
        &value,
        StatusCode::FORBIDDEN,
        "signing_key_not_granted",
    );
    assert_eq!(releases().await, 4);
    other_process.grant_key(client_id, "an-kept").await.unwrap();
    let (status, value) = sign().await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(releases().await, 5);

    other_process.disable_api_client(client_id).await.unwrap();
    let (status, value) = sign().await;
    assert_error(status, &value, StatusCode::UNAUTHORIZED, "auth_invalid_key");
    assert_eq!(releases().await, 5);
    // Nothing refused is kept.
    assert_eq!(kept(), 0);
}

/// `POST /v1/sign/cms` authenticates in the same read as the grant and the status once a key is
/// loaded, and reads the body before that: the answers must stay what they were. An unknown or
/// disabled key gets 401 (audited) whatever the body; a wrong role 403 before any complaint about
/// the body; a known caller's bad body its 4xx.
#[tokio::test]
async fn signing_authenticates_before_judging_the_body() {
    let h = Harness::new("sign-auth-order").await;
    let (_, client) = signing_key_and_client(&h, "an-auth").await;
    let good = json!({"key": "an-auth", "documents": [{"content": B64.encode(b"x")}]});
    let empty = json!({"key": "an-auth", "documents": []});
    let unknown_field = json!({"key": "an-auth", "documents": [], "extra": 1});
    // Loaded by a first signature, so that later calls take the one-read path.
    let (status, value) = h
        .json("POST", "/v1/sign/cms", Some(&client), Some(good.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let stranger = crate::auth::NewApiKey::generate();
    let officer = h.client_key("officer").await;
    let cases: [(Option<&str>, &Value, StatusCode, &str); 8] = [
        (
            Some(stranger.key.as_str()),
            &good,
            StatusCode::UNAUTHORIZED,
            "auth_invalid_key",
        ),
        (
            Some(stranger.key.as_str()),
            &empty,
            StatusCode::UNAUTHORIZED,
            "auth_invalid_key",
        ),
        (
            Some(stranger.key.as_str()),
            &unknown_field,
            StatusCode::UNAUTHORIZED,
            "auth_invalid_key",
        ),
        (None, &good, StatusCode::UNAUTHORIZED, "auth_missing"),
        (Some(&officer), &good, StatusCode::FORBIDDEN, "forbidden"),
        (Some(&officer), &empty, StatusCode::FORBIDDEN, "forbidden"),
        (
            Some(&client),
            &empty,
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_empty",
        ),
        (
            Some(&client),
            &unknown_field,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json_fields",
        ),
    ];
    for (key, body, want_status, want_code) in cases {
        let audits = h.store().list_audit(1, 10_000).await.unwrap().len();
        let (status, value) = h
            .json("POST", "/v1/sign/cms", key, Some(body.clone()))
            .await;
        assert_error(status, &value, want_status, want_code);
        let after = h.store().list_audit(1, 10_000).await.unwrap();
        if want_status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(after.len(), audits, "a body refusal is not audited");
        } else {
            let audit = after.last().unwrap();
            assert_eq!(after.len(), audits + 1, "{want_code} is audited once");
            assert_eq!(audit.outcome, kyso_store::AuditOutcome::Failure);
            let action = if want_status == StatusCode::UNAUTHORIZED {
                "auth.failed"
            } else {
                "auth.forbidden"
            };
            assert_eq!(audit.action, action, "{want_code}");
        }
    }
    // Disabled: refused at the very next call, on the one-read path too.
    let client_id = h
        .store()
        .find_active_api_client(&crate::auth::hash_key(&client))
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/clients/{client_id}/disable"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}: {value}");
    let (status, value) = h
        .json("POST", "/v1/sign/cms", Some(&client), Some(good.clone()))
        .await;
    assert_error(status, &value, StatusCode::UNAUTHORIZED, "auth_invalid_key");
    let audit = h.last_audit().await;
    assert_eq!(audit.action, "auth.failed");
    assert_eq!(audit.actor, crate::auth::display_prefix(&client));
}

/// The signing answer is written by hand (`SignOutcome::into_json`): it must be exactly what
/// serde_json writes for `SignCmsResponse`, for signed and failed documents, ids that need JSON
/// escapes, and a body whose base64 holds an escaped `\/` (read into an owned string, not
/// borrowed).
#[tokio::test]
async fn the_signing_answer_is_the_json_serde_writes() {
    let h = Harness::new("sign-json-bytes").await;
    let (_, client) = signing_key_and_client(&h, "an-json").await;
    // 0xff 0xff 0xff is "////" in base64: escaped as "\/\/\/\/" in the request text.
    let slashed = [0xffu8, 0xff, 0xff, b'a', b'b', b'c'];
    let escaped = B64.encode(slashed).replace('/', "\\/");
    assert!(escaped.contains("\\/"));
    let request_text = format!(
        r#"{{"key":"an-json","documents":[
            {{"id":"qđ \"12\"\n\\ tab\t","content":"{escaped}"}},
            {{"content":"{plain}"}},
            {{"id":"bad","content":"***"}},
            {{"id":"digest","digest":"{digest}","digest_algorithm":"sha256"}}
        ]}}"#,
        plain = B64.encode("Quyết định số 12/QĐ-UBND".as_bytes()),
        digest = B64.encode(sha2::Sha256::digest(b"by digest")),
    );
    let request = Request::builder()
        .method("POST")
        .uri("/v1/sign/cms")
        .header(header::AUTHORIZATION, format!("Bearer {client}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(request_text))
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let parsed: crate::signing::SignCmsResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        serde_json::to_vec(&parsed).unwrap(),
        body,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(parsed.results.len(), 4);
    assert_eq!(parsed.results[0].id.as_deref(), Some("qđ \"12\"\n\\ tab\t"));
    assert_eq!(parsed.results[1].id, None);
    assert_eq!(
        parsed.results[2].error.as_ref().map(|e| e.code.as_str()),
        Some("document_bad_base64")
    );
    let cms = B64
        .decode(parsed.results[0].cms.as_deref().unwrap())
        .unwrap();
    let report = verify(&cms, DetachedContent::None, &[]).unwrap();
    assert!(report.passed(), "{:?}", report.signers[0].failure_codes());
    assert_eq!(report.econtent.as_deref(), Some(&slashed[..]));
    assert!(parsed.results[3].ok);
}

/// Signs one document as `client` and returns the CMS DER.
async fn sign_one(h: &Harness, client: &str, level: &str, packaging: &str, doc: &[u8]) -> Vec<u8> {
    let (status, body) = h
        .json(
            "POST",
            "/v1/sign/cms",
            Some(client),
            Some(
                json!({"key": "an-ky-so", "level": level, "packaging": packaging,
                        "documents": [{"content": B64.encode(doc)}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    B64.decode(body["results"][0]["cms"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn verification_reports_carry_a_receipt_and_are_stored() {
    let h = Harness::new("verify-receipt").await;
    let (serial, client) = signing_key_and_client(&h, "an-ky-so").await;
    let doc = "Giấy phép xây dựng số 45/GPXD".as_bytes();
    let cms = sign_one(&h, &client, "B-T", "detached", doc).await;
    h.clock.advance(std::time::Duration::from_secs(60));
    let (status, body) = h
        .json(
            "POST",
            "/v1/verify",
            Some(&client),
            Some(json!({"signature": B64.encode(&cms), "content": B64.encode(doc)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["indication"], "TOTAL-PASSED", "{body:#}");
    let report = &body["statement"]["report"];
    let signature = &report["signatures"][0];
    assert_eq!(signature["indication"], "TOTAL-PASSED");
    assert_eq!(signature["time_source"], "timestamp");
    assert_eq!(signature["level"], "B-T");
    assert_eq!(signature["signer_certificate"]["serial"], serial);
    // Identity numbers are masked in reports.
    let text = body.to_string();
    assert!(!text.contains("079212345645"), "{text}");
    assert_eq!(
        body["statement"]["input"]["content_sha256"],
        hex::encode(sha2::Sha256::digest(doc))
    );
    // The receipt is a detached signature over the exact statement text, by the validation
    // service, with a timestamp, and it validates with the service's own trust store.
    let statement_json = body["statement_json"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(statement_json).unwrap();
    assert_eq!(parsed, body["statement"]);
    let receipt = B64.decode(body["receipt"].as_str().unwrap()).unwrap();
    let checked = h
        .state
        .trust()
        .validator()
        .validate_cms(
            kyso_cades::CmsInput {
                detached: DetachedContent::Content(statement_json.as_bytes()),
                ..kyso_cades::CmsInput::new(&receipt)
            },
            kyso_clock::Clock::now_utc(&h.clock),
        )
        .await
        .unwrap();
    assert_eq!(checked.indication.as_str(), "TOTAL-PASSED", "{checked:#?}");
    assert_eq!(checked.signatures[0].level.name(), "B-LT");
    let signer = checked.signatures[0].signer.as_ref().unwrap();
    assert!(
        format!("{signer:?}").contains("kyso Validation Service"),
        "{signer:?}"
    );
    // Stored: the same answer from GET, for this client; not for another client.
    let id = body["id"].as_str().unwrap();
    let (status, again) = h
        .json(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&client),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["statement_json"], body["statement_json"]);
    assert_eq!(again["receipt"], body["receipt"]);
    let other = h.client_key("client").await;
    let (status, value) = h
        .json(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::NOT_FOUND,
        "verification_not_found",
    );
    let (status, value) = h
        .json(
            "GET",
            "/v1/verifications/..%2Fetc",
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::NOT_FOUND,
        "verification_not_found",
    );
    let records = h.store().list_audit(1, 1000).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.action == "verify" && r.target == format!("verification:{id}")),
        "the verification is audited"
    );
}

#[tokio::test]
async fn tampering_gives_the_etsi_sub_indications() {
    let h = Harness::new("verify-tamper").await;
    let (_, client) = signing_key_and_client(&h, "an-ky-so").await;
    let doc = b"Thong bao ket qua";
    let cms = sign_one(&h, &client, "B-B", "detached", doc).await;
    let verify = |signature: Vec<u8>, content: &[u8]| json!({"signature": B64.encode(signature), "content": B64.encode(content)});
    // Another document: HASH_FAILURE.
    let (status, body) = h
        .json(
            "POST",
            "/v1/verify",
            Some(&client),
            Some(verify(cms.clone(), b"other")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["indication"], "TOTAL-FAILED");
    assert_eq!(
        body["statement"]["report"]["signatures"][0]["sub_indication"],
        "HASH_FAILURE"
    );
    // A flipped bit in the signature value (its last bytes): SIG_CRYPTO_FAILURE.
    let mut broken = cms.clone();
    let last = broken.len() - 3;
    broken[last] ^= 0x01;
    let (status, body) = h
        .json(
            "POST",
            "/v1/verify",
            Some(&client),
            Some(verify(broken, doc)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["indication"], "TOTAL-FAILED");
    assert_eq!(
        body["statement"]["report"]["signatures"][0]["sub_indication"],
        "SIG_CRYPTO_FAILURE"
    );
    // Not CMS at all, or truncated: 422 with the parser's code, never a 5xx.
    for garbage in [b"hello".to_vec(), cms[..cms.len() / 2].to_vec()] {
        let (status, value) = h
            .json(
                "POST",
                "/v1/verify",
                Some(&client),
                Some(verify(garbage, doc)),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value}");
        assert!(
            value["error"]["code"].as_str().unwrap().starts_with("cms_"),
            "{value}"
        );
    }
    let (status, value) = h
        .json(
            "POST",
            "/v1/verify",
            Some(&client),
            Some(json!({"signature": "***"})),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "verify_bad_base64",
    );
    // Larger than limits.max_document_request_bytes: 413 before anything is parsed.
    let huge = "A".repeat(h.config.limits.max_document_request_bytes + 1);
    let (status, value) = h
        .json(
            "POST",
            "/v1/verify",
            Some(&client),
            Some(json!({ "signature": huge })),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}
