//! Verification with a receipt: the part shared by `POST /v1/verify` and `kyso verify`.
//!
//! The signature is validated (ETSI EN 319 102-1, [`kyso_cades::SignatureValidator`]); the
//! report is wrapped in a [`VerificationStatement`] that also names what was verified (digests
//! of the submitted signature and content), when, and by which service; the statement's exact
//! JSON bytes are signed by the validation-service key as a detached CAdES B-LT signature
//! (signature timestamp, chain and CRLs embedded, so it can be checked offline years later);
//! statement and receipt are stored, durably, before the answer goes out.

use der::Decode;
use kyso_cades::verify::DetachedContent;
use kyso_cades::{CmsInput, Content, Level, SignOptions, ValidationReport};
use kyso_store::{AuditOutcome, NewAuditEvent, NewVerification, VerificationRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::error::AppError;
use crate::state::AppState;

/// What a receipt signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationStatement {
    /// The verification's id (`GET /v1/verifications/{id}`).
    pub id: String,
    /// The service that verified (its public URL).
    pub service: String,
    /// What was submitted.
    pub input: VerifiedInput,
    /// The ETSI EN 319 102-1 report.
    pub report: ValidationReport,
}

/// Digests of what was submitted, so the statement names exactly what it speaks of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedInput {
    /// SHA-256 of the signature (CMS) bytes, hex.
    pub signature_sha256: String,
    /// SHA-256 of the detached content, hex, when it was submitted.
    pub content_sha256: Option<String>,
    /// The detached content's digest as submitted (`algorithm:hex`), when only that was.
    pub content_digest: Option<String>,
}

/// What the caller submits.
#[derive(Debug, Default)]
pub struct VerifyInput {
    pub signature: Vec<u8>,
    pub content: Option<Vec<u8>>,
    pub digest: Option<(kyso_cades::DigestAlgorithm, Vec<u8>)>,
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub ocsp_responses: Vec<Vec<u8>>,
}

/// A stored verification: the statement's exact bytes and the receipt over them.
#[derive(Debug, Clone)]
pub struct StoredVerification {
    pub statement: VerificationStatement,
    pub record: VerificationRecord,
}

/// Validates, signs the receipt, stores both, audits; returns the stored verification.
pub async fn verify_and_record(
    state: &AppState,
    actor: &str,
    client_id: Option<i64>,
    input: VerifyInput,
) -> Result<StoredVerification, AppError> {
    let mut extra = Vec::with_capacity(input.certificates.len());
    for (i, der) in input.certificates.iter().enumerate() {
        extra.push(Certificate::from_der(der).map_err(|e| {
            AppError::unprocessable(
                "verify_certificate_malformed",
                format!("Chứng thư số thứ {i} gửi kèm không hợp lệ."),
                format!("Supplied certificate {i} is not a DER certificate: {e}"),
            )
        })?);
    }
    let detached = match (&input.content, &input.digest) {
        (Some(_), Some(_)) => {
            return Err(AppError::unprocessable(
                "verify_content_and_digest",
                "Chỉ gửi nội dung hoặc giá trị băm của nội dung, không gửi cả hai.",
                "Send the content or its digest, not both.",
            ));
        }
        (Some(content), None) => DetachedContent::Content(content),
        (None, Some((algorithm, digest))) => DetachedContent::Digest {
            algorithm: *algorithm,
            digest,
        },
        (None, None) => DetachedContent::None,
    };
    let now = state.clock().now_utc();
    let cms_input = CmsInput {
        cms: &input.signature,
        detached,
        extra_certificates: extra,
        revocation: kyso_validate::RevocationData {
            crls: input.crls.clone(),
            ocsp_responses: input.ocsp_responses.clone(),
        },
    };
    let report = state
        .trust()
        .validator()
        .validate_cms(cms_input, now)
        .await
        .map_err(|e| {
            AppError::unprocessable(
                e.code(),
                "Chữ ký không phải một cấu trúc CMS SignedData hợp lệ.".to_owned(),
                format!("The signature is not a valid CMS SignedData: {e}"),
            )
        })?;
    for signature in &report.signatures {
        state.metrics().verification(signature.indication.as_str());
    }
    let id = new_id()?;
    let statement = VerificationStatement {
        id: id.clone(),
        service: state.config().public_url.clone(),
        input: VerifiedInput {
            signature_sha256: hex::encode(Sha256::digest(&input.signature)),
            content_sha256: input
                .content
                .as_ref()
                .map(|c| hex::encode(Sha256::digest(c))),
            content_digest: input
                .digest
                .as_ref()
                .map(|(a, d)| format!("{}:{}", a.name(), hex::encode(d))),
        },
        report,
    };
    let statement_json = serde_json::to_string(&statement)
        .map_err(|e| AppError::internal(format!("report encoding: {e}")))?;
    let trust = state.trust();
    let receipt = kyso_cades::sign(
        trust.receipt_signer(),
        Content::Detached(statement_json.as_bytes()),
        &SignOptions::new(Level::BLT, now),
        Some(trust.timestamps()),
        Some(trust.own_ca().as_ref() as &dyn kyso_cades::ValidationDataSource),
    )
    .await
    .map_err(crate::signing::sign_error)?;
    let record = state
        .store()
        .insert_verification(&NewVerification {
            id: id.clone(),
            created_at: now.unix_timestamp(),
            client_id,
            indication: statement.report.indication.as_str().to_owned(),
            report_json: statement_json,
            receipt_der: receipt,
        })
        .await?;
    state
        .audit(NewAuditEvent {
            actor: actor.to_owned(),
            action: "verify".to_owned(),
            target: format!("verification:{id}"),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({
                "indication": statement.report.indication.as_str(),
                "sub_indication": statement.report.sub_indication.map(|s| s.as_str()),
                "signatures": statement.report.signatures.len(),
                "signature_sha256": statement.input.signature_sha256,
            }),
        })
        .await?;
    Ok(StoredVerification { statement, record })
}

/// A stored verification by id.
pub async fn load(state: &AppState, id: &str) -> Result<StoredVerification, AppError> {
    let valid_id = !id.is_empty()
        && id.len() <= kyso_store::MAX_VERIFICATION_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_id {
        return Err(AppError::NotFound {
            what: "verification",
            id: id.chars().take(64).collect(),
        });
    }
    let record = state
        .store()
        .get_verification(id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "verification",
            id: id.to_owned(),
        })?;
    let statement = serde_json::from_str(&record.report_json)
        .map_err(|e| AppError::internal(format!("stored report {id}: {e}")))?;
    Ok(StoredVerification { statement, record })
}

/// 16 random bytes as hex.
fn new_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(format!("random id: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What `kyso verify-receipt` found.
#[derive(Debug)]
pub struct ReceiptCheck {
    /// The statement the receipt signs.
    pub statement: VerificationStatement,
    /// The receipt's own validation (its signer: the validation service).
    pub receipt: ValidationReport,
    /// The receipt was signed by the expected validation service (by certificate common name).
    pub signer_expected: bool,
}

impl ReceiptCheck {
    /// The receipt is a valid signature over the statement, by the validation service, under
    /// the given root.
    pub fn passed(&self) -> bool {
        self.signer_expected
            && self.receipt.signatures.len() == 1
            && self.receipt.indication == kyso_validate::Indication::TotalPassed
    }

    /// The receipt signer's common name.
    pub fn signer_common_name(&self) -> Option<&str> {
        self.receipt
            .signatures
            .first()
            .and_then(|s| s.signer.as_ref())
            .and_then(|n| n.common_name.as_deref())
    }
}

/// Checks a receipt offline: `receipt_der` must be a valid detached signature over exactly
/// `statement_json`, by a certificate that chains to `root_der` (the deployment's root CA), at
/// the time its own timestamp proves, with the revocation data it carries; and its signer must be
/// the validation service named `signer_common_name` (any other certificate under the same root
/// cannot issue receipts).
pub async fn check_receipt(
    statement_json: &[u8],
    receipt_der: &[u8],
    root_der: &[u8],
    signer_common_name: &str,
    now: time::OffsetDateTime,
) -> Result<ReceiptCheck, AppError> {
    let statement: VerificationStatement = serde_json::from_slice(statement_json).map_err(|e| {
        AppError::unprocessable(
            "receipt_statement_malformed",
            "Tệp kết quả kiểm tra không phải một bản kết quả của kyso.",
            format!("The statement is not a kyso verification statement: {e}"),
        )
    })?;
    let mut anchors = kyso_validate::TrustAnchors::new();
    anchors
        .add_anchor_der(root_der, "root", None, false)
        .map_err(|e| {
            AppError::unprocessable(
                "receipt_root_malformed",
                "Chứng thư số gốc không hợp lệ.",
                format!("The root certificate is not usable: {e}"),
            )
        })?;
    let validator = kyso_cades::SignatureValidator::new(
        std::sync::Arc::new(kyso_validate::PathValidator::new(anchors)),
        kyso_validate::ValidationPolicy::default(),
    );
    let receipt = validator
        .validate_cms(
            CmsInput {
                detached: DetachedContent::Content(statement_json),
                ..CmsInput::new(receipt_der)
            },
            now,
        )
        .await
        .map_err(|e| {
            AppError::unprocessable(
                e.code(),
                "Biên nhận không phải một chữ ký CMS hợp lệ.".to_owned(),
                format!("The receipt is not a valid CMS signature: {e}"),
            )
        })?;
    let mut check = ReceiptCheck {
        statement,
        receipt,
        signer_expected: false,
    };
    check.signer_expected = check.signer_common_name() == Some(signer_common_name);
    Ok(check)
}
