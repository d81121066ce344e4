//! Library functions behind the operator commands `kyso audit verify` and `kyso hsm doctor`.

use std::fmt;

use kyso_clock::SharedClock;
use kyso_store::{ChainBreak, ChainVerifier, Store, StoreError};

use crate::config::Config;
use crate::pki::StartupError;

/// Records read per page while verifying.
const VERIFY_PAGE: u32 = 1000;

/// The outcome of `kyso audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifyReport {
    /// Records that verified (before the break, if any).
    pub verified: i64,
    /// The first broken record, if any.
    pub first_break: Option<ChainBreak>,
}

impl AuditVerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

impl fmt::Display for AuditVerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_break {
            None => write!(f, "audit chain intact: {} records verified", self.verified),
            Some(b) => write!(
                f,
                "audit chain BROKEN at seq {}: {} ({} records before it verified)",
                b.seq, b.reason, self.verified
            ),
        }
    }
}

/// Verifies the whole audit chain of the configured database, page by page.
pub async fn verify_audit(
    config: &Config,
    clock: SharedClock,
) -> Result<AuditVerifyReport, StartupError> {
    let store = kyso_store::open_with_clock(&config.database_url(), clock).await?;
    Ok(verify_audit_store(store.as_ref()).await?)
}

/// Verifies the audit chain of `store` from seq 1 and reports the first broken record.
pub async fn verify_audit_store(store: &dyn Store) -> Result<AuditVerifyReport, StoreError> {
    let mut verifier = ChainVerifier::new();
    let mut verified = 0;
    let mut from = 1;
    loop {
        let page = store.list_audit(from, VERIFY_PAGE).await?;
        for record in &page {
            if let Err(first_break) = verifier.push(record) {
                return Ok(AuditVerifyReport {
                    verified,
                    first_break: Some(first_break),
                });
            }
            verified += 1;
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE as usize => from = last.seq + 1,
            _ => {
                return Ok(AuditVerifyReport {
                    verified,
                    first_break: None,
                });
            }
        }
    }
}

/// `kyso hsm doctor`: the module, slots, tokens, mechanisms and keys of the configured CA token,
/// and a test signature with `test_key` (a key label) if given. The PIN comes from the configured
/// source; without it the report still lists what needs no login.
pub async fn hsm_doctor(
    config: &Config,
    test_key: Option<&str>,
) -> Result<kyso_hsm::DoctorReport, StartupError> {
    let path = config.hsm.module.clone();
    let module = tokio::task::spawn_blocking(move || kyso_hsm::Module::load(&path))
        .await
        .map_err(|e| StartupError::Io {
            what: "loading the PKCS#11 module".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(StartupError::Hsm)?;
    let pin = config.hsm.pin.read().ok();
    Ok(kyso_hsm::doctor(&module, Some(&config.hsm.token_label), pin, test_key).await)
}
