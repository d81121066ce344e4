//! The one application error type: every failure a handler returns becomes an HTTP status and the body
//! `{"error": {"code": "...", "message_vi": "...", "message_en": "..."}}`.
//!
//! Client errors (4xx) say what was wrong. Server errors (5xx) keep the stable code but replace the
//! message with a generic one, and the details go to the log only.

use std::borrow::Cow;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No, malformed or unknown API key.
    #[error("authentication failed: {reason}")]
    Unauthenticated { reason: &'static str },
    /// The key's role may not use this route.
    #[error("role {role} may not do this; allowed: {allowed}")]
    Forbidden { role: String, allowed: String },
    /// The caller may sign, but not with this key (no grant).
    #[error("signing key {key} is not granted to this client")]
    KeyNotGranted { key: String },
    /// No such route.
    #[error("no route {method} {path}")]
    RouteNotFound { method: String, path: String },
    /// The route exists, not with this method.
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// A named thing does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The body is not JSON, or not the JSON the route expects.
    #[error("malformed request body: {message}")]
    MalformedBody { code: &'static str, message: String },
    /// The body exceeds the route's limit.
    #[error("request body too large (limit {limit:?} bytes)")]
    PayloadTooLarge { limit: Option<usize> },
    /// Wrong `Content-Type`.
    #[error("unsupported content type; expected {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// A well-formed request whose content is refused (bad identity number, unknown profile, ...).
    #[error("{message_en}")]
    Unprocessable {
        code: Cow<'static, str>,
        message_vi: String,
        message_en: String,
    },
    /// A state conflict (already revoked, name taken, ...).
    #[error("{message_en}")]
    Conflict {
        code: Cow<'static, str>,
        message_vi: String,
        message_en: String,
    },
    /// A dependency (database, HSM) is not reachable right now.
    #[error("{what} unavailable: {detail}")]
    Unavailable {
        code: Cow<'static, str>,
        what: &'static str,
        detail: String,
    },
    /// A store error; its own code is kept.
    #[error(transparent)]
    Store(#[from] kyso_store::StoreError),
    /// A CA error (profile, subject, CSR, signing); its own code is kept.
    #[error(transparent)]
    Ca(#[from] kyso_ca::CaError),
    /// A failure of the service's own (CA) token: never the client's fault.
    #[error("CA token: {0}")]
    Hsm(kyso_hsm::HsmError),
    /// A failure on a token the client named (a staff member's token): wrong PIN, unknown token and
    /// the like are the client's to fix.
    #[error("staff token: {0}")]
    StaffToken(kyso_hsm::HsmError),
    /// Anything else that is our fault; `context` is logged, never sent.
    #[error("internal error: {context}")]
    Internal {
        code: Cow<'static, str>,
        context: String,
    },
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The `error` object.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message_vi: String,
    pub message_en: String,
}

impl AppError {
    /// A 422 with a code and both messages.
    pub fn unprocessable(
        code: impl Into<Cow<'static, str>>,
        message_vi: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Self {
        AppError::Unprocessable {
            code: code.into(),
            message_vi: message_vi.into(),
            message_en: message_en.into(),
        }
    }

    /// A 409 with a code and both messages.
    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        message_vi: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Self {
        AppError::Conflict {
            code: code.into(),
            message_vi: message_vi.into(),
            message_en: message_en.into(),
        }
    }

    /// A 500 whose context is only logged.
    pub fn internal(context: impl Into<String>) -> Self {
        AppError::Internal {
            code: Cow::Borrowed("internal"),
            context: context.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } | AppError::KeyNotGranted { .. } => StatusCode::FORBIDDEN,
            AppError::RouteNotFound { .. } | AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::MalformedBody { .. } => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Store(e) => store_status(e),
            AppError::Hsm(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::StaffToken(e) => staff_token_status(e),
            AppError::Ca(e) => ca_status(e),
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            AppError::Unauthenticated { reason } => reason,
            AppError::Forbidden { .. } => "forbidden",
            AppError::KeyNotGranted { .. } => "signing_key_not_granted",
            AppError::RouteNotFound { .. } => "route_not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::NotFound { what, .. } => not_found_code(what),
            AppError::MalformedBody { code, .. } => code,
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType { .. } => "unsupported_media_type",
            AppError::Unprocessable { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Unavailable { code, .. }
            | AppError::Internal { code, .. } => code,
            AppError::Store(e) => e.code(),
            AppError::Hsm(e) | AppError::StaffToken(e) => e.code(),
            AppError::Ca(e) => e.code(),
        }
    }

    /// The Vietnamese and English messages sent to the client.
    pub fn messages(&self) -> (String, String) {
        match self {
            AppError::Unauthenticated { reason } => (
                format!(
                    "Xác thực thất bại ({reason}): cần khóa API hợp lệ trong tiêu đề Authorization: Bearer."
                ),
                format!(
                    "Authentication failed ({reason}): a valid API key is required in Authorization: Bearer."
                ),
            ),
            AppError::Forbidden { role, allowed } => (
                format!("Vai trò {role} không được phép thực hiện thao tác này (cần: {allowed})."),
                format!("Role {role} may not do this (allowed: {allowed})."),
            ),
            AppError::KeyNotGranted { key } => (
                format!("Ứng dụng khách chưa được cấp quyền dùng khóa ký {key}."),
                format!("This client is not granted signing key {key}."),
            ),
            AppError::RouteNotFound { method, path } => (
                format!("Không có đường dẫn {method} {path}."),
                format!("No route {method} {path}."),
            ),
            AppError::MethodNotAllowed { method, path } => (
                format!("Phương thức {method} không được hỗ trợ tại {path}."),
                format!("Method {method} is not allowed on {path}."),
            ),
            AppError::NotFound { what, id } => (
                format!("Không tìm thấy {} {id}.", vietnamese_noun(what)),
                format!("{what} {id} not found."),
            ),
            AppError::MalformedBody { message, .. } => (
                format!("Nội dung yêu cầu không hợp lệ: {message}"),
                format!("Malformed request body: {message}"),
            ),
            AppError::PayloadTooLarge { limit: Some(limit) } => (
                format!("Nội dung yêu cầu vượt quá giới hạn {limit} byte."),
                format!("Request body exceeds the limit of {limit} bytes."),
            ),
            AppError::PayloadTooLarge { limit: None } => (
                "Nội dung yêu cầu vượt quá giới hạn cho phép.".to_owned(),
                "Request body exceeds the allowed size.".to_owned(),
            ),
            AppError::UnsupportedMediaType { expected } => (
                format!("Kiểu nội dung không được hỗ trợ; cần {expected}."),
                format!("Unsupported content type; expected {expected}."),
            ),
            AppError::Unprocessable {
                message_vi,
                message_en,
                ..
            }
            | AppError::Conflict {
                message_vi,
                message_en,
                ..
            } => (message_vi.clone(), message_en.clone()),
            AppError::Unavailable { what, .. } => (
                format!("Dịch vụ tạm thời không khả dụng ({what}). Vui lòng thử lại sau."),
                format!("Service temporarily unavailable ({what}). Please retry later."),
            ),
            AppError::Internal { .. } => internal_messages(),
            AppError::Store(e) => {
                let status = store_status(e);
                if status.is_server_error() {
                    internal_messages()
                } else {
                    (store_message_vi(e), e.to_string())
                }
            }
            AppError::Hsm(_) => (
                "HSM của dịch vụ tạm thời không khả dụng. Sự cố đã được ghi lại.".to_owned(),
                "The service's HSM is temporarily unavailable. The incident has been logged."
                    .to_owned(),
            ),
            AppError::Ca(e) => {
                if ca_status(e).is_server_error() {
                    internal_messages()
                } else {
                    (ca_message_vi(e), e.to_string())
                }
            }
            AppError::StaffToken(e) => {
                if staff_token_status(e).is_server_error() {
                    (
                        "Không thao tác được với token của cán bộ. Sự cố đã được ghi lại."
                            .to_owned(),
                        "The staff token could not be used. The incident has been logged."
                            .to_owned(),
                    )
                } else {
                    (staff_token_message_vi(e), e.to_string())
                }
            }
        }
    }

    /// The JSON body this error is sent as.
    pub fn body(&self) -> ErrorBody {
        let (message_vi, message_en) = self.messages();
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message_vi,
                message_en,
            },
        }
    }
}

fn internal_messages() -> (String, String) {
    (
        "Lỗi nội bộ máy chủ. Sự cố đã được ghi lại.".to_owned(),
        "Internal server error. The incident has been logged.".to_owned(),
    )
}

fn ca_status(e: &kyso_ca::CaError) -> StatusCode {
    use kyso_ca::CaError as C;
    match e {
        C::Profile(_) | C::Subject(_) | C::Csr(_) => StatusCode::UNPROCESSABLE_ENTITY,
        C::Hsm { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn ca_message_vi(e: &kyso_ca::CaError) -> String {
    use kyso_ca::CaError as C;
    match e {
        C::Subject(_) => format!("Thông tin chủ thể không hợp lệ ({}).", e.code()),
        C::Csr(_) => format!("Yêu cầu cấp chứng thư (CSR) không hợp lệ ({}).", e.code()),
        _ => format!("Không thể cấp chứng thư theo yêu cầu ({}).", e.code()),
    }
}

fn staff_token_status(e: &kyso_hsm::HsmError) -> StatusCode {
    match e.code() {
        "hsm_wrong_pin"
        | "hsm_token_not_found"
        | "hsm_invalid_label"
        | "hsm_pin_unavailable"
        | "hsm_mechanism_unsupported"
        | "hsm_key_unsupported" => StatusCode::UNPROCESSABLE_ENTITY,
        "hsm_key_exists" => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn staff_token_message_vi(e: &kyso_hsm::HsmError) -> String {
    match e.code() {
        "hsm_wrong_pin" => "Mã PIN của token không đúng.".to_owned(),
        "hsm_token_not_found" => "Không tìm thấy token với nhãn đã cho.".to_owned(),
        "hsm_invalid_label" => "Nhãn khóa không hợp lệ.".to_owned(),
        "hsm_key_exists" => "Trên token đã có khóa mang nhãn này.".to_owned(),
        "hsm_mechanism_unsupported" | "hsm_key_unsupported" => {
            "Token không hỗ trợ thuật toán khóa đã chọn.".to_owned()
        }
        _ => "Không thao tác được với token của cán bộ.".to_owned(),
    }
}

fn store_status(e: &kyso_store::StoreError) -> StatusCode {
    use kyso_store::StoreError as S;
    match e {
        S::NotFound { .. } => StatusCode::NOT_FOUND,
        S::DuplicateSerial { .. }
        | S::AlreadyExists { .. }
        | S::AlreadyCompleted { .. }
        | S::AlreadyRevoked { .. }
        | S::AlreadyOnHold { .. }
        | S::NotOnHold { .. }
        | S::CrlNumberNotIncreasing { .. }
        | S::AuthorisationChanged { .. } => StatusCode::CONFLICT,
        S::InvalidInput { .. } | S::UnknownReference { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        S::Connect { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn store_message_vi(e: &kyso_store::StoreError) -> String {
    use kyso_store::StoreError as S;
    match e {
        S::NotFound { entity, key } => format!("Không tìm thấy {} {key}.", vietnamese_noun(entity)),
        S::DuplicateSerial { serial } => format!("Số hiệu {serial} đã tồn tại."),
        S::AlreadyExists { entity, key } => {
            format!("{} {key} đã tồn tại.", vietnamese_noun(entity))
        }
        S::AlreadyRevoked { serial } => format!("Chứng thư số {serial} đã bị thu hồi."),
        S::AlreadyOnHold { serial } => format!("Chứng thư số {serial} đang bị tạm dừng."),
        S::NotOnHold { serial, status } => {
            format!("Chứng thư số {serial} không ở trạng thái tạm dừng (trạng thái: {status}).")
        }
        S::AlreadyCompleted { serial } => format!("Chứng thư số {serial} đã được hoàn tất."),
        S::InvalidInput { field, reason } => format!("Giá trị {field} không hợp lệ: {reason}"),
        S::UnknownReference { what } => format!("Tham chiếu {what} không tồn tại."),
        S::AuthorisationChanged { .. } => {
            "Quyền ký thay đổi nhiều lần trong lúc ký; chữ ký chưa được phát hành, hãy gửi lại yêu cầu."
                .to_owned()
        }
        other => format!("Lỗi lưu trữ: {}", other.code()),
    }
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "staff" => "staff_not_found",
        "certificate" => "certificate_not_found",
        "client" => "client_not_found",
        "ca" => "ca_not_found",
        "crl" => "crl_not_found",
        "grant" => "grant_not_found",
        "signing key" => "signing_key_not_found",
        "verification" => "verification_not_found",
        _ => "not_found",
    }
}

fn vietnamese_noun(what: &str) -> &str {
    match what {
        "staff" => "cán bộ",
        "certificate" => "chứng thư số",
        "client" => "ứng dụng khách",
        "ca" => "CA",
        "crl" => "danh sách thu hồi",
        "grant" => "quyền",
        "signing key" => "khóa ký",
        "verification" => "kết quả kiểm tra",
        "api_client" => "ứng dụng khách",
        "certificate authority" => "CA",
        other => other,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            // Only the code: a client error's text can quote the request (a mistyped PIN field).
            tracing::debug!(
                code = self.code(),
                status = status.as_u16(),
                "request refused"
            );
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => AppError::MalformedBody {
                code: "malformed_json",
                message: e.body_text(),
            },
            JsonRejection::JsonDataError(e) => AppError::MalformedBody {
                code: "invalid_json_fields",
                message: e.body_text(),
            },
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType {
                expected: "application/json",
            },
            JsonRejection::BytesRejection(e) => from_bytes_status(e.status(), e.body_text()),
            other => from_bytes_status(other.status(), other.body_text()),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        from_bytes_status(rejection.status(), rejection.body_text())
    }
}

/// axum's rejection does not carry the limit in force; [`crate::extract`] names it where it knows it.
fn from_bytes_status(status: StatusCode, message: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge { limit: None }
    } else {
        AppError::MalformedBody {
            code: "unreadable_body",
            message,
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::MalformedBody {
            code: "bad_path_parameter",
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::MalformedBody {
            code: "bad_query",
            message: rejection.body_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_context() {
        let err = AppError::internal("database password wrong at 10.0.0.1");
        let body = err.body();
        assert_eq!(body.error.code, "internal");
        assert!(!body.error.message_en.contains("10.0.0.1"));
        assert!(!body.error.message_vi.contains("10.0.0.1"));
        let err = AppError::Unavailable {
            code: "hsm_pkcs11".into(),
            what: "HSM",
            detail: "CKR_DEVICE_ERROR on token kyso-ca".into(),
        };
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code(), "hsm_pkcs11");
        assert!(!err.body().error.message_en.contains("CKR_"));
    }

    #[test]
    fn client_errors_keep_code_and_both_languages() {
        let err = AppError::unprocessable("invalid_cccd", "Số CCCD không hợp lệ", "Invalid CCCD");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = err.body();
        assert_eq!(body.error.code, "invalid_cccd");
        assert_eq!(body.error.message_vi, "Số CCCD không hợp lệ");
        let nf = AppError::NotFound {
            what: "certificate",
            id: "0a".into(),
        };
        assert_eq!(nf.code(), "certificate_not_found");
        assert!(nf.body().error.message_vi.contains("chứng thư số"));
    }
}
