//! CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`, exact to the
//! nanosecond; `getrusage`'s per-thread times are apportioned by timer ticks and jump by
//! milliseconds, useless for one call). Not a clock of the world (it moves only while this thread
//! runs), so it does not go through [`crate::Clock`]. kyso-hsm compares it with a call's elapsed
//! time to tell a token that computes in this process (SoftHSM, an on-board library) from one
//! that waits on a device or the network.

use std::time::Duration;

/// The CPU time this thread has used so far, or `None` where the platform cannot tell.
pub fn thread_cpu_time() -> Option<Duration> {
    imp::thread_cpu_time()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::time::Duration;

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
