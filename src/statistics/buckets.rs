//! Fixed histogram buckets: exact below 8, then four buckets per power
//! of two (each at most 25% wide), up to 2^35 microseconds (9.5 hours);
//! larger values share the last bucket. Recording is an index
//! computation and one add: no allocation, no lock.

/// Buckets per histogram.
pub(crate) const BUCKETS: usize = 8 + (MAX_EXPONENT - 2) * 4;
const MAX_EXPONENT: usize = 35;

/// The bucket `value` falls in.
#[inline]
pub(crate) fn bucket(value: u64) -> usize {
    if value < 8 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros() as usize; // >= 3
    if exponent > MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let sub = ((value >> (exponent - 2)) & 3) as usize;
    8 + (exponent - 3) * 4 + sub
}

/// The values bucket `i` holds: `[low, high)`.
pub(crate) fn bounds(i: usize) -> (u64, u64) {
    if i < 8 {
        return (i as u64, i as u64 + 1);
    }
    let exponent = (i - 8) / 4 + 3;
    let sub = ((i - 8) % 4) as u64;
    let step = 1u64 << (exponent - 2);
    ((4 + sub) * step, (5 + sub) * step)
}

/// The value below which `fraction` of the counts lie, interpolated
/// within its bucket and capped at `max` (the largest value recorded).
pub(crate) fn percentile(counts: &[u64], fraction: f64, max: u64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let wanted = fraction * total as f64;
    let mut below = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (below + n) as f64 >= wanted {
            let (low, high) = bounds(i);
            let into = ((wanted - below as f64) / n as f64).clamp(0.0, 1.0);
            let value = low as f64 + into * (high - low) as f64;
            return value.min(max as f64);
        }
        below += n;
    }
    max as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_the_bucket_whose_bounds_hold_it() {
        let mut v = 0u64;
        while v < (1u64 << 36) {
            let b = bucket(v);
            let (low, high) = bounds(b);
            assert!(low <= v && v < high, "{v} in bucket {b} [{low}, {high})");
            // At most 25% wide above the exact range.
            if v >= 8 {
                assert!((high - low) * 4 <= low, "bucket {b} too wide");
            }
            v = v * 9 / 8 + 1;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket((1 << 36) - 1), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut counts = vec![0u64; BUCKETS];
        for v in 1..=1000u64 {
            counts[bucket(v)] += 1;
        }
        let p50 = percentile(&counts, 0.5, 1000);
        let p99 = percentile(&counts, 0.99, 1000);
        assert!((400.0..=625.0).contains(&p50), "p50 {p50}");
        assert!((900.0..=1000.0).contains(&p99), "p99 {p99}");
        assert_eq!(percentile(&counts, 1.0, 1000), 1000.0);
        assert_eq!(percentile(&[0; BUCKETS], 0.5, 0), 0.0);
    }
}
