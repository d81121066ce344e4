//! `POST /v1/sign/cms`: CMS/CAdES signatures (B-B, B-T, B-LT) for API clients, with keys granted
//! to them, over documents or their digests, one result per document.

use axum::Json;
use axum::extract::{Request, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_cades::Level;
use kyso_hsm::HashAlgorithm;
use kyso_store::{AuditOutcome, ClientRole, NewAuditEvent};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::AppError;
use crate::signing::{Document, DocumentRequest};
pub use crate::signing::{DocumentResult, Packaging, SignCmsResponse};
use crate::state::AppState;

const SIGNERS: &[ClientRole] = &[ClientRole::Client, ClientRole::Admin];

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignCmsRequest {
    /// The signing key's name (its label on the signing token), granted to the caller.
    pub key: String,
    /// B-B (default), B-T or B-LT.
    #[serde(default = "default_level")]
    pub level: Level,
    /// attached (default) or detached; a digest-only document is always detached.
    #[serde(default)]
    pub packaging: Packaging,
    pub documents: Vec<DocumentInput>,
}

fn default_level() -> Level {
    Level::BB
}

/// One document: its content, or only its digest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The caller's reference, echoed in the result.
    #[serde(default)]
    pub id: Option<String>,
    /// The document, base64.
    #[serde(default)]
    pub content: Option<String>,
    /// The document's digest, base64 (computed with the key's hash: see `digest_algorithm`).
    #[serde(default)]
    pub digest: Option<String>,
    /// sha256, sha384 or sha512; must be the key's hash.
    #[serde(default)]
    pub digest_algorithm: Option<String>,
}

/// `POST /v1/sign/cms`.
pub async fn sign_cms(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Json<SignCmsResponse>, AppError> {
    caller.require(&state, SIGNERS, "sign.cms").await?;
    let limits = &state.config().limits;
    let body = crate::extract::read_json_body(request, limits.max_document_request_bytes).await?;
    let request: SignCmsRequest = crate::extract::parse_json(&body)?;
    drop(body);
    if request.documents.is_empty() {
        return Err(AppError::unprocessable(
            "batch_empty",
            "Cần ít nhất một tài liệu để ký.",
            "At least one document is required.",
        ));
    }
    if request.documents.len() > limits.max_batch_documents {
        let max = limits.max_batch_documents;
        return Err(AppError::unprocessable(
            "batch_too_large",
            format!("Mỗi lần ký tối đa {max} tài liệu."),
            format!("At most {max} documents per call."),
        ));
    }
    let key = request.key.as_str();
    if !state.store().has_key_grant(caller.client.id, key).await? {
        state
            .audit(NewAuditEvent {
                actor: caller.actor(),
                action: "sign.cms".to_owned(),
                target: format!("key:{}", truncate(key, 128)),
                outcome: AuditOutcome::Failure,
                details: serde_json::json!({ "reason": "signing_key_not_granted" }),
            })
            .await?;
        return Err(AppError::KeyNotGranted {
            key: truncate(key, 128),
        });
    }
    let documents: Vec<DocumentRequest> = request
        .documents
        .iter()
        .map(|d| (d.id.clone(), decode_document(d, request.packaging)))
        .collect();
    let outcome = crate::signing::sign_documents(
        &state,
        &caller.actor(),
        key,
        request.level,
        request.packaging,
        documents,
    )
    .await?;
    Ok(Json(outcome.into_response()))
}

/// A document's bytes from its JSON form.
fn decode_document(document: &DocumentInput, packaging: Packaging) -> Result<Document, AppError> {
    let bad_base64 = |field: &str| {
        AppError::unprocessable(
            "document_bad_base64",
            format!("Trường {field} không phải base64 hợp lệ."),
            format!("Field {field} is not valid base64."),
        )
    };
    match (&document.content, &document.digest) {
        (Some(text), None) => {
            let bytes = B64.decode(text).map_err(|_| bad_base64("content"))?;
            Ok(match packaging {
                Packaging::Attached => Document::Attached(bytes),
                Packaging::Detached => Document::Detached(bytes),
            })
        }
        (None, Some(text)) => {
            let digest = B64.decode(text).map_err(|_| bad_base64("digest"))?;
            let name = document.digest_algorithm.as_deref().unwrap_or("sha256");
            Ok(Document::Digest {
                algorithm: parse_hash(name)?,
                digest,
            })
        }
        _ => Err(AppError::unprocessable(
            "document_content_or_digest",
            "Mỗi tài liệu cần đúng một trong hai trường content hoặc digest.",
            "Each document needs exactly one of content or digest.",
        )),
    }
}

fn parse_hash(name: &str) -> Result<HashAlgorithm, AppError> {
    match name {
        "sha256" => Ok(HashAlgorithm::Sha256),
        "sha384" => Ok(HashAlgorithm::Sha384),
        "sha512" => Ok(HashAlgorithm::Sha512),
        _ => Err(AppError::unprocessable(
            "digest_algorithm_unsupported",
            "Thuật toán băm phải là sha256, sha384 hoặc sha512.",
            "The digest algorithm must be sha256, sha384 or sha512.",
        )),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
