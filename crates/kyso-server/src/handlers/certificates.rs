//! `/v1/ca/certificates` and `/v1/staff/{id}/enroll`: issuance, lookup, revocation, suspension,
//! resumption, renewal and re-key.

use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use der::Decode;
use kyso_ca::{CaError, CertificateOrder, IdentityNumber, ProfileKind, VnSubject};
use kyso_hsm::{HsmKey, KeyAlgorithm, Pin, Token};
use kyso_store::{
    AuditOutcome, CertStatus, CertificateQuery, CertificateRecord, ClientRole, KeyLocation,
    NewAuditEvent, RevocationReason,
};
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::Certificate;

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{AppJson, AppPath, AppQuery, parse_serial};
use crate::handlers::staff::{load_staff, staff_subject};
use crate::pki::{self, IssueContext};
use crate::state::AppState;

/// Who may issue, revoke and enroll.
pub const OFFICERS: &[ClientRole] = &[ClientRole::Admin, ClientRole::Officer];
/// Who may read certificates.
pub const READERS: &[ClientRole] = &[ClientRole::Admin, ClientRole::Officer, ClientRole::Auditor];

/// A subject as a request gives it; identity numbers are validated one by one so a bad one gets its
/// own code (e.g. `identity_cccd_invalid`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectInput {
    pub common_name: String,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    #[serde(default)]
    pub organisation: Option<String>,
    #[serde(default)]
    pub organisational_unit: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub identities: Vec<String>,
}

impl SubjectInput {
    fn into_subject(self) -> Result<VnSubject, AppError> {
        let mut identities = Vec::with_capacity(self.identities.len());
        for value in &self.identities {
            identities.push(IdentityNumber::from_str(value).map_err(pki::subject_error)?);
        }
        VnSubject {
            common_name: self.common_name,
            province: self.province,
            locality: self.locality,
            organisation: self.organisation,
            organisational_unit: self.organisational_unit,
            title: self.title,
            email: self.email,
            identities,
        }
        .normalised()
        .map_err(pki::subject_error)
    }
}

/// `POST /v1/ca/certificates` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub csr_pem: String,
    pub profile: String,
    #[serde(default)]
    pub subject: Option<SubjectInput>,
    #[serde(default)]
    pub staff_id: Option<i64>,
    #[serde(default)]
    pub validity_days: Option<u32>,
    #[serde(default)]
    pub client_auth: bool,
}

/// Enrollment and re-key body: a CSR, or a key generated on a token. Not `Debug`: it holds a PIN.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    #[serde(default)]
    pub csr_pem: Option<String>,
    #[serde(default)]
    pub token_label: Option<String>,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub key_algorithm: Option<KeyAlgorithm>,
    #[serde(default)]
    pub key_label: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub validity_days: Option<u32>,
    #[serde(default)]
    pub client_auth: bool,
}

/// `POST /v1/ca/certificates/{serial}/renew` body (optional). Not `Debug`: it may hold a PIN.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    #[serde(default)]
    pub csr_pem: Option<String>,
    #[serde(default)]
    pub validity_days: Option<u32>,
    /// PIN of the token holding the key, to write the renewed certificate beside it.
    #[serde(default)]
    pub pin: Option<String>,
}

/// `POST /v1/ca/certificates/{serial}/revoke` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: RevocationReason,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "default_limit")]
    pub limit: u32,
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub staff_id: Option<i64>,
}

fn default_limit() -> u32 {
    100
}

/// A certificate as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CertificateView {
    pub serial: String,
    pub ca: String,
    pub profile: String,
    pub subject: String,
    pub staff_id: Option<i64>,
    pub key_location: Option<KeyLocation>,
    pub status: CertStatus,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<RevocationReason>,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
    pub created_at: i64,
    pub certificate_pem: Option<String>,
}

impl CertificateView {
    pub fn new(record: &CertificateRecord) -> Result<CertificateView, AppError> {
        Ok(CertificateView {
            serial: hex::encode(&record.serial),
            ca: record.ca.clone(),
            profile: record.profile.clone(),
            subject: record.subject.clone(),
            staff_id: record.staff_id,
            key_location: record.key_location.clone(),
            status: record.status,
            not_before: record.not_before,
            not_after: record.not_after,
            revoked_at: record.revoked_at,
            revocation_reason: record.revocation_reason,
            replaces: record.replaces.as_deref().map(hex::encode),
            replaced_by: record.replaced_by.as_deref().map(hex::encode),
            created_at: record.created_at,
            certificate_pem: record
                .der
                .as_deref()
                .map(pki::certificate_pem)
                .transpose()?,
        })
    }
}

/// Where a token-generated key went.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenPlacement {
    pub token_label: String,
    pub key_label: String,
}

/// The answer to every issuing route.
#[derive(Debug, Serialize)]
pub struct IssuedCertificate {
    pub certificate: CertificateView,
    pub chain_pem: String,
    pub token: Option<TokenPlacement>,
}

fn verify_csr(pem: &str) -> Result<SubjectPublicKeyInfoOwned, AppError> {
    let csr = kyso_ca::verify_csr(pem.as_bytes()).map_err(CaError::from)?;
    Ok(csr.public_key().clone())
}

fn issued_response(
    state: &AppState,
    record: &CertificateRecord,
    token: Option<TokenPlacement>,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(IssuedCertificate {
            certificate: CertificateView::new(record)?,
            chain_pem: state.pki().chain_pem()?,
            token,
        }),
    ))
}

/// Issues through the durable order and audits the outcome: reserve the serial, sign in the HSM,
/// then complete the record and append its audit record in one transaction (one durable wait)
/// before the answer goes out. A failure after validation is audited too, on its own: a reserved
/// serial without a certificate must be explainable.
async fn issue_and_audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    order: &CertificateOrder,
    serial: (Vec<u8>, x509_cert::serial_number::SerialNumber),
    context: IssueContext,
    via: &str,
) -> Result<CertificateRecord, AppError> {
    let serial_hex = hex::encode(&serial.0);
    let replaces = context.replaces.as_deref().map(hex::encode);
    let pki = state.pki();
    let result = pki::issue_audited(
        pki.issuing(),
        pki.settings(),
        state.store(),
        state.clock(),
        state.metrics(),
        order,
        serial,
        context,
        |reserved| NewAuditEvent {
            actor: caller.actor(),
            action: action.to_owned(),
            target: serial_hex.clone(),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({
                "profile": reserved.profile,
                "subject": reserved.subject,
                "staff_id": reserved.staff_id,
                "ca": reserved.ca,
                "via": via,
                "replaces": replaces,
            }),
        },
    )
    .await;
    match result {
        Ok((record, _)) => Ok(record),
        Err(e) => {
            state
                .audit(NewAuditEvent {
                    actor: caller.actor(),
                    action: action.to_owned(),
                    target: serial_hex,
                    outcome: AuditOutcome::Failure,
                    details: serde_json::json!({
                        "profile": order.profile.name(),
                        "via": via,
                        "error": e.code(),
                    }),
                })
                .await?;
            Err(e)
        }
    }
}

pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<IssueRequest>,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    caller
        .require(&state, OFFICERS, "certificate.issue")
        .await?;
    let profile = pki::parse_profile(&body.profile)?;
    let public_key = verify_csr(&body.csr_pem)?;
    let subject = match (body.subject, body.staff_id) {
        (Some(subject), _) => subject.into_subject()?,
        (None, Some(id)) => staff_subject(&active_staff(&state, id).await?)?,
        (None, None) => {
            return Err(AppError::unprocessable(
                "subject_required",
                "Cần thông tin chủ thể (subject) hoặc mã cán bộ (staff_id).",
                "A subject or a staff_id is required.",
            ));
        }
    };
    if let Some(id) = body.staff_id {
        active_staff(&state, id).await?;
    }
    let order = CertificateOrder {
        profile,
        subject,
        public_key,
        validity_days: body.validity_days,
        client_auth: body.client_auth,
    };
    let context = IssueContext {
        staff_id: body.staff_id,
        key_location: None,
        replaces: None,
    };
    let record = issue_and_audit(
        &state,
        &caller,
        "certificate.issue",
        &order,
        pki::fresh_serial()?,
        context,
        "csr",
    )
    .await?;
    issued_response(&state, &record, None)
}

async fn active_staff(state: &AppState, id: i64) -> Result<kyso_store::StaffRecord, AppError> {
    let staff = load_staff(state, id).await?;
    if !staff.active {
        return Err(AppError::conflict(
            "staff_inactive",
            format!("Cán bộ {id} đã ngừng hoạt động."),
            format!("Staff member {id} is deactivated."),
        ));
    }
    Ok(staff)
}

/// A key to certify: from a CSR, or generated now on a token.
struct NewKey {
    public_key: SubjectPublicKeyInfoOwned,
    on_token: Option<(Token, HsmKey)>,
}

/// Opens the named token with the request's PIN (used once, never logged) and generates a key
/// on it; the generation is audited.
async fn key_from_request(
    state: &AppState,
    caller: &Caller,
    request: KeyRequest,
    default_token: Option<&str>,
    serial_hex: &str,
) -> Result<NewKey, AppError> {
    match (request.csr_pem, request.pin) {
        (Some(_), Some(_)) => Err(AppError::unprocessable(
            "enroll_ambiguous",
            "Chỉ gửi csr_pem hoặc (token_label, pin, key_algorithm), không gửi cả hai.",
            "Send either csr_pem or (token_label, pin, key_algorithm), not both.",
        )),
        (Some(csr), None) => Ok(NewKey {
            public_key: verify_csr(&csr)?,
            on_token: None,
        }),
        (None, Some(pin)) => {
            let pin = Pin::new(pin);
            let label = request
                .token_label
                .or_else(|| default_token.map(str::to_owned))
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "token_label_required",
                        "Cần nhãn token (token_label) để sinh khóa.",
                        "A token_label is required to generate the key.",
                    )
                })?;
            let algorithm = request.key_algorithm.ok_or_else(|| {
                AppError::unprocessable(
                    "key_algorithm_required",
                    "Cần thuật toán khóa (key_algorithm): p256, p384, rsa2048, rsa3072, rsa4096.",
                    "A key_algorithm is required: p256, p384, rsa2048, rsa3072 or rsa4096.",
                )
            })?;
            let key_label = request
                .key_label
                .unwrap_or_else(|| format!("kyso-{}", &serial_hex[..serial_hex.len().min(16)]));
            let module = state.module().clone();
            let token_label = label.clone();
            let token =
                tokio::task::spawn_blocking(move || module.open_token(&token_label, pin, 1))
                    .await
                    .map_err(|e| AppError::internal(format!("token open task: {e}")))?
                    .map_err(AppError::StaffToken)?;
            let generated = token.generate_key(&key_label, algorithm).await;
            state
                .audit(NewAuditEvent {
                    actor: caller.actor(),
                    action: "key.generate".to_owned(),
                    target: format!("{label}/{key_label}"),
                    outcome: if generated.is_ok() {
                        AuditOutcome::Success
                    } else {
                        AuditOutcome::Failure
                    },
                    details: serde_json::json!({
                        "token": label,
                        "key_label": key_label,
                        "algorithm": algorithm.to_string(),
                        "error": generated.as_ref().err().map(|e| e.code()),
                    }),
                })
                .await?;
            let key = generated.map_err(AppError::StaffToken)?;
            Ok(NewKey {
                public_key: key.public_key_info().clone(),
                on_token: Some((token, key)),
            })
        }
        (None, None) => Err(AppError::unprocessable(
            "key_source_required",
            "Cần csr_pem, hoặc token_label, pin và key_algorithm.",
            "Send csr_pem, or token_label, pin and key_algorithm.",
        )),
    }
}

/// Writes the issued certificate onto the token beside its key.
async fn write_back(
    state: &AppState,
    caller: &Caller,
    token: &Token,
    key: &HsmKey,
    record: &CertificateRecord,
) -> Result<TokenPlacement, AppError> {
    let der = record
        .der
        .as_deref()
        .ok_or_else(|| AppError::internal("completed certificate without DER"))?;
    let stored = token.store_certificate(key, der).await;
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "certificate.write_to_token".to_owned(),
            target: hex::encode(&record.serial),
            outcome: if stored.is_ok() {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            details: serde_json::json!({
                "token": token.label(),
                "key_label": key.label(),
                "error": stored.as_ref().err().map(|e| e.code()),
            }),
        })
        .await?;
    stored.map_err(AppError::StaffToken)?;
    Ok(TokenPlacement {
        token_label: token.label().to_owned(),
        key_label: key.label().to_owned(),
    })
}

pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<KeyRequest>,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    caller.require(&state, OFFICERS, "staff.enroll").await?;
    let staff = active_staff(&state, id).await?;
    let subject = staff_subject(&staff)?;
    let profile = match &body.profile {
        Some(name) => pki::parse_profile(name)?,
        None => ProfileKind::StaffSigning,
    };
    let validity_days = body.validity_days;
    let client_auth = body.client_auth;
    let serial = pki::fresh_serial()?;
    let serial_hex = hex::encode(&serial.0);
    // Plan first so a subject or profile problem is reported before a key is generated on a token.
    check_order(&state, profile, &subject, validity_days)?;
    let key = key_from_request(
        &state,
        &caller,
        body,
        staff.fields.token_label.as_deref(),
        &serial_hex,
    )
    .await?;
    issue_for_new_key(
        &state,
        &caller,
        "certificate.issue",
        serial,
        key,
        NewKeyOrder {
            profile,
            subject,
            validity_days,
            client_auth,
            staff_id: Some(id),
            replaces: None,
        },
    )
    .await
}

/// What an enrollment or re-key certifies, besides the key itself.
struct NewKeyOrder {
    profile: ProfileKind,
    subject: VnSubject,
    validity_days: Option<u32>,
    client_auth: bool,
    staff_id: Option<i64>,
    replaces: Option<Vec<u8>>,
}

/// Certifies a key from [`key_from_request`] (enrollment and re-key): the record says where a
/// token key lives, and the certificate is written back onto that token beside it.
async fn issue_for_new_key(
    state: &AppState,
    caller: &Caller,
    action: &str,
    serial: (Vec<u8>, x509_cert::serial_number::SerialNumber),
    key: NewKey,
    request: NewKeyOrder,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    let via = if key.on_token.is_some() {
        "token"
    } else {
        "csr"
    };
    let order = CertificateOrder {
        profile: request.profile,
        subject: request.subject,
        public_key: key.public_key,
        validity_days: request.validity_days,
        client_auth: request.client_auth,
    };
    let context = IssueContext {
        staff_id: request.staff_id,
        key_location: key.on_token.as_ref().map(|(token, key)| KeyLocation {
            token: token.label().to_owned(),
            label: key.label().to_owned(),
        }),
        replaces: request.replaces,
    };
    let record = issue_and_audit(state, caller, action, &order, serial, context, via).await?;
    let placement = match &key.on_token {
        Some((token, key)) => Some(write_back(state, caller, token, key, &record).await?),
        None => None,
    };
    issued_response(state, &record, placement)
}

/// Runs the profile's modify + validate on a stand-in key of the issuing CA's own, to refuse a bad
/// subject or validity before any key is generated.
fn check_order(
    state: &AppState,
    profile: ProfileKind,
    subject: &VnSubject,
    validity_days: Option<u32>,
) -> Result<(), AppError> {
    let pki = state.pki();
    let probe = CertificateOrder {
        profile,
        subject: subject.clone(),
        public_key: pki.issuing().key().public_key_info().clone(),
        validity_days,
        client_auth: false,
    };
    kyso_ca::issue::plan_issue(
        pki.issuing(),
        &probe,
        pki.settings(),
        state.clock().as_ref(),
    )?;
    Ok(())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.require(&state, READERS, "certificate.list").await?;
    let records = state
        .store()
        .list_certificates(&CertificateQuery {
            ca: query.ca,
            staff_id: query.staff_id,
            offset: query.offset,
            limit: query.limit.clamp(1, kyso_store::MAX_PAGE),
        })
        .await?;
    let views = records
        .iter()
        .map(CertificateView::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(serde_json::json!({ "certificates": views })))
}

async fn load_certificate(state: &AppState, serial: &str) -> Result<CertificateRecord, AppError> {
    let bytes = parse_serial(serial)?;
    state
        .store()
        .get_certificate(&bytes)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "certificate",
            id: hex::encode(&bytes),
        })
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    caller.require(&state, READERS, "certificate.get").await?;
    let record = load_certificate(&state, &serial).await?;
    let wants_der = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/pkix-cert"));
    if wants_der {
        let der = record.der.ok_or_else(|| {
            AppError::conflict(
                "certificate_not_completed",
                "Chứng thư mới được đặt số hiệu, chưa được ký xong.",
                "The certificate's serial is reserved but no signed certificate was recorded.",
            )
        })?;
        return Ok((
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/pkix-cert"),
            )],
            der,
        )
            .into_response());
    }
    Ok(Json(CertificateView::new(&record)?).into_response())
}

/// A revocation, suspension or resumption: store, then the CA's new CRL, then audit.
async fn change_status(
    state: &AppState,
    caller: &Caller,
    serial: &str,
    action: &'static str,
    reason: Option<RevocationReason>,
) -> Result<Json<CertificateView>, AppError> {
    let bytes = parse_serial(serial)?;
    let store = state.store();
    let result = match action {
        "revoke" => {
            let reason = reason.unwrap_or(RevocationReason::Unspecified);
            store.revoke_certificate(&bytes, reason).await
        }
        "suspend" => store.hold_certificate(&bytes).await,
        _ => store.release_hold(&bytes).await,
    };
    let record = match result {
        Ok(record) => record,
        Err(kyso_store::StoreError::NotFound { .. }) => {
            return Err(AppError::NotFound {
                what: "certificate",
                id: hex::encode(&bytes),
            });
        }
        Err(e) => return Err(e.into()),
    };
    state.metrics().status_changed(action);
    let crl = match state.pki().issuer(&record.ca) {
        Some(issuer) => {
            pki::regenerate_crl(
                issuer,
                store,
                state.clock().as_ref(),
                state.config().crl.next_update_secs,
                state.metrics(),
            )
            .await
        }
        None => Err(AppError::internal(format!(
            "certificate of unknown CA {}",
            record.ca
        ))),
    };
    if let Err(e) = &crl {
        // The change is durable; the periodic task signs the CRL once the HSM answers again.
        tracing::error!(ca = %record.ca, code = e.code(), error = %e, "CRL regeneration failed");
        state.mark_crl_stale(&record.ca);
    }
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: format!("certificate.{action}"),
            target: hex::encode(&record.serial),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({
                "ca": record.ca,
                "status": record.status.as_str(),
                "reason": record.revocation_reason,
                "crl_regenerated": crl.is_ok(),
            }),
        })
        .await?;
    Ok(Json(CertificateView::new(&record)?))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
    AppJson(body): AppJson<RevokeRequest>,
) -> Result<Json<CertificateView>, AppError> {
    caller
        .require(&state, OFFICERS, "certificate.revoke")
        .await?;
    if !body.reason.is_revocation() {
        return Err(AppError::unprocessable(
            "revocation_reason_not_allowed",
            "Lý do certificate_hold dùng cho tạm dừng (/suspend); remove_from_crl không được dùng.",
            "Reason certificate_hold is for /suspend; remove_from_crl is not used.",
        ));
    }
    change_status(&state, &caller, &serial, "revoke", Some(body.reason)).await
}

pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
) -> Result<Json<CertificateView>, AppError> {
    caller
        .require(&state, OFFICERS, "certificate.suspend")
        .await?;
    change_status(&state, &caller, &serial, "suspend", None).await
}

pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
) -> Result<Json<CertificateView>, AppError> {
    caller
        .require(&state, OFFICERS, "certificate.resume")
        .await?;
    change_status(&state, &caller, &serial, "resume", None).await
}

/// The issued certificate behind a record, refusing one that was revoked or never completed.
fn replaceable(
    record: &CertificateRecord,
) -> Result<(Certificate, ProfileKind, VnSubject), AppError> {
    if record.status == CertStatus::Revoked {
        return Err(AppError::conflict(
            "certificate_revoked",
            "Chứng thư đã bị thu hồi, không thể gia hạn hay thay khóa.",
            "The certificate is revoked; it cannot be renewed or re-keyed.",
        ));
    }
    let der = record.der.as_deref().ok_or_else(|| {
        AppError::conflict(
            "certificate_not_completed",
            "Chứng thư mới được đặt số hiệu, chưa được ký xong.",
            "The certificate's serial is reserved but no signed certificate was recorded.",
        )
    })?;
    let certificate = Certificate::from_der(der)
        .map_err(|e| AppError::internal(format!("stored certificate does not parse: {e}")))?;
    let profile = pki::parse_profile(&record.profile)?;
    let subject = kyso_ca::read_name(certificate.tbs_certificate().subject())
        .and_then(|fields| fields.to_subject())
        .map_err(pki::subject_error)?;
    Ok((certificate, profile, subject))
}

pub async fn renew(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    caller
        .require(&state, OFFICERS, "certificate.renew")
        .await?;
    // The body is optional: an empty one renews with the defaults.
    let bytes = crate::extract::read_limited(request, state.config().limits.max_json_bytes).await?;
    let body: RenewRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        RenewRequest::default()
    } else {
        crate::extract::parse_json(&bytes)?
    };
    let old = load_certificate(&state, &serial).await?;
    let (certificate, profile, subject) = replaceable(&old)?;
    let public_key = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .clone();
    if let Some(csr) = &body.csr_pem
        && verify_csr(csr)? != public_key
    {
        return Err(AppError::unprocessable(
            "renew_key_mismatch",
            "Gia hạn giữ nguyên khóa: CSR phải mang đúng khóa công khai của chứng thư cũ.",
            "Renewal keeps the key: the CSR must carry the old certificate's public key.",
        ));
    }
    // With a PIN, the renewed certificate goes onto the token beside the key, as at enrollment.
    let on_token = match (&old.key_location, body.pin) {
        (Some(location), Some(pin)) => {
            let module = state.module().clone();
            let token_label = location.token.clone();
            let pin = Pin::new(pin);
            let token =
                tokio::task::spawn_blocking(move || module.open_token(&token_label, pin, 1))
                    .await
                    .map_err(|e| AppError::internal(format!("token open task: {e}")))?
                    .map_err(AppError::StaffToken)?;
            let key = token
                .find_key(&location.label)
                .await
                .map_err(AppError::StaffToken)?;
            Some((token, key))
        }
        _ => None,
    };
    let order = CertificateOrder {
        profile,
        subject,
        public_key,
        validity_days: body.validity_days,
        client_auth: false,
    };
    let context = IssueContext {
        staff_id: old.staff_id,
        key_location: old.key_location.clone(),
        replaces: Some(old.serial.clone()),
    };
    let record = issue_and_audit(
        &state,
        &caller,
        "certificate.renew",
        &order,
        pki::fresh_serial()?,
        context,
        "renew",
    )
    .await?;
    let placement = match &on_token {
        Some((token, key)) => Some(write_back(&state, &caller, token, key, &record).await?),
        None => None,
    };
    issued_response(&state, &record, placement)
}

pub async fn rekey(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(serial): AppPath<String>,
    AppJson(body): AppJson<KeyRequest>,
) -> Result<(StatusCode, Json<IssuedCertificate>), AppError> {
    caller
        .require(&state, OFFICERS, "certificate.rekey")
        .await?;
    let old = load_certificate(&state, &serial).await?;
    let (certificate, profile, subject) = replaceable(&old)?;
    let validity_days = body.validity_days;
    let client_auth = body.client_auth;
    let new_serial = pki::fresh_serial()?;
    let serial_hex = hex::encode(&new_serial.0);
    let default_token = old.key_location.as_ref().map(|l| l.token.clone());
    let key =
        key_from_request(&state, &caller, body, default_token.as_deref(), &serial_hex).await?;
    if &key.public_key == certificate.tbs_certificate().subject_public_key_info() {
        return Err(AppError::unprocessable(
            "rekey_same_key",
            "Thay khóa cần khóa mới, khác khóa của chứng thư cũ.",
            "Re-key needs a new key, different from the old certificate's.",
        ));
    }
    issue_for_new_key(
        &state,
        &caller,
        "certificate.rekey",
        new_serial,
        key,
        NewKeyOrder {
            profile,
            subject,
            validity_days,
            client_auth,
            staff_id: old.staff_id,
            replaces: Some(old.serial.clone()),
        },
    )
    .await
}
