//! `POST /v1/verify` (a CMS/CAdES signature, with its content or the content's digest) and
//! `GET /v1/verifications/{id}`: the ETSI EN 319 102-1 report with its signed receipt.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_cades::DigestAlgorithm;
use kyso_store::ClientRole;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::AppPath;
use crate::state::AppState;
use crate::verification::{StoredVerification, VerificationStatement, VerifyInput};

const VERIFIERS: &[ClientRole] = &[
    ClientRole::Client,
    ClientRole::Admin,
    ClientRole::Officer,
    ClientRole::Auditor,
];

/// Most supplied certificates, CRLs or OCSP responses (each list).
const MAX_SUPPLIED: usize = 64;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The CMS signature (ContentInfo SignedData, DER or BER), base64; PEM (`-----BEGIN CMS-----`
    /// or `PKCS7`) is accepted too.
    pub signature: String,
    /// The detached content, base64.
    #[serde(default)]
    pub content: Option<String>,
    /// Only the detached content's digest, base64, with `digest_algorithm`.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub digest_algorithm: Option<String>,
    /// Further certificates for path building (DER, base64).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// CRLs (DER, base64).
    #[serde(default)]
    pub crls: Vec<String>,
    /// OCSP responses (DER, base64).
    #[serde(default)]
    pub ocsp_responses: Vec<String>,
}

/// A verification as returned: the statement (with the report), its exact signed JSON text, and
/// the receipt over that text.
#[derive(Debug, Serialize, Deserialize)]
pub struct VerificationResponse {
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The main indication, repeated for convenience.
    pub indication: String,
    pub statement: VerificationStatement,
    /// The statement exactly as signed: check the receipt against these bytes (UTF-8).
    pub statement_json: String,
    /// CAdES B-LT detached signature over `statement_json` by the validation service, DER, base64.
    pub receipt: String,
}

impl From<StoredVerification> for VerificationResponse {
    fn from(v: StoredVerification) -> Self {
        VerificationResponse {
            id: v.record.id,
            created_at: v.record.created_at,
            indication: v.record.indication,
            statement: v.statement,
            statement_json: v.record.report_json,
            receipt: B64.encode(&v.record.receipt_der),
        }
    }
}

/// `POST /v1/verify`.
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<(StatusCode, Json<VerificationResponse>), AppError> {
    caller.require(&state, VERIFIERS, "verify").await?;
    let limit = state.config().limits.max_document_request_bytes;
    let body = crate::extract::read_json_body(request, limit).await?;
    let request: VerifyRequest = crate::extract::parse_json(&body)?;
    drop(body);
    let input = decode(request)?;
    let stored = crate::verification::verify_and_record(
        &state,
        &caller.actor(),
        Some(caller.client.id),
        input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// `GET /v1/verifications/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<VerificationResponse>, AppError> {
    caller
        .require(&state, VERIFIERS, "verification.read")
        .await?;
    let stored = crate::verification::load(&state, &id).await?;
    // A client sees its own verifications; the other roles see all.
    if caller.role() == ClientRole::Client && stored.record.client_id != Some(caller.client.id) {
        return Err(AppError::NotFound {
            what: "verification",
            id,
        });
    }
    Ok(Json(stored.into()))
}

fn decode(request: VerifyRequest) -> Result<VerifyInput, AppError> {
    let signature = decode_signature(&request.signature)?;
    let content = request
        .content
        .as_deref()
        .map(|c| base64_field("content", c))
        .transpose()?;
    let digest = match (&request.digest, &request.digest_algorithm) {
        (None, None) => None,
        (Some(d), algorithm) => {
            let algorithm = match algorithm.as_deref().unwrap_or("sha256") {
                "sha1" => DigestAlgorithm::Sha1,
                "sha256" => DigestAlgorithm::Sha256,
                "sha384" => DigestAlgorithm::Sha384,
                "sha512" => DigestAlgorithm::Sha512,
                _ => {
                    return Err(AppError::unprocessable(
                        "digest_algorithm_unsupported",
                        "Thuật toán băm phải là sha1, sha256, sha384 hoặc sha512.",
                        "The digest algorithm must be sha1, sha256, sha384 or sha512.",
                    ));
                }
            };
            let digest = base64_field("digest", d)?;
            if digest.len() != algorithm.output_len() {
                return Err(AppError::unprocessable(
                    "digest_length",
                    format!(
                        "Giá trị băm {} phải dài {} byte.",
                        algorithm.name(),
                        algorithm.output_len()
                    ),
                    format!(
                        "A {} digest is {} bytes long.",
                        algorithm.name(),
                        algorithm.output_len()
                    ),
                ));
            }
            Some((algorithm, digest))
        }
        (None, Some(_)) => {
            return Err(AppError::unprocessable(
                "digest_required",
                "Có digest_algorithm thì cần cả digest.",
                "digest_algorithm needs a digest.",
            ));
        }
    };
    let list = |field: &'static str, items: &[String]| -> Result<Vec<Vec<u8>>, AppError> {
        if items.len() > MAX_SUPPLIED {
            return Err(AppError::unprocessable(
                "verify_too_many_items",
                format!("Tối đa {MAX_SUPPLIED} phần tử trong {field}."),
                format!("At most {MAX_SUPPLIED} items in {field}."),
            ));
        }
        items.iter().map(|i| base64_field(field, i)).collect()
    };
    Ok(VerifyInput {
        signature,
        content,
        digest,
        certificates: list("certificates", &request.certificates)?,
        crls: list("crls", &request.crls)?,
        ocsp_responses: list("ocsp_responses", &request.ocsp_responses)?,
    })
}

fn base64_field(field: &str, text: &str) -> Result<Vec<u8>, AppError> {
    B64.decode(text.trim()).map_err(|_| {
        AppError::unprocessable(
            "verify_bad_base64",
            format!("Trường {field} không phải base64 hợp lệ."),
            format!("Field {field} is not valid base64."),
        )
    })
}

/// The signature as base64 DER/BER, or PEM.
fn decode_signature(text: &str) -> Result<Vec<u8>, AppError> {
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        return der::pem::decode_vec(trimmed.as_bytes())
            .map(|(_, der)| der)
            .map_err(|_| {
                AppError::unprocessable(
                    "verify_bad_pem",
                    "Chữ ký PEM không hợp lệ.",
                    "The PEM signature is malformed.",
                )
            });
    }
    base64_field("signature", trimmed)
}
