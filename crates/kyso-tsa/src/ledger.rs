//! The timestamp serial ledger: every issued serial is recorded durably before the reply goes out,
//! and a serial already recorded (by this node or another sharing the database) is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

/// One issued timestamp, as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampRecord {
    /// The serialNumber's DER contents: 16 bytes, positive: `0x40`, the microsecond of issue and
    /// 64 random bits (ordered by time, so the ledger appends).
    pub serial: Vec<u8>,
    pub gen_time: OffsetDateTime,
    /// Policy OID, dotted.
    pub policy: String,
    /// "sha256", "sha384" or "sha512".
    pub hash_algorithm: String,
    pub message_imprint: Vec<u8>,
    /// The nonce's DER contents, if the query had one.
    pub nonce: Option<Vec<u8>>,
    /// SHA-256 of the TimeStampToken (ContentInfo DER).
    pub token_sha256: Vec<u8>,
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The serial is already recorded: issue again with a new serial.
    #[error("timestamp serial {serial_hex} is already recorded")]
    DuplicateSerial { serial_hex: String },
    /// The ledger could not make the record durable.
    #[error("timestamp ledger unavailable: {reason}")]
    Unavailable { reason: String },
}

impl LedgerError {
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::DuplicateSerial { .. } => "tsa_duplicate_serial",
            LedgerError::Unavailable { .. } => "tsa_ledger_unavailable",
        }
    }
}

/// Where serials are recorded (kyso-store implements it over its database).
#[async_trait]
pub trait SerialLedger: Send + Sync {
    /// Records `ts` durably; `DuplicateSerial` if its serial is already there.
    async fn record(&self, ts: &TimestampRecord) -> Result<(), LedgerError>;
}

/// A ledger in memory: for tests and single-process demos (nothing survives a restart).
#[derive(Debug, Default)]
pub struct InMemoryLedger {
    records: Mutex<HashMap<Vec<u8>, TimestampRecord>>,
}

impl InMemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, TimestampRecord>> {
        // A poisoned lock only means a panic elsewhere; the map itself is intact.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn get(&self, serial: &[u8]) -> Option<TimestampRecord> {
        self.lock().get(serial).cloned()
    }
}

#[async_trait]
impl SerialLedger for InMemoryLedger {
    async fn record(&self, ts: &TimestampRecord) -> Result<(), LedgerError> {
        let mut records = self.lock();
        if records.contains_key(&ts.serial) {
            return Err(LedgerError::DuplicateSerial {
                serial_hex: hex_string(&ts.serial),
            });
        }
        records.insert(ts.serial.clone(), ts.clone());
        Ok(())
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(serial: &[u8]) -> TimestampRecord {
        TimestampRecord {
            serial: serial.to_vec(),
            gen_time: OffsetDateTime::UNIX_EPOCH,
            policy: "1.2.3".into(),
            hash_algorithm: "sha256".into(),
            message_imprint: vec![0; 32],
            nonce: None,
            token_sha256: vec![1; 32],
        }
    }

    #[tokio::test]
    async fn in_memory_ledger_refuses_duplicates() {
        let ledger = InMemoryLedger::new();
        ledger.record(&record(&[1, 2])).await.expect("first");
        let err = ledger
            .record(&record(&[1, 2]))
            .await
            .expect_err("duplicate");
        assert_eq!(err.code(), "tsa_duplicate_serial");
        assert!(err.to_string().contains("0102"));
        ledger.record(&record(&[3])).await.expect("other serial");
        assert_eq!(ledger.len(), 2);
        assert_eq!(ledger.get(&[3]).expect("kept").hash_algorithm, "sha256");
    }
}
