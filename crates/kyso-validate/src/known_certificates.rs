//! Certificates met in earlier validations, parsed and described once.
//!
//! The same few certificates (a CA, a TSA, frequent signers) come with nearly every signature;
//! parsing each into certval's `PDVCertificate`, hashing it, and summarising it for the report
//! took about a fifth of a validation. Both are pure functions of the DER, so they are kept by
//! DER (a map lookup hashes the bytes, far cheaper than SHA-256 or parsing). Bounded: each map is
//! cleared when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use certval::PDVCertificate;
use kyso_ca::CertificateSummary;
use sha2::{Digest, Sha256};

/// Certificates kept parsed, and kept described, at most (a few KiB each).
pub(crate) const MAX_KNOWN_CERTIFICATES: usize = 1024;

/// A certificate parsed for certval, with the SHA-256 of its DER.
pub(crate) struct ParsedCertificate {
    pub pdv: PDVCertificate,
    pub fingerprint: [u8; 32],
}

/// What the report says about a certificate whatever its place in a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DescribedCertificate {
    /// Unmasked; `None` when the names cannot be decoded.
    pub summary: Option<CertificateSummary>,
    /// Dotted OID of the signature algorithm, empty when unreadable.
    pub signature_algorithm: String,
    pub sha1_signature: bool,
}

type ByDer<T> = Mutex<HashMap<Vec<u8>, Arc<T>>>;

pub(crate) struct KnownCertificates {
    parsed: ByDer<ParsedCertificate>,
    described: ByDer<DescribedCertificate>,
    capacity: usize,
}

impl Default for KnownCertificates {
    fn default() -> KnownCertificates {
        KnownCertificates::with_capacity(MAX_KNOWN_CERTIFICATES)
    }
}

impl KnownCertificates {
    pub fn with_capacity(capacity: usize) -> KnownCertificates {
        KnownCertificates {
            parsed: Mutex::default(),
            described: Mutex::default(),
            capacity,
        }
    }

    /// Certificates kept parsed, kept described.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.parsed.lock().map(|m| m.len()).unwrap_or_default(),
            self.described.lock().map(|m| m.len()).unwrap_or_default(),
        )
    }

    /// `der` parsed (as `PDVCertificate::try_from`); errors are not kept.
    pub fn parse(&self, der: &[u8]) -> Result<Arc<ParsedCertificate>, der::Error> {
        if let Some(found) = self.parsed.lock().ok().and_then(|m| m.get(der).cloned()) {
            return Ok(found);
        }
        let parsed = Arc::new(ParsedCertificate {
            pdv: PDVCertificate::try_from(der)?,
            fingerprint: Sha256::digest(der).into(),
        });
        self.keep(&self.parsed, der, &parsed);
        Ok(parsed)
    }

    /// The description of `der`, made by `describe` the first time.
    pub fn describe(
        &self,
        der: &[u8],
        describe: impl FnOnce(&[u8]) -> DescribedCertificate,
    ) -> Arc<DescribedCertificate> {
        if let Some(found) = self.described.lock().ok().and_then(|m| m.get(der).cloned()) {
            return found;
        }
        let described = Arc::new(describe(der));
        self.keep(&self.described, der, &described);
        described
    }

    fn keep<T>(&self, map: &ByDer<T>, der: &[u8], value: &Arc<T>) {
        // A poisoned lock: another thread panicked while inserting; nothing is kept.
        if let Ok(mut map) = map.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(der.to_vec(), Arc::clone(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkits_cert(name: &str) -> Vec<u8> {
        let dir = std::env::var_os("KYSO_TESTDATA").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
            std::path::PathBuf::from,
        );
        let path = dir.join("nist-pkits/certs").join(format!("{name}.crt"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_known_certificate_is_what_parsing_it_again_gives() {
        let known = KnownCertificates::default();
        let der = pkits_cert("GoodCACert");
        let first = known.parse(&der).expect("parse");
        let second = known.parse(&der).expect("parse");
        assert!(Arc::ptr_eq(&first, &second), "the second is the kept one");
        assert!(second.pdv == PDVCertificate::try_from(der.as_slice()).expect("parse"));
        assert_eq!(second.fingerprint, <[u8; 32]>::from(Sha256::digest(&der)));
        // Another certificate is another entry; bad DER is an error every time.
        let other = known.parse(&pkits_cert("GoodsubCACert")).expect("parse");
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(known.parse(&der[..der.len() - 1]).is_err());
        assert!(known.parse(&der[..der.len() - 1]).is_err());
        assert_eq!(known.sizes().0, 2);

        let mut calls = 0;
        let mut describe = |_: &[u8]| {
            calls += 1;
            DescribedCertificate {
                summary: None,
                signature_algorithm: "1.2.3".into(),
                sha1_signature: false,
            }
        };
        let a = known.describe(&der, &mut describe);
        let b = known.describe(&der, &mut describe);
        assert_eq!(a, b);
        assert_eq!(calls, 1);
    }

    #[test]
    fn known_certificates_stay_bounded() {
        let known = KnownCertificates::with_capacity(2);
        let names = [
            "GoodCACert",
            "GoodsubCACert",
            "TrustAnchorRootCertificate",
            "ValidCertificatePathTest1EE",
            "RevokedsubCACert",
        ];
        for name in names {
            let der = pkits_cert(name);
            known.parse(&der).expect("parse");
            known.describe(&der, |_| DescribedCertificate {
                summary: None,
                signature_algorithm: String::new(),
                sha1_signature: false,
            });
            let (parsed, described) = known.sizes();
            assert!(parsed <= 2 && described <= 2, "{parsed}, {described}");
        }
    }
}
