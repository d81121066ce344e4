//! `POST /tsa`: the RFC 3161 timestamp protocol over HTTP (RFC 3161 section 3.4).

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// Answers a DER `TimeStampReq` with a DER `TimeStampResp`. A query the TSA refuses (bad
/// algorithm, unknown policy, untrusted clock...) still gets a 200 with a rejection status, as
/// RFC 3161 says; only a wrong media type or an oversized body is an HTTP error.
pub async fn timestamp(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AppError> {
    let is_query = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(kyso_tsa::QUERY_MEDIA_TYPE));
    if !is_query {
        return Err(AppError::UnsupportedMediaType {
            expected: kyso_tsa::QUERY_MEDIA_TYPE,
        });
    }
    let limit = state.config().limits.max_timestamp_query_bytes;
    let body = crate::extract::read_limited(request, limit).await?;
    let reply = state.trust().tsa().reply(&body).await;
    state.metrics().timestamp_status(reply.status);
    let mut response = reply.der.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(kyso_tsa::REPLY_MEDIA_TYPE),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
