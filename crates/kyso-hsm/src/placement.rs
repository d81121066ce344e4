//! Where a signing call runs: in place on the async worker when the token has shown it answers
//! within the inline budget, otherwise off the worker (`block_in_place` / the blocking pool).
//!
//! Why: a SoftHSM or on-board P-256 `C_Sign` takes well under 100 µs, about what tokio expects
//! between two awaits, while handing it to another thread costs 15-50 µs of wake-ups on a small
//! VM (a fifth to a half of the call). A network HSM takes milliseconds: that must stay off the
//! worker. The decision follows the measured latency of each key, so a token that slows down
//! (or a reconnect) moves its calls off the workers by itself.

use kyso_clock::Stopwatch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default inline budget: a call whose recent average stays below it runs on the worker.
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_micros(200);

/// Nothing measured yet: the first calls go off the worker, since the token may be slow.
const UNKNOWN: u64 = u64::MAX;

/// An exponentially weighted moving average of one key's signing time (weight 1/8 for the
/// newest sample). Races between concurrent updates only lose a sample, which is harmless.
#[derive(Debug)]
pub(crate) struct CallLatency {
    average_ns: AtomicU64,
}

impl Default for CallLatency {
    fn default() -> Self {
        Self {
            average_ns: AtomicU64::new(UNKNOWN),
        }
    }
}

impl CallLatency {
    /// The current average, if any call was measured.
    pub(crate) fn average(&self) -> Option<Duration> {
        match self.average_ns.load(Ordering::Relaxed) {
            UNKNOWN => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Whether the average is known and below `budget` (a zero budget never is).
    pub(crate) fn fits(&self, budget: Duration) -> bool {
        self.average().is_some_and(|avg| avg < budget)
    }

    pub(crate) fn record(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_nanos()).unwrap_or(UNKNOWN - 1);
        let old = self.average_ns.load(Ordering::Relaxed);
        let new = if old == UNKNOWN {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.average_ns
            .store(new.min(UNKNOWN - 1), Ordering::Relaxed);
    }

    /// Runs `f` and records how long it took.
    pub(crate) fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let watch = Stopwatch::start();
        let out = f();
        self.record(watch.elapsed());
        out
    }
}

/// The inline budget of a token, changeable while it is in use.
#[derive(Debug)]
pub(crate) struct InlineBudget(AtomicU64);

impl InlineBudget {
    pub(crate) fn new(budget: Duration) -> Self {
        Self(AtomicU64::new(
            u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX),
        ))
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn set(&self, budget: Duration) {
        self.0.store(
            u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_latency_never_fits() {
        let l = CallLatency::default();
        assert_eq!(l.average(), None);
        assert!(!l.fits(Duration::from_secs(1)));
    }

    #[test]
    fn first_sample_sets_the_average_then_it_moves_by_an_eighth() {
        let l = CallLatency::default();
        l.record(Duration::from_micros(80));
        assert_eq!(l.average(), Some(Duration::from_micros(80)));
        assert!(l.fits(Duration::from_micros(200)));
        l.record(Duration::from_micros(880));
        assert_eq!(l.average(), Some(Duration::from_micros(180)));
        assert!(l.fits(Duration::from_micros(200)));
        l.record(Duration::from_micros(880));
        assert!(!l.fits(Duration::from_micros(200)), "{:?}", l.average());
    }

    #[test]
    fn a_slow_spell_moves_calls_off_and_fast_calls_bring_them_back() {
        let l = CallLatency::default();
        l.record(Duration::from_micros(90));
        l.record(Duration::from_millis(50));
        assert!(!l.fits(DEFAULT_INLINE_BUDGET));
        for _ in 0..60 {
            l.record(Duration::from_micros(90));
        }
        assert!(l.fits(DEFAULT_INLINE_BUDGET), "{:?}", l.average());
    }

    #[test]
    fn zero_budget_disables_inline() {
        let l = CallLatency::default();
        l.record(Duration::from_nanos(1));
        assert!(!l.fits(InlineBudget::new(Duration::ZERO).get()));
    }
}
