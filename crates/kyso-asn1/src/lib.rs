//! kyso-asn1: ASN.1 types kyso needs that no published crate has in a usable form.
//!
//! - [`RevocationReason`]: RFC 5280 5.3.1 CRLReason, shared by the CA logic (CRLs, OCSP) and the
//!   store (which keeps the numeric code), so neither depends on the other for it.

mod reason;

pub use reason::{RevocationReason, UnknownReason};
