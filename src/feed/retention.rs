//! Which obsolete WALs (no keyspace needs them) may be deleted: the
//! retention limits (`wal_ttl_seconds`, `wal_size_limit_mb`) and the
//! change feed cursors' pins decide, always for a prefix of them, oldest
//! first, so the WALs left still form one chain a feed can read.

use crate::error::Result;

/// An obsolete WAL, as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObsoleteWal {
    pub number: u64,
    pub size_bytes: u64,
    /// When it was first seen obsolete (microseconds of `Options::clock`).
    pub obsolete_since_micros: u64,
}

/// `Options::wal_ttl_seconds` and `wal_size_limit_mb`, in the units
/// retention compares (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetentionLimits {
    pub ttl_micros: u64,
    pub size_bytes: u64,
}

impl RetentionLimits {
    pub fn from_options(options: &crate::Options) -> Self {
        RetentionLimits {
            ttl_micros: options.wal_ttl_seconds.saturating_mul(1_000_000),
            size_bytes: options.wal_size_limit_mb.saturating_mul(1 << 20),
        }
    }

    /// Whether any limit is set (obsolete WALs are kept at all).
    pub fn any(&self) -> bool {
        self.ttl_micros > 0 || self.size_bytes > 0
    }
}

/// How many of `wals` (ascending, all obsolete) to delete, from the
/// oldest. A WAL goes once retention lets it go: at once with no limit
/// set, else once older than the time limit or once the WALs from it on
/// hold more than the size limit. A pinned WAL (`pinned`: a cursor has
/// not acknowledged all of it) is kept past that only while no limit is
/// set: the limits bound what a cursor may pin.
pub(crate) fn deletable_prefix(
    wals: &[ObsoleteWal],
    limits: RetentionLimits,
    now_micros: u64,
    pinned: &mut dyn FnMut(u64) -> Result<bool>,
) -> Result<usize> {
    let mut held_bytes: u64 = wals.iter().map(|w| w.size_bytes).sum();
    for (i, w) in wals.iter().enumerate() {
        let passed = !limits.any()
            || (limits.ttl_micros > 0
                && now_micros.saturating_sub(w.obsolete_since_micros) >= limits.ttl_micros)
            || (limits.size_bytes > 0 && held_bytes > limits.size_bytes);
        if !passed || (!limits.any() && pinned(w.number)?) {
            return Ok(i);
        }
        held_bytes -= w.size_bytes;
    }
    Ok(wals.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wals(sizes: &[u64], since: &[u64]) -> Vec<ObsoleteWal> {
        sizes
            .iter()
            .zip(since)
            .enumerate()
            .map(|(i, (&size_bytes, &obsolete_since_micros))| ObsoleteWal {
                number: 10 + i as u64,
                size_bytes,
                obsolete_since_micros,
            })
            .collect()
    }

    fn prefix(w: &[ObsoleteWal], ttl: u64, size: u64, now: u64, pinned_from: u64) -> usize {
        let limits = RetentionLimits {
            ttl_micros: ttl,
            size_bytes: size,
        };
        deletable_prefix(w, limits, now, &mut |n| Ok(n >= pinned_from)).unwrap()
    }

    #[test]
    fn without_limits_unpinned_wals_go_at_once_and_pinned_ones_stay() {
        let w = wals(&[100, 100, 100], &[0, 0, 0]);
        assert_eq!(prefix(&w, 0, 0, 0, u64::MAX), 3);
        assert_eq!(prefix(&w, 0, 0, 0, 11), 1);
        // A pin stops the prefix even if later WALs are unpinned.
        assert_eq!(prefix(&w, 0, 0, 0, 10), 0);
    }

    #[test]
    fn the_time_limit_keeps_young_wals_and_bounds_pins() {
        let w = wals(&[100, 100, 100], &[0, 50, 90]);
        assert_eq!(prefix(&w, 60, 0, 100, u64::MAX), 1);
        assert_eq!(prefix(&w, 60, 0, 110, u64::MAX), 2);
        // Pinned or not: past the limit it goes.
        assert_eq!(prefix(&w, 60, 0, 110, 10), 2);
        assert_eq!(prefix(&w, 60, 0, 10, u64::MAX), 0);
    }

    #[test]
    fn the_size_limit_deletes_the_oldest_until_the_rest_fit() {
        let w = wals(&[100, 200, 300], &[0, 0, 0]);
        assert_eq!(prefix(&w, 0, 600, 0, u64::MAX), 0);
        assert_eq!(prefix(&w, 0, 599, 0, u64::MAX), 1);
        assert_eq!(prefix(&w, 0, 500, 0, 10), 1);
        assert_eq!(prefix(&w, 0, 299, 0, 10), 3);
    }
}
