//! Router tests: the whole application over `tower::ServiceExt::oneshot`, with SQLite in a temp dir,
//! a fresh SoftHSM token and a ManualClock.

use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use der::{Decode, Encode};
use http_body_util::BodyExt;
use kyso_clock::ManualClock;
use kyso_hsm::testing;
use kyso_store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::Config;
use crate::error::ErrorBody;
use crate::state::AppState;

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

mod trust;

struct Harness {
    state: AppState,
    clock: ManualClock,
    /// The TSA's clock check (trusted unless a test says otherwise; the real check reads the
    /// kernel, whose answer depends on the machine).
    clock_trust: std::sync::Arc<kyso_tsa::SwitchableClockTrust>,
    config: Config,
    admin_key: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(name: &str) -> Harness {
        Harness::new_at(name, START).await
    }

    async fn new_at(name: &str, start: i64) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let token = testing::fresh_token(name);
        let config = Config {
            data_dir: dir.path().to_owned(),
            hsm: crate::config::HsmConfig {
                module: testing::softhsm_module_path(),
                token_label: token.label().to_owned(),
                ..Default::default()
            },
            ..Config::default()
        };
        config.validate().unwrap();
        let clock = ManualClock::at_unix(start);
        let store = kyso_store::open_with_clock(&config.database_url(), clock.shared())
            .await
            .unwrap();
        let report = crate::init_with(&config, store.clone(), &token, clock.shared())
            .await
            .unwrap();
        assert!(report.changed());
        let admin_key = std::fs::read_to_string(config.admin_key_path())
            .unwrap()
            .trim()
            .to_owned();
        let clock_trust = std::sync::Arc::new(kyso_tsa::SwitchableClockTrust::new(true));
        let state = crate::state_from_parts_with(
            config.clone(),
            store,
            clock.shared(),
            testing::softhsm().clone(),
            token,
            Some(clock_trust.clone()),
        )
        .await
        .unwrap();
        Harness {
            state,
            clock,
            clock_trust,
            config,
            admin_key,
            _dir: dir,
        }
    }

    fn router(&self) -> Router {
        crate::router(self.state.clone())
    }

    fn store(&self) -> &dyn Store {
        self.state.store()
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    async fn json(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        let (status, _, bytes) = self.send(request).await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn client_key(&self, role: &str) -> String {
        let (status, body) = self
            .json(
                "POST",
                "/v1/clients",
                Some(&self.admin_key),
                Some(json!({"name": format!("test {role}"), "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["api_key"].as_str().unwrap().to_owned()
    }

    async fn last_audit(&self) -> kyso_store::AuditRecord {
        let all = self.store().list_audit(1, 1000).await.unwrap();
        all.last().unwrap().clone()
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    let parsed: ErrorBody =
        serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(parsed.error.code, want_code, "{body}");
    assert!(!parsed.error.message_vi.is_empty() && !parsed.error.message_en.is_empty());
}

fn staff_body() -> Value {
    json!({
        "full_name": "Nguyễn Văn An",
        "agency": "ỦY BAN NHÂN DÂN TỈNH QUẢNG NGÃI",
        "unit": "SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
        "email": "annv@quangngai.gov.vn",
        "identity_numbers": ["CCCD:079212345645"]
    })
}

#[tokio::test]
async fn init_is_idempotent_and_the_admin_key_file_is_private() {
    let h = Harness::new("init-idem").await;
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(h.config.admin_key_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    let audit_before = h.store().list_audit(1, 1000).await.unwrap().len();
    let again = crate::init_with(
        &h.config,
        kyso_store::open_with_clock(&h.config.database_url(), h.clock.shared())
            .await
            .unwrap(),
        h.state.pki().token(),
        h.clock.shared(),
    )
    .await
    .unwrap();
    assert!(!again.changed(), "{again}");
    assert!(again.to_string().contains("nothing was changed"));
    assert_eq!(
        h.store().list_audit(1, 1000).await.unwrap().len(),
        audit_before
    );
    // Every key generation and issuance of init is in the audit chain, and the chain verifies.
    let records = h.store().list_audit(1, 1000).await.unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "key.generate")
            .count(),
        5,
        "root, issuing CA, TSA, OCSP signer, validation service"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "certificate.issue")
            .count(),
        5
    );
    assert!(
        crate::verify_audit_store(h.store())
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn a_missing_ca_key_stops_start_up_naming_key_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = testing::fresh_token("missing-key");
    let config = Config {
        data_dir: dir.path().to_owned(),
        hsm: crate::config::HsmConfig {
            token_label: token.label().to_owned(),
            ..Default::default()
        },
        ..Config::default()
    };
    let clock = ManualClock::at_unix(START);
    let store = kyso_store::open_with_clock(&config.database_url(), clock.shared())
        .await
        .unwrap();
    let err = crate::state_from_parts(
        config,
        store,
        clock.shared(),
        testing::softhsm().clone(),
        token.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "ca_key_missing");
    let message = err.to_string();
    assert!(
        message.contains("kyso-root-ca") && message.contains(token.label()),
        "{message}"
    );
}

#[tokio::test]
async fn authentication_failures_are_401_and_audited() {
    let h = Harness::new("auth-401").await;
    let (status, body) = h.json("GET", "/v1/staff", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "auth_missing");
    let record = h.last_audit().await;
    assert_eq!(
        (record.action.as_str(), record.actor.as_str()),
        ("auth.failed", "anonymous")
    );
    assert_eq!(record.target, "/v1/staff");

    let forged = crate::auth::NewApiKey::generate();
    let (status, body) = h.json("GET", "/v1/staff", Some(&forged.key), None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "auth_invalid_key");
    let record = h.last_audit().await;
    assert_eq!(record.action, "auth.failed");
    assert_eq!(record.actor, forged.prefix);

    let (status, body) = h.json("GET", "/v1/staff", Some("not-a-key"), None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "auth_malformed");

    // A disabled key stops working.
    let officer = h.client_key("officer").await;
    let id = h
        .store()
        .find_active_api_client(&crate::auth::hash_key(&officer))
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, _) = h
        .json(
            "POST",
            &format!("/v1/clients/{id}/disable"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.json("GET", "/v1/staff", Some(&officer), None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "auth_invalid_key");
    assert!(
        crate::verify_audit_store(h.store())
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn wrong_role_is_403_and_audited() {
    let h = Harness::new("auth-403").await;
    let auditor = h.client_key("auditor").await;
    let (status, body) = h
        .json("POST", "/v1/staff", Some(&auditor), Some(staff_body()))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let record = h.last_audit().await;
    assert_eq!(record.action, "auth.forbidden");
    assert_eq!(record.target, "staff.create");
    let client = h.client_key("client").await;
    let (status, body) = h.json("GET", "/v1/audit", Some(&client), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let officer = h.client_key("officer").await;
    let (status, body) = h
        .json(
            "POST",
            "/v1/clients",
            Some(&officer),
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // The auditor reads the audit log, page by page.
    let (status, body) = h
        .json("GET", "/v1/audit?from_seq=1&limit=2", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_from_seq"], 3);
}

#[tokio::test]
async fn malformed_oversized_unknown_and_wrong_method_share_the_error_shape() {
    let h = Harness::new("shapes").await;
    let key = h.admin_key.clone();
    let request = |body: Body, content_type: &str| {
        Request::builder()
            .method("POST")
            .uri("/v1/staff")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap()
    };
    let (status, _, bytes) = h
        .send(request(Body::from("{\"full_name\": "), "application/json"))
        .await;
    assert_error(
        status,
        &serde_json::from_slice(&bytes).unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );

    let big = format!(
        "{{\"full_name\": \"{}\"}}",
        "a".repeat(h.config.limits.max_json_bytes + 1)
    );
    let (status, _, bytes) = h.send(request(Body::from(big), "application/json")).await;
    assert_error(
        status,
        &serde_json::from_slice(&bytes).unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let (status, _, bytes) = h.send(request(Body::from("{}"), "text/plain")).await;
    assert_error(
        status,
        &serde_json::from_slice(&bytes).unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let (status, body) = h
        .json(
            "POST",
            "/v1/staff",
            Some(&key),
            Some(json!({"full_name": 5})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_json_fields",
    );

    let (status, body) = h.json("GET", "/v1/nothing-here", Some(&key), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "route_not_found");

    let (status, body) = h.json("DELETE", "/v1/staff", Some(&key), None).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    let (status, body) = h.json("GET", "/v1/staff/abc", Some(&key), None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_path_parameter");

    let (status, body) = h
        .json("GET", "/v1/ca/certificates/zz", Some(&key), None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_serial",
    );
}

#[tokio::test]
async fn staff_validation_errors_are_422_with_their_codes() {
    let h = Harness::new("staff-422").await;
    let mut body = staff_body();
    body["identity_numbers"] = json!(["CCCD:12345"]);
    let (status, value) = h
        .json("POST", "/v1/staff", Some(&h.admin_key), Some(body))
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity_cccd_invalid",
    );

    let mut body = staff_body();
    body["identity_numbers"] = json!(["XYZ:1"]);
    let (status, value) = h
        .json("POST", "/v1/staff", Some(&h.admin_key), Some(body))
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity_unknown_prefix",
    );

    let (status, created) = h
        .json("POST", "/v1/staff", Some(&h.admin_key), Some(staff_body()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["full_name"], "Nguyễn Văn An");
    let (status, updated) = h
        .json(
            "PATCH",
            &format!("/v1/staff/{id}"),
            Some(&h.admin_key),
            Some(json!({"title": "Chuyên viên", "unit": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "Chuyên viên");
    assert!(updated["unit"].is_null());
    let (status, value) = h
        .json("GET", "/v1/staff/999999", Some(&h.admin_key), None)
        .await;
    assert_error(status, &value, StatusCode::NOT_FOUND, "staff_not_found");
    let (status, list) = h.json("GET", "/v1/staff", Some(&h.admin_key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["staff"].as_array().unwrap().len(), 1);
}

/// A CSR made with a key on a SoftHSM token (no software private key).
async fn csr_pem(token: &kyso_hsm::Token, label: &str) -> String {
    use x509_cert::builder::AsyncBuilder;
    let key = token
        .generate_key(label, kyso_hsm::KeyAlgorithm::EcP256)
        .await
        .unwrap();
    let subject = x509_cert::name::Name::from_str("CN=requester").unwrap();
    let builder = x509_cert::request::RequestBuilder::new(subject).unwrap();
    let request = builder
        .build_async::<_, kyso_hsm::HsmSignature>(&key)
        .await
        .unwrap();
    der::pem::encode_string(
        "CERTIFICATE REQUEST",
        der::pem::LineEnding::LF,
        &request.to_der().unwrap(),
    )
    .unwrap()
}

/// A nonce-less OCSP request for `serial` under the issuing CA, DER.
fn ocsp_request(h: &Harness, serial: &[u8]) -> Vec<u8> {
    let authority = &h.state.pki().responder().authorities()[0];
    let cert_id = authority
        .cert_id(&x509_cert::serial_number::SerialNumber::new(serial).unwrap())
        .unwrap();
    let request = certval::ocsp::OcspRequest {
        tbs_request: certval::ocsp::TbsRequest {
            request_list: vec![certval::ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            ..Default::default()
        },
        optional_signature: None,
    };
    request.to_der().unwrap()
}

/// The single status in a successful OCSP response.
fn ocsp_status(der: &[u8]) -> certval::ocsp::CertStatus {
    let response = certval::ocsp::OcspResponse::from_der(der).unwrap();
    assert_eq!(
        response.response_status,
        certval::ocsp::OcspResponseStatus::Successful
    );
    let bytes = response.response_bytes.unwrap();
    let basic = certval::ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    basic.tbs_response_data.responses[0].cert_status
}

async fn post_ocsp(h: &Harness, der: Vec<u8>) -> Vec<u8> {
    let request = Request::builder()
        .method("POST")
        .uri("/ocsp")
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(Body::from(der))
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/ocsp-response");
    body
}

async fn crl_number(h: &Harness) -> i64 {
    h.store()
        .latest_crl("kyso-issuing")
        .await
        .unwrap()
        .unwrap()
        .number
}

#[tokio::test]
async fn issue_from_csr_then_revoke_updates_crl_and_ocsp() {
    let h = Harness::new("issue-revoke").await;
    let officer = h.client_key("officer").await;
    let requester = testing::fresh_token("requester");
    let csr = csr_pem(&requester, "req-key").await;
    let body = json!({
        "csr_pem": csr,
        "profile": "staff_signing",
        "subject": {
            "common_name": "Trần Thị Bình",
            "organisation": "SỞ Y TẾ",
            "identities": ["CCCD:079212345645"]
        }
    });
    let (status, issued) = h
        .json(
            "POST",
            "/v1/ca/certificates",
            Some(&officer),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    assert!(
        issued["certificate"]["certificate_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        issued["chain_pem"]
            .as_str()
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count()
            == 2
    );
    let record = h.last_audit().await;
    assert_eq!(
        (record.action.as_str(), record.target.as_str()),
        ("certificate.issue", serial.as_str())
    );

    // A bad identity number in the subject: 422 with its code, nothing issued.
    let mut bad = body.clone();
    bad["subject"]["identities"] = json!(["CCCD:07921234564X"]);
    let (status, value) = h
        .json("POST", "/v1/ca/certificates", Some(&officer), Some(bad))
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity_cccd_invalid",
    );
    let mut bad = body.clone();
    bad["profile"] = json!("sub_ca");
    let (status, value) = h
        .json("POST", "/v1/ca/certificates", Some(&officer), Some(bad))
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "profile_not_allowed",
    );
    let mut bad = body.clone();
    bad["csr_pem"] =
        json!("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    let (status, value) = h
        .json("POST", "/v1/ca/certificates", Some(&officer), Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value}");
    assert!(
        value["error"]["code"].as_str().unwrap().starts_with("csr_"),
        "{value}"
    );

    // GET as DER.
    let request = Request::builder()
        .uri(format!("/v1/ca/certificates/{serial}"))
        .header(header::AUTHORIZATION, format!("Bearer {officer}"))
        .header(header::ACCEPT, "application/pkix-cert")
        .body(Body::empty())
        .unwrap();
    let (status, headers, der) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pkix-cert");
    let certificate = x509_cert::Certificate::from_der(&der).unwrap();
    assert_eq!(
        hex::encode(certificate.tbs_certificate().serial_number().as_bytes()),
        serial
    );

    // OCSP: good, then (cached) good again.
    let serial_bytes = hex::decode(&serial).unwrap();
    let ocsp = ocsp_request(&h, &serial_bytes);
    let first = post_ocsp(&h, ocsp.clone()).await;
    assert!(matches!(
        ocsp_status(&first),
        certval::ocsp::CertStatus::Good(_)
    ));
    let second = post_ocsp(&h, ocsp.clone()).await;
    assert_eq!(
        first, second,
        "a nonce-less request is answered from the cache"
    );

    // Revoke: CRL number goes up, OCSP answers revoked at once (status re-checked per request).
    let before = crl_number(&h).await;
    h.clock.advance(Duration::from_secs(60));
    let (status, revoked) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/revoke"),
            Some(&officer),
            Some(json!({"reason": "key_compromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(crl_number(&h).await, before + 1);
    assert_eq!(h.last_audit().await.action, "certificate.revoke");
    let third = post_ocsp(&h, ocsp.clone()).await;
    assert!(matches!(
        ocsp_status(&third),
        certval::ocsp::CertStatus::Revoked(_)
    ));
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/revoke"),
            Some(&officer),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_error(status, &value, StatusCode::CONFLICT, "already_revoked");

    // The CRL served lists the serial.
    let (status, headers, crl_der) = h
        .send(
            Request::builder()
                .uri("/crl/kyso-issuing.crl")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pkix-crl");
    let crl = <x509_cert::crl::CertificateList>::from_der(&crl_der).unwrap();
    let listed = crl.tbs_cert_list.revoked_certificates.unwrap_or_default();
    assert!(
        listed
            .iter()
            .any(|r| r.serial_number.as_bytes() == serial_bytes.as_slice())
    );

    // GET OCSP in base64 form, and the metrics saw it all.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&ocsp);
    let (status, _, body) = h
        .send(
            Request::builder()
                .uri(format!("/ocsp/{encoded}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(
        ocsp_status(&body),
        certval::ocsp::CertStatus::Revoked(_)
    ));
    let (_, _, metrics) = h
        .send(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("kyso_certificates_issued_total{profile=\"staff_signing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kyso_ocsp_responses_total{status=\"good\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kyso_ocsp_responses_total{status=\"revoked\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("kyso_certificate_status_changes_total{action=\"revoke\"} 1"));
}

#[tokio::test]
async fn enroll_on_a_staff_token_writes_the_certificate_beside_the_key() {
    let h = Harness::new("enroll-token").await;
    let officer = h.client_key("officer").await;
    let staff_token = testing::fresh_token("staff-token");
    let (_, staff) = h
        .json("POST", "/v1/staff", Some(&officer), Some(staff_body()))
        .await;
    let id = staff["id"].as_i64().unwrap();

    // A wrong PIN is the client's error, and the PIN is nowhere in the audit log.
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/staff/{id}/enroll"),
            Some(&officer),
            Some(
                json!({"token_label": staff_token.label(), "pin": "9999", "key_algorithm": "p256"}),
            ),
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "hsm_wrong_pin",
    );

    let (status, issued) = h
        .json(
            "POST",
            &format!("/v1/staff/{id}/enroll"),
            Some(&officer),
            Some(json!({"token_label": staff_token.label(), "pin": testing::USER_PIN, "key_algorithm": "p256", "key_label": "an-signing"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["token"]["key_label"], "an-signing");
    let key = staff_token.find_key("an-signing").await.unwrap();
    let on_token = staff_token
        .find_certificate(&key)
        .await
        .unwrap()
        .expect("certificate on the token");
    let pem = issued["certificate"]["certificate_pem"].as_str().unwrap();
    assert_eq!(crate::pki::certificate_pem(&on_token).unwrap(), pem);
    let records = h.store().list_audit(1, 1000).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.action == "key.generate" && r.target.ends_with("/an-signing"))
    );
    assert!(
        records.iter().all(|r| !r.details.contains("\"pin\"")),
        "no PIN field is audited"
    );

    // Suspend, resume, renew (same key, new serial) and re-key (new key on the same token).
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    let crl_before = crl_number(&h).await;
    let (status, held) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/suspend"),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(
        (status, held["status"].as_str()),
        (StatusCode::OK, Some("hold"))
    );
    let (status, value) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/suspend"),
            Some(&officer),
            None,
        )
        .await;
    assert_error(status, &value, StatusCode::CONFLICT, "already_on_hold");
    let (status, resumed) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/resume"),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(
        (status, resumed["status"].as_str()),
        (StatusCode::OK, Some("good"))
    );
    assert_eq!(crl_number(&h).await, crl_before + 2);

    let (status, renewed) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/renew"),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{renewed}");
    assert_eq!(renewed["certificate"]["replaces"], serial.as_str());
    assert_ne!(renewed["certificate"]["serial"], serial.as_str());
    let old = h
        .json(
            "GET",
            &format!("/v1/ca/certificates/{serial}"),
            Some(&officer),
            None,
        )
        .await
        .1;
    assert_eq!(old["replaced_by"], renewed["certificate"]["serial"]);

    let (status, rekeyed) = h
        .json(
            "POST",
            &format!("/v1/ca/certificates/{serial}/rekey"),
            Some(&officer),
            Some(json!({"pin": testing::USER_PIN, "key_algorithm": "p384", "key_label": "an-signing-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rekeyed}");
    assert_eq!(rekeyed["token"]["token_label"], staff_token.label());
    assert!(staff_token.find_key("an-signing-2").await.is_ok());
    assert!(
        crate::verify_audit_store(h.store())
            .await
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn public_endpoints_serve_ca_certificates_health_and_openapi() {
    let h = Harness::new("public").await;
    let (status, headers, der) = h
        .send(
            Request::builder()
                .uri("/ca/kyso-root.crt")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pkix-cert");
    let root = x509_cert::Certificate::from_der(&der).unwrap();
    assert_eq!(
        root.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    let (status, _, body) = h
        .send(
            Request::builder()
                .uri("/ca/nope.crt")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error(
        status,
        &serde_json::from_slice(&body).unwrap(),
        StatusCode::NOT_FOUND,
        "ca_not_found",
    );
    let (status, health) = h.json("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"]["backend"], "sqlite");
    assert_eq!(health["hsm"]["ok"], true);
    let (status, headers, yaml) = h
        .send(
            Request::builder()
                .uri("/openapi.yaml")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/yaml");
    assert_eq!(yaml, crate::OPENAPI_YAML.as_bytes());
    // Malformed OCSP gets an OCSP malformedRequest, not a JSON error.
    let request = Request::builder()
        .method("POST")
        .uri("/ocsp")
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(Body::from(vec![0x30, 0x03, 0x02, 0x01]))
        .unwrap();
    let (status, _, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let response = certval::ocsp::OcspResponse::from_der(&body).unwrap();
    assert_eq!(
        response.response_status,
        certval::ocsp::OcspResponseStatus::MalformedRequest
    );
}

#[tokio::test]
async fn the_crl_task_resigns_when_the_interval_has_passed() {
    let h = Harness::new("crl-task").await;
    assert!(crate::regenerate_due_crls(&h.state).await.is_empty());
    let before = crl_number(&h).await;
    h.clock
        .advance(Duration::from_secs(h.config.crl.regenerate_every_secs));
    let done = crate::regenerate_due_crls(&h.state).await;
    assert_eq!(
        done,
        vec!["kyso-root".to_owned(), "kyso-issuing".to_owned()]
    );
    assert_eq!(crl_number(&h).await, before + 1);
}

#[tokio::test]
async fn every_served_route_is_in_the_table_and_documented() {
    let h = Harness::new("routes").await;
    let document: serde_norway::Value = serde_norway::from_str(crate::OPENAPI_YAML).unwrap();
    let paths = document["paths"].as_mapping().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method != "parameters" {
                documented.push((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let table: Vec<(String, String)> = crate::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.openapi_path.to_owned()))
        .collect();
    for entry in &table {
        assert!(
            documented.contains(entry),
            "route {entry:?} is not in api/openapi.yaml"
        );
    }
    for entry in &documented {
        assert!(
            table.contains(entry),
            "api/openapi.yaml documents {entry:?}, which the route table lacks"
        );
    }
    // And the router really serves each entry of the table (neither 404 route_not_found nor 405).
    for route in crate::routes::ROUTES {
        let path = route
            .axum_path
            .replace("{file}", "kyso-root.crt")
            .replace("{*request}", "AA")
            .replace("{id}", "1")
            .replace("{serial}", "0a")
            .replace("{key}", "k");
        let request = Request::builder()
            .method(route.method)
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = h.send(request).await;
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && code.as_deref() != Some("route_not_found"),
            "{} {path} is not served: {status} {code:?}",
            route.method
        );
    }
}

/// A raw HTTP/1.1 GET over loopback: status line and body.
async fn http_get(address: std::net::SocketAddr, path: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.lines().next().unwrap().to_owned();
    (status, raw[split + 4..].to_vec())
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_loopback_passes_openssl_verify_crl_and_ocsp() {
    use kyso_clock::Clock;
    // Real time, so that openssl's own clock agrees with the certificates, CRLs and responses.
    let h = Harness::new_at("loopback", kyso_clock::SystemClock.now_unix()).await;
    let officer = h.client_key("officer").await;
    let requester = testing::fresh_token("loopback-req");
    let body = json!({
        "csr_pem": csr_pem(&requester, "k").await,
        "profile": "staff_signing",
        "subject": { "common_name": "Lê Văn Cường", "organisation": "SỞ TÀI CHÍNH" }
    });
    let (status, issued) = h
        .json("POST", "/v1/ca/certificates", Some(&officer), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve_on(listener, h.state.clone(), async {
        let _ = stopped.await;
    }));

    let (status, health) = http_get(address, "/healthz").await;
    assert!(
        status.contains("200"),
        "{status} {}",
        String::from_utf8_lossy(&health)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (_, root_der) = http_get(address, "/ca/kyso-root.crt").await;
    let (_, issuing_der) = http_get(address, "/ca/kyso-issuing.crt").await;
    let (_, crl_der) = http_get(address, "/crl/kyso-issuing.crl").await;
    std::fs::write(
        path("root.pem"),
        crate::pki::certificate_pem(&root_der).unwrap(),
    )
    .unwrap();
    std::fs::write(
        path("issuing.pem"),
        crate::pki::certificate_pem(&issuing_der).unwrap(),
    )
    .unwrap();
    std::fs::write(path("chain.pem"), issued["chain_pem"].as_str().unwrap()).unwrap();
    std::fs::write(
        path("leaf.pem"),
        issued["certificate"]["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(path("issuing.crl"), &crl_der).unwrap();

    let dir_path = dir.path().to_owned();
    let url = format!("http://{address}/ocsp");
    let checks = tokio::task::spawn_blocking(move || {
        let d = dir_path.as_path();
        let verify = openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                "leaf.pem",
            ],
        );
        let crl = openssl(
            d,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "issuing.crl",
                "-CAfile",
                "chain.pem",
                "-noout",
            ],
        );
        let ocsp = openssl(
            d,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
                "-url",
                &url,
                "-CAfile",
                "chain.pem",
            ],
        );
        (verify, crl, ocsp)
    })
    .await
    .unwrap();
    let (verify, crl, ocsp) = checks;
    assert!(
        verify.0 && verify.1.contains("leaf.pem: OK"),
        "{}",
        verify.1
    );
    assert!(crl.0 && crl.1.contains("verify OK"), "{}", crl.1);
    assert!(ocsp.0 && ocsp.1.contains("leaf.pem: good"), "{}", ocsp.1);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn two_nodes_on_one_database_agree_on_ocsp_after_a_revocation() {
    let a = Harness::new("two-nodes").await;
    // Node B: its own store handle and state over the same database and token.
    let store_b = kyso_store::open_with_clock(&a.config.database_url(), a.clock.shared())
        .await
        .unwrap();
    let state_b = crate::state_from_parts(
        a.config.clone(),
        store_b,
        a.clock.shared(),
        testing::softhsm().clone(),
        a.state.pki().token().clone(),
    )
    .await
    .unwrap();
    let officer = a.client_key("officer").await;
    let requester = testing::fresh_token("two-nodes-req");
    let body = json!({
        "csr_pem": csr_pem(&requester, "k").await,
        "profile": "staff_signing",
        "subject": { "common_name": "Phạm Thu Hà", "organisation": "SỞ NỘI VỤ" }
    });
    let (_, issued) = a
        .json("POST", "/v1/ca/certificates", Some(&officer), Some(body))
        .await;
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();
    let ocsp = ocsp_request(&a, &hex::decode(&serial).unwrap());
    // Node A caches a "good" response.
    assert!(matches!(
        ocsp_status(&post_ocsp(&a, ocsp.clone()).await),
        certval::ocsp::CertStatus::Good(_)
    ));
    assert_eq!(a.state.ocsp_cache().len(), 1);
    // Node B revokes.
    let request = Request::builder()
        .method("POST")
        .uri(format!("/v1/ca/certificates/{serial}/revoke"))
        .header(header::AUTHORIZATION, format!("Bearer {officer}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"reason": "affiliation_changed"}).to_string(),
        ))
        .unwrap();
    let response = crate::router(state_b).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Node A sees it at once, despite its cached response.
    assert!(matches!(
        ocsp_status(&post_ocsp(&a, ocsp).await),
        certval::ocsp::CertStatus::Revoked(_)
    ));
}

#[tokio::test]
async fn nonce_requests_are_signed_fresh_and_echo_the_nonce() {
    let h = Harness::new("nonce").await;
    let authority = &h.state.pki().responder().authorities()[0];
    let serial = x509_cert::serial_number::SerialNumber::new(&[0x42; 16]).unwrap();
    let nonce = der::asn1::OctetString::new(vec![7u8; 16]).unwrap();
    let extension = x509_cert::ext::Extension {
        extn_id: der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
        critical: false,
        extn_value: der::asn1::OctetString::new(nonce.to_der().unwrap()).unwrap(),
    };
    let request = certval::ocsp::OcspRequest {
        tbs_request: certval::ocsp::TbsRequest {
            request_list: vec![certval::ocsp::Request {
                req_cert: authority.cert_id(&serial).unwrap(),
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![extension.clone()]),
            ..Default::default()
        },
        optional_signature: None,
    };
    let der = request.to_der().unwrap();
    let first = post_ocsp(&h, der.clone()).await;
    let second = post_ocsp(&h, der).await;
    assert!(matches!(
        ocsp_status(&first),
        certval::ocsp::CertStatus::Unknown(_)
    ));
    assert!(
        h.state.ocsp_cache().is_empty(),
        "nonce responses are not cached"
    );
    assert_ne!(first, second, "each nonce request gets its own signature");
    let response = certval::ocsp::OcspResponse::from_der(&first).unwrap();
    let basic = certval::ocsp::BasicOcspResponse::from_der(
        response.response_bytes.unwrap().response.as_bytes(),
    )
    .unwrap();
    let echoed = basic.tbs_response_data.response_extensions.unwrap();
    assert_eq!(echoed[0].extn_value, extension.extn_value);
}

#[tokio::test]
async fn clients_and_grants_are_managed_by_admins_and_audited() {
    let h = Harness::new("clients").await;
    let (status, created) = h
        .json(
            "POST",
            "/v1/clients",
            Some(&h.admin_key),
            Some(json!({"name": "Hệ thống QLVB", "role": "client"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["client"]["id"].as_i64().unwrap();
    let key = created["api_key"].as_str().unwrap();
    assert!(crate::auth::is_well_formed(key));
    assert!(created["client"].get("key_hash").is_none());
    assert_eq!(h.last_audit().await.action, "api_key.create");
    assert!(!h.last_audit().await.details.contains(key));

    let (status, grants) = h
        .json(
            "PUT",
            &format!("/v1/clients/{id}/grants/seal-so-y-te"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grants}");
    assert_eq!(grants["keys"], json!(["seal-so-y-te"]));
    assert_eq!(h.last_audit().await.action, "api_key.grant");
    let (status, value) = h
        .json(
            "PUT",
            &format!("/v1/clients/{id}/grants/bad%20name"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_error(
        status,
        &value,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_key_name",
    );
    let (status, _) = h
        .json(
            "DELETE",
            &format!("/v1/clients/{id}/grants/seal-so-y-te"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.last_audit().await.action, "api_key.grant_revoke");
    let (status, value) = h
        .json(
            "DELETE",
            &format!("/v1/clients/{id}/grants/seal-so-y-te"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_error(status, &value, StatusCode::NOT_FOUND, "grant_not_found");
    let (status, value) = h
        .json("GET", "/v1/clients/424242", Some(&h.admin_key), None)
        .await;
    assert_error(status, &value, StatusCode::NOT_FOUND, "client_not_found");
    let (status, list) = h.json("GET", "/v1/clients", Some(&h.admin_key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["clients"].as_array().unwrap().len(), 2);
    let (status, disabled) = h
        .json(
            "POST",
            &format!("/v1/clients/{id}/disable"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(disabled["disabled_at"].is_i64());
    assert_eq!(h.last_audit().await.action, "api_key.disable");
}
