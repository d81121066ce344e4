//! Adapters that plug per-validation data into a certval `PkiEnvironment`.
//!
//! The environment is assembled for each candidate path from shared, pre-parsed parts: the
//! anchor of that path (so trust-store lookups scan one entry), the shared signature cache, the
//! CRLs of this call, and the revocation decisions already made for this call.

use std::sync::{Arc, Mutex};

use certval::{
    CrlSource, Error as CertvalError, PDVCertificate, PDVTrustAnchorChoice, PathValidationStatus,
    Result as CertvalResult, RevocationStatusCache, SubjectNameAndKey, TimeOfInterest,
    TrustAnchorSource, buffer_to_hex, compare_names, get_subject_public_key_info_from_trust_anchor,
    get_trust_anchor_name,
};
use x509_cert::certificate::Raw;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

use crate::anchors::AnchorEntry;

/// The trust anchor of one candidate path, as a certval trust anchor source.
pub(crate) struct SingleAnchorSource(pub Arc<AnchorEntry>);

impl SingleAnchorSource {
    fn anchor(&self) -> &PDVTrustAnchorChoice {
        &self.0.pdv
    }

    fn same_key(&self, other: &spki::SubjectPublicKeyInfoOwned) -> bool {
        get_subject_public_key_info_from_trust_anchor(self.anchor().decoded()) == other
    }
}

impl TrustAnchorSource for SingleAnchorSource {
    fn get_trust_anchors(&self) -> CertvalResult<Vec<&PDVTrustAnchorChoice>> {
        Ok(vec![self.anchor()])
    }

    fn get_trust_anchor_by_skid(&self, skid: &[u8]) -> CertvalResult<&PDVTrustAnchorChoice> {
        self.get_trust_anchor_by_hex_skid(&buffer_to_hex(skid))
    }

    fn get_trust_anchor_by_hex_skid(&self, hex_skid: &str) -> CertvalResult<&PDVTrustAnchorChoice> {
        if !self.0.hex_skid.is_empty() && self.0.hex_skid == hex_skid {
            Ok(self.anchor())
        } else {
            Err(CertvalError::NotFound)
        }
    }

    fn get_trust_anchor_by_name(&self, target: &Name) -> CertvalResult<&PDVTrustAnchorChoice> {
        match get_trust_anchor_name(self.anchor().decoded()) {
            Ok(name) if compare_names(name, target) => Ok(self.anchor()),
            _ => Err(CertvalError::NotFound),
        }
    }

    fn get_trust_anchor_for_target(
        &self,
        target: &PDVCertificate,
    ) -> CertvalResult<&PDVTrustAnchorChoice> {
        self.get_trust_anchor_by_name(target.decoded().tbs_certificate().issuer())
    }

    fn get_encoded_trust_anchor(&self, skid: &[u8]) -> CertvalResult<Vec<u8>> {
        self.get_trust_anchor_by_skid(skid)
            .map(|ta| ta.as_bytes().to_vec())
    }

    fn get_encoded_trust_anchors(&self) -> CertvalResult<Vec<Vec<u8>>> {
        Ok(vec![self.anchor().as_bytes().to_vec()])
    }

    fn is_trust_anchor(&self, ta: &PDVTrustAnchorChoice) -> CertvalResult<()> {
        if self.same_key(get_subject_public_key_info_from_trust_anchor(ta.decoded())) {
            Ok(())
        } else {
            Err(CertvalError::NotFound)
        }
    }

    fn is_cert_a_trust_anchor(&self, cert: &PDVCertificate) -> CertvalResult<()> {
        if self.same_key(cert.decoded().tbs_certificate().subject_public_key_info()) {
            Ok(())
        } else {
            Err(CertvalError::NotFound)
        }
    }
}

/// A CRL of this call, parsed once.
pub(crate) struct CallCrl {
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub digest: [u8; 32],
    /// Unix seconds.
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub issuer: Name,
    pub weak_signature: bool,
    /// A delta CRL (certval does not process them; see `validate_candidate`).
    pub is_delta: bool,
}

/// The CRLs of one call, offered to certval by issuer name (it checks scope, time and signature).
pub(crate) struct CallCrls {
    pub crls: Arc<Vec<Arc<CallCrl>>>,
    /// SHA-1-signed CRLs are offered only under anchors that allow SHA-1.
    pub allow_weak: bool,
}

impl CrlSource for CallCrls {
    fn get_all_crls(&self) -> CertvalResult<Vec<Vec<u8>>> {
        Ok(self
            .crls
            .iter()
            .filter(|c| self.allow_weak || !c.weak_signature)
            .map(|c| c.bytes.clone())
            .collect())
    }

    fn get_crls(&self, cert: &PDVCertificate) -> CertvalResult<Vec<Vec<u8>>> {
        let issuer = cert.decoded().tbs_certificate().issuer();
        Ok(self
            .crls
            .iter()
            .filter(|c| {
                (self.allow_weak || !c.weak_signature)
                    && !c.is_delta
                    && compare_names(&c.issuer, issuer)
            })
            .map(|c| c.bytes.clone())
            .collect())
    }

    fn add_crl(&self, _buf: &[u8], _crl: &CertificateList<Raw>, _uri: &str) -> CertvalResult<()> {
        // Nothing is fetched during a validation, so nothing arrives to be kept.
        Err(CertvalError::Unrecognized)
    }
}

/// Certificates this call already decided are not revoked at the time of interest (for example
/// revoked only after it), so a later revocation pass does not stop at them again.
#[derive(Clone, Default)]
pub(crate) struct DecidedGood(pub Arc<Mutex<Vec<Vec<u8>>>>);

impl DecidedGood {
    pub fn mark(&self, cert: &PDVCertificate) {
        if let Ok(mut v) = self.0.lock()
            && !v.iter().any(|d| d.as_slice() == cert.as_bytes())
        {
            v.push(cert.as_bytes().to_vec());
        }
    }
}

impl RevocationStatusCache for DecidedGood {
    fn get_status(
        &self,
        cert: &PDVCertificate,
        _issuer: &dyn SubjectNameAndKey,
        _time_of_interest: TimeOfInterest,
    ) -> PathValidationStatus {
        let known = self
            .0
            .lock()
            .map(|v| v.iter().any(|d| d.as_slice() == cert.as_bytes()))
            .unwrap_or(false);
        if known {
            PathValidationStatus::Valid
        } else {
            PathValidationStatus::RevocationStatusNotDetermined
        }
    }

    fn add_status(
        &self,
        _cert: &PDVCertificate,
        _issuer: &dyn SubjectNameAndKey,
        _next_update: u64,
        _status: PathValidationStatus,
    ) {
        // certval offers its own determinations here; this cache holds only ours.
    }
}
