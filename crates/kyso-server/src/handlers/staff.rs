//! `/v1/staff`: key officers register staff members (enrollment is in [`super::enroll`]).

use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kyso_ca::{IdentityNumber, VnSubject};
use kyso_store::{AuditOutcome, ClientRole, NewAuditEvent, StaffFields, StaffRecord};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::state::AppState;

/// Who may manage staff.
pub const STAFF_WRITERS: &[ClientRole] = &[ClientRole::Admin, ClientRole::Officer];
/// Who may read staff.
pub const STAFF_READERS: &[ClientRole] =
    &[ClientRole::Admin, ClientRole::Officer, ClientRole::Auditor];

/// `POST /v1/staff` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub full_name: String,
    pub agency: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    /// `PREFIX:number`, e.g. `CCCD:079212345645`.
    #[serde(default)]
    pub identity_numbers: Vec<String>,
    #[serde(default)]
    pub token_label: Option<String>,
}

/// `PATCH /v1/staff/{id}` body: only the fields present change; `null` clears an optional one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    pub full_name: Option<String>,
    pub agency: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub unit: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub province: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub locality: Option<Option<String>>,
    pub identity_numbers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub token_label: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Tells an absent field (outer `None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Paging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    100
}

/// Validates and normalises staff fields through the same subject rules certificates use, so a
/// staff member that can be registered can also be enrolled.
pub fn validate_staff(fields: StaffFields) -> Result<StaffFields, AppError> {
    let mut identities = Vec::with_capacity(fields.identity_numbers.len());
    for value in &fields.identity_numbers {
        identities.push(IdentityNumber::from_str(value).map_err(crate::pki::subject_error)?);
    }
    let subject = VnSubject {
        common_name: fields.full_name.clone(),
        province: fields.province.clone(),
        locality: fields.locality.clone(),
        organisation: Some(fields.agency.clone()),
        organisational_unit: fields.unit.clone(),
        title: fields.title.clone(),
        email: fields.email.clone(),
        identities,
    }
    .normalised()
    .map_err(crate::pki::subject_error)?;
    if let Some(label) = &fields.token_label
        && (label.is_empty() || label.len() > 32)
    {
        return Err(AppError::unprocessable(
            "bad_token_label",
            "Nhãn token phải dài 1-32 byte (giới hạn của PKCS#11).",
            "A token label must be 1-32 bytes long (the PKCS#11 limit).",
        ));
    }
    Ok(StaffFields {
        full_name: subject.common_name.clone(),
        agency: subject.organisation.clone().unwrap_or_default(),
        unit: subject.organisational_unit.clone(),
        title: subject.title.clone(),
        email: subject.email.clone(),
        province: subject.province.clone(),
        locality: subject.locality.clone(),
        identity_numbers: subject.identities.iter().map(ToString::to_string).collect(),
        token_label: fields.token_label,
    })
}

/// The certificate subject of a staff member.
pub fn staff_subject(staff: &StaffRecord) -> Result<VnSubject, AppError> {
    let mut identities = Vec::new();
    for value in &staff.fields.identity_numbers {
        identities.push(IdentityNumber::from_str(value).map_err(crate::pki::subject_error)?);
    }
    VnSubject {
        common_name: staff.fields.full_name.clone(),
        province: staff.fields.province.clone(),
        locality: staff.fields.locality.clone(),
        organisation: Some(staff.fields.agency.clone()),
        organisational_unit: staff.fields.unit.clone(),
        title: staff.fields.title.clone(),
        email: staff.fields.email.clone(),
        identities,
    }
    .normalised()
    .map_err(crate::pki::subject_error)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateStaff>,
) -> Result<(StatusCode, Json<StaffRecord>), AppError> {
    caller
        .require(&state, STAFF_WRITERS, "staff.create")
        .await?;
    let fields = validate_staff(StaffFields {
        full_name: body.full_name,
        agency: body.agency,
        unit: body.unit,
        title: body.title,
        email: body.email,
        province: body.province,
        locality: body.locality,
        identity_numbers: body.identity_numbers,
        token_label: body.token_label,
    })?;
    let staff = state.store().create_staff(&fields).await?;
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "staff.create".to_owned(),
            target: format!("staff:{}", staff.id),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "full_name": staff.fields.full_name, "agency": staff.fields.agency }),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(staff)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(page): AppQuery<Page>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.require(&state, STAFF_READERS, "staff.list").await?;
    let limit = page.limit.clamp(1, kyso_store::MAX_PAGE);
    let staff = state.store().list_staff(page.offset, limit).await?;
    Ok(Json(
        serde_json::json!({ "staff": staff, "offset": page.offset, "limit": limit }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<StaffRecord>, AppError> {
    caller.require(&state, STAFF_READERS, "staff.get").await?;
    Ok(Json(load_staff(&state, id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<UpdateStaff>,
) -> Result<Json<StaffRecord>, AppError> {
    caller
        .require(&state, STAFF_WRITERS, "staff.update")
        .await?;
    let current = load_staff(&state, id).await?;
    let mut fields = current.fields.clone();
    if let Some(v) = body.full_name {
        fields.full_name = v;
    }
    if let Some(v) = body.agency {
        fields.agency = v;
    }
    for (slot, value) in [
        (&mut fields.unit, body.unit),
        (&mut fields.title, body.title),
        (&mut fields.email, body.email),
        (&mut fields.province, body.province),
        (&mut fields.locality, body.locality),
        (&mut fields.token_label, body.token_label),
    ] {
        if let Some(v) = value {
            *slot = v;
        }
    }
    if let Some(v) = body.identity_numbers {
        fields.identity_numbers = v;
    }
    let fields = validate_staff(fields)?;
    let mut staff = if fields != current.fields {
        state.store().update_staff(id, &fields).await?
    } else {
        current.clone()
    };
    if let Some(active) = body.active
        && active != staff.active
    {
        staff = state.store().set_staff_active(id, active).await?;
    }
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "staff.update".to_owned(),
            target: format!("staff:{id}"),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "active": staff.active }),
        })
        .await?;
    Ok(Json(staff))
}

/// A staff member or 404.
pub async fn load_staff(state: &AppState, id: i64) -> Result<StaffRecord, AppError> {
    state
        .store()
        .get_staff(id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "staff",
            id: id.to_string(),
        })
}
