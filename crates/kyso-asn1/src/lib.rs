//! kyso-asn1: ASN.1 types kyso needs that no published crate has in a usable form.
//!
//! - [`RevocationReason`]: RFC 5280 5.3.1 CRLReason, shared by the CA logic (CRLs, OCSP) and the
//!   store (which keeps the numeric code), so neither depends on the other for it.
//! - [`oids`]: the object identifiers of CMS/CAdES, ESS and RFC 3161, and [`HashAlgorithm`].
//! - [`ess`]: ESS signing-certificate attributes (RFC 2634, RFC 5035).
//! - [`rfc3161`]: the timestamp protocol's request, response and TSTInfo (RFC 3161 2.4).

pub mod ess;
pub mod oids;
mod reason;
pub mod rfc3161;

pub use oids::HashAlgorithm;
pub use reason::{RevocationReason, UnknownReason};
