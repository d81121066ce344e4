//! The one clock kyso reads time from.
//!
//! Every crate takes a [`SharedClock`] instead of calling `SystemTime::now` (which clippy's
//! `disallowed-methods` bans outside this crate), so that tests can pin time, certificates and CRLs
//! can be built "as of" a chosen instant, and a TSA can refuse to work when its clock is not trusted.

mod cpu;
mod sync;
pub use cpu::{thread_cpu_time, thread_run_delay};
pub use sync::{SyncStatus, interpret_adjtimex, system_sync_status};

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, UtcOffset};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (what the stores keep).
    fn now_unix(&self) -> i64 {
        unix_seconds(self.now())
    }

    /// The current time as a UTC date-time.
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.now())
    }
}

/// A clock shared across tasks and crates.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned wall-clock read
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that stands still until it is moved: for tests and for building artefacts "as of" a time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// A clock showing `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: i64) -> Self {
        Self::new(from_unix_seconds(secs))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: SystemTime) {
        *self.lock() = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    /// This clock as a [`SharedClock`]; moving `self` moves the shared one too.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A poisoned lock only means a test panicked while holding it; the time inside is still valid.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

/// A monotonic stopwatch for measuring durations (metrics, timeouts), never for timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts a stopwatch.
    #[allow(clippy::disallowed_methods)] // monotonic time for durations only
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Whole seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The instant `secs` seconds after the Unix epoch.
pub fn from_unix_seconds(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Vietnam time, UTC+07:00, the offset every time shown to people uses.
pub const VIETNAM_OFFSET: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("UTC+07:00 is a valid offset"),
};

/// Formats a time the way Vietnamese users read it: `dd/mm/yyyy hh:mm:ss +07:00`, in Vietnam time.
pub fn format_vietnam(t: SystemTime) -> String {
    let local = OffsetDateTime::from(t).to_offset(VIETNAM_OFFSET);
    format!(
        "{:02}/{:02}/{:04} {:02}:{:02}:{:02} +07:00",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let shared = clock.shared();
        assert_eq!(shared.now_unix(), 1_700_000_000);
        clock.advance(Duration::from_secs(90));
        assert_eq!(shared.now_unix(), 1_700_000_090);
        clock.set(from_unix_seconds(5));
        assert_eq!(shared.now_unix(), 5);
    }

    #[test]
    fn unix_seconds_round_trip_both_sides_of_the_epoch() {
        for secs in [-86_400, -1, 0, 1, 1_700_000_000] {
            assert_eq!(unix_seconds(from_unix_seconds(secs)), secs);
        }
    }

    #[test]
    fn vietnam_format_is_day_first_and_seven_hours_ahead() {
        // 2025-01-31T17:30:05Z is 01/02/2025 00:30:05 in Vietnam.
        let t = from_unix_seconds(1_738_344_605);
        assert_eq!(format_vietnam(t), "01/02/2025 00:30:05 +07:00");
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now_unix() > 1_704_067_200);
    }
}
