//! CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`, exact to the
//! nanosecond; `getrusage`'s per-thread times are apportioned by timer ticks and jump by
//! milliseconds, useless for one call), and the time it spent runnable but waiting for a CPU (the
//! scheduler's run delay, `/proc/thread-self/schedstat`). Neither is a clock of the world, so
//! they do not go through [`crate::Clock`]. kyso-hsm reads both around a signing call: what is
//! left of the elapsed time is time the thread slept, waiting on a device or the network, which
//! tells a token that computes in this process (SoftHSM, an on-board library) from one that
//! waits, however loaded the machine is.

use std::time::Duration;

/// Time the calling thread has spent runnable but waiting for a CPU since it started, or `None`
/// where the platform cannot tell. Updated when the thread is switched in, so the difference
/// over a call counts every preemption the call suffered.
pub fn thread_run_delay() -> Option<Duration> {
    imp::thread_run_delay()
}

/// The CPU time this thread has used so far, or `None` where the platform cannot tell.
pub fn thread_cpu_time() -> Option<Duration> {
    imp::thread_cpu_time()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::RefCell;
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::time::Duration;

    thread_local! {
        // Opened once per thread: a positioned read of an open proc file is a microsecond, an
        // open-read-close several.
        static SCHEDSTAT: RefCell<Option<File>> = const { RefCell::new(None) };
    }

    pub(super) fn thread_run_delay() -> Option<Duration> {
        SCHEDSTAT.with(|cell| {
            let mut cell = cell.try_borrow_mut().ok()?;
            if cell.is_none() {
                *cell = Some(File::open("/proc/thread-self/schedstat").ok()?);
            }
            let file = cell.as_ref()?;
            let mut buf = [0u8; 96];
            let n = file.read_at(&mut buf, 0).ok()?;
            parse_run_delay(buf.get(..n)?)
        })
    }

    /// The second field of `schedstat` ("time spent on the cpu", "time spent waiting on a
    /// runqueue", "timeslices run"), in nanoseconds.
    pub(super) fn parse_run_delay(text: &[u8]) -> Option<Duration> {
        let text = std::str::from_utf8(text).ok()?;
        let ns = text.split_ascii_whitespace().nth(1)?.parse::<u64>().ok()?;
        Some(Duration::from_nanos(ns))
    }

    #[allow(unsafe_code)]
    pub(super) fn thread_cpu_time() -> Option<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec we own for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        ))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn thread_run_delay() -> Option<std::time::Duration> {
        None
    }

    pub(super) fn thread_cpu_time() -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_while_this_thread_computes() {
        let before = thread_cpu_time().expect("Linux reports thread CPU time");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        std::hint::black_box(x);
        let after = thread_cpu_time().expect("Linux reports thread CPU time");
        assert!(after > before, "{before:?} -> {after:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn run_delay_is_the_second_schedstat_field() {
        assert_eq!(
            imp::parse_run_delay(b"541450 1200 1\n"),
            Some(Duration::from_nanos(1200))
        );
        assert_eq!(imp::parse_run_delay(b"541450\n"), None);
        assert_eq!(imp::parse_run_delay(b"a b c"), None);
        let before = thread_run_delay().expect("Linux has /proc/thread-self/schedstat");
        std::thread::yield_now();
        let after = thread_run_delay().expect("Linux has /proc/thread-self/schedstat");
        assert!(after >= before);
    }

    #[test]
    fn does_not_advance_while_this_thread_sleeps() {
        let before = thread_cpu_time().expect("Linux reports thread CPU time");
        std::thread::sleep(Duration::from_millis(50));
        let after = thread_cpu_time().expect("Linux reports thread CPU time");
        assert!(
            after - before < Duration::from_millis(25),
            "{before:?} -> {after:?}"
        );
    }
}
