//! `/v1/clients`: API clients, their keys (shown once) and signing-key grants. Admin only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kyso_store::{ApiClientRecord, AuditOutcome, ClientRole, NewApiClient, NewAuditEvent};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, NewApiKey};
use crate::error::AppError;
use crate::extract::{AppJson, AppPath};
use crate::state::AppState;

const ADMIN: &[ClientRole] = &[ClientRole::Admin];

/// `POST /v1/clients` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    pub name: String,
    pub role: ClientRole,
}

/// An API client as shown (never its key or hash).
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientView {
    pub id: i64,
    pub name: String,
    pub role: ClientRole,
    pub key_prefix: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl From<ApiClientRecord> for ClientView {
    fn from(r: ApiClientRecord) -> Self {
        ClientView {
            id: r.id,
            name: r.name,
            role: r.role,
            key_prefix: r.key_prefix,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// The answer to `POST /v1/clients`: the only time the key is shown.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    pub client: ClientView,
    pub api_key: String,
}

/// Creates a client with a fresh key; used by the route and by `kyso init` for the first admin.
pub async fn create_client(
    state_store: &dyn kyso_store::Store,
    name: &str,
    role: ClientRole,
) -> Result<(ApiClientRecord, NewApiKey), AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "bad_client_name",
            "Tên ứng dụng khách phải dài 1-200 byte, không có ký tự điều khiển.",
            "A client name must be 1-200 bytes without control characters.",
        ));
    }
    let key = NewApiKey::generate();
    let record = state_store
        .create_api_client(&NewApiClient {
            name: name.to_owned(),
            role,
            key_hash: key.hash.to_vec(),
            key_prefix: key.prefix.clone(),
        })
        .await?;
    Ok((record, key))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateClient>,
) -> Result<(StatusCode, Json<CreatedClient>), AppError> {
    caller.require(&state, ADMIN, "api_key.create").await?;
    let (record, key) = create_client(state.store(), &body.name, body.role).await?;
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "api_key.create".to_owned(),
            target: format!("client:{}", record.id),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({
                "name": record.name,
                "role": record.role.as_str(),
                "key_prefix": record.key_prefix,
            }),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client: record.into(),
            api_key: key.key.as_str().to_owned(),
        }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.require(&state, ADMIN, "api_key.list").await?;
    let clients: Vec<ClientView> = state
        .store()
        .list_api_clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect();
    Ok(Json(serde_json::json!({ "clients": clients })))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<ClientView>, AppError> {
    caller.require(&state, ADMIN, "api_key.get").await?;
    Ok(Json(load_client(&state, id).await?.into()))
}

pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<ClientView>, AppError> {
    caller.require(&state, ADMIN, "api_key.disable").await?;
    load_client(&state, id).await?;
    let record = state.store().disable_api_client(id).await?;
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "api_key.disable".to_owned(),
            target: format!("client:{id}"),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "key_prefix": record.key_prefix }),
        })
        .await?;
    Ok(Json(record.into()))
}

pub async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.require(&state, ADMIN, "api_key.grants").await?;
    load_client(&state, id).await?;
    let keys = state.store().list_key_grants(id).await?;
    Ok(Json(serde_json::json!({ "client_id": id, "keys": keys })))
}

pub async fn put_grant(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, key)): AppPath<(i64, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.require(&state, ADMIN, "api_key.grant").await?;
    check_key_name(&key)?;
    load_client(&state, id).await?;
    state.store().grant_key(id, &key).await?;
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "api_key.grant".to_owned(),
            target: format!("client:{id}"),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "key": key }),
        })
        .await?;
    let keys = state.store().list_key_grants(id).await?;
    Ok(Json(serde_json::json!({ "client_id": id, "keys": keys })))
}

pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, key)): AppPath<(i64, String)>,
) -> Result<StatusCode, AppError> {
    caller
        .require(&state, ADMIN, "api_key.grant_revoke")
        .await?;
    check_key_name(&key)?;
    load_client(&state, id).await?;
    if !state.store().revoke_key_grant(id, &key).await? {
        return Err(AppError::NotFound {
            what: "grant",
            id: format!("{id}/{key}"),
        });
    }
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "api_key.grant_revoke".to_owned(),
            target: format!("client:{id}"),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "key": key }),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_key_name(key: &str) -> Result<(), AppError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "bad_key_name",
            "Tên khóa ký phải dài 1-128 ký tự a-z, A-Z, 0-9, '-', '_' hoặc '.'.",
            "A signing-key name must be 1-128 characters of a-z, A-Z, 0-9, '-', '_' or '.'.",
        ))
    }
}

async fn load_client(state: &AppState, id: i64) -> Result<ApiClientRecord, AppError> {
    state
        .store()
        .get_api_client(id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "client",
            id: id.to_string(),
        })
}
