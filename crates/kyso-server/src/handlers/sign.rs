//! `POST /v1/sign/cms`: CMS/CAdES signatures (B-B, B-T, B-LT) for API clients, with keys granted
//! to them, over documents or their digests, one result per document.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_cades::{CadesSigner, Level};
use kyso_hsm::HashAlgorithm;
use kyso_store::{
    AuditOutcome, AuthorisationEpoch, ClientRole, NewAuditEvent, SigningAuthorisation, StoreError,
};
use serde::Deserialize;

use crate::auth::{Caller, PresentedKey};
use crate::error::AppError;
use crate::signing::{CheckedSigner, Document, DocumentRequest, SignOutcome};
pub use crate::signing::{DocumentResult, Packaging, SignCmsResponse};
use crate::state::AppState;

const SIGNERS: &[ClientRole] = &[ClientRole::Client, ClientRole::Admin];

/// The request body. Base64 fields borrow from the body when they hold no JSON escapes (they
/// never need any), so a document is not copied before it is decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignCmsRequest<'a> {
    /// The signing key's name (its label on the signing token), granted to the caller.
    pub key: String,
    /// B-B (default), B-T or B-LT.
    #[serde(default = "default_level")]
    pub level: Level,
    /// attached (default) or detached; a digest-only document is always detached.
    #[serde(default)]
    pub packaging: Packaging,
    #[serde(borrow)]
    pub documents: Vec<DocumentInput<'a>>,
}

fn default_level() -> Level {
    Level::BB
}

/// One document: its content, or only its digest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput<'a> {
    /// The caller's reference, echoed in the result.
    #[serde(default)]
    pub id: Option<String>,
    /// The document, base64.
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    /// The document's digest, base64 (computed with the key's hash: see `digest_algorithm`).
    #[serde(default, borrow)]
    pub digest: Option<Cow<'a, str>>,
    /// sha256, sha384 or sha512; must be the key's hash.
    #[serde(default)]
    pub digest_algorithm: Option<String>,
}

/// How many times a call may find, at release, that signing authority changed since its
/// authorisation was read (each time a withdrawal committed meanwhile), read it again and retry,
/// before it answers `authorisation_changed`.
const RELEASE_ATTEMPTS: usize = 4;

/// `POST /v1/sign/cms`.
///
/// The usual call (a signer already loaded) reads nothing from the database before signing: the
/// caller by its API key, its grant of the key and the certificate's status, read together once
/// ([`Store::authorise_signing`](kyso_store::Store::authorise_signing)), are kept in memory
/// ([`SigningAuthorisations`](crate::signing::SigningAuthorisations)) with the authorisation
/// epoch, and the signatures leave only once the call's audit record is written at that epoch.
/// If a withdrawal has committed since, the authorisation is read again: a refusal then drops the
/// signatures (and is audited as any refusal), else they are released at the new epoch. A
/// request that is refused for its body is authenticated first, so an unauthenticated caller
/// still gets 401.
pub async fn sign_cms(
    State(state): State<AppState>,
    presented: PresentedKey,
    request: Request,
) -> Result<Response, AppError> {
    let limits = &state.config().limits;
    let body =
        match crate::extract::read_json_body(request, limits.max_document_request_bytes).await {
            Ok(body) => body,
            Err(e) => return Err(refuse_body(&state, &presented, e).await),
        };
    let request: SignCmsRequest<'_> = match crate::extract::parse_json(&body) {
        Ok(request) => request,
        Err(e) => return Err(refuse_body(&state, &presented, e).await),
    };
    if let Err(e) = check_batch(&request, limits.max_batch_documents) {
        return Err(refuse_body(&state, &presented, e).await);
    }
    let key = request.key.as_str();
    let now = state.clock().now_unix();
    let signing_keys = state.trust().signing_keys();
    let documents = || -> Vec<DocumentRequest> {
        request
            .documents
            .iter()
            .map(|d| (d.id.clone(), decode_document(d, request.packaging)))
            .collect()
    };
    let (caller, checked) = match signing_keys.cached(key, now) {
        // The usual case: the authorisation as kept, or read once.
        Some(signer) => {
            let serial = signer.certificate().tbs_certificate().serial_number();
            let serial = serial.as_bytes();
            let kept = state
                .signing_authorisations()
                .get(&presented.hash, key, serial);
            let (caller, epoch) = match kept {
                Some(authorisation) => {
                    authorise(&state, &presented, key, &signer, now, authorisation).await?
                }
                None => read_authorisation(&state, &presented, key, &signer, now).await?,
            };
            let outcome = crate::signing::sign_unreleased(
                &state,
                key,
                signer.clone(),
                request.level,
                request.packaging,
                documents(),
            )
            .await;
            release(
                &state,
                &presented,
                key,
                &signer,
                now,
                (caller, epoch),
                &outcome,
            )
            .await?;
            return respond(outcome);
        }
        // Not loaded yet: the grant first, so that only a granted caller makes the token look
        // the key up; then its status.
        None => {
            let caller = presented.authenticate(&state).await?;
            caller.require(&state, SIGNERS, "sign.cms").await?;
            if !state.store().has_key_grant(caller.client.id, key).await? {
                return Err(refuse_not_granted(&state, &caller, key).await?);
            }
            let signer = signing_keys.signer(key, now).await?;
            let status = signing_keys.check_status(state.store(), &signer, now).await;
            (caller, CheckedSigner { signer, status })
        }
    };
    let outcome = crate::signing::sign_documents_checked(
        &state,
        &caller.actor(),
        key,
        checked,
        request.level,
        request.packaging,
        documents(),
    )
    .await?;
    respond(outcome)
}

fn respond(outcome: SignOutcome) -> Result<Response, AppError> {
    // The JSON serde would write for `SignCmsResponse`, without the intermediate strings.
    let json = outcome.into_json()?;
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response())
}

/// Writes the call's audit record at the authorisation's epoch, which releases `outcome`. If a
/// withdrawal has committed since the authorisation was read, it is read again: a refusal then
/// answers the call (audited, the signatures dropped), else the record is written at the new
/// epoch.
async fn release(
    state: &AppState,
    presented: &PresentedKey,
    key: &str,
    signer: &Arc<CadesSigner>,
    now: i64,
    authorised: (Caller, AuthorisationEpoch),
    outcome: &SignOutcome,
) -> Result<(), AppError> {
    let (mut caller, mut epoch) = authorised;
    let mut attempts = 1;
    loop {
        let event = outcome.release_event(&caller.actor());
        match state.store().append_audit_authorised(&event, epoch).await {
            Ok(_) => return Ok(()),
            Err(StoreError::AuthorisationChanged { current, .. })
                if attempts < RELEASE_ATTEMPTS =>
            {
                attempts += 1;
                state
                    .signing_authorisations()
                    .saw_epoch(AuthorisationEpoch(current));
                (caller, epoch) = read_authorisation(state, presented, key, signer, now).await?;
            }
            Err(e) => {
                if !e.is_refusal() {
                    tracing::error!(action = %event.action, target = %event.target, error = %e, "audit append failed");
                }
                return Err(e.into());
            }
        }
    }
}

/// Reads the caller's authorisation to sign with the loaded `signer` (one store read) and judges
/// it as [`authorise`] does; one that allows signing is kept for the next calls.
async fn read_authorisation(
    state: &AppState,
    presented: &PresentedKey,
    key: &str,
    signer: &Arc<CadesSigner>,
    now: i64,
) -> Result<(Caller, AuthorisationEpoch), AppError> {
    let serial = signer.certificate().tbs_certificate().serial_number();
    let read = state
        .store()
        .authorise_signing(&presented.hash, key, serial.as_bytes())
        .await?;
    let Some(authorisation) = read else {
        return Err(presented.refuse_unknown(state).await);
    };
    let judged = authorise(state, presented, key, signer, now, authorisation.clone()).await?;
    state
        .signing_authorisations()
        .keep(&presented.hash, key, serial.as_bytes(), authorisation);
    Ok(judged)
}

/// Judges an authorisation read (now or earlier) for `signer`'s use now: the caller's role, its
/// grant, and the certificate's status and validity, each refusal audited; the caller and the
/// epoch to release the signatures at.
async fn authorise(
    state: &AppState,
    presented: &PresentedKey,
    key: &str,
    signer: &CadesSigner,
    now: i64,
    authorisation: SigningAuthorisation,
) -> Result<(Caller, AuthorisationEpoch), AppError> {
    let SigningAuthorisation {
        client,
        grant,
        epoch,
    } = authorisation;
    let caller = presented.accept(state, client).await;
    caller.require(state, SIGNERS, "sign.cms").await?;
    if !grant.granted {
        return Err(refuse_not_granted(state, &caller, key).await?);
    }
    let signing_keys = state.trust().signing_keys();
    if let Err(refusal) = signing_keys.check_status_read(signer, now, grant.certificate.as_ref()) {
        return Err(crate::signing::refuse_signer(state, &caller.actor(), key, refusal).await?);
    }
    Ok((caller, epoch))
}

/// A batch must hold between one and `max` documents.
fn check_batch(request: &SignCmsRequest<'_>, max: usize) -> Result<(), AppError> {
    if request.documents.is_empty() {
        return Err(AppError::unprocessable(
            "batch_empty",
            "Cần ít nhất một tài liệu để ký.",
            "At least one document is required.",
        ));
    }
    if request.documents.len() > max {
        return Err(AppError::unprocessable(
            "batch_too_large",
            format!("Mỗi lần ký tối đa {max} tài liệu."),
            format!("At most {max} documents per call."),
        ));
    }
    Ok(())
}

/// The answer to a request refused for its body: an authentication or role refusal if there is
/// one (each audited), else `refusal`.
async fn refuse_body(state: &AppState, presented: &PresentedKey, refusal: AppError) -> AppError {
    let caller = match presented.authenticate(state).await {
        Ok(caller) => caller,
        Err(e) => return e,
    };
    match caller.require(state, SIGNERS, "sign.cms").await {
        Ok(()) => refusal,
        Err(e) => e,
    }
}

/// Audits a call for a key the caller holds no grant of; gives the refusal to answer with.
async fn refuse_not_granted(
    state: &AppState,
    caller: &Caller,
    key: &str,
) -> Result<AppError, AppError> {
    state
        .audit(NewAuditEvent {
            actor: caller.actor(),
            action: "sign.cms".to_owned(),
            target: format!("key:{}", truncate(key, 128)),
            outcome: AuditOutcome::Failure,
            details: serde_json::json!({ "reason": "signing_key_not_granted" }),
        })
        .await?;
    Ok(AppError::KeyNotGranted {
        key: truncate(key, 128),
    })
}

/// A document's bytes from its JSON form.
fn decode_document(
    document: &DocumentInput<'_>,
    packaging: Packaging,
) -> Result<Document, AppError> {
    let bad_base64 = |field: &str| {
        AppError::unprocessable(
            "document_bad_base64",
            format!("Trường {field} không phải base64 hợp lệ."),
            format!("Field {field} is not valid base64."),
        )
    };
    match (&document.content, &document.digest) {
        (Some(text), None) => {
            let bytes = B64
                .decode(text.as_bytes())
                .map_err(|_| bad_base64("content"))?;
            Ok(match packaging {
                Packaging::Attached => Document::Attached(bytes),
                Packaging::Detached => Document::Detached(bytes),
            })
        }
        (None, Some(text)) => {
            let digest = B64
                .decode(text.as_bytes())
                .map_err(|_| bad_base64("digest"))?;
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
