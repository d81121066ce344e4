//! Whether the TSA's clock may be used: a TSA must not put a time it cannot stand behind in a token.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kyso_clock::SyncStatus;

/// Why the clock is not trusted right now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ClockUntrusted {
    pub reason: String,
}

/// Decides, at each issuance, whether the clock may be used.
pub trait ClockTrust: Send + Sync + Debug {
    fn check(&self) -> Result<(), ClockUntrusted>;
}

/// Trusts the system clock while the kernel reports it synchronised within `max_error`.
#[derive(Clone, Copy, Debug)]
pub struct SystemClockTrust {
    /// Largest maximum error (the kernel's `maxerror`) still accepted.
    pub max_error: Duration,
    /// Where the platform cannot tell (non-Linux), trust the clock instead of refusing.
    pub trust_when_unknown: bool,
}

impl SystemClockTrust {
    pub fn new(max_error: Duration) -> Self {
        Self {
            max_error,
            trust_when_unknown: !cfg!(target_os = "linux"),
        }
    }

    /// The decision for a given status (split out so every branch is testable on any machine).
    pub fn judge(&self, status: SyncStatus) -> Result<(), ClockUntrusted> {
        match status {
            SyncStatus::Synchronised { max_error_us, .. } => {
                let max = u64::try_from(self.max_error.as_micros()).unwrap_or(u64::MAX);
                if max_error_us <= max {
                    Ok(())
                } else {
                    Err(ClockUntrusted {
                        reason: format!(
                            "system clock maximum error {max_error_us} µs exceeds the allowed {max} µs"
                        ),
                    })
                }
            }
            SyncStatus::Unsynchronised => Err(ClockUntrusted {
                reason:
                    "the system clock is not synchronised (adjtimex reports TIME_ERROR/STA_UNSYNC)"
                        .into(),
            }),
            SyncStatus::Unknown if self.trust_when_unknown => Ok(()),
            SyncStatus::Unknown => Err(ClockUntrusted {
                reason: "the system clock's synchronisation state is unknown".into(),
            }),
        }
    }
}

impl ClockTrust for SystemClockTrust {
    fn check(&self) -> Result<(), ClockUntrusted> {
        self.judge(kyso_clock::system_sync_status())
    }
}

/// Always trusts the clock: the explicit opt-out (`require_synchronised_clock = false`) and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysTrusted;

impl ClockTrust for AlwaysTrusted {
    fn check(&self) -> Result<(), ClockUntrusted> {
        Ok(())
    }
}

/// A clock trust that can be switched at run time (tests, and an operator's manual override).
#[derive(Debug)]
pub struct SwitchableClockTrust {
    trusted: AtomicBool,
}

impl SwitchableClockTrust {
    pub fn new(trusted: bool) -> Self {
        Self {
            trusted: AtomicBool::new(trusted),
        }
    }

    pub fn set(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
    }
}

impl ClockTrust for SwitchableClockTrust {
    fn check(&self) -> Result<(), ClockUntrusted> {
        if self.trusted.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ClockUntrusted {
                reason: "the clock has been marked untrusted".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_trust_follows_the_sync_status() {
        let trust = SystemClockTrust {
            max_error: Duration::from_millis(100),
            trust_when_unknown: false,
        };
        assert!(
            trust
                .judge(SyncStatus::Synchronised {
                    max_error_us: 50_000,
                    est_error_us: 10
                })
                .is_ok()
        );
        assert!(
            trust
                .judge(SyncStatus::Synchronised {
                    max_error_us: 150_000,
                    est_error_us: 10
                })
                .is_err()
        );
        assert!(trust.judge(SyncStatus::Unsynchronised).is_err());
        assert!(trust.judge(SyncStatus::Unknown).is_err());
        let lenient = SystemClockTrust {
            trust_when_unknown: true,
            ..trust
        };
        assert!(lenient.judge(SyncStatus::Unknown).is_ok());
        assert!(lenient.judge(SyncStatus::Unsynchronised).is_err());
    }

    #[test]
    fn system_trust_agrees_with_the_kernel() {
        let trust = SystemClockTrust::new(Duration::from_secs(1));
        let status = kyso_clock::system_sync_status();
        assert_eq!(trust.check().is_ok(), trust.judge(status).is_ok());
    }

    #[test]
    fn switchable_trust_flips() {
        let trust = SwitchableClockTrust::new(true);
        assert!(trust.check().is_ok());
        trust.set(false);
        assert!(trust.check().is_err());
        trust.set(true);
        assert!(trust.check().is_ok());
        assert!(AlwaysTrusted.check().is_ok());
    }
}
