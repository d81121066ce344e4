//! Certificates encoded before, shared by path validation and the CAdES verifier (the
//! signing-certificate hash): `to_der` of the same CA, TSA and signer certificates on every call
//! is pure, so the encoding is kept, found by the certificate's signature value and compared
//! whole before reuse. Bounded: cleared when full; certificates over
//! [`MAX_ENCODED_CERTIFICATE_BYTES`] are not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use der::Encode;
use x509_cert::Certificate;

/// A certificate and its DER.
pub type EncodedCertificate = Arc<(Certificate, Vec<u8>)>;

/// Encodings kept at most.
pub const MAX_CERTIFICATE_ENCODINGS: usize = 1024;
/// Larger certificates are not kept (real ones are 1-3 KiB), so the map stays small whatever a
/// caller sends.
pub const MAX_ENCODED_CERTIFICATE_BYTES: usize = 16 * 1024;

pub struct CertificateEncodings {
    /// By signature value.
    encoded: Mutex<HashMap<Vec<u8>, EncodedCertificate>>,
    capacity: usize,
}

impl Default for CertificateEncodings {
    fn default() -> CertificateEncodings {
        CertificateEncodings::with_capacity(MAX_CERTIFICATE_ENCODINGS)
    }
}

impl std::fmt::Debug for CertificateEncodings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateEncodings")
            .field("kept", &self.len())
            .finish()
    }
}

impl CertificateEncodings {
    pub fn with_capacity(capacity: usize) -> CertificateEncodings {
        CertificateEncodings {
            encoded: Mutex::default(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.encoded.lock().map(|m| m.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `cert.to_der()`; errors are not kept.
    pub fn encode(&self, cert: &Certificate) -> der::Result<EncodedCertificate> {
        let signature = cert.signature().raw_bytes();
        // Compared outside the lock.
        let known = self
            .encoded
            .lock()
            .ok()
            .and_then(|m| m.get(signature).cloned());
        if let Some(known) = known.filter(|k| k.0 == *cert) {
            return Ok(known);
        }
        let encoded = Arc::new((cert.clone(), cert.to_der()?));
        if encoded.1.len() > MAX_ENCODED_CERTIFICATE_BYTES {
            return Ok(encoded);
        }
        // A poisoned lock: another thread panicked while inserting; nothing is kept.
        if let Ok(mut map) = self.encoded.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(signature.to_vec(), Arc::clone(&encoded));
        }
        Ok(encoded)
    }
}
