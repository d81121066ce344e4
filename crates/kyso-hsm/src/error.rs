//! The one error type of kyso-hsm: every variant names what was being done and on which token and
//! key, and PKCS#11 failures keep the `CKR_*` name.

use cryptoki::error::{Error as CkError, RvError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {path}: {reason}")]
    ModuleLoad { path: PathBuf, reason: String },

    #[error(
        "no token labelled {label:?} (available tokens: {})",
        list_or_none(available)
    )]
    TokenNotFound {
        label: String,
        available: Vec<String>,
    },

    #[error("a token labelled {label:?} already exists")]
    TokenExists { label: String },

    #[error("no free (uninitialised) slot for a new token {label:?}")]
    NoFreeSlot { label: String },

    #[error("wrong user PIN for token {token:?}")]
    WrongPin { token: String },

    #[error("the PIN is not available: {source_desc}")]
    PinUnavailable { source_desc: String },

    #[error("no key labelled {label:?} on token {token:?}")]
    KeyNotFound { token: String, label: String },

    #[error("a key labelled {label:?} already exists on token {token:?}")]
    KeyExists { token: String, label: String },

    #[error("invalid key label {label:?} for token {token:?}: {reason}")]
    InvalidLabel {
        token: String,
        label: String,
        reason: String,
    },

    #[error("key {label:?} on token {token:?} has an algorithm kyso cannot use: {key_type}")]
    KeyUnsupported {
        token: String,
        label: String,
        key_type: String,
    },

    #[error("token {token:?} lacks the mechanism {mechanism} needed for {purpose}")]
    MechanismUnsupported {
        token: String,
        mechanism: String,
        purpose: String,
    },

    #[error("certificate for key {label:?} on token {token:?} rejected: {reason}")]
    BadCertificate {
        token: String,
        label: String,
        reason: String,
    },

    #[error(
        "PKCS#11 {op} failed with {ckr} (token {}, key {}, {function})",
        opt(token),
        opt(key)
    )]
    Pkcs11 {
        /// What kyso was doing, e.g. "sign", "generate_key".
        op: &'static str,
        token: Option<String>,
        key: Option<String>,
        /// The `CKR_*` name of the return value, or a description of a non-PKCS#11 failure of
        /// the cryptoki layer.
        ckr: String,
        /// The PKCS#11 function that returned it, e.g. "C_Sign".
        function: String,
    },

    #[error("digest has {actual} bytes, {expected} expected for {hash}")]
    BadDigest {
        hash: &'static str,
        expected: usize,
        actual: usize,
    },

    #[error("internal HSM layer error: {reason}")]
    Internal { reason: String },
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn opt(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "-".to_owned(),
    }
}

impl HsmError {
    /// Stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            HsmError::ModuleLoad { .. } => "hsm_module_load",
            HsmError::TokenNotFound { .. } => "hsm_token_not_found",
            HsmError::TokenExists { .. } => "hsm_token_exists",
            HsmError::NoFreeSlot { .. } => "hsm_no_free_slot",
            HsmError::WrongPin { .. } => "hsm_wrong_pin",
            HsmError::PinUnavailable { .. } => "hsm_pin_unavailable",
            HsmError::KeyNotFound { .. } => "hsm_key_not_found",
            HsmError::KeyExists { .. } => "hsm_key_exists",
            HsmError::KeyUnsupported { .. } => "hsm_key_unsupported",
            HsmError::InvalidLabel { .. } => "hsm_invalid_label",
            HsmError::MechanismUnsupported { .. } => "hsm_mechanism_unsupported",
            HsmError::BadCertificate { .. } => "hsm_bad_certificate",
            HsmError::Pkcs11 { .. } => "hsm_pkcs11",
            HsmError::BadDigest { .. } => "hsm_bad_digest",
            HsmError::Internal { .. } => "hsm_internal",
        }
    }

    /// The `CKR_*` name when this is a PKCS#11 failure.
    pub fn ckr(&self) -> Option<&str> {
        match self {
            HsmError::Pkcs11 { ckr, .. } => Some(ckr),
            _ => None,
        }
    }

    pub(crate) fn pkcs11(
        op: &'static str,
        token: Option<&str>,
        key: Option<&str>,
        err: &CkError,
    ) -> HsmError {
        let (ckr, function) = match err {
            CkError::Pkcs11(rv, function) => (ckr_name(*rv), c_function_name(function)),
            other => (other.to_string(), "cryptoki".to_owned()),
        };
        HsmError::Pkcs11 {
            op,
            token: token.map(str::to_owned),
            key: key.map(str::to_owned),
            ckr,
            function,
        }
    }

    pub(crate) fn internal(reason: impl std::fmt::Display) -> HsmError {
        HsmError::Internal {
            reason: reason.to_string(),
        }
    }
}

/// `Function::Sign` -> "C_Sign".
fn c_function_name(f: &cryptoki::context::Function) -> String {
    format!("C_{f:?}")
}

/// The `CKR_*` name of a PKCS#11 return value: cryptoki's variant names are the CKR names in
/// CamelCase (`PinIncorrect` -> `CKR_PIN_INCORRECT`).
pub(crate) fn ckr_name(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(v) => format!("CKR_VENDOR_DEFINED(0x{v:08x})"),
        RvError::UnknownErrorCode(v) => format!("CKR_UNKNOWN(0x{v:08x})"),
        other => {
            let camel = format!("{other:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            out.push_str("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names_follow_the_pkcs11_spelling() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        assert_eq!(
            ckr_name(RvError::CryptokiAlreadyInitialized),
            "CKR_CRYPTOKI_ALREADY_INITIALIZED"
        );
        assert_eq!(
            ckr_name(RvError::VendorDefined(0x8000_0001)),
            "CKR_VENDOR_DEFINED(0x80000001)"
        );
    }

    #[test]
    fn pkcs11_error_keeps_operation_token_key_and_code() {
        let err = HsmError::pkcs11(
            "sign",
            Some("kyso-ca"),
            Some("root"),
            &CkError::Pkcs11(RvError::KeyHandleInvalid, cryptoki::context::Function::Sign),
        );
        assert_eq!(err.code(), "hsm_pkcs11");
        assert_eq!(err.ckr(), Some("CKR_KEY_HANDLE_INVALID"));
        let text = err.to_string();
        assert!(text.contains("sign"), "{text}");
        assert!(text.contains("kyso-ca"), "{text}");
        assert!(text.contains("root"), "{text}");
        assert!(text.contains("C_Sign"), "{text}");
    }
}
