//! The index's fence: the user-key prefix (`key_prefix`, 8 bytes) of each
//! index entry, in order, and a summary of every [`STRIDE`]-th one.
//!
//! A point lookup finds which index entries share the target's prefix by
//! searching the fence. A binary search over the whole fence (8 bytes per
//! data block: 110 KB for a 64 MB table) takes a cache miss on nearly
//! every probe once the fences of a database outgrow the CPU's caches;
//! measured, it was the largest single cost of a point read with the data
//! in memory. The summary is a sixteenth of that, small enough to stay
//! cached between lookups, and narrows the search to one stride of the
//! fence: two cache lines.

/// One summary entry per this many fence entries (128 bytes of fence).
const STRIDE: usize = 16;

/// A table's fence and its summary.
#[derive(Debug)]
pub(crate) struct Fence {
    prefixes: Box<[u64]>,
    /// `prefixes[i * STRIDE]` for each `i`.
    summary: Box<[u64]>,
}

impl Fence {
    /// The fence of `prefixes`, which must be in non-decreasing order (the
    /// prefixes of strictly increasing keys).
    pub(crate) fn new(prefixes: Vec<u64>) -> Fence {
        let summary = prefixes.iter().step_by(STRIDE).copied().collect();
        Fence {
            prefixes: prefixes.into_boxed_slice(),
            summary,
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Bytes of memory it holds.
    pub(crate) fn charge(&self) -> usize {
        (self.prefixes.len() + self.summary.len()) * std::mem::size_of::<u64>()
    }

    /// The entries whose prefix is `prefix`: `lo..hi`, where `lo` is the
    /// first entry not below it and `hi` the first above it.
    #[inline]
    pub(crate) fn equal_range(&self, prefix: u64) -> (usize, usize) {
        let lo = self.partition_point(|f| f < prefix);
        // Usually `lo` itself is above the prefix (prefixes differ).
        let hi = match self.prefixes.get(lo) {
            Some(&f) if f <= prefix => self.partition_point(|f| f <= prefix),
            _ => lo,
        };
        (lo, hi)
    }

    /// The first entry for which `pred` is false, `pred` being true for a
    /// prefix of the fence (as `slice::partition_point`).
    #[inline]
    fn partition_point(&self, pred: impl Fn(u64) -> bool) -> usize {
        // Strides whose first entry satisfies `pred`: the answer lies
        // after the first entry of the last of them, and at or before the
        // first entry of the next.
        let s = self.summary.partition_point(|&f| pred(f));
        let start = match s {
            0 => return 0,
            s => (s - 1) * STRIDE + 1,
        };
        let end = (s * STRIDE).min(self.prefixes.len());
        let stride = self.prefixes.get(start..end).unwrap_or_default();
        start + stride.partition_point(|&f| pred(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(prefixes: Vec<u64>, targets: impl IntoIterator<Item = u64>) {
        let fence = Fence::new(prefixes.clone());
        assert_eq!(fence.len(), prefixes.len());
        for t in targets {
            let lo = prefixes.partition_point(|&f| f < t);
            let hi = prefixes.partition_point(|&f| f <= t);
            assert_eq!(fence.equal_range(t), (lo, hi), "target {t} in {prefixes:?}");
        }
    }

    #[test]
    fn finds_the_same_range_as_a_binary_search_of_the_whole_fence() {
        // Every length around the stride, distinct prefixes, every target
        // between and beyond them.
        for len in 0..(4 * STRIDE + 3) {
            let prefixes: Vec<u64> = (0..len as u64).map(|i| 10 + 3 * i).collect();
            check(prefixes, 0..(20 + 3 * len as u64));
        }
    }

    #[test]
    fn finds_runs_of_equal_prefixes_across_strides() {
        // Keys longer than 8 bytes sharing their first 8: runs of one
        // prefix, some longer than a stride, some crossing stride bounds.
        let mut prefixes = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut value = 5;
        while prefixes.len() < 1000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let run = [1, 1, 2, 3, 15, 16, 17, 40][(state % 8) as usize];
            prefixes.extend(std::iter::repeat_n(value, run));
            value += 1 + state % 3;
        }
        let last = *prefixes.last().unwrap();
        check(prefixes, 0..last + 3);
    }

    #[test]
    fn one_prefix_throughout() {
        check(vec![7; 100], [0, 6, 7, 8, u64::MAX]);
        check(vec![u64::MAX; 33], [0, u64::MAX - 1, u64::MAX]);
    }
}
