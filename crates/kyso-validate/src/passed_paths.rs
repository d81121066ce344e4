//! Candidate paths certval has already validated (RFC 5280 checks, before revocation), and the
//! name comparisons of path building.
//!
//! certval's path validation reads the path's certificates, the anchor and the settings, and the
//! time of interest only through each certificate's (and the anchor's) validity period. So a path
//! that passed once passes again for the same inputs and a time of interest that falls the same
//! way against every validity period: the key holds exactly those (see
//! `Call::path_memo_key`). Only passes are kept; failures are validated again (their details
//! come from certval each time). Bounded: cleared when full.

use std::collections::{HashMap, HashSet};
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

/// Name comparisons kept at most.
pub(crate) const MAX_NAME_MATCHES: usize = 16_384;

/// What might have issued a certificate, by the SHA-256 of its DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IssuerCandidate {
    Anchor([u8; 32]),
    Certificate([u8; 32]),
}

/// Whether a certificate's issuer name matches a candidate's subject name (certval's
/// `compare_names`, which falls back to a case- and space-insensitive comparison that allocates):
/// a pure function of the two certificates, asked again for every path built through them.
/// Bounded: cleared when full.
pub(crate) struct NameMatches {
    matches: Mutex<HashMap<([u8; 32], IssuerCandidate), bool>>,
    capacity: usize,
}

impl Default for NameMatches {
    fn default() -> NameMatches {
        NameMatches::with_capacity(MAX_NAME_MATCHES)
    }
}

impl NameMatches {
    pub fn with_capacity(capacity: usize) -> NameMatches {
        NameMatches {
            matches: Mutex::default(),
            capacity,
        }
    }

    /// Whether the certificate `child` (by fingerprint) names `candidate` as its issuer, as
    /// `compare` answers the first time.
    pub fn issued_by(
        &self,
        child: [u8; 32],
        candidate: IssuerCandidate,
        compare: impl FnOnce() -> bool,
    ) -> bool {
        let key = (child, candidate);
        if let Some(found) = self.matches.lock().ok().and_then(|m| m.get(&key).copied()) {
            return found;
        }
        let found = compare();
        // A poisoned lock: another thread panicked while inserting; nothing is kept.
        if let Ok(mut matches) = self.matches.lock() {
            if matches.len() >= self.capacity {
                matches.clear();
            }
            matches.insert(key, found);
        }
        found
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.matches.lock().map(|m| m.len()).unwrap_or_default()
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

    #[test]
    fn name_matches_are_asked_once_and_stay_bounded() {
        let matches = NameMatches::with_capacity(4);
        let calls = std::cell::Cell::new(0);
        let compare = |answer: bool| {
            calls.set(calls.get() + 1);
            answer
        };
        let ca = IssuerCandidate::Certificate([2; 32]);
        let anchor = IssuerCandidate::Anchor([2; 32]);
        assert!(matches.issued_by([1; 32], ca, || compare(true)));
        assert!(matches.issued_by([1; 32], ca, || compare(false)), "kept");
        assert!(!matches.issued_by([1; 32], anchor, || compare(false)));
        assert!(
            !matches.issued_by([1; 32], anchor, || compare(true)),
            "kept"
        );
        assert_eq!(calls.get(), 2);
        for i in 0..50u8 {
            matches.issued_by([i; 32], ca, || compare(i % 2 == 0));
            assert!(matches.len() <= 4);
        }
    }
}
