//! Signing documents with a key on the signing token: the part shared by `POST /v1/sign/cms` and
//! `kyso sign cms` (certificate status at signing time, the CAdES level, one result per
//! document, one audit record per call).

use std::sync::Arc;

pub mod authorisations;
pub use authorisations::SigningAuthorisations;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_cades::{CadesSigner, Content, Level, SignError, SignOptions, ValidationDataSource};
use kyso_hsm::HashAlgorithm;
use kyso_store::{AuditOutcome, NewAuditEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AppError, ErrorDetail};
use crate::state::AppState;
use crate::trust_services::OwnCaData;

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

/// One document to sign.
#[derive(Clone, Debug)]
pub enum Document {
    Attached(Vec<u8>),
    Detached(Vec<u8>),
    /// Only the digest; the signature is detached.
    Digest {
        algorithm: HashAlgorithm,
        digest: Vec<u8>,
    },
}

impl Document {
    /// SHA-256 of the document (or of the supplied digest): what the audit log records.
    fn sha256(&self) -> [u8; 32] {
        match self {
            Document::Attached(data) | Document::Detached(data) => Sha256::digest(data).into(),
            Document::Digest { digest, .. } => Sha256::digest(digest).into(),
        }
    }

    /// What kyso_cades signs. Under a SHA-256 key the document's [`Document::sha256`] is also
    /// the message digest, so it is passed on and the document is hashed once, not twice.
    fn content<'a>(&'a self, key_hash: HashAlgorithm, sha256: &'a [u8; 32]) -> Content<'a> {
        match (self, key_hash) {
            (Document::Attached(data), HashAlgorithm::Sha256) => Content::AttachedHashed {
                data,
                digest: sha256,
            },
            (Document::Attached(data), _) => Content::Attached(data),
            (Document::Detached(_), HashAlgorithm::Sha256) => Content::Digest {
                algorithm: HashAlgorithm::Sha256,
                digest: sha256,
            },
            (Document::Detached(data), _) => Content::Detached(data),
            (Document::Digest { algorithm, digest }, _) => Content::Digest {
                algorithm: *algorithm,
                digest,
            },
        }
    }
}

/// One document as the caller gave it: its id, and its bytes or why they could not be read.
pub type DocumentRequest = (Option<String>, Result<Document, AppError>);

/// One signed document.
#[derive(Debug)]
pub struct Signed {
    /// ContentInfo(SignedData) DER.
    pub cms: Vec<u8>,
    /// SHA-256 of the document (or of the supplied digest), hex.
    pub document_sha256: String,
}

/// One document's outcome.
#[derive(Debug)]
pub struct DocumentOutcome {
    pub id: Option<String>,
    pub result: Result<Signed, AppError>,
}

/// The outcome of one call.
#[derive(Debug)]
pub struct SignOutcome {
    pub key: String,
    pub level: Level,
    pub packaging: Packaging,
    pub signer: Arc<CadesSigner>,
    pub signing_time: time::OffsetDateTime,
    /// Per document, in order.
    pub results: Vec<DocumentOutcome>,
}

/// The JSON answer of `POST /v1/sign/cms`.
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
    /// SHA-256 of the signed document (or of the supplied digest), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl SignOutcome {
    /// The serial of the signer certificate, hex.
    pub fn certificate_serial(&self) -> String {
        hex::encode(
            self.signer
                .certificate()
                .tbs_certificate()
                .serial_number()
                .as_bytes(),
        )
    }

    pub fn into_response(self) -> SignCmsResponse {
        SignCmsResponse {
            certificate_serial: self.certificate_serial(),
            digest_algorithm: self.signer.key().hash().name().to_owned(),
            signing_time: crate::handlers::rfc3339(self.signing_time),
            key: self.key,
            level: self.level,
            packaging: self.packaging,
            results: self
                .results
                .into_iter()
                .map(|DocumentOutcome { id, result }| match result {
                    Ok(signed) => DocumentResult {
                        id,
                        ok: true,
                        cms: Some(B64.encode(signed.cms)),
                        document_sha256: Some(signed.document_sha256),
                        error: None,
                    },
                    Err(e) => DocumentResult {
                        id,
                        ok: false,
                        cms: None,
                        document_sha256: None,
                        error: Some(e.body().error),
                    },
                })
                .collect(),
        }
    }
}

impl SignOutcome {
    /// The JSON of [`into_response`](Self::into_response), byte for byte as serde_json writes it,
    /// written straight into one buffer of about the right size: each signature is base64-encoded
    /// in place (its alphabet needs no JSON escapes) rather than into a String that serde_json
    /// then scans and copies.
    pub fn into_json(self) -> Result<Vec<u8>, AppError> {
        let json_error = |e: serde_json::Error| AppError::internal(format!("response JSON: {e}"));
        let signatures: usize = self
            .results
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .map(|s| s.cms.len() / 3 * 4 + 4 + 160)
            .sum();
        let mut out = Vec::with_capacity(320 + signatures + 320 * self.results.len());
        let certificate_serial = self.certificate_serial();
        let signing_time = crate::handlers::rfc3339(self.signing_time);
        out.extend_from_slice(b"{\"key\":");
        serde_json::to_writer(&mut out, &self.key).map_err(json_error)?;
        out.extend_from_slice(b",\"level\":");
        serde_json::to_writer(&mut out, &self.level).map_err(json_error)?;
        out.extend_from_slice(b",\"packaging\":");
        serde_json::to_writer(&mut out, &self.packaging).map_err(json_error)?;
        out.extend_from_slice(b",\"certificate_serial\":");
        serde_json::to_writer(&mut out, &certificate_serial).map_err(json_error)?;
        out.extend_from_slice(b",\"digest_algorithm\":");
        serde_json::to_writer(&mut out, self.signer.key().hash().name()).map_err(json_error)?;
        out.extend_from_slice(b",\"signing_time\":");
        serde_json::to_writer(&mut out, &signing_time).map_err(json_error)?;
        out.extend_from_slice(b",\"results\":[");
        for (index, DocumentOutcome { id, result }) in self.results.into_iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if let Some(id) = &id {
                out.extend_from_slice(b"\"id\":");
                serde_json::to_writer(&mut out, id).map_err(json_error)?;
                out.push(b',');
            }
            match result {
                Ok(signed) => {
                    out.extend_from_slice(b"\"ok\":true,\"cms\":\"");
                    let start = out.len();
                    let encoded = base64::encoded_len(signed.cms.len(), true)
                        .ok_or_else(|| AppError::internal("signature too large for base64"))?;
                    out.resize(start + encoded, 0);
                    B64.encode_slice(&signed.cms, &mut out[start..])
                        .map_err(|e| AppError::internal(format!("base64: {e}")))?;
                    out.extend_from_slice(b"\",\"document_sha256\":");
                    serde_json::to_writer(&mut out, &signed.document_sha256).map_err(json_error)?;
                }
                Err(e) => {
                    out.extend_from_slice(b"\"ok\":false,\"error\":");
                    serde_json::to_writer(&mut out, &e.body().error).map_err(json_error)?;
                }
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

/// Signs `documents` with key `key` for `actor` (who must be allowed the key: the caller checks
/// grants). Refuses the whole call, audited, when the key's certificate is not valid and in good
/// standing now; a document's own problem fails only that document.
pub async fn sign_documents(
    state: &AppState,
    actor: &str,
    key: &str,
    level: Level,
    packaging: Packaging,
    documents: Vec<DocumentRequest>,
) -> Result<SignOutcome, AppError> {
    let now = state.clock().now_unix();
    let signing_keys = state.trust().signing_keys();
    let signer = signing_keys.signer(key, now).await?;
    let status = signing_keys.check_status(state.store(), &signer, now).await;
    sign_documents_checked(
        state,
        actor,
        key,
        CheckedSigner { signer, status },
        level,
        packaging,
        documents,
    )
    .await
}

/// A signer for one call and the outcome of its certificate-status check (made by
/// [`SigningKeys::check_status`](crate::trust_services::SigningKeys::check_status), or from a
/// status read with the caller's grant).
pub struct CheckedSigner {
    pub signer: Arc<CadesSigner>,
    pub status: Result<(), AppError>,
}

/// [`sign_documents`] with the signer looked up and its status checked by the caller: a failed
/// check refuses the whole call, audited.
pub async fn sign_documents_checked(
    state: &AppState,
    actor: &str,
    key: &str,
    checked: CheckedSigner,
    level: Level,
    packaging: Packaging,
    documents: Vec<DocumentRequest>,
) -> Result<SignOutcome, AppError> {
    let CheckedSigner { signer, status } = checked;
    if let Err(refusal) = status {
        return Err(refuse_signer(state, actor, key, refusal).await?);
    }
    let outcome = sign_unreleased(state, key, signer, level, packaging, documents).await;
    state.audit(outcome.release_event(actor)).await?;
    Ok(outcome)
}

/// Audits a call refused for the signing key's certificate (its status or validity now); gives
/// the refusal to answer with.
pub async fn refuse_signer(
    state: &AppState,
    actor: &str,
    key: &str,
    refusal: AppError,
) -> Result<AppError, AppError> {
    state
        .audit(NewAuditEvent {
            actor: actor.to_owned(),
            action: "sign.cms".to_owned(),
            target: format!("key:{key}"),
            outcome: AuditOutcome::Failure,
            details: serde_json::json!({ "reason": refusal.code() }),
        })
        .await?;
    Ok(refusal)
}

/// Signs every document with `signer`, whose use the caller has checked. Nothing is released
/// yet: the outcome goes out only once its [`release_event`](SignOutcome::release_event) is in
/// the audit log.
pub async fn sign_unreleased(
    state: &AppState,
    key: &str,
    signer: Arc<CadesSigner>,
    level: Level,
    packaging: Packaging,
    documents: Vec<DocumentRequest>,
) -> SignOutcome {
    let signing_time = state.clock().now_utc();
    let options = SignOptions::new(level, signing_time);
    let own_ca = state.trust().own_ca();
    let document_count = documents.len();
    let mut results = Vec::with_capacity(document_count);
    for (id, document) in documents {
        let result = match document {
            Ok(document) => sign_one(state, &signer, &document, &options, &own_ca).await,
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        state.metrics().cms_signature(level.name(), outcome);
        results.push(DocumentOutcome { id, result });
    }
    SignOutcome {
        key: key.to_owned(),
        level,
        packaging,
        signer,
        signing_time,
        results,
    }
}

impl SignOutcome {
    /// The audit record of this call for `actor`, whose writing releases its signatures.
    pub fn release_event(&self, actor: &str) -> NewAuditEvent {
        let signed: Vec<&str> = self
            .results
            .iter()
            .filter_map(|o| o.result.as_ref().ok().map(|s| s.document_sha256.as_str()))
            .collect();
        NewAuditEvent {
            actor: actor.to_owned(),
            action: "sign.cms".to_owned(),
            target: format!("key:{}", self.key),
            outcome: if signed.is_empty() {
                AuditOutcome::Failure
            } else {
                AuditOutcome::Success
            },
            details: serde_json::json!({
                "level": self.level.name(),
                "packaging": self.packaging,
                "certificate_serial": self.certificate_serial(),
                "documents": self.results.len(),
                "signed_sha256": signed,
            }),
        }
    }
}

async fn sign_one(
    state: &AppState,
    signer: &CadesSigner,
    document: &Document,
    options: &SignOptions,
    own_ca: &Arc<OwnCaData>,
) -> Result<Signed, AppError> {
    let sha256 = document.sha256();
    let cms = kyso_cades::sign(
        signer,
        document.content(signer.key().hash(), &sha256),
        options,
        Some(state.trust().timestamps()),
        Some(own_ca.as_ref() as &dyn ValidationDataSource),
    )
    .await
    .map_err(sign_error)?;
    Ok(Signed {
        cms,
        document_sha256: hex::encode(sha256),
    })
}

/// A signing failure: the caller's (a digest of the wrong kind or length) or ours.
pub fn sign_error(e: SignError) -> AppError {
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
