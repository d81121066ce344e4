//! Where a signing call runs: in place on the async worker when the token has shown it answers
//! within the inline budget or computes in this process, otherwise off the worker
//! (`block_in_place` / the blocking pool).
//!
//! Why: a SoftHSM or on-board P-256 `C_Sign` takes well under 100 µs, about what tokio expects
//! between two awaits, while handing it to another thread costs 15-50 µs of wake-ups on a small
//! VM (a fifth to a half of the call). A network HSM takes milliseconds: that must stay off the
//! worker. The decision follows the measured latency of each key, so a token that slows down
//! (or a reconnect) moves its calls off the workers by itself.
//!
//! A call over the budget still runs in place when it is computation in this process: its thread
//! CPU time is a large share of its elapsed time and at most [`COMPUTE_INLINE_LIMIT`], as for
//! SoftHSM's RSA-2048 (about 1 ms of arithmetic). Moving such a call off the worker adds no
//! capacity, since the same cores do the same arithmetic, but `block_in_place` hands the worker
//! to another thread on every call, and more threads sign at once and contend inside the token:
//! measured on this project's 2-core VM with a bare axum signing server
//! (benches/src/bin/http-floor.rs), RSA-2048 ran at 1,447 signatures/s off the worker and
//! 2,009/s in place, against 1,982/s for raw `C_Sign` on two threads. A network HSM spends tens
//! of microseconds of CPU in a call of milliseconds and stays off the worker. The share is low
//! (a quarter) because a computing call off the worker shares the cores with the workers and the
//! other signers: there SoftHSM's RSA-2048 took 1-3 ms elapsed for about 1 ms of CPU.

use kyso_clock::Stopwatch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default inline budget: a call whose recent average stays below it runs on the worker.
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_micros(200);

/// The most CPU time per call (on average) that still runs in place because it computes rather
/// than waits: the other tasks of a blocked worker are stolen by the others, but a longer call
/// (SoftHSM's RSA-4096, several milliseconds) would delay what only that worker can run.
pub const COMPUTE_INLINE_LIMIT: Duration = Duration::from_millis(2);

/// A call "computes" when its thread CPU time is at least 1/this of its elapsed time.
const COMPUTE_SHARE_DIVISOR: u128 = 4;

/// Nothing measured yet: the first calls go off the worker, since the token may be slow.
const UNKNOWN: u64 = u64::MAX;

/// Exponentially weighted moving averages of one key's signing time, elapsed and on the calling
/// thread's CPU (weight 1/8 for the newest sample). Races between concurrent updates only lose a
/// sample, which is harmless.
#[derive(Debug)]
pub(crate) struct CallLatency {
    average_ns: AtomicU64,
    average_cpu_ns: AtomicU64,
}

impl Default for CallLatency {
    fn default() -> Self {
        Self {
            average_ns: AtomicU64::new(UNKNOWN),
            average_cpu_ns: AtomicU64::new(UNKNOWN),
        }
    }
}

fn update_average(average: &AtomicU64, sample: Duration) {
    let sample = u64::try_from(sample.as_nanos()).unwrap_or(UNKNOWN - 1);
    let old = average.load(Ordering::Relaxed);
    let new = if old == UNKNOWN {
        sample
    } else {
        old - old / 8 + sample / 8
    };
    average.store(new.min(UNKNOWN - 1), Ordering::Relaxed);
}

fn read_average(average: &AtomicU64) -> Option<Duration> {
    match average.load(Ordering::Relaxed) {
        UNKNOWN => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

impl CallLatency {
    /// The current average, if any call was measured.
    pub(crate) fn average(&self) -> Option<Duration> {
        read_average(&self.average_ns)
    }

    /// The average CPU time of the calling thread per call, if it could be measured.
    pub(crate) fn average_cpu(&self) -> Option<Duration> {
        read_average(&self.average_cpu_ns)
    }

    /// Whether a call may run in place: the average is known and below `budget`, or the calls
    /// compute in this process (CPU time at least a quarter of the elapsed time, and at most
    /// [`COMPUTE_INLINE_LIMIT`]). A zero budget never fits.
    pub(crate) fn fits(&self, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        let Some(avg) = self.average() else {
            return false;
        };
        avg < budget || self.computes(avg)
    }

    fn computes(&self, avg: Duration) -> bool {
        self.average_cpu().is_some_and(|cpu| {
            cpu <= COMPUTE_INLINE_LIMIT && cpu.as_nanos() * COMPUTE_SHARE_DIVISOR >= avg.as_nanos()
        })
    }

    /// Records one call: its elapsed time and, where known, the CPU time its thread used.
    pub(crate) fn record(&self, sample: Duration, cpu: Option<Duration>) {
        update_average(&self.average_ns, sample);
        if let Some(cpu) = cpu {
            update_average(&self.average_cpu_ns, cpu);
        }
    }

    /// Runs `f` and records how long it took, elapsed and on this thread's CPU.
    pub(crate) fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let cpu_before = kyso_clock::thread_cpu_time();
        let watch = Stopwatch::start();
        let out = f();
        let elapsed = watch.elapsed();
        let cpu = cpu_before
            .zip(kyso_clock::thread_cpu_time())
            .map(|(before, after)| after.saturating_sub(before));
        self.record(elapsed, cpu);
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
        l.record(Duration::from_micros(80), None);
        assert_eq!(l.average(), Some(Duration::from_micros(80)));
        assert!(l.fits(Duration::from_micros(200)));
        l.record(Duration::from_micros(880), None);
        assert_eq!(l.average(), Some(Duration::from_micros(180)));
        assert!(l.fits(Duration::from_micros(200)));
        l.record(Duration::from_micros(880), None);
        assert!(!l.fits(Duration::from_micros(200)), "{:?}", l.average());
    }

    #[test]
    fn a_slow_spell_moves_calls_off_and_fast_calls_bring_them_back() {
        let l = CallLatency::default();
        l.record(Duration::from_micros(90), None);
        l.record(Duration::from_millis(50), None);
        assert!(!l.fits(DEFAULT_INLINE_BUDGET));
        for _ in 0..60 {
            l.record(Duration::from_micros(90), None);
        }
        assert!(l.fits(DEFAULT_INLINE_BUDGET), "{:?}", l.average());
    }

    #[test]
    fn zero_budget_disables_inline() {
        let l = CallLatency::default();
        l.record(Duration::from_nanos(1), None);
        assert!(!l.fits(InlineBudget::new(Duration::ZERO).get()));
    }

    #[test]
    fn computing_calls_over_the_budget_stay_in_place_up_to_the_limit() {
        let l = CallLatency::default();
        // SoftHSM RSA-2048: about a millisecond of arithmetic on this thread.
        l.record(
            Duration::from_micros(1_000),
            Some(Duration::from_micros(980)),
        );
        assert!(l.fits(DEFAULT_INLINE_BUDGET));
        // The same off the worker on a loaded machine: 3 ms elapsed for 1 ms of CPU.
        let stretched = CallLatency::default();
        stretched.record(
            Duration::from_micros(3_000),
            Some(Duration::from_micros(1_000)),
        );
        assert!(stretched.fits(DEFAULT_INLINE_BUDGET));
        // No CPU reading: the elapsed time alone decides.
        let unknown = CallLatency::default();
        unknown.record(Duration::from_micros(1_000), None);
        assert!(!unknown.fits(DEFAULT_INLINE_BUDGET));
        // Over the limit (RSA-4096): off the worker even though it computes.
        let long = CallLatency::default();
        long.record(Duration::from_millis(7), Some(Duration::from_millis(7)));
        assert!(!long.fits(DEFAULT_INLINE_BUDGET));
        // A zero budget still sends everything off.
        assert!(!l.fits(Duration::ZERO));
    }

    #[test]
    fn waiting_calls_over_the_budget_go_off_the_worker() {
        // A network HSM: a millisecond elapsed, a few microseconds of CPU.
        let l = CallLatency::default();
        l.record(
            Duration::from_micros(1_000),
            Some(Duration::from_micros(20)),
        );
        assert!(!l.fits(DEFAULT_INLINE_BUDGET));
        // TLS to it: more CPU, still a small share of the call.
        let tls = CallLatency::default();
        tls.record(Duration::from_millis(4), Some(Duration::from_micros(300)));
        assert!(!tls.fits(DEFAULT_INLINE_BUDGET));
        // The token turns into one that computes: after enough samples the calls come back.
        for _ in 0..40 {
            l.record(
                Duration::from_micros(1_000),
                Some(Duration::from_micros(990)),
            );
        }
        assert!(l.fits(DEFAULT_INLINE_BUDGET), "{:?}", l.average_cpu());
    }

    #[test]
    fn timing_a_call_reads_the_thread_cpu() {
        let l = CallLatency::default();
        l.time(|| {
            let mut x = 0u64;
            for i in 0..2_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            x
        });
        assert!(l.average().is_some());
        assert!(l.average_cpu().is_some_and(|cpu| !cpu.is_zero()));
        // A call that sleeps is one that waits: a tenth of a second elapsed, next to no CPU.
        let waits = CallLatency::default();
        waits.time(|| std::thread::sleep(Duration::from_millis(100)));
        assert!(
            !waits.fits(DEFAULT_INLINE_BUDGET),
            "{:?}",
            waits.average_cpu()
        );
    }
}
