//! Revocation decisions remembered across validations.
//!
//! certval's revocation pass over a path re-verifies and re-reads every CRL each time and formats
//! names as strings on the way (a fifth of a B-T verification). Its outcome depends only on the
//! path's certificates, the anchor, the CRLs offered, the settings, and the time of interest
//! through the comparisons of that time with each CRL's thisUpdate and nextUpdate; so the outcome
//! is kept under a key made of exactly those (the time as its ordering against each CRL's times),
//! and reused for any later time of interest that compares the same way, that is until a CRL's
//! nextUpdate passes or a newer CRL arrives (a new digest). "Good" statuses dated at the time of
//! interest are re-dated to the new one.
//!
//! An outcome that involves a revocation (revoked, or revoked only after the time of interest)
//! also depends on the revocation date against the time of interest, so it is kept for that exact
//! time only. Calls with OCSP responses or CRLs without nextUpdate are not remembered (certval
//! compares those with the time of interest in more ways). Bounded: cleared when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::report::RevocationStatus;

/// Outcomes kept at most (a few hundred bytes each).
pub(crate) const MAX_REMEMBERED_PASSES: usize = 4096;

/// The result of certval's revocation checks over one candidate path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RevocationPass {
    /// Each certval position's status (anchor side first), `None` where nothing settled it.
    Settled(Vec<Option<RevocationStatus>>),
    /// The certificate at certval `position` was revoked at or before the time of interest.
    Revoked {
        status: Vec<Option<RevocationStatus>>,
        position: usize,
        detail: String,
    },
}

impl RevocationPass {
    fn statuses(&self) -> &[Option<RevocationStatus>] {
        match self {
            RevocationPass::Settled(status) | RevocationPass::Revoked { status, .. } => status,
        }
    }

    fn involves_revocation(&self) -> bool {
        matches!(self, RevocationPass::Revoked { .. })
            || self.statuses().iter().any(|s| {
                matches!(
                    s,
                    Some(
                        RevocationStatus::Revoked { .. }
                            | RevocationStatus::RevokedAfterTimeOfInterest { .. }
                    )
                )
            })
    }

    /// The same outcome with the time of interest `from` replaced by `to` where it dates a status.
    fn redated(&self, from: i64, to: i64) -> RevocationPass {
        let mut pass = self.clone();
        let status = match &mut pass {
            RevocationPass::Settled(status) | RevocationPass::Revoked { status, .. } => status,
        };
        for s in status.iter_mut().flatten() {
            if let RevocationStatus::Good { data_time, .. } = s
                && *data_time == from
            {
                *data_time = to;
            }
        }
        pass
    }
}

/// What the outcome of a revocation pass depends on, hashed (SHA-256 of the inputs; see
/// `Call::revocation_memo_key`).
pub(crate) type PassKey = [u8; 32];

struct Remembered {
    /// The time of interest the pass was made at.
    toi: i64,
    pass: RevocationPass,
}

/// The validator-wide store of revocation outcomes.
pub(crate) struct RevocationMemo {
    passes: Mutex<HashMap<PassKey, Arc<Remembered>>>,
    capacity: usize,
}

impl Default for RevocationMemo {
    fn default() -> RevocationMemo {
        RevocationMemo::with_capacity(MAX_REMEMBERED_PASSES)
    }
}

impl RevocationMemo {
    pub fn with_capacity(capacity: usize) -> RevocationMemo {
        RevocationMemo {
            passes: Mutex::default(),
            capacity,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.passes.lock().map(|p| p.len()).unwrap_or_default()
    }

    /// The outcome for `key` at time of interest `toi`, if one is known.
    pub fn get(&self, key: &PassKey, toi: i64) -> Option<RevocationPass> {
        // Copied outside the lock.
        let (found, exact) = {
            let passes = self.passes.lock().ok()?;
            match passes.get(key) {
                Some(r) => (Arc::clone(r), false),
                None => (Arc::clone(passes.get(&exact_key(key, toi))?), true),
            }
        };
        Some(if exact {
            found.pass.clone()
        } else {
            found.pass.redated(found.toi, toi)
        })
    }

    pub fn insert(&self, key: PassKey, toi: i64, pass: &RevocationPass) {
        let key = if pass.involves_revocation() {
            exact_key(&key, toi)
        } else {
            key
        };
        // A poisoned lock: another thread panicked while inserting; nothing is remembered.
        if let Ok(mut passes) = self.passes.lock() {
            if passes.len() >= self.capacity {
                passes.clear();
            }
            passes.insert(
                key,
                Arc::new(Remembered {
                    toi,
                    pass: pass.clone(),
                }),
            );
        }
    }
}

/// The key of an outcome kept for the time of interest `toi` only.
fn exact_key(key: &PassKey, toi: i64) -> PassKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"exact time of interest");
    h.update(key);
    h.update(toi.to_be_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good(t: i64) -> Option<RevocationStatus> {
        Some(RevocationStatus::Good {
            source: "crl".into(),
            data_time: t,
        })
    }

    #[test]
    fn settled_passes_are_redated_and_revocations_kept_for_their_time_only() {
        let memo = RevocationMemo::default();
        let key = [7u8; 32];
        // Good at the time of interest (100) and with later data (500).
        memo.insert(
            key,
            100,
            &RevocationPass::Settled(vec![good(100), good(500)]),
        );
        assert_eq!(
            memo.get(&key, 120),
            Some(RevocationPass::Settled(vec![good(120), good(500)]))
        );
        let other = [8u8; 32];
        let revoked = RevocationPass::Revoked {
            status: vec![
                good(100),
                Some(RevocationStatus::Revoked {
                    revoked_at: Some(90),
                }),
            ],
            position: 1,
            detail: "certval: Some(CertificateRevokedEndEntity)".into(),
        };
        memo.insert(other, 100, &revoked);
        assert_eq!(memo.get(&other, 100), Some(revoked));
        assert_eq!(memo.get(&other, 101), None);
        let after = RevocationPass::Settled(vec![
            good(100),
            Some(RevocationStatus::RevokedAfterTimeOfInterest { revoked_at: 150 }),
        ]);
        let third = [9u8; 32];
        memo.insert(third, 100, &after);
        assert_eq!(memo.get(&third, 100), Some(after));
        assert_eq!(memo.get(&third, 200), None);
    }

    #[test]
    fn the_memo_stays_bounded() {
        let memo = RevocationMemo::with_capacity(10);
        for i in 0..100u8 {
            memo.insert([i; 32], 1, &RevocationPass::Settled(vec![good(1)]));
            assert!(memo.len() <= 10);
        }
        assert!(memo.get(&[99; 32], 1).is_some());
    }
}
