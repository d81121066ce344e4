//! Whether the operating system reports its clock as synchronised (NTP/PTP discipline).
//!
//! A timestamp authority must not issue tokens from a clock nobody keeps in step, so kyso asks the
//! kernel, through `adjtimex(2)` in read-only mode, for the synchronisation state and the error
//! bounds it maintains.

/// The kernel's view of the system clock's synchronisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// Disciplined by a time service; the kernel's maximum and estimated error in microseconds.
    Synchronised {
        max_error_us: u64,
        est_error_us: u64,
    },
    /// The kernel says the clock is not synchronised (TIME_ERROR or STA_UNSYNC).
    Unsynchronised,
    /// No way to tell on this platform, or the call failed.
    Unknown,
}

impl SyncStatus {
    pub fn is_synchronised(self) -> bool {
        matches!(self, SyncStatus::Synchronised { .. })
    }
}

/// The current synchronisation status of the system clock.
pub fn system_sync_status() -> SyncStatus {
    imp::status()
}

/// Interprets `adjtimex`'s return value and fields (split out so it can be tested without a
/// kernel in a given state).
pub fn interpret_adjtimex(
    state: i32,
    status_flags: i32,
    max_error: i64,
    est_error: i64,
) -> SyncStatus {
    const TIME_ERROR: i32 = 5; // clock not synchronised (adjtimex(2))
    const STA_UNSYNC: i32 = 0x0040;
    if state < 0 {
        return SyncStatus::Unknown;
    }
    if state == TIME_ERROR || status_flags & STA_UNSYNC != 0 {
        return SyncStatus::Unsynchronised;
    }
    SyncStatus::Synchronised {
        max_error_us: u64::try_from(max_error).unwrap_or(0),
        est_error_us: u64::try_from(est_error).unwrap_or(0),
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{SyncStatus, interpret_adjtimex};

    #[allow(unsafe_code)]
    #[allow(clippy::useless_conversion)] // c_long is 32 bits on some Linux targets
    pub(super) fn status() -> SyncStatus {
        // SAFETY: a zeroed `timex` is a valid value (plain integers); with `modes == 0` adjtimex
        // only reads the kernel state into the struct we own for the duration of the call.
        let (state, tx) = unsafe {
            let mut tx: libc::timex = std::mem::zeroed();
            let state = libc::adjtimex(&mut tx);
            (state, tx)
        };
        interpret_adjtimex(
            state,
            tx.status,
            i64::from(tx.maxerror),
            i64::from(tx.esterror),
        )
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::SyncStatus;

    pub(super) fn status() -> SyncStatus {
        SyncStatus::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjtimex_states_are_interpreted() {
        assert_eq!(
            interpret_adjtimex(0, 0x2001, 16_000, 250),
            SyncStatus::Synchronised {
                max_error_us: 16_000,
                est_error_us: 250
            }
        );
        // TIME_ERROR
        assert_eq!(
            interpret_adjtimex(5, 0x2001, 16_000, 250),
            SyncStatus::Unsynchronised
        );
        // STA_UNSYNC with TIME_OK
        assert_eq!(
            interpret_adjtimex(0, 0x0040, 16_000, 250),
            SyncStatus::Unsynchronised
        );
        // the call failed
        assert_eq!(interpret_adjtimex(-1, 0, 0, 0), SyncStatus::Unknown);
        assert!(!SyncStatus::Unknown.is_synchronised());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_answers() {
        // Whatever this machine's state, Linux always gives a definite answer.
        assert_ne!(system_sync_status(), SyncStatus::Unknown);
    }
}
