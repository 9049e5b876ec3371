//! The CPU the calling thread is running on: a hint for how a writer
//! waits for another (`WalBuffer::wait_with`) and for which of a memtable
//! arena's node shards a thread allocates from, never for correctness.
//!
//! glibc (2.35 and later) answers `sched_getcpu` from the thread's
//! restartable-sequences area: a thread-local load, no call into the
//! kernel or the vDSO. rustix's is a vDSO call on x86-64 and the system
//! call on aarch64, and needs its `thread` feature.

/// The CPU the calling thread runs on now, if the platform says (it may
/// have moved by the time the caller looks at the answer).
#[cfg(target_os = "linux")]
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: `sched_getcpu` takes no arguments and reads or writes no
    // memory of ours; it returns the CPU number, or -1 on error (which
    // `try_from` turns into `None`). UNSAFE.md.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// Elsewhere no CPU is known, and waiters wait as if the drain lock's
/// holder were running.
#[cfg(not(target_os = "linux"))]
pub(crate) fn current_cpu() -> Option<u32> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The answer is a CPU the kernel may run threads on: at most the
    /// highest number in `/sys/devices/system/cpu/possible` ("0-1" here).
    #[test]
    fn the_cpu_is_a_possible_one() {
        let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
        let highest: u32 = possible
            .trim()
            .rsplit(['-', ','])
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable: {possible:?}"));
        for _ in 0..1000 {
            // `None` only where the kernel refuses getcpu (a seccomp
            // sandbox): waiters then spin as before.
            if let Some(cpu) = current_cpu() {
                assert!(cpu <= highest, "CPU {cpu}, possible {possible:?}");
            }
        }
    }
}
