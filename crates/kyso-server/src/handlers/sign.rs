//! `POST /v1/sign/cms`: CMS/CAdES signatures (B-B, B-T, B-LT) for API clients, with keys granted
//! to them, over documents or their digests, one result per document.

use axum::Json;
use axum::extract::{Request, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_cades::{CadesSigner, Content, Level, SignError, SignOptions};
use kyso_hsm::HashAlgorithm;
use kyso_store::{AuditOutcome, ClientRole, NewAuditEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::{AppError, ErrorDetail};
use crate::state::AppState;

const SIGNERS: &[ClientRole] = &[ClientRole::Client, ClientRole::Admin];

/// Where the signed content goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Packaging {
    /// The content travels inside the SignedData.
    #[default]
    Attached,
    /// The SignedData carries no content (the document is kept beside it).
    Detached,
}

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

/// The response body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignCmsResponse {
    pub key: String,
    pub level: Level,
    pub packaging: Packaging,
    /// The signer certificate's serial, hex.
    pub certificate_serial: String,
    /// The hash the key signs with.
    pub digest_algorithm: String,
    /// The signing-time attribute put in every signature (RFC 3339, UTC).
    pub signing_time: String,
    pub results: Vec<DocumentResult>,
}

/// One document's outcome.
#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub ok: bool,
    /// ContentInfo(SignedData) DER, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cms: Option<String>,
    /// SHA-256 of the signed document (or the supplied digest), hex: what the audit log records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
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
    let now = state.clock().now_unix();
    let trust = state.trust();
    let signer = trust.signing_keys().signer(key, now).await?;
    if let Err(refusal) = trust
        .signing_keys()
        .check_status(state.store(), &signer, now)
        .await
    {
        state
            .audit(NewAuditEvent {
                actor: caller.actor(),
                action: "sign.cms".to_owned(),
                target: format!("key:{key}"),
                outcome: AuditOutcome::Failure,
                details: serde_json::json!({ "reason": refusal.code() }),
            })
            .await?;
        return Err(refusal);
    }
    let signing_time = state.clock().now_utc();
    let options = SignOptions::new(request.level, signing_time);
    let own_ca = trust.own_ca();
    let mut results = Vec::with_capacity(request.documents.len());
    for document in &request.documents {
        let result = sign_document(
            &signer,
            document,
            request.packaging,
            &options,
            &state,
            &own_ca,
        )
        .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        state.metrics().cms_signature(request.level.name(), outcome);
        results.push(match result {
            Ok((cms, sha256)) => DocumentResult {
                id: document.id.clone(),
                ok: true,
                cms: Some(B64.encode(cms)),
                document_sha256: Some(sha256),
                error: None,
            },
            Err(e) => DocumentResult {
                id: document.id.clone(),
                ok: false,
                cms: None,
                document_sha256: None,
                error: Some(e.body().error),
            },
        });
    }
    let signed: Vec<&str> = results
        .iter()
        .filter_map(|r| r.document_sha256.as_deref())
        .collect();
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "sign.cms".to_owned(),
            target: format!("key:{key}"),
            outcome: if signed.is_empty() {
                AuditOutcome::Failure
            } else {
                AuditOutcome::Success
            },
            details: serde_json::json!({
                "level": request.level.name(),
                "packaging": request.packaging,
                "certificate_serial": hex::encode(signer.certificate().tbs_certificate().serial_number().as_bytes()),
                "documents": request.documents.len(),
                "signed_sha256": signed,
            }),
        })
        .await?;
    Ok(Json(SignCmsResponse {
        key: request.key.clone(),
        level: request.level,
        packaging: request.packaging,
        certificate_serial: hex::encode(
            signer
                .certificate()
                .tbs_certificate()
                .serial_number()
                .as_bytes(),
        ),
        digest_algorithm: signer.key().hash().name().to_owned(),
        signing_time: crate::handlers::rfc3339(signing_time),
        results,
    }))
}

async fn sign_document(
    signer: &CadesSigner,
    document: &DocumentInput,
    packaging: Packaging,
    options: &SignOptions,
    state: &AppState,
    own_ca: &std::sync::Arc<crate::trust_services::OwnCaData>,
) -> Result<(Vec<u8>, String), AppError> {
    let bad_base64 = |field: &str| {
        AppError::unprocessable(
            "document_bad_base64",
            format!("Trường {field} không phải base64 hợp lệ."),
            format!("Field {field} is not valid base64."),
        )
    };
    let (content_bytes, digest_bytes, algorithm);
    let content = match (&document.content, &document.digest) {
        (Some(text), None) => {
            content_bytes = B64.decode(text).map_err(|_| bad_base64("content"))?;
            match packaging {
                Packaging::Attached => Content::Attached(&content_bytes),
                Packaging::Detached => Content::Detached(&content_bytes),
            }
        }
        (None, Some(text)) => {
            digest_bytes = B64.decode(text).map_err(|_| bad_base64("digest"))?;
            let name = document.digest_algorithm.as_deref().unwrap_or("sha256");
            algorithm = parse_hash(name)?;
            Content::Digest {
                algorithm,
                digest: &digest_bytes,
            }
        }
        _ => {
            return Err(AppError::unprocessable(
                "document_content_or_digest",
                "Mỗi tài liệu cần đúng một trong hai trường content hoặc digest.",
                "Each document needs exactly one of content or digest.",
            ));
        }
    };
    let sha256 = match content {
        Content::Attached(data) | Content::Detached(data) => hex::encode(Sha256::digest(data)),
        Content::Digest { digest, .. } => hex::encode(Sha256::digest(digest)),
    };
    let tsa = state.trust().timestamps();
    let cms = kyso_cades::sign(
        signer,
        content,
        options,
        Some(tsa),
        Some(own_ca.as_ref() as &dyn kyso_cades::ValidationDataSource),
    )
    .await
    .map_err(sign_error)?;
    Ok((cms, sha256))
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

/// A signing failure: the caller's (a digest of the wrong kind or length) or ours.
fn sign_error(e: SignError) -> AppError {
    match &e {
        SignError::DigestAlgorithmMismatch { .. } | SignError::DigestLength { .. } => {
            AppError::unprocessable(
                e.code(),
                format!("Giá trị băm không phù hợp với khóa ký ({}).", e.code()),
                e.to_string(),
            )
        }
        SignError::Hsm { .. } => AppError::Unavailable {
            code: e.code().to_owned().into(),
            what: "HSM",
            detail: e.to_string(),
        },
        SignError::Timestamp(_) | SignError::TimestampTokenMalformed { .. } => {
            AppError::Unavailable {
                code: e.code().to_owned().into(),
                what: "TSA",
                detail: e.to_string(),
            }
        }
        SignError::ValidationData(inner) => AppError::conflict(
            inner.code(),
            "Không thu thập được dữ liệu kiểm tra (chuỗi chứng thư, danh sách thu hồi) cho mức B-LT."
                .to_owned(),
            e.to_string(),
        ),
        _ => AppError::Internal {
            code: e.code().to_owned().into(),
            context: e.to_string(),
        },
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
