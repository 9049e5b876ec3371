//! Where time comes from: expiry of values, table creation times for
//! `periodic_compaction_seconds`. RocksDB: `SystemClock` (`NowMicros`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in microseconds since the Unix epoch.
///
/// Expiry is judged against it: a value written with a time to live `t`
/// at `now_micros() = w` is gone for readers once `now_micros() >= w + t`.
/// It should not go backwards: an entry a compaction already removed as
/// expired stays removed.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> u64;
}

/// The operating system's clock (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// A clock that moves only when told: for tests of expiry and periodic
/// compaction.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use strata::{Clock, ManualClock};
/// let clock = Arc::new(ManualClock::new(1_000_000));
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_micros(), 3_000_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicU64,
}

impl ManualClock {
    /// A clock reading `micros` microseconds since the Unix epoch.
    pub fn new(micros: u64) -> ManualClock {
        ManualClock {
            micros: AtomicU64::new(micros),
        }
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            });
    }

    /// Set the clock to `micros` microseconds since the Unix epoch.
    pub fn set(&self, micros: u64) {
        self.micros.store(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> u64 {
        self.micros.load(Ordering::SeqCst)
    }
}

/// The clock in `Options` prints as its kind only.
impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}
