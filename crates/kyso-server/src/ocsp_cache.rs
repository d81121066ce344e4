//! Pre-signed OCSP responses for nonce-less requests.
//!
//! The key holds the request's CertID (hash algorithm, issuer hashes, serial) and the certificate's
//! status as the store reports it now. Every request looks the status up in the store first, so a
//! revocation made on another node changes the key and the stale response is never served; entries
//! are used only until their nextUpdate.

use std::collections::HashMap;
use std::sync::Mutex;

// Responses are shared between requests without copying.
use axum::body::Bytes;

/// What a cached response answers: which certificate, in which state.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct OcspCacheKey {
    /// DER of the request's CertID.
    pub cert_id_der: Vec<u8>,
    /// "good", "revoked", "hold" or "unknown".
    pub status: &'static str,
    /// Revocation time, for revoked and held certificates.
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code.
    pub reason: Option<u8>,
}

#[derive(Clone, Debug)]
struct Entry {
    response: Bytes,
    /// Reuse until this time (unix seconds): the response's nextUpdate less a margin.
    use_until: i64,
}

/// A bounded map of pre-signed responses.
#[derive(Debug)]
pub struct OcspCache {
    capacity: usize,
    entries: Mutex<HashMap<OcspCacheKey, Entry>>,
}

impl OcspCache {
    pub fn new(capacity: usize) -> OcspCache {
        OcspCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A response still usable at `now`.
    pub fn get(&self, key: &OcspCacheKey, now: i64) -> Option<Bytes> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| now < e.use_until)
            .map(|e| e.response.clone())
    }

    /// Keeps `response` for reuse until `use_until`. When full, expired entries go first; if that
    /// frees nothing, the whole map is dropped (responses are cheap to re-sign, memory is bounded).
    pub fn insert(&self, key: OcspCacheKey, response: Bytes, use_until: i64, now: i64) {
        if self.capacity == 0 || use_until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.use_until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                response,
                use_until,
            },
        );
    }

    /// Number of entries (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(serial: u8, status: &'static str) -> OcspCacheKey {
        OcspCacheKey {
            cert_id_der: vec![serial],
            status,
            revoked_at: None,
            reason: None,
        }
    }

    #[test]
    fn a_status_change_misses_the_cache() {
        let cache = OcspCache::new(10);
        cache.insert(key(1, "good"), Bytes::from_static(b"good-resp"), 200, 100);
        assert_eq!(
            cache.get(&key(1, "good"), 150).as_deref(),
            Some(&b"good-resp"[..])
        );
        assert!(cache.get(&key(1, "revoked"), 150).is_none());
        assert!(cache.get(&key(2, "good"), 150).is_none());
    }

    #[test]
    fn entries_expire_at_their_use_until() {
        let cache = OcspCache::new(10);
        cache.insert(key(1, "good"), Bytes::from_static(b"r"), 200, 100);
        assert!(cache.get(&key(1, "good"), 199).is_some());
        assert!(cache.get(&key(1, "good"), 200).is_none());
        cache.insert(key(2, "good"), Bytes::from_static(b"r"), 100, 100);
        assert!(cache.get(&key(2, "good"), 100).is_none());
    }

    #[test]
    fn size_stays_bounded() {
        let cache = OcspCache::new(3);
        for serial in 0..10 {
            cache.insert(key(serial, "good"), Bytes::from_static(b"r"), 1000, 0);
            assert!(cache.len() <= 3);
        }
        assert!(cache.get(&key(9, "good"), 1).is_some());
        let disabled = OcspCache::new(0);
        disabled.insert(key(1, "good"), Bytes::from_static(b"r"), 1000, 0);
        assert!(disabled.get(&key(1, "good"), 1).is_none());
    }
}
