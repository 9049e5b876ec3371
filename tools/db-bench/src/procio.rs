//! The process's storage I/O and CPU time as the kernel counts them
//! (`/proc/self/io`, `/proc/self/stat`), read around each engine's run and
//! each benchmark, so what an engine costs can be checked independently
//! of what it reports. Background threads count too.
//!
//! `read_bytes` counts what the process made the kernel read from storage
//! (page-cache hits are free, readahead is charged to the reader); it is
//! the figure that collapses, or not, when the data outgrows memory.

/// Bytes read from and written to storage by this process so far, or
/// `None` where `/proc/self/io` is not available.
pub fn io_bytes() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("read_bytes:")?, field("write_bytes:")?))
}

/// User and system CPU seconds of this process so far (all threads), or
/// `None` where `/proc/self/stat` is not available.
pub fn cpu_secs() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold
    // spaces): state is field 3, utime 14 and stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 / ticks, stime as f64 / ticks))
}

/// What the kernel counted for the process over an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessCost {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub user_secs: f64,
    pub system_secs: f64,
}

/// A reading to subtract from a later one.
#[derive(Clone, Copy)]
pub struct Sample {
    io: (u64, u64),
    cpu: (f64, f64),
}

impl Sample {
    pub fn now() -> Option<Sample> {
        Some(Sample {
            io: io_bytes()?,
            cpu: cpu_secs()?,
        })
    }

    /// The cost from `self` to now.
    pub fn elapsed(&self) -> Option<ProcessCost> {
        let now = Sample::now()?;
        Some(ProcessCost {
            read_bytes: now.io.0.saturating_sub(self.io.0),
            write_bytes: now.io.1.saturating_sub(self.io.1),
            user_secs: (now.cpu.0 - self.cpu.0).max(0.0),
            system_secs: (now.cpu.1 - self.cpu.1).max(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_time_grows_while_the_process_computes() {
        let Some(start) = Sample::now() else {
            return; // not Linux
        };
        // Compute until the kernel's user time moves (a tick is 10 ms):
        // a parse of the wrong /proc field would not move with it.
        let mut x = 0u64;
        let mut grew = false;
        for round in 0..2_000u64 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i ^ round));
            }
            if start.elapsed().unwrap().user_secs > 0.0 {
                grew = true;
                break;
            }
        }
        assert!(grew, "user CPU time never grew");
        let cost = start.elapsed().unwrap();
        assert!(cost.system_secs >= 0.0);
    }
}
