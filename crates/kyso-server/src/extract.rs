//! Extractors whose rejections are [`AppError`]s, so malformed input gets the common JSON error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::state::AppState;

/// A JSON body, read up to the configured `limits.max_json_bytes`.
#[derive(Debug, Clone)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, AppError> {
        let limit = state.config().limits.max_json_bytes;
        let bytes = read_json_body(request, limit).await?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Reads a JSON body (by its `Content-Type`: `application/json` or `application/*+json`) up to
/// `limit` bytes, for routes whose limit is not `limits.max_json_bytes`.
pub async fn read_json_body(request: Request, limit: usize) -> Result<Bytes, AppError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(AppError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    read_limited(request, limit).await
}

/// Reads a whole body, refusing more than `limit` bytes (413 with the limit named).
pub async fn read_limited(request: Request, limit: usize) -> Result<Bytes, AppError> {
    if let Some(length) = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(AppError::PayloadTooLarge { limit: Some(limit) });
    }
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit: Some(limit) })
}

/// Parses JSON, telling syntax errors (400 `malformed_json`) from wrong fields
/// (422 `invalid_json_fields`).
pub fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => AppError::unprocessable(
                "invalid_json_fields",
                format!("Trường dữ liệu JSON không hợp lệ: {e}"),
                format!("Invalid JSON fields: {e}"),
            ),
            Category::Syntax | Category::Eof | Category::Io => AppError::MalformedBody {
                code: "malformed_json",
                message: e.to_string(),
            },
        }
    })
}

/// Path parameters.
#[derive(Debug, Clone)]
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| AppPath(v))
            .map_err(AppError::from)
    }
}

/// Query parameters.
#[derive(Debug, Clone)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| AppQuery(v))
            .map_err(AppError::from)
    }
}

/// Parses a serial written as hex (case-insensitive, an optional `0x`, at most 20 bytes).
pub fn parse_serial(text: &str) -> Result<Vec<u8>, AppError> {
    let hex_text = text.strip_prefix("0x").unwrap_or(text);
    let bad = || {
        AppError::unprocessable(
            "bad_serial",
            format!(
                "Số hiệu chứng thư không hợp lệ: cần chuỗi hex 1-40 ký tự, nhận được {:?}.",
                truncate(text)
            ),
            format!(
                "Invalid certificate serial: expected 1-40 hex characters, got {:?}.",
                truncate(text)
            ),
        )
    };
    if hex_text.is_empty() || hex_text.len() > 2 * kyso_store::MAX_SERIAL_LEN {
        return Err(bad());
    }
    let padded = if hex_text.len() % 2 == 1 {
        format!("0{hex_text}")
    } else {
        hex_text.to_owned()
    };
    hex::decode(padded).map_err(|_| bad())
}

fn truncate(text: &str) -> String {
    text.chars().take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_parse_as_hex_with_bounds() {
        assert_eq!(parse_serial("0A0b").unwrap(), vec![0x0a, 0x0b]);
        assert_eq!(parse_serial("0xabc").unwrap(), vec![0x0a, 0xbc]);
        assert_eq!(parse_serial("zz").unwrap_err().code(), "bad_serial");
        assert!(parse_serial("").is_err());
        assert!(parse_serial(&"a".repeat(41)).is_err());
        assert_eq!(parse_serial(&"ab".repeat(20)).unwrap().len(), 20);
    }

    #[test]
    fn json_errors_are_told_apart() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // only deserialised
        struct Body {
            name: String,
        }
        assert_eq!(
            parse_json::<Body>(b"{").unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse_json::<Body>(b"{\"name\": 3}").unwrap_err().code(),
            "invalid_json_fields"
        );
        assert_eq!(parse_json::<Body>(b"{\"name\": \"a\"}").unwrap().name, "a");
    }
}
