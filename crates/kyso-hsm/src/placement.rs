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
//! sleeps (waits on a device or the network) for no longer than it computes, and its CPU time is
//! at most [`COMPUTE_INLINE_LIMIT`], as for SoftHSM's RSA-2048 (about 1 ms of arithmetic). The
//! sleep is what is left of the elapsed time after the CPU time and the time the thread waited
//! for a CPU (the scheduler's run delay): elapsed time alone cannot tell, since on a loaded machine
//! preemption stretches a computing call as much as a device stretches a waiting one. Moving such a call off the worker adds no
//! capacity, since the same cores do the same arithmetic, but `block_in_place` hands the worker
//! to another thread on every call, and more threads sign at once and contend inside the token:
//! measured on this project's 2-core VM with a bare axum signing server
//! (benches/src/bin/http-floor.rs), RSA-2048 ran at 1,447 signatures/s off the worker and
//! 2,009/s in place, against 1,982/s for raw `C_Sign` on two threads. A network HSM spends tens
//! of microseconds of CPU in a call of milliseconds, asleep the rest, and stays off the worker.
//! CPU and run delay are read on one call in [`USAGE_SAMPLE_EVERY`]: the two reads (a system
//! call and a proc file) cost a few percent of a P-256 signature (about 1.7 % of a signing
//! request's CPU in `perf` when they were read after every call); at thousands of calls a second
//! the averages still follow a change within a second.

use kyso_clock::Stopwatch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default inline budget: a call whose recent average stays below it runs on the worker.
pub const DEFAULT_INLINE_BUDGET: Duration = Duration::from_micros(200);

/// The most CPU time per call (on average) that still runs in place because it computes rather
/// than waits: the other tasks of a blocked worker are stolen by the others, but a longer call
/// (SoftHSM's RSA-4096, several milliseconds) would delay what only that worker can run.
pub const COMPUTE_INLINE_LIMIT: Duration = Duration::from_millis(2);

/// One call in this many has its thread's CPU time and run delay read.
pub const USAGE_SAMPLE_EVERY: u64 = 16;

/// Nothing measured yet: the first calls go off the worker, since the token may be slow.
const UNKNOWN: u64 = u64::MAX;

/// Exponentially weighted moving averages of one key's signing time, elapsed and on the calling
/// thread's CPU (weight 1/8 for the newest sample). Races between concurrent updates only lose a
/// sample, which is harmless.
#[derive(Debug)]
pub(crate) struct CallLatency {
    average_ns: AtomicU64,
    average_cpu_ns: AtomicU64,
    /// Elapsed time neither on a CPU nor waiting for one: asleep in the kernel.
    average_asleep_ns: AtomicU64,
    calls: AtomicU64,
}

/// What a call's thread did during the call, besides the elapsed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallUsage {
    pub cpu: Duration,
    /// Runnable but waiting for a CPU.
    pub run_delay: Duration,
}

impl Default for CallLatency {
    fn default() -> Self {
        Self {
            average_ns: AtomicU64::new(UNKNOWN),
            average_cpu_ns: AtomicU64::new(UNKNOWN),
            average_asleep_ns: AtomicU64::new(UNKNOWN),
            calls: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread read its usage (tests count the reads of sampled calls).
    static USAGE_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The calling thread's CPU time and run delay so far.
fn thread_usage() -> Option<CallUsage> {
    #[cfg(test)]
    USAGE_READS.with(|reads| reads.set(reads.get() + 1));
    Some(CallUsage {
        cpu: kyso_clock::thread_cpu_time()?,
        run_delay: kyso_clock::thread_run_delay()?,
    })
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
    /// compute in this process (asleep no longer than on the CPU, and at most
    /// [`COMPUTE_INLINE_LIMIT`] of CPU). A zero budget never fits.
    pub(crate) fn fits(&self, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        let Some(avg) = self.average() else {
            return false;
        };
        avg < budget || self.computes()
    }

    fn computes(&self) -> bool {
        match (self.average_cpu(), read_average(&self.average_asleep_ns)) {
            (Some(cpu), Some(asleep)) => cpu <= COMPUTE_INLINE_LIMIT && asleep <= cpu,
            _ => false,
        }
    }

    /// Records one call: its elapsed time and, where known, what its thread did meanwhile.
    pub(crate) fn record(&self, sample: Duration, usage: Option<CallUsage>) {
        update_average(&self.average_ns, sample);
        if let Some(usage) = usage {
            update_average(&self.average_cpu_ns, usage.cpu);
            let asleep = sample.saturating_sub(usage.cpu + usage.run_delay);
            update_average(&self.average_asleep_ns, asleep);
        }
    }

    /// Runs `f` and records how long it took, and on one call in [`USAGE_SAMPLE_EVERY`] what its
    /// thread did meanwhile.
    pub(crate) fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let sampled = self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(USAGE_SAMPLE_EVERY);
        let before = sampled.then(thread_usage).flatten();
        let watch = Stopwatch::start();
        let out = f();
        let elapsed = watch.elapsed();
        // Read again only on a sampled call (`zip` would read on every call).
        let usage = before.and_then(|before| {
            let after = thread_usage()?;
            Some(CallUsage {
                cpu: after.cpu.saturating_sub(before.cpu),
                run_delay: after.run_delay.saturating_sub(before.run_delay),
            })
        });
        self.record(elapsed, usage);
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

    fn used(cpu_us: u64, run_delay_us: u64) -> Option<CallUsage> {
        Some(CallUsage {
            cpu: Duration::from_micros(cpu_us),
            run_delay: Duration::from_micros(run_delay_us),
        })
    }

    #[test]
    fn computing_calls_over_the_budget_stay_in_place_up_to_the_limit() {
        let l = CallLatency::default();
        // SoftHSM RSA-2048: about a millisecond of arithmetic on this thread.
        l.record(Duration::from_micros(1_000), used(980, 0));
        assert!(l.fits(DEFAULT_INLINE_BUDGET));
        // The same off the worker on a loaded machine: 6 ms elapsed, 1 ms of CPU, 4.8 ms waiting
        // for a CPU, little asleep.
        let stretched = CallLatency::default();
        stretched.record(Duration::from_micros(6_000), used(1_000, 4_800));
        assert!(stretched.fits(DEFAULT_INLINE_BUDGET));
        // No usage reading: the elapsed time alone decides.
        let unknown = CallLatency::default();
        unknown.record(Duration::from_micros(1_000), None);
        assert!(!unknown.fits(DEFAULT_INLINE_BUDGET));
        // Over the limit (RSA-4096): off the worker even though it computes.
        let long = CallLatency::default();
        long.record(Duration::from_millis(7), used(7_000, 0));
        assert!(!long.fits(DEFAULT_INLINE_BUDGET));
        // A zero budget still sends everything off.
        assert!(!l.fits(Duration::ZERO));
    }

    #[test]
    fn waiting_calls_over_the_budget_go_off_the_worker() {
        // A network HSM: a millisecond elapsed, a few microseconds of CPU, asleep the rest.
        let l = CallLatency::default();
        l.record(Duration::from_micros(1_000), used(20, 10));
        assert!(!l.fits(DEFAULT_INLINE_BUDGET));
        // TLS to it: more CPU, still mostly asleep.
        let tls = CallLatency::default();
        tls.record(Duration::from_millis(4), used(300, 100));
        assert!(!tls.fits(DEFAULT_INLINE_BUDGET));
        // The token turns into one that computes: after enough samples the calls come back.
        for _ in 0..40 {
            l.record(Duration::from_micros(1_000), used(990, 0));
        }
        assert!(l.fits(DEFAULT_INLINE_BUDGET), "{:?}", l.average_cpu());
    }

    #[test]
    fn only_sampled_calls_read_the_thread_usage() {
        let l = CallLatency::default();
        let reads = || USAGE_READS.with(|reads| reads.get());
        let start = reads();
        for _ in 0..3 * USAGE_SAMPLE_EVERY {
            l.time(|| std::hint::black_box(1));
        }
        // Before and after each of the three sampled calls, and never otherwise.
        assert_eq!(reads() - start, 6);
        assert!(l.average_cpu().is_some());
    }

    #[test]
    fn timing_calls_reads_the_thread_usage_on_samples() {
        let l = CallLatency::default();
        for _ in 0..USAGE_SAMPLE_EVERY {
            l.time(|| {
                let mut x = 0u64;
                for i in 0..200_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                x
            });
        }
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
