//! The hash chain of the audit log: the one definition of a record's canonical encoding, and its
//! verification.
//!
//! # Canonical encoding (version 1)
//!
//! `hash = SHA-256(encoding)`, where `encoding` is the concatenation of:
//!
//! 1. the 16-byte domain tag `b"kyso-audit-v1\0\0\0"`;
//! 2. `seq` as 8 bytes, big-endian two's complement;
//! 3. `at` (unix seconds) as 8 bytes, big-endian two's complement;
//! 4. `actor`, `action`, `target`, `outcome` (`"success"`/`"failure"`), `details` (the exact stored
//!    JSON text), each as a 4-byte big-endian length followed by that many UTF-8 bytes;
//! 5. `prev_hash`, exactly 32 bytes (all zero for seq 1).
//!
//! Every variable field is length-prefixed, so no two different records share an encoding.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::records::{AuditOutcome, AuditRecord};

/// Length of a chain hash.
pub const HASH_LEN: usize = 32;
/// `prev_hash` of the first record.
pub const GENESIS_PREV_HASH: [u8; HASH_LEN] = [0; HASH_LEN];
const DOMAIN_TAG: &[u8; 16] = b"kyso-audit-v1\0\0\0";

/// The fields a chain hash covers, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct AuditHashInput<'a> {
    /// Sequence number.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: &'a str,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Details JSON text, exactly as stored.
    pub details: &'a str,
    /// Previous record's hash.
    pub prev_hash: &'a [u8; HASH_LEN],
}

impl<'a> AuditHashInput<'a> {
    /// The fields of a stored record, or `None` when its `prev_hash` is not 32 bytes.
    pub fn from_record(record: &'a AuditRecord) -> Option<Self> {
        let prev_hash: &[u8; HASH_LEN] = record.prev_hash.as_slice().try_into().ok()?;
        Some(AuditHashInput {
            seq: record.seq,
            at: record.at,
            actor: &record.actor,
            action: &record.action,
            target: &record.target,
            outcome: record.outcome,
            details: &record.details,
            prev_hash,
        })
    }

    /// The canonical encoding described in the module documentation.
    pub fn encode(&self) -> Vec<u8> {
        let texts = [
            self.actor,
            self.action,
            self.target,
            self.outcome.as_str(),
            self.details,
        ];
        let mut out = Vec::with_capacity(
            DOMAIN_TAG.len() + 16 + texts.iter().map(|t| 4 + t.len()).sum::<usize>() + HASH_LEN,
        );
        out.extend_from_slice(DOMAIN_TAG);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        for text in texts {
            // Fields are bounded far below 4 GiB on append; saturating keeps this total anyway.
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(self.prev_hash);
        out
    }

    /// SHA-256 of the canonical encoding.
    pub fn hash(&self) -> [u8; HASH_LEN] {
        Sha256::digest(self.encode()).into()
    }
}

/// Why a record breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainBreakReason {
    /// The stored hash is not the hash of the record's fields.
    BadHash,
    /// `prev_hash` is not the previous record's hash (or not zeros for seq 1).
    BadPrevLink,
    /// The sequence number is not the one expected (a gap, a repeat, or not starting at 1).
    SeqGap {
        /// The seq that should have come.
        expected: i64,
    },
    /// `prev_hash` or `hash` is not 32 bytes long.
    BadHashLength,
}

impl fmt::Display for ChainBreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreakReason::BadHash => f.write_str("stored hash does not match the record"),
            ChainBreakReason::BadPrevLink => {
                f.write_str("prev_hash does not match the previous record's hash")
            }
            ChainBreakReason::SeqGap { expected } => {
                write!(f, "sequence gap: expected seq {expected}")
            }
            ChainBreakReason::BadHashLength => f.write_str("hash or prev_hash is not 32 bytes"),
        }
    }
}

/// The first record that breaks the audit chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct ChainBreak {
    /// Seq of the first broken record.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: ChainBreakReason,
}

impl ChainBreak {
    /// Stable code: "audit_chain_broken".
    pub fn code(&self) -> &'static str {
        "audit_chain_broken"
    }
}

/// Checks a chain incrementally, so a long log can be verified page by page
/// (`Store::list_audit` in a loop) without holding it all in memory.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: [u8; HASH_LEN],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting seq 1 with a zero `prev_hash`.
    pub fn new() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    /// A verifier that continues after a record already trusted (e.g. an anchored checkpoint).
    pub fn after(seq: i64, hash: [u8; HASH_LEN]) -> Self {
        ChainVerifier {
            expected_seq: seq.saturating_add(1),
            prev_hash: hash,
        }
    }

    /// Checks the next record. Checks, in order: seq, hash lengths, prev link, own hash.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let seq = record.seq;
        let fail = |reason| Err(ChainBreak { seq, reason });
        if seq != self.expected_seq {
            return fail(ChainBreakReason::SeqGap {
                expected: self.expected_seq,
            });
        }
        let Some(input) = AuditHashInput::from_record(record) else {
            return fail(ChainBreakReason::BadHashLength);
        };
        if record.hash.len() != HASH_LEN {
            return fail(ChainBreakReason::BadHashLength);
        }
        if input.prev_hash != &self.prev_hash {
            return fail(ChainBreakReason::BadPrevLink);
        }
        let hash = input.hash();
        if record.hash.as_slice() != hash.as_slice() {
            return fail(ChainBreakReason::BadHash);
        }
        self.expected_seq = seq.saturating_add(1);
        self.prev_hash = hash;
        Ok(())
    }

    /// The seq the next record must have.
    pub fn expected_seq(&self) -> i64 {
        self.expected_seq
    }
}

/// Verifies a chain that starts at seq 1, reporting the first broken record.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainBreak> {
    let mut verifier = ChainVerifier::new();
    records.iter().try_for_each(|r| verifier.push(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_PREV_HASH;
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    at: 1_700_000_000 + seq,
                    actor: "client:1".into(),
                    action: "certificate.issue".into(),
                    target: format!("serial-{seq}"),
                    outcome: AuditOutcome::Success,
                    details: "{}".into(),
                    prev_hash: prev.to_vec(),
                    hash: Vec::new(),
                };
                let h = AuditHashInput::from_record(&r)
                    .map(|i| i.hash())
                    .unwrap_or_default();
                r.hash = h.to_vec();
                prev = h;
                r
            })
            .collect()
    }

    #[test]
    fn audit_chain_valid_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn audit_chain_reports_first_tampered_record() {
        let mut c = chain(5);
        c[2].target = "forged".into();
        c[4].actor = "forged".into();
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak {
                seq: 3,
                reason: ChainBreakReason::BadHash
            })
        );
    }

    #[test]
    fn audit_chain_rehashed_record_breaks_next_link() {
        let mut c = chain(4);
        c[1].details = "{\"x\":1}".into();
        c[1].hash = AuditHashInput::from_record(&c[1])
            .map(|i| i.hash().to_vec())
            .unwrap_or_default();
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak {
                seq: 3,
                reason: ChainBreakReason::BadPrevLink
            })
        );
    }

    #[test]
    fn audit_chain_gap_and_wrong_start() {
        let mut c = chain(4);
        c.remove(1);
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak {
                seq: 3,
                reason: ChainBreakReason::SeqGap { expected: 2 }
            })
        );
        let c = chain(3);
        assert_eq!(
            verify_chain(&c[1..]),
            Err(ChainBreak {
                seq: 2,
                reason: ChainBreakReason::SeqGap { expected: 1 }
            })
        );
        let mut v = ChainVerifier::after(1, c[0].hash.as_slice().try_into().unwrap_or_default());
        assert_eq!(c[1..].iter().try_for_each(|r| v.push(r)), Ok(()));
    }

    #[test]
    fn audit_chain_encoding_is_length_prefixed() {
        // "ab" + "c" and "a" + "bc" must not encode alike.
        let prev = GENESIS_PREV_HASH;
        let base = AuditHashInput {
            seq: 1,
            at: 0,
            actor: "ab",
            action: "c",
            target: "",
            outcome: AuditOutcome::Success,
            details: "{}",
            prev_hash: &prev,
        };
        let shifted = AuditHashInput {
            actor: "a",
            action: "bc",
            ..base
        };
        assert_ne!(base.encode(), shifted.encode());
        assert_ne!(base.hash(), shifted.hash());
        let enc = base.encode();
        assert_eq!(&enc[..16], DOMAIN_TAG);
        assert_eq!(&enc[16..24], &1i64.to_be_bytes());
        assert_eq!(&enc[32..36], &2u32.to_be_bytes());
        assert_eq!(&enc[36..38], b"ab");
        assert_eq!(&enc[enc.len() - 32..], &prev);
    }
}
