//! API keys and roles.
//!
//! A key is `kyso_` followed by 32 random bytes in unpadded base64url. Only its SHA-256 is stored, with
//! its first characters as a display prefix. Requests carry it as `Authorization: Bearer <key>`.
//! Every failed authentication and every refused role is written to the audit log.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kyso_store::{ApiClientRecord, AuditOutcome, ClientRole, NewAuditEvent};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::AppError;
use crate::state::AppState;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "kyso_";
/// Characters of a key kept for display and audit (the `kyso_` tag plus 8 of the random part).
pub const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;
/// Length of a well-formed key: the tag plus 43 base64url characters for 32 bytes.
pub const KEY_LEN: usize = KEY_PREFIX.len() + 43;
/// `last_used_at` is written at most this often per client (seconds), to keep reads read-only.
const TOUCH_EVERY_SECS: i64 = 60;

/// A freshly generated API key: shown once, then only its hash is kept.
pub struct NewApiKey {
    /// The key itself (zeroized on drop).
    pub key: Zeroizing<String>,
    /// SHA-256 of the key, what the store keeps.
    pub hash: [u8; 32],
    /// The first characters, for display.
    pub prefix: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NewApiKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> NewApiKey {
        let mut random = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(random.as_mut());
        let key = Zeroizing::new(format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random.as_ref())
        ));
        let hash = hash_key(&key);
        let prefix = display_prefix(&key).to_owned();
        NewApiKey { key, hash, prefix }
    }
}

/// SHA-256 of a key, as stored.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The part of a presented key that may be shown and logged.
pub fn display_prefix(key: &str) -> &str {
    let end = key
        .char_indices()
        .nth(DISPLAY_PREFIX_LEN)
        .map_or(key.len(), |(i, _)| i);
    &key[..end]
}

/// Whether `key` has the shape of a kyso key (so a malformed one is refused without a lookup).
pub fn is_well_formed(key: &str) -> bool {
    key.len() == KEY_LEN
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An authenticated API client. Use as a handler argument; then check its role with
/// [`Caller::require`].
#[derive(Clone, Debug)]
pub struct Caller {
    pub client: ApiClientRecord,
}

impl Caller {
    /// The audit actor for this caller.
    pub fn actor(&self) -> String {
        format!("client:{}", self.client.id)
    }

    /// The caller's role.
    pub fn role(&self) -> ClientRole {
        self.client.role
    }

    /// Refuses (403, audited as `auth.forbidden`) unless the caller's role is one of `allowed`.
    pub async fn require(
        &self,
        state: &AppState,
        allowed: &[ClientRole],
        action: &str,
    ) -> Result<(), AppError> {
        if allowed.contains(&self.client.role) {
            return Ok(());
        }
        let allowed_text = allowed
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        state
            .audit(NewAuditEvent {
                actor: self.actor(),
                action: "auth.forbidden".to_owned(),
                target: action.to_owned(),
                outcome: AuditOutcome::Failure,
                details: serde_json::json!({
                    "role": self.client.role.as_str(),
                    "allowed": allowed_text,
                }),
            })
            .await?;
        Err(AppError::Forbidden {
            role: self.client.role.as_str().to_owned(),
            allowed: allowed_text,
        })
    }
}

/// Remembers when each client's use was last written, so authentication stays read-only most of the
/// time.
#[derive(Debug, Default)]
pub struct TouchTracker {
    last_written: Mutex<HashMap<i64, i64>>,
}

impl TouchTracker {
    /// Whether a use at `now` should be written for `client_id` (and notes it if so).
    fn due(&self, client_id: i64, now: i64) -> bool {
        let mut map = self.last_written.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&client_id) {
            Some(&last) if now - last < TOUCH_EVERY_SECS => false,
            _ => {
                map.insert(client_id, now);
                true
            }
        }
    }
}

/// An API key as presented in a request's `Authorization` header, well formed but not yet looked
/// up: for a handler that authenticates in the same read as its own lookups
/// (`POST /v1/sign/cms`). A missing or malformed header is refused (401, audited) by the
/// extractor itself, as [`Caller`] refuses it.
#[derive(Debug)]
pub struct PresentedKey {
    /// SHA-256 of the key, what the store keeps.
    pub hash: [u8; 32],
    prefix: String,
    method: axum::http::Method,
    /// For the audit record of a refusal (a reference-counted copy, not the path re-allocated).
    uri: axum::http::Uri,
}

impl PresentedKey {
    /// Looks the key up: the [`Caller`] extractor's authentication.
    pub async fn authenticate(&self, state: &AppState) -> Result<Caller, AppError> {
        match state.store().find_active_api_client(&self.hash).await? {
            Some(client) => Ok(self.accept(state, client).await),
            None => Err(self.refuse_unknown(state).await),
        }
    }

    /// Completes authentication with `client`, the active client found for this key (by
    /// [`authenticate`](Self::authenticate) or by a read of the handler's own). A use is noted
    /// at most once a minute per client.
    pub async fn accept(&self, state: &AppState, client: ApiClientRecord) -> Caller {
        if state
            .touch_tracker()
            .due(client.id, state.clock().now_unix())
            && let Err(e) = state.store().touch_api_client(client.id).await
        {
            // Losing a last-used stamp must not refuse a valid request.
            tracing::warn!(client = client.id, error = %e, "could not record API key use");
        }
        Caller { client }
    }

    /// The refusal (401, audited) of a key no active client holds.
    pub async fn refuse_unknown(&self, state: &AppState) -> AppError {
        let failure = AuthFailure {
            method: &self.method,
            path: self.uri.path(),
        };
        auth_failed(
            state,
            failure,
            "auth_invalid_key",
            Some(self.prefix.clone()),
        )
        .await
    }
}

impl FromRequestParts<AppState> for PresentedKey {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<PresentedKey, AppError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION);
        let presented = match header.map(|v| v.to_str()) {
            None => Err(("auth_missing", None)),
            Some(Err(_)) => Err(("auth_malformed", None)),
            Some(Ok(value)) => match value.strip_prefix("Bearer ") {
                None => Err(("auth_malformed", None)),
                Some(key) => {
                    let key = key.trim();
                    if is_well_formed(key) {
                        Ok(key)
                    } else {
                        Err(("auth_malformed", Some(display_prefix(key).to_owned())))
                    }
                }
            },
        };
        let failure = AuthFailure {
            method: &parts.method,
            path: parts.uri.path(),
        };
        match presented {
            Ok(key) => Ok(PresentedKey {
                hash: hash_key(key),
                prefix: display_prefix(key).to_owned(),
                method: parts.method.clone(),
                uri: parts.uri.clone(),
            }),
            Err((reason, prefix)) => Err(auth_failed(state, failure, reason, prefix).await),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, AppError> {
        PresentedKey::from_request_parts(parts, state)
            .await?
            .authenticate(state)
            .await
    }
}

/// What the audit record of a failed authentication says of the request.
struct AuthFailure<'a> {
    method: &'a axum::http::Method,
    path: &'a str,
}

/// Audits a failed authentication and builds the 401. If the audit write itself fails, that failure
/// is what the client gets (a 5xx): an unaudited refusal would hide probing.
async fn auth_failed(
    state: &AppState,
    request: AuthFailure<'_>,
    reason: &'static str,
    prefix: Option<String>,
) -> AppError {
    let event = NewAuditEvent {
        actor: prefix.unwrap_or_else(|| "anonymous".to_owned()),
        action: "auth.failed".to_owned(),
        target: request.path.chars().take(256).collect(),
        outcome: AuditOutcome::Failure,
        details: serde_json::json!({ "reason": reason, "method": request.method.as_str() }),
    };
    match state.audit(event).await {
        Ok(()) => AppError::Unauthenticated { reason },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_unique_and_hashed() {
        let a = NewApiKey::generate();
        let b = NewApiKey::generate();
        assert!(is_well_formed(&a.key), "{}", a.key.as_str());
        assert_ne!(a.key.as_str(), b.key.as_str());
        assert_eq!(a.hash, hash_key(&a.key));
        assert_eq!(a.prefix.len(), DISPLAY_PREFIX_LEN);
        assert!(a.key.starts_with(&a.prefix));
        assert!(!format!("{a:?}").contains(a.key.as_str()));
    }

    #[test]
    fn malformed_keys_are_recognised() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("kyso_short"));
        let good = NewApiKey::generate();
        let wrong_tag = good.key.replacen("kyso_", "kysa_", 1);
        assert!(!is_well_formed(&wrong_tag));
        let bad_char = format!("{}!", &good.key[..KEY_LEN - 1]);
        assert!(!is_well_formed(&bad_char));
        assert_eq!(display_prefix("kyso_é"), "kyso_é");
    }

    #[test]
    fn touch_is_rate_limited_per_client() {
        let tracker = TouchTracker::default();
        assert!(tracker.due(1, 1000));
        assert!(!tracker.due(1, 1030));
        assert!(tracker.due(2, 1030));
        assert!(tracker.due(1, 1061));
    }
}
