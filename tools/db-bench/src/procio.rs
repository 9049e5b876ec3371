//! The process's storage I/O as the kernel counts it (`/proc/self/io`),
//! read around each engine's run so write amplification can be checked
//! independently of what the engine reports. Background threads count too.

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
