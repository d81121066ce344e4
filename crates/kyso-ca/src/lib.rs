//! kyso-ca: certificate-authority logic with no storage and no HTTP (the server stores results).
//!
//! - [`subject`]: Vietnamese subjects (UTF8String names, identity numbers in `UID`), masking, reading.
//! - [`profile`]: certificate profiles as a pipeline: modify, then validate, then enforce.
//! - [`csr`]: PKCS#10 parsing with the proof-of-possession signature checked.
//! - [`keys`]: the public-key policy and signature verification.
//! - [`prepared`]: a CA's own key prepared for the self-check of every signature its HSM makes.
//! - [`issue`]: issuance signed by an HSM key, serial numbers, root and sub-CA bootstrap.
//! - [`crl`]: v2 CRLs assembled by hand (AKI = the signing CA's own key identifier).
//! - [`ocsp`]: RFC 6960 request parsing and signed responses.

pub mod crl;
pub mod csr;
pub mod error;
pub mod issue;
pub mod keys;
pub mod ocsp;
pub mod oids;
pub mod prepared;
pub mod profile;
pub mod subject;
pub mod summary;
#[cfg(test)]
mod test_pki;

pub use crl::{CrlParams, RevocationReason, RevokedEntry, build_crl};
pub use csr::{CsrError, VerifiedCsr, verify_csr};
pub use error::CaError;
pub use issue::{
    Issuer, issue_certificate, issue_sub_ca, parse_serial_hex, random_serial, self_signed_root,
    serial_hex,
};
pub use keys::{KeyError, PublicKeyKind};
pub use ocsp::{
    CertStatusInfo, CertStatusSource, OcspAnswer, OcspAuthority, OcspError, OcspResponder,
    ParsedOcspRequest, StatusLookupError, parse_ocsp_request, parse_ocsp_request_base64,
};
pub use prepared::{P256VerifyingTable, PreparedKey};
pub use profile::{
    CertificateOrder, CertificatePlan, IssuerView, ProfileError, ProfileKind, ProfileSettings,
};
pub use subject::{
    IdentityKind, IdentityNumber, NameFields, SubjectError, VnSubject, mask_identity, read_name,
};
pub use summary::{CertificateSummary, summarize};

/// The futures the server awaits inside axum handlers and spawned tasks must be `Send`.
#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    struct NoStore;
    impl CertStatusSource for NoStore {
        async fn status(
            &self,
            _ca: &str,
            _serial: &x509_cert::serial_number::SerialNumber,
        ) -> Result<CertStatusInfo, StatusLookupError> {
            Ok(CertStatusInfo::Unknown)
        }
    }

    #[allow(dead_code)] // compile-time check only: never called
    fn futures_are_send(
        issuer: &Issuer,
        order: &CertificateOrder,
        settings: &ProfileSettings,
        clock: &dyn kyso_clock::Clock,
        responder: &OcspResponder,
        params: CrlParams,
    ) {
        assert_send(&issue_certificate(
            issuer,
            order,
            settings,
            random_serial(),
            clock,
        ));
        assert_send(&build_crl(issuer, params, &[]));
        assert_send(&responder.respond_der(&[], &NoStore, clock));
    }
}
