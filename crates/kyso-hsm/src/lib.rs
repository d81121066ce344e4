//! PKCS#11 key access for kyso, over `cryptoki`: module loading, token discovery, one login per
//! token, a pool of sessions usable from many tokio tasks, key generation on the token, signing
//! (ECDSA P-256/P-384 with DER output, RSA PKCS#1 v1.5 and PSS) and errors that keep the `CKR_*`
//! code.
//!
//! This is the only kyso crate that talks to native code, and it does so only through
//! `cryptoki`'s safe API: the crate has no `unsafe` of its own except the environment setup of
//! the `testing` module (workspace lint `unsafe_code = "deny"`, allowed there alone).
//!
//! Private keys never leave the token. [`HsmKey`] implements `signature::Keypair`,
//! `spki::DynSignatureAlgorithmIdentifier`, `signature::Signer` and `signature::AsyncSigner`, so
//! the x509-cert and cms builders sign with it directly.

mod algorithm;
pub mod doctor;
mod error;
mod key;
mod module;
mod pin;
mod placement;
mod token;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use algorithm::{
    HashAlgorithm, KeyAlgorithm, ParseAlgorithmError, RsaPadding, VerifyError, key_algorithm_of,
    signature_algorithm, verify_digest_signature,
};
pub use doctor::{DoctorReport, MechanismCheck, Step, TestSignature, doctor};
pub use error::HsmError;
pub use key::{AsyncHsmSigner, HsmKey, HsmPublicKey, HsmSignature};
pub use module::{MechanismSummary, Module, ModuleInfo, SlotSummary, TokenSummary};
pub use pin::Pin;
pub use placement::DEFAULT_INLINE_BUDGET;
pub use token::{KeySummary, Token};
