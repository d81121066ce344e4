//! Certificates and CRLs met in earlier validations, parsed, encoded and described once.
//!
//! The same few certificates (a CA, a TSA, frequent signers) and CRLs come with nearly every
//! signature; encoding each certificate, parsing it into certval's `PDVCertificate`, hashing it,
//! summarising it for the report, and parsing each CRL took about a quarter of a validation. All
//! are pure functions of their input, so they are kept by DER (a map lookup hashes the bytes, far
//! cheaper than SHA-256 or parsing), or for an encoding by the certificate itself (found by its
//! signature value, then compared whole). Bounded: each map is cleared when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use certval::PDVCertificate;
use kyso_ca::CertificateSummary;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::certificate_encodings::{CertificateEncodings, EncodedCertificate};
use crate::glue::CallCrl;

/// CRLs kept parsed at most, and the largest kept (a big CRL is parsed each time rather than
/// held): at most 16 MiB with the keys.
pub(crate) const MAX_KNOWN_CRLS: usize = 64;
pub(crate) const MAX_KNOWN_CRL_BYTES: usize = 128 * 1024;

/// Certificates kept parsed, and kept described, at most (a few KiB each).
pub(crate) const MAX_KNOWN_CERTIFICATES: usize = 1024;
/// Larger certificates are not kept (real ones are 1-3 KiB), so the maps stay small whatever
/// a caller sends.
pub(crate) const MAX_KEPT_CERTIFICATE_BYTES: usize = 16 * 1024;

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
    /// `summary` with identity numbers masked.
    pub masked_summary: Option<CertificateSummary>,
    /// Dotted OID of the signature algorithm, empty when unreadable.
    pub signature_algorithm: String,
    pub sha1_signature: bool,
}

type ByDer<T> = Mutex<HashMap<Vec<u8>, Arc<T>>>;

pub(crate) struct KnownCertificates {
    parsed: ByDer<ParsedCertificate>,
    described: ByDer<DescribedCertificate>,
    encoded: CertificateEncodings,
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
            encoded: CertificateEncodings::with_capacity(capacity),
            capacity,
        }
    }

    /// Certificates kept parsed, kept described.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.parsed.lock().map(|m| m.len()).unwrap_or_default(),
            self.described.lock().map(|m| m.len()).unwrap_or_default(),
            self.encoded.len(),
        )
    }

    /// `cert.to_der()`, kept (see [`CertificateEncodings`]); errors are not kept.
    pub fn encode(&self, cert: &Certificate) -> der::Result<EncodedCertificate> {
        self.encoded.encode(cert)
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
        if der.len() <= MAX_KEPT_CERTIFICATE_BYTES {
            keep(map, self.capacity, der, value);
        }
    }
}

fn keep<T>(map: &ByDer<T>, capacity: usize, der: &[u8], value: &Arc<T>) {
    // A poisoned lock: another thread panicked while inserting; nothing is kept.
    if let Ok(mut map) = map.lock() {
        if map.len() >= capacity {
            map.clear();
        }
        map.insert(der.to_vec(), Arc::clone(value));
    }
}

/// CRLs met before, as the calls use them.
pub(crate) struct KnownCrls {
    parsed: ByDer<CallCrl>,
    capacity: usize,
    max_bytes: usize,
}

impl Default for KnownCrls {
    fn default() -> KnownCrls {
        KnownCrls::with_capacity(MAX_KNOWN_CRLS, MAX_KNOWN_CRL_BYTES)
    }
}

impl KnownCrls {
    pub fn with_capacity(capacity: usize, max_bytes: usize) -> KnownCrls {
        KnownCrls {
            parsed: Mutex::default(),
            capacity,
            max_bytes,
        }
    }

    /// `bytes` as `parse` makes it, kept when small enough; errors are not kept.
    pub fn parse<E>(
        &self,
        bytes: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<CallCrl, E>,
    ) -> Result<Arc<CallCrl>, E> {
        if let Some(found) = self.parsed.lock().ok().and_then(|m| m.get(bytes).cloned()) {
            return Ok(found);
        }
        let crl = Arc::new(parse(bytes)?);
        if bytes.len() <= self.max_bytes {
            keep(&self.parsed, self.capacity, bytes, &crl);
        }
        Ok(crl)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.parsed.lock().map(|m| m.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

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

        // Encodings: the kept one is the certificate's own DER; a different certificate with
        // the same signature value (a forgery) is encoded anew.
        let cert = <Certificate as der::Decode>::from_der(&der).expect("decode");
        assert_eq!(known.encode(&cert).expect("encode").1, der);
        let kept = known.encode(&cert).expect("encode");
        assert_eq!(kept.1, der);
        let at = der
            .windows(7)
            .position(|w| w == b"Good CA")
            .expect("subject text");
        let mut forged = der.clone();
        forged[at] = b'H';
        let altered = <Certificate as der::Decode>::from_der(&forged).expect("decode");
        assert_eq!(altered.signature(), cert.signature());
        let altered_der = known.encode(&altered).expect("encode");
        assert_ne!(altered_der.1, der);
        assert_eq!(altered_der.1, altered.to_der().expect("encode"));

        let mut calls = 0;
        let mut describe = |_: &[u8]| {
            calls += 1;
            DescribedCertificate {
                summary: None,
                masked_summary: None,
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
                masked_summary: None,
                signature_algorithm: String::new(),
                sha1_signature: false,
            });
            let cert = <Certificate as der::Decode>::from_der(&der).expect("decode");
            assert_eq!(known.encode(&cert).expect("encode").1, der);
            let (parsed, described, encoded) = known.sizes();
            assert!(
                parsed <= 2 && described <= 2 && encoded <= 2,
                "{parsed}, {described}, {encoded}"
            );
        }
    }

    #[test]
    fn known_crls_are_parsed_once_and_stay_bounded() {
        let crls = KnownCrls::with_capacity(2, 4096);
        let calls = std::cell::Cell::new(0);
        let parse = |bytes: &[u8]| -> Result<CallCrl, ()> {
            calls.set(calls.get() + 1);
            if bytes.first() == Some(&0) {
                return Err(());
            }
            Ok(CallCrl {
                bytes: bytes.to_vec(),
                digest: Sha256::digest(bytes).into(),
                this_update: 1,
                next_update: Some(2),
                issuer: x509_cert::name::Name::default(),
                weak_signature: false,
                is_delta: false,
            })
        };
        let a = crls.parse(b"crl a", parse).expect("parse");
        let again = crls.parse(b"crl a", parse).expect("parse");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(a.bytes, b"crl a");
        // Errors and large CRLs are not kept.
        assert!(crls.parse(&[0, 1], parse).is_err());
        assert!(crls.parse(&[0, 1], parse).is_err());
        let big = vec![7u8; 5000];
        crls.parse(&big, parse).expect("parse");
        crls.parse(&big, parse).expect("parse");
        assert_eq!(calls.get(), 1 + 2 + 2);
        for i in 0..10u8 {
            crls.parse(&[1, i], parse).expect("parse");
            assert!(crls.len() <= 2);
        }
    }
}
