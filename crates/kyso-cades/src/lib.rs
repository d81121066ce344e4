//! kyso-cades: CMS/CAdES signatures with keys in the HSM, and their cryptographic verification.
//!
//! - [`sign`]: CAdES baseline B-B, B-T (signature timestamp from a [`TimestampSource`]) and B-LT
//!   (plus chain and revocation data from a [`ValidationDataSource`]), attached, detached or over
//!   a client-supplied digest.
//! - [`parse::parse_signed_data`]: a bounded BER/DER SignedData parser (the fuzz entry point).
//! - [`verify`]: signature values, signed-attribute rules, signing-certificate binding and
//!   signature timestamps, without path validation.
//! - [`validation`]: the full verdict (ETSI EN 319 102-1): [`verify`] plus kyso-validate's path
//!   validation of the signer and TSA certificates at the best signature time, with revocation
//!   data from the signature, the caller and revocation sources, as a [`ValidationReport`].

mod ber;
pub mod crypto;
mod error;
pub mod parse;
mod sign;
pub mod validation;
pub mod verify;

#[cfg(test)]
mod test_pki;

pub use crypto::DigestAlgorithm;
pub use error::{SignError, TimestampError, ValidationDataError};
pub use kyso_hsm::HashAlgorithm;
pub use sign::{
    CadesSigner, Content, Level, SignOptions, TimestampSource, ValidationData,
    ValidationDataSource, sign,
};
pub use validation::{CmsInput, SignatureValidation, SignatureValidator, ValidationReport};

/// The shared test vectors (`KYSO_TESTDATA`, else `../shared/testdata` beside the checkout).
#[cfg(test)]
pub(crate) fn testdata_dir() -> std::path::PathBuf {
    std::env::var_os("KYSO_TESTDATA").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
        std::path::PathBuf::from,
    )
}
