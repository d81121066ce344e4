//! Unauthenticated routes: health, metrics, the OpenAPI document, CA certificates, CRLs and OCSP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kyso_ca::ParsedOcspRequest;
use serde::Serialize;

use crate::error::AppError;
use crate::extract::AppPath;
use crate::ocsp_cache::OcspCacheKey;
use crate::pki::{self, StoreStatusSource};
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct ComponentHealth {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A stable code, never internal details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub database: ComponentHealth,
    pub hsm: ComponentHealth,
}

/// `GET /healthz`: the database answers a query and the issuing CA's key is still on the token.
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = state.store();
    let database = match store.ping().await {
        Ok(()) => ComponentHealth {
            ok: true,
            backend: Some(store.backend().to_owned()),
            token: None,
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "health: database check failed");
            ComponentHealth {
                ok: false,
                backend: Some(store.backend().to_owned()),
                token: None,
                error: Some(e.code().to_owned()),
            }
        }
    };
    let token = state.pki().token();
    let issuing_label = &state.config().keys.issuing_ca.label;
    let hsm = match token.find_key(issuing_label).await {
        Ok(_) => ComponentHealth {
            ok: true,
            backend: None,
            token: Some(token.label().to_owned()),
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "health: HSM check failed");
            ComponentHealth {
                ok: false,
                backend: None,
                token: Some(token.label().to_owned()),
                error: Some(e.code().to_owned()),
            }
        }
    };
    let ok = database.ok && hsm.ok;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ok" } else { "unavailable" },
            database,
            hsm,
        }),
    )
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// `GET /openapi.yaml`.
pub async fn openapi() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/yaml"))],
        crate::OPENAPI_YAML,
    )
        .into_response()
}

/// The CA name in `{name}.{suffix}`, or 404.
fn ca_name<'a>(file: &'a str, suffix: &str) -> Result<&'a str, AppError> {
    file.strip_suffix(suffix)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| AppError::NotFound {
            what: "ca",
            id: file.chars().take(80).collect(),
        })
}

/// `GET /ca/{ca}.crt`.
pub async fn ca_certificate(
    State(state): State<AppState>,
    AppPath(file): AppPath<String>,
) -> Result<Response, AppError> {
    let name = ca_name(&file, ".crt")?;
    let record = state
        .store()
        .get_ca(name)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "ca",
            id: name.to_owned(),
        })?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/pkix-cert"),
        )],
        record.certificate_der,
    )
        .into_response())
}

/// `GET /crl/{ca}.crl`: the latest stored CRL; signed now if there is none or it has expired.
pub async fn crl(
    State(state): State<AppState>,
    AppPath(file): AppPath<String>,
) -> Result<Response, AppError> {
    let name = ca_name(&file, ".crl")?;
    let issuer = state.pki().issuer(name).ok_or_else(|| AppError::NotFound {
        what: "ca",
        id: name.to_owned(),
    })?;
    let now = state.clock().now_unix();
    let mut latest = state.store().latest_crl(name).await?;
    if latest.as_ref().is_none_or(|crl| crl.next_update <= now) {
        pki::regenerate_crl(
            issuer,
            state.store(),
            state.clock().as_ref(),
            state.config().crl.next_update_secs,
            state.metrics(),
        )
        .await?;
        latest = state.store().latest_crl(name).await?;
    }
    let crl = latest.ok_or_else(|| AppError::NotFound {
        what: "crl",
        id: name.to_owned(),
    })?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/pkix-crl"),
        )],
        crl.der,
    )
        .into_response())
}

fn ocsp_response(der: Bytes, max_age: Option<i64>) -> Response {
    let mut response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/ocsp-response"),
        )],
        der,
    )
        .into_response();
    if let Some(age) = max_age.filter(|a| *a > 0)
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={age}, public, no-transform"))
    {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}

/// `POST /ocsp` with an `application/ocsp-request` body.
pub async fn ocsp_post(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AppError> {
    let is_ocsp = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/ocsp-request"));
    if !is_ocsp {
        return Err(AppError::UnsupportedMediaType {
            expected: "application/ocsp-request",
        });
    }
    let limit = state.config().limits.max_ocsp_request_bytes;
    let body = crate::extract::read_limited(request, limit).await?;
    Ok(answer(&state, kyso_ca::ocsp::parse_ocsp_request(&body)).await)
}

/// `GET /ocsp/{base64}`.
pub async fn ocsp_get(
    State(state): State<AppState>,
    AppPath(encoded): AppPath<String>,
) -> Result<Response, AppError> {
    // base64 is 4/3 of the DER, and percent-escapes may triple a character.
    let limit = state.config().limits.max_ocsp_request_bytes.div_ceil(3) * 4 * 3;
    if encoded.len() > limit {
        return Err(AppError::PayloadTooLarge { limit: Some(limit) });
    }
    Ok(answer(&state, kyso_ca::parse_ocsp_request_base64(&encoded)).await)
}

/// Answers a parsed request. Nonce-less single requests are served from the cache when the store's
/// current status matches what the cached response says.
async fn answer(
    state: &AppState,
    parsed: Result<ParsedOcspRequest, kyso_ca::OcspError>,
) -> Response {
    let metrics = state.metrics();
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            metrics.ocsp_response(e.code());
            let status = e.response_status();
            return ocsp_response(Bytes::from(kyso_ca::ocsp::error_response(status)), None);
        }
    };
    let pki = state.pki();
    let issuing = pki.issuing().name();
    let now = state.clock().now_unix();
    let ids: Vec<_> = parsed.cert_ids().collect();
    let mut prefetched = None;
    let mut status_label = "multi".to_owned();
    let mut cache_key = None;
    if let [id] = ids.as_slice() {
        let serial = id.serial_number.as_bytes().to_vec();
        match state.store().certificate_status(&serial).await {
            Ok(record) => {
                let info = pki::ocsp_status(issuing, record.as_ref());
                let (status, revoked_at, reason) = match info {
                    kyso_ca::CertStatusInfo::Good => ("good", None, None),
                    kyso_ca::CertStatusInfo::Unknown => ("unknown", None, None),
                    kyso_ca::CertStatusInfo::Revoked { revoked_at, reason } => (
                        "revoked",
                        Some(kyso_clock::unix_seconds(revoked_at)),
                        Some(reason.code()),
                    ),
                };
                status_label = status.to_owned();
                cache_key = parsed.cache_key().map(|cert_id_der| OcspCacheKey {
                    cert_id_der,
                    status,
                    revoked_at,
                    reason,
                });
                prefetched = Some((serial, record));
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP status lookup failed");
                let error = kyso_ca::OcspError::StatusLookup {
                    reason: e.code().to_owned(),
                    retry: true,
                };
                metrics.ocsp_response(error.code());
                let der = kyso_ca::ocsp::error_response(error.response_status());
                return ocsp_response(Bytes::from(der), None);
            }
        }
    }
    if let Some(key) = &cache_key
        && let Some(der) = state.ocsp_cache().get(key, now)
    {
        metrics.ocsp_response(&status_label);
        return ocsp_response(der, None);
    }
    let source = StoreStatusSource {
        store: state.store(),
        prefetched,
    };
    let answer = pki
        .responder()
        .respond(&parsed, &source, state.clock().as_ref())
        .await;
    if let Some(error) = &answer.error {
        if matches!(error, kyso_ca::OcspError::Hsm { .. }) {
            metrics.hsm_sign_error(pki.ocsp_key_label());
        }
        tracing::warn!(code = error.code(), error = %error, "OCSP request not answered normally");
        metrics.ocsp_response(error.code());
        return ocsp_response(Bytes::from(answer.der), None);
    }
    metrics.ocsp_response(&status_label);
    let der = Bytes::from(answer.der);
    let mut max_age = None;
    if let (Some(key), Some(hint)) = (cache_key, &answer.cache) {
        let next_update = kyso_clock::unix_seconds(hint.valid_until);
        // Refresh a little before nextUpdate so clients never get a response about to expire.
        let validity =
            i64::try_from(state.config().ocsp.response_validity_secs).unwrap_or(i64::MAX);
        let use_until = next_update - validity / 10;
        state.ocsp_cache().insert(key, der.clone(), use_until, now);
        max_age = Some(use_until - now);
    }
    ocsp_response(der, max_age)
}
