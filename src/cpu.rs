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

/// Let the calling thread run only on a CPU nothing else wants
/// (`SCHED_IDLE`): for speculative work whose result a writer would
/// otherwise make itself, such as the memtable block preparer's page
/// faults (`memtable/block_pool.rs`). At normal priority such a thread,
/// once picked, kept a CPU until the next scheduler tick (4 ms here),
/// and a writer runnable behind it waited that long; a thread at idle
/// priority gives the CPU up to any other as soon as it wants one.
/// Such a thread must hold nothing another thread waits for (it may be
/// preempted anywhere, and run again only when a CPU is idle): the block
/// preparer shares only atomics with writers. (The kernel's own locks it
/// takes, such as the memory map's while its allocator maps memory, are
/// the kernel's to hand back; the kernel boosts no one for them, a
/// residual risk RocksDB's lowered-priority threads share.) An unprivileged
/// thread cannot raise itself back. Returns whether the platform allowed
/// it (lowering needs no privilege on Linux); elsewhere the thread keeps
/// its priority.
#[cfg(target_os = "linux")]
pub(crate) fn run_only_when_idle() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` that outlives the call,
    // which only reads it; pid 0 is the calling thread. UNSAFE.md.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn run_only_when_idle() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_lowered_to_idle_runs_at_idle_priority_and_others_do_not() {
        let lowered = std::thread::spawn(|| {
            let allowed = run_only_when_idle();
            // SAFETY: no arguments but the calling thread's pid 0.
            (allowed, unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (true, libc::SCHED_IDLE));
        // SAFETY: as above.
        let this_thread = unsafe { libc::sched_getscheduler(0) };
        assert_ne!(this_thread, libc::SCHED_IDLE, "only the lowered thread");
    }

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
