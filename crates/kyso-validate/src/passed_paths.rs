//! Candidate paths certval has already validated (RFC 5280 checks, before revocation).
//!
//! certval's path validation reads the path's certificates, the anchor and the settings, and the
//! time of interest only through each certificate's (and the anchor's) validity period. So a path
//! that passed once passes again for the same inputs and a time of interest that falls the same
//! way against every validity period: the key holds exactly those (see
//! `Call::path_memo_key`). Only passes are kept; failures are validated again (their details
//! come from certval each time). Bounded: cleared when full.

use std::collections::HashSet;
use std::sync::Mutex;

/// Passed paths kept at most (32 bytes each).
pub(crate) const MAX_PASSED_PATHS: usize = 16_384;

/// SHA-256 of what a path validation depends on.
pub(crate) type PathKey = [u8; 32];

pub(crate) struct PassedPaths {
    keys: Mutex<HashSet<PathKey>>,
    capacity: usize,
}

impl Default for PassedPaths {
    fn default() -> PassedPaths {
        PassedPaths::with_capacity(MAX_PASSED_PATHS)
    }
}

impl PassedPaths {
    pub fn with_capacity(capacity: usize) -> PassedPaths {
        PassedPaths {
            keys: Mutex::default(),
            capacity,
        }
    }

    pub fn contains(&self, key: &PathKey) -> bool {
        self.keys.lock().is_ok_and(|k| k.contains(key))
    }

    pub fn insert(&self, key: PathKey) {
        // A poisoned lock: another thread panicked while inserting; nothing is kept.
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= self.capacity {
                keys.clear();
            }
            keys.insert(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_paths_are_found_and_stay_bounded() {
        let passed = PassedPaths::with_capacity(8);
        passed.insert([1; 32]);
        assert!(passed.contains(&[1; 32]));
        assert!(!passed.contains(&[2; 32]));
        for i in 0..100u8 {
            passed.insert([i; 32]);
            assert!(passed.len() <= 8);
            assert!(passed.contains(&[i; 32]));
        }
    }
}
